/**
 * The one module that talks to `noise-protocol` (Noise_XX_25519_ChaChaPoly_BLAKE2b). Everything
 * else uses `NoiseHandshake` and `NoiseCipherState`, so the backend could be swapped here alone.
 *
 * Why the XX token sequence lives here and not in noise-protocol's HandshakeState: that object
 * allocates every key buffer with sodium_malloc (mmap + guard pages + mlock, about 40 µs each
 * here), eleven per side counting Split(), bound at require time so it cannot be configured.
 * Measured here (CPU time, both sides of one handshake, in memory): 1.42 ms through
 * HandshakeState, 0.72 ms this way. noise-protocol's SymmetricState, CipherState, hash
 * (HKDF) and DH functions are pure functions over caller-provided buffers, so we give them our
 * own state: one arena per handshake (still locked, guarded and wiped) and one key block per
 * channel for the two transport keys, both taken from sodium_malloc'd slabs (secure-memory.ts). noise-protocol still does
 * every Noise operation (MixHash, MixKey, EncryptAndHash, DecryptAndHash, Split, Rekey) and libsodium every primitive; this file
 * only orders the tokens of the three XX messages. The known-answer vectors (handshake and
 * transport messages, handshake hash) and the noise-handshake interop test pin it to the spec.
 */
import cipherFactory from 'noise-protocol/cipher.js';
import cipherStateFactory from 'noise-protocol/cipher-state.js';
import dhFactory from 'noise-protocol/dh.js';
import hashFactory from 'noise-protocol/hash.js';
import symmetricStateFactory from 'noise-protocol/symmetric-state.js';
import {
  HANDSHAKE_HASH_LENGTH,
  KEY_LENGTH,
  MAX_FRAME_SIZE,
  NOISE_PROTOCOL_NAME,
  TAG_LENGTH,
} from '../constants.js';
import { type SecureBlock, secureBlockPool } from '../crypto/secure-memory.js';
import { sodium } from '../crypto/sodium.js';
import { createError } from '../errors.js';
import type { KeyPair } from '../keys/key-pair.js';

const dh = dhFactory();
const hash = hashFactory({ dh });
const cipher = cipherFactory();
const cipherState = cipherStateFactory({ cipher });
const symmetricState = symmetricStateFactory({ hash, cipherState });

const PROTOCOL_NAME = Buffer.from(NOISE_PROTOCOL_NAME, 'ascii');
const ENCRYPTED_KEY_LENGTH = KEY_LENGTH + TAG_LENGTH;
const CIPHER_STATE_LENGTH = cipherState.STATELEN as number; // key ‖ LE64 nonce
const SYMMETRIC_STATE_LENGTH = symmetricState.STATELEN as number; // ck ‖ h ‖ cipher state

// Layout of the per-handshake secret arena.
const SYM = 0;
const E_PUB = SYM + SYMMETRIC_STATE_LENGTH;
const E_SEC = E_PUB + KEY_LENGTH;
const DH_OUT = E_SEC + KEY_LENGTH;
const SPLIT_1 = DH_OUT + KEY_LENGTH;
const SPLIT_2 = SPLIT_1 + CIPHER_STATE_LENGTH;
const ARENA_LENGTH = SPLIT_2 + CIPHER_STATE_LENGTH;

// Handshake arenas and channel key blocks come from slabs (src/secure-memory.ts): one
// sodium_malloc per arena and per key block cost ~42 µs per malloc + free pair, 4 memory
// mappings and ~10 KiB RSS each, and capped a process at ~16,000 channel ends (vm.max_map_count).
const arenaPool = secureBlockPool(ARENA_LENGTH);
const keyPool = secureBlockPool(2 * KEY_LENGTH);

/** Largest overhead an XX message adds to its payload: e (32) + encrypted s (48) + payload tag (16). */
export const MAX_HANDSHAKE_OVERHEAD = KEY_LENGTH + KEY_LENGTH + TAG_LENGTH + TAG_LENGTH;

