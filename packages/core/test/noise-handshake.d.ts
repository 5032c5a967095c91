// Minimal types for the dev dependency noise-handshake (holepunch), used as an independent peer.
declare module 'noise-handshake' {
  class NoiseState {
    constructor(
      pattern: string,
      initiator: boolean,
      staticKeypair?: { publicKey: Uint8Array; secretKey: Uint8Array },
      opts?: Record<string, unknown>,
    );
    initialise(prologue: Uint8Array, remoteStatic?: Uint8Array): void;
    send(payload?: Uint8Array): Buffer;
    recv(message: Uint8Array): Buffer;
    complete: boolean;
    tx: Buffer;
    rx: Buffer;
    rs: Buffer;
    hash: Buffer;
  }
  export default NoiseState;
}
declare module 'noise-handshake/cipher.js' {
  class CipherState {
    constructor(key: Uint8Array);
    key: Buffer;
    nonce: number;
    encrypt(plaintext: Uint8Array, ad?: Uint8Array): Buffer;
    decrypt(ciphertext: Uint8Array, ad?: Uint8Array): Buffer;
  }
  export default CipherState;
}
