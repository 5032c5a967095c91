/**
 * X25519 static key pairs: generation, rebuilding from a secret key, fingerprints and wiping.
 * Secret keys live in sodium_malloc'd memory (mlocked, guard pages) because they are long-lived.
 */
import { KEY_LENGTH } from '../constants.js';
import { sodium } from '../crypto/sodium.js';
import { assertKeyBytes } from './key-text.js';

/** An X25519 key pair; both keys are 32 raw bytes. */
export interface KeyPair {
  /** The public key, safe to share. */
  readonly publicKey: Uint8Array;
  /** The secret key; zero it with `zeroKeyPair` when done. */
  readonly secretKey: Uint8Array;
}

function secureKeyBuffer(): Buffer {
  return sodium.sodium_malloc(KEY_LENGTH);
}

/** Generate a new random X25519 key pair. */
export function generateKeyPair(): KeyPair {
  const publicKey = Buffer.alloc(KEY_LENGTH);
  const secretKey = secureKeyBuffer();
  sodium.crypto_kx_keypair(publicKey, secretKey);
  return { publicKey, secretKey };
}

/** Rebuild a key pair from its 32-byte secret key (the secret is copied). */
export function keyPairFromSecretKey(secretKey: Uint8Array): KeyPair {
  assertKeyBytes(secretKey, 'secret key');
  const sk = secureKeyBuffer();
  sk.set(secretKey);
  const publicKey = Buffer.alloc(KEY_LENGTH);
  sodium.crypto_scalarmult_base(publicKey, sk);
  return { publicKey, secretKey: sk };
}

/** A short printable identifier of a public key: `BLAKE2b:` + unpadded base64 of BLAKE2b-256. */
export function keyFingerprint(publicKey: Uint8Array): string {
  assertKeyBytes(publicKey, 'public key');
  const digest = Buffer.alloc(32);
  sodium.crypto_generichash(digest, publicKey);
  return `BLAKE2b:${digest.toString('base64').replace(/=+$/, '')}`;
}

/** Overwrite the secret (and public) key bytes with zeros. */
export function zeroKeyPair(kp: KeyPair): void {
  sodium.sodium_memzero(kp.secretKey);
  sodium.sodium_memzero(kp.publicKey);
}
