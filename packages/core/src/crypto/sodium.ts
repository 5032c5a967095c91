/**
 * The slice of sodium-native that the identity code uses, typed here. sodium-native ships no
 * types; loading it through createRequire with this local interface keeps identity independent
 * of any ambient `declare module` elsewhere in core (two ambient declarations of the same
 * constants would clash). Internal: not exported from the package.
 */
import { createRequire } from 'node:module';

/** The sodium-native functions and constants used by packages/core/src/identity. */
export interface IdentitySodium {
  crypto_sign_SEEDBYTES: number;
  crypto_sign_PUBLICKEYBYTES: number;
  crypto_sign_SECRETKEYBYTES: number;
  crypto_sign_BYTES: number;
  crypto_sign_seed_keypair(pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): void;
  crypto_sign_detached(sig: Uint8Array, message: Uint8Array, sk: Uint8Array): void;
  crypto_sign_verify_detached(sig: Uint8Array, message: Uint8Array, pk: Uint8Array): boolean;
  crypto_generichash(out: Uint8Array, input: Uint8Array, key?: Uint8Array): void;
  crypto_pwhash_ALG_ARGON2ID13: number;
  crypto_pwhash_OPSLIMIT_MIN: number;
  crypto_pwhash_MEMLIMIT_MIN: number;
  crypto_pwhash_OPSLIMIT_MODERATE: number;
  crypto_pwhash_MEMLIMIT_MODERATE: number;
  crypto_pwhash(
    out: Uint8Array,
    passwd: Uint8Array,
    salt: Uint8Array,
    opslimit: number,
    memlimit: number,
    alg: number,
  ): void;
  crypto_secretbox_KEYBYTES: number;
  crypto_secretbox_easy(c: Uint8Array, m: Uint8Array, n: Uint8Array, k: Uint8Array): void;
  crypto_secretbox_open_easy(m: Uint8Array, c: Uint8Array, n: Uint8Array, k: Uint8Array): boolean;
  randombytes_buf(buf: Uint8Array): void;
  sodium_memcmp(a: Uint8Array, b: Uint8Array): boolean;
  sodium_memzero(buf: Uint8Array): void;
  sodium_malloc(size: number): Buffer;
}

/** sodium-native, loaded once. */
export const sodium = createRequire(import.meta.url)('sodium-native') as IdentitySodium;

/** Constant-time equality of two byte strings (false, not a throw, on a length difference). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && sodium.sodium_memcmp(a, b);
}
