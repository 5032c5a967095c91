/**
 * The transport phase's cipher states: both keys of a channel in one slab block (KeyArena), and
 * one direction's Noise CipherState for ChaChaPoly (NoiseCipherState), on libsodium directly.
 */
import { KEY_LENGTH, TAG_LENGTH } from '../constants.js';
import { type SecureBlock, secureBlockPool } from '../crypto/secure-memory.js';
import { sodium } from '../crypto/sodium.js';
import { createError } from '../errors.js';
import { rekeyInto } from './noise.js';

// Channel key blocks come from slabs (crypto/secure-memory.ts): one sodium_malloc per key block
// cost ~42 µs per malloc + free pair, 4 memory mappings and ~10 KiB RSS each, and capped a
// process at ~16,000 channel ends (vm.max_map_count).
const keyPool = secureBlockPool(2 * KEY_LENGTH);

/** Both transport keys of a channel in one slab block, wiped and released when both are destroyed. */
export class KeyArena {
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

/** Explicit counters are safe integers, so 2^64-1 (reserved by Noise for Rekey) cannot be one. */
const TWO_POW_32 = 0x1_0000_0000;

// The AEAD nonce for an explicit counter: 32 zero bits, then the counter as LE64.
function explicitNonce(nonce: number): Buffer {
  if (!Number.isSafeInteger(nonce) || nonce < 0)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'An explicit nonce must be an integer 0..2^53-1');
  scratchNonce.writeUInt32LE(nonce % TWO_POW_32, 4);
  scratchNonce.writeUInt32LE(Math.floor(nonce / TWO_POW_32), 8);
  return scratchNonce;
}

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

  /**
   * Encrypt with associated data `ad` at the explicit counter `nonce` (an integer 0..2^53-1; the
   * caller keeps each one unique, as the tunnel's sender does): the same AEAD nonce layout as
   * `encrypt`, which stays separate so the channel's hot path is untouched. The implicit counter
   * is neither read nor moved. Returns the bytes written (plaintext + 16).
   */
  encryptAt(nonce: number, out: Uint8Array, ad: Uint8Array, plaintext: Uint8Array): number {
    const key = this.live();
    const length = plaintext.byteLength + TAG_LENGTH;
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
      out.byteLength === length ? out : out.subarray(0, length),
      plaintext,
      ad,
      null,
      explicitNonce(nonce),
      key,
    );
    return length;
  }

  /**
   * Decrypt with associated data `ad` at the explicit counter `nonce` (see `encryptAt`); throws
   * `SIPC_ERR_DECRYPT_FAILED` and writes nothing the caller may use on a bad tag. Returns the
   * plaintext length.
   */
  decryptAt(nonce: number, out: Uint8Array, ad: Uint8Array, ciphertext: Uint8Array): number {
    const key = this.live();
    const length = ciphertext.byteLength - TAG_LENGTH;
    if (length < 0) throw createError('SIPC_ERR_DECRYPT_FAILED', 'Ciphertext shorter than a tag');
    try {
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt(
        out.subarray(0, length),
        null,
        ciphertext,
        ad,
        explicitNonce(nonce),
        key,
      );
    } catch (err) {
      throw createError('SIPC_ERR_DECRYPT_FAILED', undefined, { cause: err });
    }
    return length;
  }

  /** Noise Rekey(): k = ENCRYPT(k, 2^64-1, empty, zeros)[0..32]; the counter is unchanged. */
  rekey(): void {
    const key = this.live();
    rekeyInto(key, key);
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