/** Writes a fresh ephemeral key pair into the given buffers (test vectors inject fixed keys). */
export type EphemeralGenerator = (publicKey: Uint8Array, secretKey: Uint8Array) => void;

/** Options of a `NoiseHandshake`. */
export interface NoiseHandshakeOptions {
  /** True for the side that sends message 1. */
  initiator: boolean;
  /** Bytes mixed into the handshake hash first; both sides must agree. */
  prologue: Uint8Array;
  /** This side's static key pair (used in place, never copied). */
  staticKeyPair: KeyPair;
  /** Replace ephemeral key generation (known-answer tests only). */
  generateEphemeral?: EphemeralGenerator | undefined;
}

/** A Noise_XX handshake state machine: bytes in, bytes out, no I/O. */
export class NoiseHandshake {
  /** The peer's static public key once its `s` token was read (a copy that outlives the state). */
  remoteStaticKey: Uint8Array | undefined;
  /** h after the last message, for channel binding. */
  handshakeHash: Uint8Array | undefined;
  /** The transport cipher states once the handshake is complete; the caller owns them. */
  split: { tx: NoiseCipherState; rx: NoiseCipherState } | undefined;
  private arena: Buffer | undefined;
  private arenaBlock: SecureBlock | undefined;
  private readonly initiator: boolean;
  private readonly staticKeyPair: KeyPair;
  private readonly generateEphemeral: EphemeralGenerator;
  private step = 0; // messages processed so far (0..3)
  private remoteEphemeral: Buffer | undefined;
  private failed = false;
  private keyed = false; // a cipher key exists once the first DH was mixed in (payloads get tags)

