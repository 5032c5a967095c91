/**
 * Certificates v1: an authority (Ed25519) binds a subject's X25519 static key to a name, roles, a
 * validity window and a serial. The encoding is msgpack; the signature covers the exact encoded
 * bytes of the signed part, so a verifier never re-encodes anything. The format is specified in
 * docs/protocol.md, section "Certificates".
 */
import { encode } from '@msgpack/msgpack';
import { bytesEqual, sodium } from '../crypto/sodium.js';
import { createError, isSecureIpcError, type SecureIpcError } from '../errors.js';
import { armor, dearmor } from '../keys/armor.js';
import { encodeKey, toKey } from '../keys/key-text.js';
import { readBoundedFile, writeFileAtomic } from '../keys/private-file.js';
import { boundedDecoder, decodeBounded } from '../msgpack/decode-budget.js';
import type { AuthorityKeyPair } from './authority.js';

/** Certificate format version written and accepted. */
export const CERTIFICATE_VERSION = 1;
/** Largest encoded certificate accepted anywhere (file, handshake payload), checked before decoding. */
export const MAX_CERTIFICATE_BYTES = 4096;
/** Default lifetime of an issued certificate: 24 hours (short-lived by default). */
export const DEFAULT_CERTIFICATE_TTL_MS = 24 * 60 * 60 * 1000;
/** Default clock skew tolerated on both ends of the validity window. */
export const DEFAULT_CLOCK_SKEW_MS = 30_000;
/** Most roles one certificate may carry. */
export const MAX_CERTIFICATE_ROLES = 64;

// Domain separation: a certificate signature can never be replayed as a signature over anything
// else this (or another) protocol signs with the same key.
const SIGNATURE_CONTEXT = Buffer.from('secure-ipc/cert/1\0', 'utf8');
const ROLE_PATTERN = /^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$/;
const MAX_NAME_BYTES = 255;
const FILE_LABEL = 'CERTIFICATE';
// Structural limits of this format; the decode budget (depth, cost) applies on top.
const decoder = boundedDecoder({
  maxStrLength: MAX_CERTIFICATE_BYTES,
  maxBinLength: MAX_CERTIFICATE_BYTES,
  maxArrayLength: MAX_CERTIFICATE_ROLES,
  maxMapLength: 16,
  maxExtLength: 0,
});
const OUTER_KEYS = ['v', 'tbs', 'sig'];
const TBS_KEYS = ['v', 'serial', 'subject', 'name', 'roles', 'nbf', 'naf', 'issuer'];

/** Why a certificate was refused: a stable string carried in `error.details.reason`. */
export type CertificateRefusal =
  | 'malformed'
  | 'bad-signature'
  | 'untrusted-authority'
  | 'expired'
  | 'not-yet-valid'
  | 'subject-mismatch'
  | 'revoked-serial'
  | 'revoked-key'
  | 'missing';

/** A decoded certificate. Times are milliseconds since the epoch (whole seconds on the wire). */
export interface Certificate {
  /** Format version (1). */
  readonly version: number;
  /** Serial number chosen by the issuer, 1..2^53-1; revocation lists name it. */
  readonly serial: number;
  /** The subject's X25519 static public key (32 bytes): the Noise key the certificate is for. */
  readonly subjectKey: Uint8Array;
  /** Human-readable subject name (1..255 UTF-8 bytes, no control characters). */
  readonly name: string;
  /** Roles granted to the subject; they feed the authorization policy. */
  readonly roles: readonly string[];
  /** Not valid before this time (ms epoch). */
  readonly notBefore: number;
  /** Not valid after this time (ms epoch). */
  readonly notAfter: number;
  /** The issuing authority's Ed25519 public key (32 bytes), which is its key id. */
  readonly issuer: Uint8Array;
  /** The exact signed bytes (msgpack map). */
  readonly tbs: Uint8Array;
  /** Ed25519 signature over 'secure-ipc/cert/1' 0x00 || tbs. */
  readonly signature: Uint8Array;
  /** The full encoding that travels in handshake payloads and files. */
  readonly bytes: Uint8Array;
}

/** What `issueCertificate` needs besides the authority. */
export interface IssueCertificateOptions {
  /** The subject's X25519 public key, raw or base64. */
  subjectKey: Uint8Array | string;
  /** Subject name. */
  name: string;
  /** Roles to grant (default none). */
  roles?: readonly string[] | undefined;
  /** Lifetime in ms (default 24 h), rounded up to whole seconds. */
  ttlMs?: number | undefined;
  /** Start of validity, ms epoch (default now). */
  notBefore?: number | undefined;
  /** Serial (default: random in 1..2^53-1). */
  serial?: number | undefined;
}

