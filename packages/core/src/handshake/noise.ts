/**
 * The one module that imports `noise-protocol`: the Noise_XX_25519_ChaChaPoly_BLAKE2b primitives
 * (DH, SymmetricState with its HKDF and CipherState, ChaChaPoly Rekey) over caller-provided
 * buffers. Everything else in core goes through `NoiseHandshake` (xx.ts) and `NoiseCipherState`
 * (cipher-state.ts), so the backend could be swapped here alone.
 */
import cipherFactory from 'noise-protocol/cipher.js';
import cipherStateFactory from 'noise-protocol/cipher-state.js';
import dhFactory from 'noise-protocol/dh.js';
import hashFactory from 'noise-protocol/hash.js';
import symmetricStateFactory from 'noise-protocol/symmetric-state.js';

const dh = dhFactory();
const hash = hashFactory({ dh });
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
