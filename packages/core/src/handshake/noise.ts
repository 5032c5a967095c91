/**
 * The one module that talks to `noise-protocol` (Noise_XX_25519_ChaChaPoly_BLAKE2b). Everything
 * else uses `NoiseHandshake` and `NoiseCipherState`, so the backend could be swapped here alone.
 *
 * Performance note: noise-protocol's HandshakeState allocates every key buffer with sodium_malloc
 * (mmap + guard pages + mlock, about 40 µs each here, nine per side: roughly half of a 0.75 ms
 * handshake side). Its constructor and token loop call sodium_malloc directly, bound at require
 * time, so the only ways around it are reimplementing the state machine or patching the shared
 * sodium-native module for every other user in the process. Both were rejected: connect cost is
 * paid once per connection, and the secure memory protects the keys. We add no allocations of our
 * own to that path beyond the copies we must keep after `destroy`.
 */
import noise from 'noise-protocol';
import cipherFactory from 'noise-protocol/cipher.js';
import cipherStateFactory from 'noise-protocol/cipher-state.js';
import dhFactory from 'noise-protocol/dh.js';
import hashFactory from 'noise-protocol/hash.js';
import symmetricStateFactory from 'noise-protocol/symmetric-state.js';
import sodium from 'sodium-native';
import { HANDSHAKE_HASH_LENGTH, KEY_LENGTH, MAX_FRAME_SIZE, TAG_LENGTH } from '../constants.js';
import { createError } from '../errors.js';
import type { KeyPair } from '../keys.js';

const dh = dhFactory();
const hash = hashFactory({ dh });
const cipher = cipherFactory();
const cipherState = cipherStateFactory({ cipher });
// Our own instance of the SymmetricState functions: they are pure functions over a state buffer,
// so `getHandshakeHash` reads h from a handshake made by `noise` without touching its internals.
const symmetricState = symmetricStateFactory({ hash, cipherState });

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
  /** This side's static key pair (copied into secure memory). */
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
  private state: any;
  private readonly engine: any;
  private failed = false;

  /** Start a handshake. */
  constructor(options: NoiseHandshakeOptions) {
    const gen = options.generateEphemeral;
    this.engine =
      gen === undefined
        ? noise
        : noise.createHandshake({
            dh: { ...dh, generateKeypair: gen },
            hash,
            cipher,
            symmetricState,
            cipherState,
          });
    try {
      this.state = this.engine.initialize('XX', options.initiator, options.prologue, options.staticKeyPair);
    } catch (err) {
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'Bad handshake parameters', { cause: err });
    }
  }

  /** True once the last message was written or read. */
  get complete(): boolean {
    return this.split !== undefined;
  }

  /** The ephemeral secret key buffer held by the state (tests check it is wiped after the handshake). */
  get ephemeralSecretKey(): Uint8Array | null {
    return this.state?.esk ?? null;
  }

  /** Write the next handshake message carrying `payload`; returns the message bytes. */
  writeMessage(payload: Uint8Array): Uint8Array {
    this.assertUsable();
    if (payload.byteLength + MAX_HANDSHAKE_OVERHEAD > MAX_FRAME_SIZE)
      throw createError('SIPC_ERR_FRAME_TOO_LARGE', 'Handshake payload too large for one Noise message');
    const out = Buffer.allocUnsafe(payload.byteLength + MAX_HANDSHAKE_OVERHEAD);
    let result: { tx: Buffer; rx: Buffer } | undefined;
    try {
      result = this.engine.writeMessage(this.state, payload, out);
    } catch (err) {
      this.fail();
      throw createError('SIPC_ERR_HANDSHAKE_FAILED', 'Could not write the handshake message', { cause: err });
    }
    const message = out.subarray(0, this.engine.writeMessage.bytes as number);
    this.afterStep(result);
    return message;
  }

  /** Read the next handshake message; returns its decrypted payload. A failure ends the handshake. */
  readMessage(message: Uint8Array): Uint8Array {
    this.assertUsable();
    if (message.byteLength > MAX_FRAME_SIZE) {
      this.fail();
      throw createError('SIPC_ERR_FRAME_TOO_LARGE', 'Handshake message exceeds the Noise limit');
    }
    const payload = Buffer.allocUnsafe(message.byteLength);
    let result: { tx: Buffer; rx: Buffer } | undefined;
    try {
      const hadRemoteStatic = this.state.rs != null;
      result = this.engine.readMessage(this.state, message, payload);
      if (!hadRemoteStatic && this.state.rs != null) this.remoteStaticKey = Buffer.from(this.state.rs);
    } catch (err) {
      // noise-protocol has consumed the step: the state is unusable, free it now.
      this.fail();
      throw createError('SIPC_ERR_HANDSHAKE_FAILED', 'Handshake message failed authentication or parsing', {
        cause: err,
      });
    }
    const out = payload.subarray(0, this.engine.readMessage.bytes as number);
    this.afterStep(result);
    return out;
  }

  /** Free (and zero) every key buffer of the state; safe to call more than once. */
  destroy(): void {
    if (this.state !== undefined) {
      this.engine.destroy(this.state);
      this.state = undefined;
    }
  }

  /** Destroy the state and any split keys not yet handed out. */
  dispose(): void {
    this.destroy();
    if (this.split !== undefined) {
      this.split.tx.destroy();
      this.split.rx.destroy();
    }
  }

  private afterStep(result: { tx: Buffer; rx: Buffer } | undefined): void {
    if (result === undefined) return;
    const h = Buffer.alloc(HANDSHAKE_HASH_LENGTH);
    symmetricState.getHandshakeHash(this.state.symmetricState, h);
    this.handshakeHash = h;
    this.split = { tx: new NoiseCipherState(result.tx), rx: new NoiseCipherState(result.rx) };
    // Ephemeral and static copies are not needed after Split(): sodium_free zeroes and unmaps them.
    this.destroy();
  }

  private fail(): void {
    this.failed = true;
    this.destroy();
  }

  private assertUsable(): void {
    if (this.failed || this.state === undefined)
      throw createError('SIPC_ERR_HANDSHAKE_FAILED', 'The handshake state is no longer usable');
  }
}

