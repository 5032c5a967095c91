/**
 * Certificate authorities: an Ed25519 key pair (libsodium crypto_sign) that signs certificates,
 * its key id (what a certificate names as issuer), and the authority key file that
 * `secure-ipc ca init` writes.
 */

import { sodium } from '../crypto/sodium.js';
import { createError } from '../errors.js';
import { armor, dearmor } from '../keys/armor.js';
import { readSecretFile, writeSecretFile } from '../keys/private-file.js';

/** An authority's Ed25519 key pair. `secretKey` is libsodium's 64-byte form (seed + public key). */
export interface AuthorityKeyPair {
  /** Ed25519 public key, 32 bytes: what verifiers trust (`--trust-ca`). */
  readonly publicKey: Uint8Array;
  /** Ed25519 secret key, 64 bytes, in sodium-guarded memory; zero it with `zeroAuthority`. */
  readonly secretKey: Uint8Array;
}

const AUTHORITY_FILE_LABEL = 'AUTHORITY KEY';

/** Derive the authority key pair from a 32-byte seed (the seed is not modified). */
export function authorityFromSeed(seed: Uint8Array): AuthorityKeyPair {
  if (seed.byteLength !== sodium.crypto_sign_SEEDBYTES)
    throw createError('SIPC_ERR_BAD_KEY', 'An authority seed must be 32 bytes');
  const publicKey = new Uint8Array(sodium.crypto_sign_PUBLICKEYBYTES);
  const secretKey = sodium.sodium_malloc(sodium.crypto_sign_SECRETKEYBYTES);
  sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed);
  return { publicKey, secretKey };
}

/** Generate a new authority key pair from libsodium's CSPRNG. */
export function generateAuthority(): AuthorityKeyPair {
  const seed = sodium.sodium_malloc(sodium.crypto_sign_SEEDBYTES);
  sodium.randombytes_buf(seed);
  try {
    return authorityFromSeed(seed);
  } finally {
    sodium.sodium_memzero(seed);
  }
}

/** Zero an authority's secret key (call when done signing). */
export function zeroAuthority(authority: AuthorityKeyPair): void {
  sodium.sodium_memzero(authority.secretKey);
}

/**
 * Write an authority key file: armored 32-byte seed, created 0600 with O_EXCL (an existing file,
 * possibly someone's CA, is never overwritten).
 */
export async function writeAuthorityFile(path: string, authority: AuthorityKeyPair): Promise<void> {
  // libsodium's 64-byte secret key starts with the 32-byte seed.
  const text = armor(AUTHORITY_FILE_LABEL, authority.secretKey.subarray(0, sodium.crypto_sign_SEEDBYTES));
  await writeSecretFile(path, text);
}

/** Read an authority key file; refused (SIPC_ERR_INSECURE_KEY_FILE) when owned by another user or accessible by group or others. */
export async function readAuthorityFile(path: string): Promise<AuthorityKeyPair> {
  return readSecretFile(path, { maxBytes: 1024, code: 'SIPC_ERR_BAD_KEY' }, (raw) => {
    const seed = dearmor(raw.toString('utf8'), AUTHORITY_FILE_LABEL, 32, 'SIPC_ERR_BAD_KEY');
    try {
      return authorityFromSeed(seed);
    } finally {
      sodium.sodium_memzero(seed);
    }
  });
}
