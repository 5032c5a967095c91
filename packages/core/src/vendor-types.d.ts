// Ambient declarations for noise-protocol's untyped modules (sodium-native is typed in
// crypto/sodium.ts). They stay out of the public .d.ts because no exported signature mentions them.

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