const NONCE_LENGTH = 12;
const MAX_UINT32 = 0xffff_ffff;

/**
 * One direction's transport cipher (Noise CipherState for ChaChaPoly): a 32-byte key in
 * sodium_malloc'd memory and a 64-bit message counter; the AEAD nonce is 32 zero bits followed by
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
  private readonly nonce = Buffer.alloc(NONCE_LENGTH);
  // The counter as two uint32 halves: exact to 2^64 without BigInt on the hot path.
  private lo = 0;
  private hi = 0;

  /** Take the 40-byte key ‖ LE64 nonce state noise-protocol's Split() returned, and free it. */
  constructor(state: Buffer) {
    this.key = sodium.sodium_malloc(KEY_LENGTH);
    this.key.set(state.subarray(0, KEY_LENGTH));
    this.lo = state.readUInt32LE(KEY_LENGTH);
    this.hi = state.readUInt32LE(KEY_LENGTH + 4);
    sodium.sodium_free(state);
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
      out.subarray(0, length),
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
    sodium.sodium_memzero(this.key);
    sodium.sodium_free(this.key);
    this.key = undefined;
  }

  // The AEAD nonce for the current counter; 2^64-1 is reserved by Noise (Rekey uses it).
  private currentNonce(): Buffer {
    if (this.lo === MAX_UINT32 && this.hi === MAX_UINT32) throw createError('SIPC_ERR_NONCE_EXHAUSTED');
    this.nonce.writeUInt32LE(this.lo, 4);
    this.nonce.writeUInt32LE(this.hi, 8);
    return this.nonce;
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
