/**
 * The one typed loader of sodium-native (libsodium) for all of core. sodium-native ships no
 * types; loading it through createRequire with this local interface keeps the declarations in one
 * place and out of the public `.d.ts` (no ambient `declare module`, which a consumer's own
 * declaration of the same module would clash with). Only the members core uses are declared.
 * Internal: not exported from the package.
 */
import { createRequire } from 'node:module';

/** The sodium-native functions and constants core uses. */
export interface Sodium {
  // Memory: locked, guarded allocations and wiping.
  sodium_malloc(size: number): Buffer;
  sodium_free(buf: Uint8Array): void;
  sodium_memzero(buf: Uint8Array): void;
  sodium_memcmp(a: Uint8Array, b: Uint8Array): boolean;
  randombytes_buf(buf: Uint8Array): void;
  // X25519 static keys.
  crypto_kx_keypair(publicKey: Uint8Array, secretKey: Uint8Array): void;
  crypto_scalarmult_base(publicKey: Uint8Array, secretKey: Uint8Array): void;
  // BLAKE2b.
  crypto_generichash_KEYBYTES_MIN: number;
  crypto_generichash_KEYBYTES_MAX: number;
  crypto_generichash(out: Uint8Array, input: Uint8Array, key?: Uint8Array): void;
  // ChaChaPoly (IETF) for the Noise transport phase.
  crypto_aead_chacha20poly1305_ietf_encrypt(
    ciphertext: Uint8Array,
    message: Uint8Array,
    ad: Uint8Array | null,
    nsec: null,
    nonce: Uint8Array,
    key: Uint8Array,
  ): number;
  crypto_aead_chacha20poly1305_ietf_decrypt(
    message: Uint8Array,
    nsec: null,
    ciphertext: Uint8Array,
    ad: Uint8Array | null,
    nonce: Uint8Array,
    key: Uint8Array,
  ): number;
  // Ed25519 for certificates and authorities.
  crypto_sign_SEEDBYTES: number;
  crypto_sign_PUBLICKEYBYTES: number;
  crypto_sign_SECRETKEYBYTES: number;
  crypto_sign_BYTES: number;
  crypto_sign_seed_keypair(pk: Uint8Array, sk: Uint8Array, seed: Uint8Array): void;
  crypto_sign_detached(sig: Uint8Array, message: Uint8Array, sk: Uint8Array): void;
  crypto_sign_verify_detached(sig: Uint8Array, message: Uint8Array, pk: Uint8Array): boolean;
  // Argon2id + secretbox for encrypted key files.
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
  // XChaCha20-Poly1305 and the BLAKE2b key derivation for the encrypted outbox.
  crypto_aead_xchacha20poly1305_ietf_NPUBBYTES: number;
  crypto_aead_xchacha20poly1305_ietf_ABYTES: number;
  crypto_aead_xchacha20poly1305_ietf_encrypt(
    ciphertext: Uint8Array,
    message: Uint8Array,
    ad: Uint8Array | null,
    nsec: null,
    nonce: Uint8Array,
    key: Uint8Array,
  ): number;
  crypto_aead_xchacha20poly1305_ietf_decrypt(
    message: Uint8Array,
    nsec: null,
    ciphertext: Uint8Array,
    ad: Uint8Array | null,
    nonce: Uint8Array,
    key: Uint8Array,
  ): number;
  crypto_kdf_derive_from_key(
    subkey: Uint8Array,
    subkeyId: number,
    context: Uint8Array,
    key: Uint8Array,
  ): void;
}

/** sodium-native, loaded once. */
export const sodium = createRequire(import.meta.url)('sodium-native') as Sodium;

/** Constant-time equality of two byte strings (false, not a throw, on a length difference). */
export function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  return a.byteLength === b.byteLength && sodium.sodium_memcmp(a, b);
}