  /** Start a handshake: InitializeSymmetric(protocol name), MixHash(prologue). */
  constructor(options: NoiseHandshakeOptions) {
    const kp = options.staticKeyPair;
    if (kp?.publicKey?.byteLength !== KEY_LENGTH || kp.secretKey?.byteLength !== KEY_LENGTH)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'The static key pair must hold two 32-byte keys');
    this.initiator = options.initiator;
    this.staticKeyPair = kp;
    this.generateEphemeral = options.generateEphemeral ?? ((pk, sk) => dh.generateKeypair(pk, sk));
    this.arenaBlock = arenaPool.allocate();
    this.arena = this.arenaBlock.buffer;
    symmetricState.initializeSymmetric(this.sym(), PROTOCOL_NAME);
    symmetricState.mixHash(this.sym(), options.prologue);
  }

  /** True once the last message was written or read. */
  get complete(): boolean {
    return this.split !== undefined;
  }

  /** The ephemeral secret key buffer (tests check it is wiped after the handshake), null once freed. */
  get ephemeralSecretKey(): Uint8Array | null {
    return this.arena === undefined ? null : this.arena.subarray(E_SEC, E_SEC + KEY_LENGTH);
  }

  /** Write the next handshake message carrying `payload`; returns the message bytes. */
  writeMessage(payload: Uint8Array): Uint8Array {
    this.assertUsable(true);
    if (payload.byteLength + MAX_HANDSHAKE_OVERHEAD > MAX_FRAME_SIZE)
      throw createError('SIPC_ERR_FRAME_TOO_LARGE', 'Handshake payload too large for one Noise message');
    const out = Buffer.allocUnsafe(payload.byteLength + MAX_HANDSHAKE_OVERHEAD);
    let at = 0;
    try {
      if (this.step === 0) {
        at = this.writeEphemeral(out, at); // -> e
      } else if (this.step === 1) {
        at = this.writeEphemeral(out, at); // <- e
        this.mixDh(this.ephemeral(), this.remoteEphemeral!); // ee
        at = this.encryptAndHash(out, at, this.staticKeyPair.publicKey); // s
        this.mixDh(this.staticKeyPair.secretKey, this.remoteEphemeral!); // es (responder: s with re)
      } else {
        at = this.encryptAndHash(out, at, this.staticKeyPair.publicKey); // -> s
        this.mixDh(this.staticKeyPair.secretKey, this.remoteEphemeral!); // se (initiator: s with re)
      }
      at = this.encryptAndHash(out, at, payload);
    } catch (err) {
      this.fail();
      throw createError('SIPC_ERR_HANDSHAKE_FAILED', 'Could not write the handshake message', { cause: err });
    }
    this.advance();
    return out.subarray(0, at);
  }

  /** Read the next handshake message; returns its decrypted payload. A failure ends the handshake. */
  readMessage(message: Uint8Array): Uint8Array {
    this.assertUsable(false);
    if (message.byteLength > MAX_FRAME_SIZE) {
      this.fail();
      throw createError('SIPC_ERR_FRAME_TOO_LARGE', 'Handshake message exceeds the Noise limit');
    }
    let at = 0;
    let payload: Buffer;
    try {
      if (this.step === 0 || this.step === 1) {
        at = this.readEphemeral(message, at); // e
        if (this.step === 1) {
          this.mixDh(this.ephemeral(), this.remoteEphemeral!); // ee
          at = this.readStatic(message, at); // s
          this.mixDh(this.ephemeral(), this.remoteStaticKey!); // es (initiator: e with rs)
        }
      } else {
        at = this.readStatic(message, at); // s
        this.mixDh(this.ephemeral(), this.remoteStaticKey!); // se (responder: e with rs)
      }
      payload = this.decryptAndHash(message.subarray(at));
    } catch (err) {
      // A failed read consumed the step: the state is unusable, wipe it now.
      this.fail();
      throw createError('SIPC_ERR_HANDSHAKE_FAILED', 'Handshake message failed authentication or parsing', {
        cause: err,
      });
    }
    this.advance();
    return payload;
  }

  /** Wipe and free the handshake state; safe to call more than once. */
  destroy(): void {
    if (this.arena === undefined) return;
    this.arenaBlock!.release(); // wiped with sodium_memzero, back to its slab
    this.arenaBlock = undefined;
    this.arena = undefined;
    this.remoteEphemeral = undefined;
  }

  /** Destroy the state and any split keys not yet handed out. */
  dispose(): void {
    this.destroy();
    if (this.split !== undefined) {
      this.split.tx.destroy();
      this.split.rx.destroy();
    }
  }

  private sym(): Buffer {
    return this.arena!.subarray(SYM, SYM + SYMMETRIC_STATE_LENGTH);
  }

  private ephemeral(): Buffer {
    return this.arena!.subarray(E_SEC, E_SEC + KEY_LENGTH);
  }

  private writeEphemeral(out: Buffer, at: number): number {
    const pub = this.arena!.subarray(E_PUB, E_PUB + KEY_LENGTH);
    this.generateEphemeral(pub, this.ephemeral());
    out.set(pub, at);
    symmetricState.mixHash(this.sym(), pub);
    return at + KEY_LENGTH;
  }

  private readEphemeral(message: Uint8Array, at: number): number {
    if (message.byteLength - at < KEY_LENGTH) throw new Error('message too short for an ephemeral key');
    this.remoteEphemeral = Buffer.from(message.subarray(at, at + KEY_LENGTH));
    symmetricState.mixHash(this.sym(), this.remoteEphemeral);
    return at + KEY_LENGTH;
  }

  private readStatic(message: Uint8Array, at: number): number {
    if (message.byteLength - at < ENCRYPTED_KEY_LENGTH) throw new Error('message too short for a static key');
    const rs = Buffer.alloc(KEY_LENGTH);
    symmetricState.decryptAndHash(this.sym(), rs, message.subarray(at, at + ENCRYPTED_KEY_LENGTH));
    this.remoteStaticKey = rs;
    return at + ENCRYPTED_KEY_LENGTH;
  }

  // MixKey(DH(local secret, remote public)); the shared secret is wiped right after.
  private mixDh(localSecret: Uint8Array, remotePublic: Uint8Array): void {
    const out = this.arena!.subarray(DH_OUT, DH_OUT + KEY_LENGTH);
    dh.dh(out, localSecret, remotePublic);
    symmetricState.mixKey(this.sym(), out);
    sodium.sodium_memzero(out);
    this.keyed = true;
  }

  private encryptAndHash(out: Buffer, at: number, plaintext: Uint8Array): number {
    symmetricState.encryptAndHash(this.sym(), out.subarray(at), plaintext);
    return at + (symmetricState.encryptAndHash.bytesWritten as number);
  }

  private decryptAndHash(ciphertext: Uint8Array): Buffer {
    const keyed = this.keyed;
    if (keyed && ciphertext.byteLength < TAG_LENGTH) throw new Error('message too short for its tag');
    const plain = Buffer.alloc(keyed ? ciphertext.byteLength - TAG_LENGTH : ciphertext.byteLength);
    symmetricState.decryptAndHash(this.sym(), plain, ciphertext);
    return plain;
  }

  // After message 3: h for channel binding, Split() into our own key arena, wipe the rest.
  private advance(): void {
    this.step++;
    if (this.step < 3) return;
    const h = Buffer.alloc(HANDSHAKE_HASH_LENGTH);
    symmetricState.getHandshakeHash(this.sym(), h);
    this.handshakeHash = h;
    const c1 = this.arena!.subarray(SPLIT_1, SPLIT_1 + CIPHER_STATE_LENGTH);
    const c2 = this.arena!.subarray(SPLIT_2, SPLIT_2 + CIPHER_STATE_LENGTH);
    symmetricState.split(this.sym(), c1, c2);
    const keys = new KeyArena(c1, c2);
    // Noise: the initiator sends with the first key of Split(), the responder with the second.
    const [tx, rx]: [0 | 1, 0 | 1] = this.initiator ? [0, 1] : [1, 0];
    this.split = { tx: new NoiseCipherState(keys, tx), rx: new NoiseCipherState(keys, rx) };
    this.destroy();
  }

  private fail(): void {
    this.failed = true;
    this.destroy();
  }

  // XX: the initiator writes messages 1 and 3 (steps 0, 2), the responder message 2 (step 1).
  private assertUsable(writing: boolean): void {
    if (this.failed || this.arena === undefined || this.step >= 3)
      throw createError('SIPC_ERR_HANDSHAKE_FAILED', 'The handshake state is no longer usable');
    if (writing !== (this.initiator === (this.step !== 1)))
      throw createError('SIPC_ERR_HANDSHAKE_FAILED', `Not this side's turn to ${writing ? 'write' : 'read'}`);
  }
}

