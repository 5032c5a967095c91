/**
 * The one module that imports `noise-protocol`: the Noise_XX_25519_ChaChaPoly_BLAKE2b primitives
 * (DH, SymmetricState and CipherState, ChaChaPoly Rekey) over caller-provided buffers. The HKDF
 * that SymmetricState calls is this module's own (`hkdf`, HMAC-BLAKE2b on libsodium, checked
 * against noise-protocol's in the tests): noise-protocol's made a fifth of a handshake's time.
 * Everything else in core goes through `NoiseHandshake` (xx.ts) and `NoiseCipherState`
 * (cipher-state.ts), so the backend could be swapped here alone.
 */
import cipherFactory from 'noise-protocol/cipher.js';
import cipherStateFactory from 'noise-protocol/cipher-state.js';
import dhFactory from 'noise-protocol/dh.js';
import hashFactory from 'noise-protocol/hash.js';
import symmetricStateFactory from 'noise-protocol/symmetric-state.js';
import { sodium } from '../crypto/sodium.js';

const dh = dhFactory();
const blake2b = hashFactory({ dh });

/** BLAKE2b's HASHLEN and BLOCKLEN (Noise section 12.8). */
const HASHLEN = 64;
const BLOCKLEN = 128;
/** X25519's DHLEN: a DH output, the only non-empty input key material of XX. */
const DHLEN = 32;
// One locked, guarded scratch block for every HKDF: the padded key, then the data of one HMAC
// (at most HASHLEN + 1 bytes: an output and a counter byte), and the temporary key. It is filled
// and wiped inside one synchronous hkdf() call, so no two users overlap.
const hmacScratch = sodium.sodium_malloc(BLOCKLEN + HASHLEN + 1 + HASHLEN);
const hmacBlock = hmacScratch.subarray(0, BLOCKLEN + HASHLEN + 1);
const tempKey = hmacScratch.subarray(BLOCKLEN + HASHLEN + 1);

// HMAC-BLAKE2b (RFC 2104) of the concatenation of `data` and the optional `counter` byte, with a
// HASHLEN-byte key: two BLAKE2b calls on one contiguous block. noise-protocol's own HMAC
// (hmac-blake2b) makes 2 batch calls, 3 wipes and 2 array concatenations per HMAC: 4.9 µs here
// against 1.3 µs, and a handshake runs 24 HMACs (bench README, "Handshake").
function hmacInto(out: Uint8Array, key: Uint8Array, data: Uint8Array, counter: number): void {
  const block = hmacBlock;
  for (let i = 0; i < HASHLEN; i++) block[i] = key[i]! ^ 0x36;
  block.fill(0x36, HASHLEN, BLOCKLEN);
  block.set(data, BLOCKLEN);
  let length = BLOCKLEN + data.byteLength;
  if (counter >= 0) block[length++] = counter;
  sodium.crypto_generichash(out, block.subarray(0, length));
  for (let i = 0; i < HASHLEN; i++) block[i] = key[i]! ^ 0x5c;
  block.fill(0x5c, HASHLEN, BLOCKLEN);
  block.set(out, BLOCKLEN);
  sodium.crypto_generichash(out, block.subarray(0, BLOCKLEN + HASHLEN));
}

const NO_COUNTER = -1;
const EMPTY = new Uint8Array(0);

/**
 * Noise HKDF (section 4.3) with HMAC-BLAKE2b: the same outputs as noise-protocol's, with the
 * scratch wiped before it returns. `out1` may be `chainingKey` (MixKey writes ck in place).
 */
export function hkdf(
  out1: Uint8Array,
  out2: Uint8Array,
  out3: Uint8Array | null,
  chainingKey: Uint8Array,
  inputKeyMaterial: Uint8Array,
): void {
  // What noise-protocol's accepts: a HASHLEN chaining key, and empty input (Split) or a DH output.
  const ikmLength = inputKeyMaterial.byteLength;
  if (chainingKey.byteLength !== HASHLEN || (ikmLength !== 0 && ikmLength !== DHLEN))
    throw new RangeError('hkdf: the chaining key must be 64 bytes and the input key material 0 or 32');
  try {
    hmacInto(tempKey, chainingKey, inputKeyMaterial, NO_COUNTER);
    hmacInto(out1, tempKey, EMPTY, 0x01);
    hmacInto(out2, tempKey, out1, 0x02);
    if (out3 !== null) hmacInto(out3, tempKey, out2, 0x03);
  } finally {
    sodium.sodium_memzero(hmacScratch);
  }
}

const hash = { HASHLEN, BLOCKLEN, ALG: blake2b.ALG, hash: blake2b.hash, hkdf };
const cipher = cipherFactory();
const cipherState = cipherStateFactory({ cipher });
const symmetricState = symmetricStateFactory({ hash, cipherState });

/** Bytes of a CipherState: key ‖ LE64 nonce. */
export const CIPHER_STATE_LENGTH = cipherState.STATELEN as number;
/** Bytes of a SymmetricState: ck ‖ h ‖ cipher state. */
export const SYMMETRIC_STATE_LENGTH = symmetricState.STATELEN as number;

/** X25519: a fresh key pair written into the given buffers. */
export function generateKeypair(publicKey: Uint8Array, secretKey: Uint8Array): void {
  dh.generateKeypair(publicKey, secretKey);
}

/** X25519: `out` = DH(secret, public). */
export function dhInto(out: Uint8Array, secretKey: Uint8Array, publicKey: Uint8Array): void {
  dh.dh(out, secretKey, publicKey);
}

/** Noise SymmetricState operations on a state buffer of `SYMMETRIC_STATE_LENGTH` bytes. */
export const symmetric = {
  /** InitializeSymmetric(protocol name). */
  initialize(state: Uint8Array, protocolName: Uint8Array): void {
    symmetricState.initializeSymmetric(state, protocolName);
  },
  /** MixHash(data). */
  mixHash(state: Uint8Array, data: Uint8Array): void {
    symmetricState.mixHash(state, data);
  },
  /** MixKey(input key material). */
  mixKey(state: Uint8Array, ikm: Uint8Array): void {
    symmetricState.mixKey(state, ikm);
  },
  /** EncryptAndHash(plaintext) into `out`; returns the bytes written. */
  encryptAndHash(state: Uint8Array, out: Uint8Array, plaintext: Uint8Array): number {
    symmetricState.encryptAndHash(state, out, plaintext);
    return symmetricState.encryptAndHash.bytesWritten as number;
  },
  /** DecryptAndHash(ciphertext) into `out` (throws on a bad tag). */
  decryptAndHash(state: Uint8Array, out: Uint8Array, ciphertext: Uint8Array): void {
    symmetricState.decryptAndHash(state, out, ciphertext);
  },
  /** h, for channel binding. */
  handshakeHash(state: Uint8Array, out: Uint8Array): void {
    symmetricState.getHandshakeHash(state, out);
  },
  /** Split() into two cipher states. */
  split(state: Uint8Array, first: Uint8Array, second: Uint8Array): void {
    symmetricState.split(state, first, second);
  },
};

/** Noise Rekey() for ChaChaPoly: `out` = ENCRYPT(key, 2^64-1, empty, zeros)[0..32]. */
export function rekeyInto(out: Uint8Array, key: Uint8Array): void {
  cipher.rekey(out, key);
}
