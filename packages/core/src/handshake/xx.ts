/**
 * The Noise_XX handshake state machine: bytes in, bytes out, no I/O. The three messages are named
 * steps, each commented with its tokens:
 *
 *   message 1   initiator -> responder   e
 *   message 2   responder -> initiator   e, ee, s, es
 *   message 3   initiator -> responder   s, se
 *
 * `next` says which message comes next; `WRITER` says which side writes it, so a call out of
 * turn fails before anything is mixed. After message 3 the state is split into the two transport
 * cipher states (cipher-state.ts) and wiped.
 *
 * Why the token order lives here and not in noise-protocol's HandshakeState: that object
 * allocates every key buffer with sodium_malloc (mmap + guard pages + mlock, about 40 µs each
 * here), eleven per side counting Split(), bound at require time so it cannot be configured.
 * Measured here (CPU time, both sides of one handshake, in memory): 1.42 ms through
 * HandshakeState, 0.72 ms this way. noise-protocol's SymmetricState, CipherState, hash and DH
 * functions (noise.ts; the HKDF is core's own there) are pure functions over caller-provided buffers, so we give them
 * our own state: one arena per handshake (still locked, guarded and wiped) taken from a
 * sodium_malloc'd slab (crypto/secure-memory.ts). noise-protocol still does every Noise
 * operation (MixHash, MixKey, EncryptAndHash, DecryptAndHash, Split, Rekey) and libsodium every
 * primitive; this file only orders the tokens. The known-answer vectors (handshake and transport
 * messages, handshake hash) and the noise-handshake interop test pin it to the spec.
 */
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
import { KeyArena, NoiseCipherState } from './cipher-state.js';
import { CIPHER_STATE_LENGTH, dhInto, generateKeypair, SYMMETRIC_STATE_LENGTH, symmetric } from './noise.js';

const PROTOCOL_NAME = Buffer.from(NOISE_PROTOCOL_NAME, 'ascii');
const ENCRYPTED_KEY_LENGTH = KEY_LENGTH + TAG_LENGTH;

// Layout of the per-handshake secret arena.
const SYM = 0;
const E_PUB = SYM + SYMMETRIC_STATE_LENGTH;
const E_SEC = E_PUB + KEY_LENGTH;
const DH_OUT = E_SEC + KEY_LENGTH;
const SPLIT_1 = DH_OUT + KEY_LENGTH;
const SPLIT_2 = SPLIT_1 + CIPHER_STATE_LENGTH;
const ARENA_LENGTH = SPLIT_2 + CIPHER_STATE_LENGTH;

// Handshake arenas come from slabs (crypto/secure-memory.ts): one sodium_malloc per arena cost
// ~42 µs per malloc + free pair, 4 memory mappings and ~10 KiB RSS each.
const arenaPool = secureBlockPool(ARENA_LENGTH);

/** Largest overhead an XX message adds to its payload: e (32) + encrypted s (48) + payload tag (16). */
export const MAX_HANDSHAKE_OVERHEAD = KEY_LENGTH + KEY_LENGTH + TAG_LENGTH + TAG_LENGTH;

/** Writes a fresh ephemeral key pair into the given buffers (test vectors inject fixed keys). */
export type EphemeralGenerator = (publicKey: Uint8Array, secretKey: Uint8Array) => void;

/** The side of the handshake. */
export type HandshakeRole = 'initiator' | 'responder';

/** The XX messages, in order. */
type XxMessage = 1 | 2 | 3;