/** Both transport keys of a channel in one slab block, wiped and released when both are destroyed. */
class KeyArena {
  private block: SecureBlock | undefined;
  private memory: Buffer | undefined;
  private live = 2;

  // Split() leaves both nonces at 0 (InitializeKey), so only the keys are kept.
  constructor(first: Buffer, second: Buffer) {
    this.block = keyPool.allocate();
    this.memory = this.block.buffer;
    this.memory.set(first.subarray(0, KEY_LENGTH), 0);
    this.memory.set(second.subarray(0, KEY_LENGTH), KEY_LENGTH);
  }

  key(index: 0 | 1): Buffer {
    return this.memory!.subarray(index * KEY_LENGTH, (index + 1) * KEY_LENGTH);
  }

  release(index: 0 | 1): void {
    if (this.memory === undefined) return;
    sodium.sodium_memzero(this.key(index));
    if (--this.live > 0) return;
    this.block!.release();
    this.block = undefined;
    this.memory = undefined;
  }
}

const NONCE_LENGTH = 12;
const MAX_UINT32 = 0xffff_ffff;
// One scratch nonce for every cipher state: it is filled and consumed inside one synchronous
// AEAD call, so no two users can overlap. A 12-byte Buffer per direction was two Buffers and two
// ArrayBuffers per channel end (~0.2 KiB of heap per end, heap snapshot of 1,000 connections).
// The nonce is public (a counter), so sharing it exposes nothing.
const scratchNonce = Buffer.alloc(NONCE_LENGTH);

