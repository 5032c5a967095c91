// Ambient declarations for untyped dependencies. Only the members core uses are declared; they stay
// out of the public .d.ts because no exported signature mentions them.

declare module 'sodium-native' {
  const sodium: {
    sodium_malloc(size: number): Buffer;
    sodium_free(buf: Uint8Array): void;
    sodium_memzero(buf: Uint8Array): void;
    sodium_memcmp(a: Uint8Array, b: Uint8Array): boolean;
    crypto_kx_keypair(publicKey: Uint8Array, secretKey: Uint8Array): void;
    crypto_scalarmult_base(publicKey: Uint8Array, secretKey: Uint8Array): void;
    crypto_generichash(out: Uint8Array, message: Uint8Array, key?: Uint8Array): void;
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
    crypto_generichash_KEYBYTES_MIN: number;
    crypto_generichash_KEYBYTES_MAX: number;
  };
  export default sodium;
}

declare module 'noise-protocol/dh.js' {
  const factory: () => any;
  export default factory;
}
declare module 'noise-protocol/hash.js' {
  const factory: (deps: { dh: any }) => any;
  export default factory;
}
declare module 'noise-protocol/cipher.js' {
  const factory: () => any;
  export default factory;
}
declare module 'noise-protocol/cipher-state.js' {
  const factory: (deps: { cipher: any }) => any;
  export default factory;
}
declare module 'noise-protocol/symmetric-state.js' {
  const factory: (deps: { hash: any; cipherState: any }) => any;
  export default factory;
}