/** Who writes each message. */
const WRITER: Readonly<Record<XxMessage, HandshakeRole>> = { 1: 'initiator', 2: 'responder', 3: 'initiator' };

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
  private readonly role: HandshakeRole;
  private readonly staticKeyPair: KeyPair;
  private readonly generateEphemeral: EphemeralGenerator;
  /** The message that comes next, 'done' after message 3, 'failed' once a step failed. */
  private next: XxMessage | 'done' | 'failed' = 1;
  private remoteEphemeral: Buffer | undefined;
  private keyed = false; // a cipher key exists once the first DH was mixed in (payloads get tags)

  /** Start a handshake: InitializeSymmetric(protocol name), MixHash(prologue). */
  constructor(options: NoiseHandshakeOptions) {
    const kp = options.staticKeyPair;
    if (kp?.publicKey?.byteLength !== KEY_LENGTH || kp.secretKey?.byteLength !== KEY_LENGTH)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'The static key pair must hold two 32-byte keys');
    this.role = options.initiator ? 'initiator' : 'responder';
    this.staticKeyPair = kp;
    this.generateEphemeral = options.generateEphemeral ?? generateKeypair;
    this.arenaBlock = arenaPool.allocate();
    this.arena = this.arenaBlock.buffer;
    symmetric.initialize(this.sym(), PROTOCOL_NAME);
    symmetric.mixHash(this.sym(), options.prologue);
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
    const message = this.turn('write');
    if (payload.byteLength + MAX_HANDSHAKE_OVERHEAD > MAX_FRAME_SIZE)
      throw createError('SIPC_ERR_FRAME_TOO_LARGE', 'Handshake payload too large for one Noise message');
    const out = Buffer.allocUnsafe(payload.byteLength + MAX_HANDSHAKE_OVERHEAD);
    let at: number;
    try {
      if (message === 1) at = this.writeMessage1(out);
      else if (message === 2) at = this.writeMessage2(out);
      else at = this.writeMessage3(out);
      at = this.encryptAndHash(out, at, payload);
    } catch (err) {
      this.fail();
      throw createError('SIPC_ERR_HANDSHAKE_FAILED', 'Could not write the handshake message', { cause: err });
    }
    this.advance(message);
    return out.subarray(0, at);
  }

  /** Read the next handshake message; returns its decrypted payload. A failure ends the handshake. */
  readMessage(bytes: Uint8Array): Uint8Array {
    const message = this.turn('read');
    if (bytes.byteLength > MAX_FRAME_SIZE) {
      this.fail();
      throw createError('SIPC_ERR_FRAME_TOO_LARGE', 'Handshake message exceeds the Noise limit');
    }
    let payload: Buffer;
    try {
      let at: number;
      if (message === 1) at = this.readMessage1(bytes);
      else if (message === 2) at = this.readMessage2(bytes);
      else at = this.readMessage3(bytes);
      payload = this.decryptAndHash(bytes.subarray(at));
    } catch (err) {
      // A failed read consumed the step: the state is unusable, wipe it now.
      this.fail();
      throw createError('SIPC_ERR_HANDSHAKE_FAILED', 'Handshake message failed authentication or parsing', {
        cause: err,
      });
    }
    this.advance(message);
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

  // -> e
  private writeMessage1(out: Buffer): number {
    return this.writeEphemeral(out, 0);
  }

  // <- e, ee, s, es   (es for the responder: its static key with the initiator's ephemeral)
  private writeMessage2(out: Buffer): number {
    let at = this.writeEphemeral(out, 0);
    this.mixDh(this.ephemeral(), this.remoteEphemeral!);
    at = this.encryptAndHash(out, at, this.staticKeyPair.publicKey);
    this.mixDh(this.staticKeyPair.secretKey, this.remoteEphemeral!);
    return at;
  }

  // -> s, se   (se for the initiator: its static key with the responder's ephemeral)
  private writeMessage3(out: Buffer): number {
    const at = this.encryptAndHash(out, 0, this.staticKeyPair.publicKey);
    this.mixDh(this.staticKeyPair.secretKey, this.remoteEphemeral!);
    return at;
  }

  // -> e
  private readMessage1(bytes: Uint8Array): number {
    return this.readEphemeral(bytes, 0);
  }

  // <- e, ee, s, es   (es for the initiator: its ephemeral with the responder's static key)
  private readMessage2(bytes: Uint8Array): number {
    let at = this.readEphemeral(bytes, 0);
    this.mixDh(this.ephemeral(), this.remoteEphemeral!);
    at = this.readStatic(bytes, at);
    this.mixDh(this.ephemeral(), this.remoteStaticKey!);
    return at;
  }

  // -> s, se   (se for the responder: its ephemeral with the initiator's static key)
  private readMessage3(bytes: Uint8Array): number {
    const at = this.readStatic(bytes, 0);
    this.mixDh(this.ephemeral(), this.remoteStaticKey!);
    return at;
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
    symmetric.mixHash(this.sym(), pub);
    return at + KEY_LENGTH;
  }

  private readEphemeral(message: Uint8Array, at: number): number {
    if (message.byteLength - at < KEY_LENGTH) throw new Error('message too short for an ephemeral key');
    this.remoteEphemeral = Buffer.from(message.subarray(at, at + KEY_LENGTH));
    symmetric.mixHash(this.sym(), this.remoteEphemeral);
    return at + KEY_LENGTH;
  }

  private readStatic(message: Uint8Array, at: number): number {
    if (message.byteLength - at < ENCRYPTED_KEY_LENGTH) throw new Error('message too short for a static key');
    const rs = Buffer.alloc(KEY_LENGTH);
    symmetric.decryptAndHash(this.sym(), rs, message.subarray(at, at + ENCRYPTED_KEY_LENGTH));
    this.remoteStaticKey = rs;
    return at + ENCRYPTED_KEY_LENGTH;
  }

  // MixKey(DH(local secret, remote public)); the shared secret is wiped right after.
  private mixDh(localSecret: Uint8Array, remotePublic: Uint8Array): void {
    const out = this.arena!.subarray(DH_OUT, DH_OUT + KEY_LENGTH);
    dhInto(out, localSecret, remotePublic);
    symmetric.mixKey(this.sym(), out);
    sodium.sodium_memzero(out);
    this.keyed = true;
  }

  private encryptAndHash(out: Buffer, at: number, plaintext: Uint8Array): number {
    return at + symmetric.encryptAndHash(this.sym(), out.subarray(at), plaintext);
  }

  private decryptAndHash(ciphertext: Uint8Array): Buffer {
    const keyed = this.keyed;
    if (keyed && ciphertext.byteLength < TAG_LENGTH) throw new Error('message too short for its tag');
    const plain = Buffer.alloc(keyed ? ciphertext.byteLength - TAG_LENGTH : ciphertext.byteLength);
    symmetric.decryptAndHash(this.sym(), plain, ciphertext);
    return plain;
  }

  // After message 3: h for channel binding, Split() into the channel's key block, wipe the rest.
  private advance(message: XxMessage): void {
    if (message !== 3) {
      this.next = message === 1 ? 2 : 3;
      return;
    }
    this.next = 'done';
    const h = Buffer.alloc(HANDSHAKE_HASH_LENGTH);
    symmetric.handshakeHash(this.sym(), h);
    this.handshakeHash = h;
    const c1 = this.arena!.subarray(SPLIT_1, SPLIT_1 + CIPHER_STATE_LENGTH);
    const c2 = this.arena!.subarray(SPLIT_2, SPLIT_2 + CIPHER_STATE_LENGTH);
    symmetric.split(this.sym(), c1, c2);
    const keys = new KeyArena(c1, c2);
    // Noise: the initiator sends with the first key of Split(), the responder with the second.
    const [tx, rx]: [0 | 1, 0 | 1] = this.role === 'initiator' ? [0, 1] : [1, 0];
    this.split = { tx: new NoiseCipherState(keys, tx), rx: new NoiseCipherState(keys, rx) };
    this.destroy();
  }

  private fail(): void {
    this.next = 'failed';
    this.destroy();
  }

  // Precondition of every step: the state is live and the next message is this side's to write
  // (or, reading, the peer's).
  private turn(action: 'write' | 'read'): XxMessage {
    const message = this.next;
    if (message === 'done' || message === 'failed' || this.arena === undefined)
      throw createError('SIPC_ERR_HANDSHAKE_FAILED', 'The handshake state is no longer usable');
    if ((WRITER[message] === this.role) !== (action === 'write'))
      throw createError('SIPC_ERR_HANDSHAKE_FAILED', `Not this side's turn to ${action}`);
    return message;
  }
}