/**
 * One direction's transport cipher (Noise CipherState for ChaChaPoly): a 32-byte key in the
 * channel's key block (slab memory, src/secure-memory.ts) and a 64-bit message counter; the AEAD nonce is 32 zero bits followed by
 * the little-endian counter, associated data is empty, and counter 2^64-1 is never used.
 *
 * Why not noise-protocol's cipher-state: per call it runs about six native helpers (nonce compare,
 * zero check, nonce widening and wiping, increment) around the AEAD. Measured here, encrypt+decrypt
 * of a 65-byte frame cost 12.5 µs through it and 4.9 µs calling libsodium's
 * crypto_aead_chacha20poly1305_ietf_* directly, which matters for small-message round trips. The
 * primitive is still libsodium's; Rekey() is still noise-protocol's. The known-answer vectors
 * (transport messages included) and the noise-handshake interop test pin this to the spec.
 */
export class NoiseCipherState {
  private key: Buffer | undefined;
  // The counter as two uint32 halves: exact to 2^64 without BigInt on the hot path.
  private lo = 0;
  private hi = 0;

  /** Use key `index` of a Split() key block, counter 0. */
  constructor(
    private readonly keys: KeyArena,
    private readonly index: 0 | 1,
  ) {
    this.key = keys.key(index);
  }

  /** True once the key was wiped. */
  get destroyed(): boolean {
    return this.key === undefined;
  }

  /**
   * Encrypt `plaintext` into `out` (which may be the same memory: libsodium encrypts in place);
   * returns the bytes written (plaintext + 16).
   */
  encrypt(out: Uint8Array, plaintext: Uint8Array): number {
    const key = this.live();
    const length = plaintext.byteLength + TAG_LENGTH;
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
      out.byteLength === length ? out : out.subarray(0, length),
      plaintext,
      null,
      null,
      this.currentNonce(),
      key,
    );
    this.advance();
    return length;
  }

  /** Decrypt `ciphertext` into `out` (may be the same memory); returns the plaintext length. */
  decrypt(out: Uint8Array, ciphertext: Uint8Array): number {
    const key = this.live();
    const length = ciphertext.byteLength - TAG_LENGTH;
    if (length < 0) throw createError('SIPC_ERR_DECRYPT_FAILED', 'Ciphertext shorter than a tag');
    try {
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt(
        out.subarray(0, length),
        null,
        ciphertext,
        null,
        this.currentNonce(),
        key,
      );
    } catch (err) {
      throw createError('SIPC_ERR_DECRYPT_FAILED', undefined, { cause: err });
    }
    this.advance();
    return length;
  }

  /** Noise Rekey(): k = ENCRYPT(k, 2^64-1, empty, zeros)[0..32]; the counter is unchanged. */
  rekey(): void {
    const key = this.live();
    cipher.rekey(key, key);
  }

  /** Set the 64-bit counter (tests of nonce exhaustion only). */
  setNonce(nonce: bigint): void {
    this.lo = Number(nonce & 0xffff_ffffn);
    this.hi = Number(nonce >> 32n);
  }

  /** Zero and free the key; further use throws `SIPC_ERR_CHANNEL_CLOSED`. */
  destroy(): void {
    if (this.key === undefined) return;
    this.keys.release(this.index);
    this.key = undefined;
  }

  // The AEAD nonce for the current counter; 2^64-1 is reserved by Noise (Rekey uses it).
  private currentNonce(): Buffer {
    if (this.lo === MAX_UINT32 && this.hi === MAX_UINT32) throw createError('SIPC_ERR_NONCE_EXHAUSTED');
    scratchNonce.writeUInt32LE(this.lo, 4);
    scratchNonce.writeUInt32LE(this.hi, 8);
    return scratchNonce;
  }

  // Only after a successful operation: a failed decryption leaves the counter where it was.
  private advance(): void {
    if (this.lo === MAX_UINT32) {
      this.lo = 0;
      this.hi++;
    } else this.lo++;
  }

  private live(): Buffer {
    if (this.key === undefined)
      throw createError('SIPC_ERR_CHANNEL_CLOSED', 'The cipher state was destroyed');
    return this.key;
  }
}