/** Anything that can say whether a certificate or key is revoked (a `RevocationList` is one). */
export interface RevocationCheck {
  /** The reason if revoked, undefined if not. */
  check(entry: {
    serial?: number | undefined;
    subjectKey: Uint8Array;
  }): 'revoked-serial' | 'revoked-key' | undefined;
}

/** Options of `verifyCertificate`. */
export interface VerifyCertificateOptions {
  /** Trusted authority public keys (Ed25519, raw or base64). */
  authorities: ReadonlyArray<Uint8Array | string>;
  /** The time to check against, ms epoch (default Date.now()). */
  now?: number | undefined;
  /** Tolerated clock skew at both ends of the validity window (default 30 s). */
  clockSkewMs?: number | undefined;
  /** If given, the certificate's subject must be exactly this key (the handshake's remote static key). */
  subjectKey?: Uint8Array | undefined;
  /** If given, a revoked serial or subject key is refused. */
  revocations?: RevocationCheck | undefined;
}

function refuse(
  code: 'SIPC_ERR_BAD_CERTIFICATE' | 'SIPC_ERR_CERT_EXPIRED' | 'SIPC_ERR_REVOKED',
  reason: CertificateRefusal,
  message: string,
  extra: Record<string, unknown> = {},
): SecureIpcError {
  return createError(code, message, { details: { reason, ...extra } });
}

/** The refusal reason of an error thrown by `verifyCertificate`, if it is one. */
export function certificateRefusal(err: unknown): CertificateRefusal | undefined {
  if (!isSecureIpcError(err)) return undefined;
  const reason = err.details?.reason;
  return typeof reason === 'string' ? (reason as CertificateRefusal) : undefined;
}

function randomSerial(): number {
  const buf = new Uint32Array(2);
  for (;;) {
    sodium.randombytes_buf(new Uint8Array(buf.buffer));
    // 21 high bits + 32 low bits = a uniformly random 53-bit integer (exactly representable).
    const serial = (buf[0]! >>> 11) * 2 ** 32 + buf[1]!;
    if (serial !== 0) return serial;
  }
}

function checkName(name: unknown): string {
  if (typeof name !== 'string' || name.length === 0 || Buffer.byteLength(name, 'utf8') > MAX_NAME_BYTES)
    throw createError(
      'SIPC_ERR_BAD_CERTIFICATE',
      `A certificate name must be 1..${MAX_NAME_BYTES} UTF-8 bytes`,
    );
  // Names end up in logs and CLI output: no control characters that could forge lines there.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: matching control characters is the point
  if (/[\u0000-\u001f\u007f-\u009f]/.test(name))
    throw createError('SIPC_ERR_BAD_CERTIFICATE', 'A certificate name must not contain control characters');
  return name;
}

function checkRoles(roles: unknown): string[] {
  if (!Array.isArray(roles) || roles.length > MAX_CERTIFICATE_ROLES)
    throw createError('SIPC_ERR_BAD_CERTIFICATE', `Roles must be a list of at most ${MAX_CERTIFICATE_ROLES}`);
  for (const role of roles) {
    if (typeof role !== 'string' || !ROLE_PATTERN.test(role))
      throw createError(
        'SIPC_ERR_BAD_CERTIFICATE',
        `Invalid role ${JSON.stringify(role)}: 1..128 of A-Z a-z 0-9 . _ : / - (starting alphanumeric)`,
      );
  }
  if (new Set(roles).size !== roles.length)
    throw createError('SIPC_ERR_BAD_CERTIFICATE', 'Roles must not repeat');
  return [...roles] as string[];
}

function isUint(value: unknown, max: number): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0 && value <= max;
}

function checkedKeys(map: Record<string, unknown>, keys: readonly string[]): boolean {
  const got = Object.keys(map);
  return got.length === keys.length && keys.every((k) => Object.hasOwn(map, k));
}

function decodeMap(bytes: Uint8Array, what: string): Record<string, unknown> {
  let value: unknown;
  try {
    value = decodeBounded(bytes, decoder);
  } catch (err) {
    throw createError('SIPC_ERR_BAD_CERTIFICATE', `The ${what} is not valid msgpack`, {
      cause: err,
      details: { reason: 'malformed' },
    });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array)
    throw refuse('SIPC_ERR_BAD_CERTIFICATE', 'malformed', `The ${what} is not a msgpack map`);
  return value as Record<string, unknown>;
}

/**
 * Decode and structurally validate a certificate (size, types, ranges, no unknown fields). Does
 * NOT check the signature, the authority or the time: use `verifyCertificate` for trust.
 */
