// Minimal ambient types for the untyped packages the benchmark drives. Only what is called here is
// declared; kept out of any published surface (tools/bench is private).

declare module '@hyperswarm/secret-stream' {
  import type { Duplex } from 'node:stream';

  interface KeyPair {
    publicKey: Buffer;
    secretKey: Buffer;
  }
  class NoiseSecretStream extends Duplex {
    constructor(isInitiator: boolean, rawStream?: Duplex, options?: { keyPair?: KeyPair });
    static keyPair(seed?: Buffer): KeyPair;
    readonly remotePublicKey: Buffer | null;
    readonly publicKey: Buffer;
  }
  export default NoiseSecretStream;
}

declare module 'node-ipc' {
  const ipc: any;
  export default ipc;
}

declare module 'noise-protocol' {
  const noise: {
    initialize(pattern: string, initiator: boolean, prologue: Uint8Array, s?: unknown, e?: unknown): any;
    writeMessage(
      state: any,
      payload: Uint8Array,
      out: Uint8Array,
    ): { tx: Uint8Array; rx: Uint8Array } | undefined;
    readMessage(
      state: any,
      message: Uint8Array,
      out: Uint8Array,
    ): { tx: Uint8Array; rx: Uint8Array } | undefined;
    destroy(state: any): void;
    keygen(): { publicKey: Uint8Array; secretKey: Uint8Array };
  };
  export default noise;
}

declare module 'noise-handshake' {
  class Noise {
    constructor(pattern: string, initiator: boolean, staticKeypair?: unknown);
    initialise(prologue: Uint8Array, remoteStatic?: Uint8Array): void;
    send(payload?: Uint8Array): Uint8Array;
    recv(message: Uint8Array): Uint8Array;
    readonly complete: boolean;
    readonly tx: Uint8Array;
    readonly rx: Uint8Array;
    readonly s: unknown;
  }
  export default Noise;
}

declare module 'sodium-native' {
  const sodium: {
    crypto_aead_chacha20poly1305_ietf_ABYTES: number;
    crypto_aead_chacha20poly1305_ietf_KEYBYTES: number;
    crypto_aead_chacha20poly1305_ietf_NPUBBYTES: number;
    crypto_aead_chacha20poly1305_ietf_encrypt(
      c: Uint8Array,
      m: Uint8Array,
      ad: Uint8Array | null,
      nsec: null,
      npub: Uint8Array,
      k: Uint8Array,
    ): number;
    crypto_aead_chacha20poly1305_ietf_decrypt(
      m: Uint8Array,
      nsec: null,
      c: Uint8Array,
      ad: Uint8Array | null,
      npub: Uint8Array,
      k: Uint8Array,
    ): number;
    randombytes_buf(b: Uint8Array): void;
    sodium_malloc(size: number): Buffer;
    sodium_free(buf: Uint8Array): void;
    sodium_memzero(buf: Uint8Array): void;
    crypto_scalarmult(q: Uint8Array, n: Uint8Array, p: Uint8Array): void;
    crypto_kx_keypair(pk: Uint8Array, sk: Uint8Array): void;
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
