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

const MAX_NONCE = Buffer.alloc(8, 0xff);
const NO_AD = new Uint8Array(0);

/**
 * One direction's transport cipher: key ‖ little-endian 64-bit nonce in one 40-byte sodium_malloc
 * buffer, as noise-protocol's Split() returns it. AEAD is ChaChaPoly with empty associated data.
 */
export class NoiseCipherState {
  private state: Buffer | undefined;

  /** Wrap a 40-byte cipher state; this object owns and frees it. */
  constructor(state: Buffer) {
    this.state = state;
  }

  /** True once the key was wiped. */
  get destroyed(): boolean {
    return this.state === undefined;
  }

  /**
   * Encrypt `plaintext` into `out` (which may be the same memory: libsodium encrypts in place);
   * returns the bytes written (plaintext + 16).
   */
  encrypt(out: Uint8Array, plaintext: Uint8Array): number {
    const state = this.live();
    try {
      cipherState.encryptWithAd(state, out, NO_AD, plaintext);
    } catch (err) {
      if (state.subarray(32).equals(MAX_NONCE))
        throw createError('SIPC_ERR_NONCE_EXHAUSTED', undefined, { cause: err });
      throw err;
    }
    return cipherState.encryptWithAd.bytesWritten as number;
  }

  /** Decrypt `ciphertext` into `out` (may be the same memory); returns the plaintext length. */
  decrypt(out: Uint8Array, ciphertext: Uint8Array): number {
    const state = this.live();
    if (ciphertext.byteLength < TAG_LENGTH)
      throw createError('SIPC_ERR_DECRYPT_FAILED', 'Ciphertext shorter than a tag');
    try {
      cipherState.decryptWithAd(state, out, NO_AD, ciphertext);
    } catch (err) {
      if (state.subarray(32).equals(MAX_NONCE))
        throw createError('SIPC_ERR_NONCE_EXHAUSTED', undefined, { cause: err });
      throw createError('SIPC_ERR_DECRYPT_FAILED', undefined, { cause: err });
    }
    return cipherState.decryptWithAd.bytesWritten as number;
  }

  /** Noise Rekey(): k = ENCRYPT(k, 2^64-1, empty, zeros)[0..32]; the nonce is unchanged. */
  rekey(): void {
    cipherState.rekey(this.live());
  }

  /** Set the 64-bit nonce (tests of nonce exhaustion only). */
  setNonce(nonce: bigint): void {
    this.live().writeBigUInt64LE(nonce, 32);
  }

  /** Zero and free the key; further use throws `SIPC_ERR_CHANNEL_CLOSED`. */
  destroy(): void {
    if (this.state === undefined) return;
    sodium.sodium_memzero(this.state);
    sodium.sodium_free(this.state);
    this.state = undefined;
  }

  private live(): Buffer {
    if (this.state === undefined)
      throw createError('SIPC_ERR_CHANNEL_CLOSED', 'The cipher state was destroyed');
    return this.state;
  }
}