export function decodeCertificate(bytes: Uint8Array): Certificate {
  if (!(bytes instanceof Uint8Array))
    throw refuse('SIPC_ERR_BAD_CERTIFICATE', 'malformed', 'A certificate must be bytes');
  if (bytes.byteLength > MAX_CERTIFICATE_BYTES)
    throw refuse(
      'SIPC_ERR_BAD_CERTIFICATE',
      'malformed',
      `A certificate is at most ${MAX_CERTIFICATE_BYTES} bytes`,
    );
  const outer = decodeMap(bytes, 'certificate');
  // Unknown fields are refused rather than ignored: a v1 verifier must never accept a certificate
  // carrying a constraint it does not understand. New fields come with a new version.
  if (!checkedKeys(outer, OUTER_KEYS) || outer.v !== CERTIFICATE_VERSION)
    throw refuse('SIPC_ERR_BAD_CERTIFICATE', 'malformed', 'Unsupported certificate version or fields');
  const { tbs, sig } = outer;
  if (
    !(tbs instanceof Uint8Array) ||
    !(sig instanceof Uint8Array) ||
    sig.byteLength !== sodium.crypto_sign_BYTES
  )
    throw refuse('SIPC_ERR_BAD_CERTIFICATE', 'malformed', 'A certificate needs binary tbs and a 64-byte sig');
  const m = decodeMap(tbs, 'signed part of the certificate');
  if (!checkedKeys(m, TBS_KEYS) || m.v !== CERTIFICATE_VERSION)
    throw refuse('SIPC_ERR_BAD_CERTIFICATE', 'malformed', 'Unsupported certificate version or fields');
  if (!isUint(m.serial, Number.MAX_SAFE_INTEGER) || m.serial === 0)
    throw refuse('SIPC_ERR_BAD_CERTIFICATE', 'malformed', 'The serial must be an integer in 1..2^53-1');
  if (!(m.subject instanceof Uint8Array) || m.subject.byteLength !== 32)
    throw refuse('SIPC_ERR_BAD_CERTIFICATE', 'malformed', 'The subject key must be 32 bytes');
  if (!(m.issuer instanceof Uint8Array) || m.issuer.byteLength !== 32)
    throw refuse('SIPC_ERR_BAD_CERTIFICATE', 'malformed', 'The issuer key must be 32 bytes');
  if (!isUint(m.nbf, 2 ** 40) || !isUint(m.naf, 2 ** 40) || m.naf <= m.nbf)
    throw refuse('SIPC_ERR_BAD_CERTIFICATE', 'malformed', 'The validity window is invalid');
  let name: string;
  let roles: string[];
  try {
    name = checkName(m.name);
    roles = checkRoles(m.roles);
  } catch (err) {
    throw refuse('SIPC_ERR_BAD_CERTIFICATE', 'malformed', (err as Error).message);
  }
  // Copy out of the decoder's views so the certificate never aliases a caller's buffer.
  return Object.freeze({
    version: CERTIFICATE_VERSION,
    serial: m.serial,
    subjectKey: new Uint8Array(m.subject),
    name,
    roles: Object.freeze(roles),
    notBefore: m.nbf * 1000,
    notAfter: m.naf * 1000,
    issuer: new Uint8Array(m.issuer),
    tbs: new Uint8Array(tbs),
    signature: new Uint8Array(sig),
    bytes: new Uint8Array(bytes),
  });
}

function signedMessage(tbs: Uint8Array): Buffer {
  return Buffer.concat([SIGNATURE_CONTEXT, tbs]);
}

/** Issue (sign) a certificate with an authority key. */
export function issueCertificate(authority: AuthorityKeyPair, options: IssueCertificateOptions): Certificate {
  const subject = toKey(options.subjectKey, 'The subject public key', 'SIPC_ERR_BAD_KEY');
  const ttl = options.ttlMs ?? DEFAULT_CERTIFICATE_TTL_MS;
  if (!Number.isFinite(ttl) || ttl < 1000)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'A certificate lifetime must be at least 1 second');
  const nbf = Math.floor((options.notBefore ?? Date.now()) / 1000);
  const serial = options.serial ?? randomSerial();
  if (!isUint(serial, Number.MAX_SAFE_INTEGER) || serial === 0)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'The serial must be an integer in 1..2^53-1');
  const tbs = encode({
    v: CERTIFICATE_VERSION,
    serial,
    subject,
    name: checkName(options.name),
    roles: checkRoles([...(options.roles ?? [])]),
    nbf,
    naf: nbf + Math.ceil(ttl / 1000),
    issuer: authority.publicKey,
  });
  const sig = new Uint8Array(sodium.crypto_sign_BYTES);
  sodium.crypto_sign_detached(sig, signedMessage(tbs), authority.secretKey);
  const bytes = encode({ v: CERTIFICATE_VERSION, tbs, sig });
  if (bytes.byteLength > MAX_CERTIFICATE_BYTES)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `The certificate exceeds ${MAX_CERTIFICATE_BYTES} bytes`);
  return decodeCertificate(bytes);
}

