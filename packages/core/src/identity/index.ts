/**
 * The identity lifecycle: certificates with roles and expiry issued by Ed25519 authorities,
 * certificate-based trust for secure channels, revocation lists (in memory or a watched file)
 * enforced on live channels, secret keys in the OS keystore or in passphrase-encrypted files.
 * See docs/identity.md.
 */

export * from '../keys/encrypted-key-file.js';
export * from '../keys/keystore.js';
export {
  type AuthorityKeyPair,
  authorityFromSeed,
  generateAuthority,
  readAuthorityFile,
  writeAuthorityFile,
  zeroAuthority,
} from './authority.js';
export * from './cert-trust.js';
export * from './certificate.js';
export * from './enforcement.js';
export * from './revocation.js';
export * from './revocation-watch.js';