/** The encoding of a certificate (what goes into `payload: { cert }` and, armored, into files). */
export function encodeCertificate(cert: Certificate): Uint8Array {
  return cert.bytes;
}

/** True if the signature is valid under the issuer key named in the certificate (NOT that the issuer is trusted). */
export function certificateSignatureValid(cert: Certificate): boolean {
  return sodium.crypto_sign_verify_detached(cert.signature, signedMessage(cert.tbs), cert.issuer);
}

/**
 * Verify a certificate for use: structure, trusted authority, signature, validity window (with
 * skew), subject key (if given) and revocation (if given), in that order. Returns the decoded
 * certificate or throws a typed error whose `details.reason` is a `CertificateRefusal`:
 * SIPC_ERR_BAD_CERTIFICATE (malformed, bad signature, untrusted authority, subject mismatch),
 * SIPC_ERR_CERT_EXPIRED (expired, not yet valid), SIPC_ERR_REVOKED (serial or key revoked).
 */
export function verifyCertificate(
  certificate: Uint8Array | Certificate,
  options: VerifyCertificateOptions,
): Certificate {
  const cert = certificate instanceof Uint8Array ? decodeCertificate(certificate) : certificate;
  const authorities = options.authorities.map((a) => toKey(a, 'An authority key', 'SIPC_ERR_BAD_KEY'));
  // Membership test over public keys; constant-time compares anyway, as everywhere in identity.
  if (!authorities.some((a) => bytesEqual(a, cert.issuer)))
    throw refuse(
      'SIPC_ERR_BAD_CERTIFICATE',
      'untrusted-authority',
      'The certificate issuer is not a trusted authority',
      {
        serial: cert.serial,
      },
    );
  if (!certificateSignatureValid(cert))
    throw refuse('SIPC_ERR_BAD_CERTIFICATE', 'bad-signature', 'The certificate signature does not verify', {
      serial: cert.serial,
    });
  const now = options.now ?? Date.now();
  const skew = options.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
  if (!Number.isFinite(skew) || skew < 0)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'clockSkewMs must be a non-negative number');
  if (now + skew < cert.notBefore)
    throw refuse('SIPC_ERR_CERT_EXPIRED', 'not-yet-valid', 'The certificate is not valid yet', {
      serial: cert.serial,
      notBefore: cert.notBefore,
    });
  if (now - skew >= cert.notAfter)
    throw refuse('SIPC_ERR_CERT_EXPIRED', 'expired', 'The certificate has expired', {
      serial: cert.serial,
      notAfter: cert.notAfter,
    });
  if (options.subjectKey !== undefined && !bytesEqual(options.subjectKey, cert.subjectKey))
    throw refuse(
      'SIPC_ERR_BAD_CERTIFICATE',
      'subject-mismatch',
      "The certificate's subject key is not the peer's static key",
      { serial: cert.serial },
    );
  const revoked = options.revocations?.check({ serial: cert.serial, subjectKey: cert.subjectKey });
  if (revoked !== undefined)
    throw refuse('SIPC_ERR_REVOKED', revoked, 'The certificate or its subject key is revoked', {
      serial: cert.serial,
    });
  return cert;
}

/** A certificate as plain JSON (what `secure-ipc cert inspect` prints), without the signature check. */
export function certificateToJSON(cert: Certificate): Record<string, unknown> {
  return {
    version: cert.version,
    serial: cert.serial,
    subject: encodeKey(cert.subjectKey),
    name: cert.name,
    roles: [...cert.roles],
    notBefore: new Date(cert.notBefore).toISOString(),
    notAfter: new Date(cert.notAfter).toISOString(),
    issuer: encodeKey(cert.issuer),
  };
}

/** Armor a certificate as text (the certificate file format). */
export function certificateToText(cert: Certificate): string {
  return armor(FILE_LABEL, cert.bytes);
}

/** Parse a certificate file's text (structure only; verify it with `verifyCertificate`). */
export function certificateFromText(text: string): Certificate {
  return decodeCertificate(dearmor(text, FILE_LABEL, MAX_CERTIFICATE_BYTES, 'SIPC_ERR_BAD_CERTIFICATE'));
}

/**
 * Read a certificate file (a regular file, links not followed, at most 8 KiB; structure only, verify
 * with `verifyCertificate`). No owner or mode check: a certificate is public and proves itself by
 * its signature.
 */
export async function readCertificateFile(path: string): Promise<Certificate> {
  const raw = await readBoundedFile(path, { maxBytes: 8192, code: 'SIPC_ERR_BAD_CERTIFICATE' });
  return certificateFromText(raw.toString('utf8'));
}

/** Write a certificate file atomically (0644: a certificate is public). */
export async function writeCertificateFile(path: string, cert: Certificate): Promise<void> {
  await writeFileAtomic(path, certificateToText(cert));
}
