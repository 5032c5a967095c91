import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encode } from '@msgpack/msgpack';
import test, { type ExecutionContext } from 'ava';
import { isSecureIpcError } from '../src/errors.js';
import {
  authorityFromSeed,
  type Certificate,
  type CertificateRefusal,
  certificateFromText,
  certificateRefusal,
  certificateSignatureValid,
  certificateToJSON,
  certificateToText,
  decodeCertificate,
  generateAuthority,
  issueCertificate,
  MAX_CERTIFICATE_BYTES,
  RevocationList,
  readAuthorityFile,
  readCertificateFile,
  verifyCertificate,
  writeAuthorityFile,
  writeCertificateFile,
  zeroAuthority,
} from '../src/index.js';
import { generateKeyPair } from '../src/keys/key-pair.js';
import { encodeKey } from '../src/keys/key-text.js';
import { codeOf, tempDir } from './identity-helpers.js';

const ca = generateAuthority();
const otherCa = generateAuthority();
const subject = generateKeyPair();
const T0 = Date.UTC(2026, 0, 1);
const HOUR = 3_600_000;

function issue(overrides: Partial<Parameters<typeof issueCertificate>[1]> = {}): Certificate {
  return issueCertificate(ca, {
    subjectKey: subject.publicKey,
    name: 'helper',
    roles: ['files-reader', 'metrics'],
    notBefore: T0,
    ttlMs: HOUR,
    ...overrides,
  });
}

function refusal(t: ExecutionContext, fn: () => unknown, code: string, reason: CertificateRefusal): void {
  const err = t.throws(fn);
  t.true(isSecureIpcError(err), String(err));
  t.is(codeOf(err), code);
  t.is(certificateRefusal(err), reason);
}

test('issue + verify: fields round-trip, signature covers the exact bytes', (t) => {
  const cert = issue({ serial: 42 });
  const ok = verifyCertificate(cert.bytes, {
    authorities: [encodeKey(ca.publicKey)],
    now: T0 + 1000,
    subjectKey: subject.publicKey,
  });
  t.is(ok.serial, 42);
  t.is(ok.name, 'helper');
  t.deepEqual([...ok.roles], ['files-reader', 'metrics']);
  t.is(ok.notBefore, T0);
  t.is(ok.notAfter, T0 + HOUR);
  t.deepEqual(Buffer.from(ok.subjectKey), Buffer.from(subject.publicKey));
  t.deepEqual(Buffer.from(ok.issuer), Buffer.from(ca.publicKey));
  t.true(certificateSignatureValid(ok));
  t.true(cert.bytes.byteLength < 400, `a typical certificate is small (${cert.bytes.byteLength} bytes)`);
});

test('default lifetime is 24 hours and serials are random 53-bit integers', (t) => {
  const a = issueCertificate(ca, { subjectKey: subject.publicKey, name: 'x', notBefore: T0 });
  const b = issueCertificate(ca, { subjectKey: subject.publicKey, name: 'x', notBefore: T0 });
  t.is(a.notAfter - a.notBefore, 24 * HOUR);
  t.not(a.serial, b.serial);
  for (const c of [a, b]) t.true(Number.isSafeInteger(c.serial) && c.serial >= 1);
});

test('expired certificate is refused (CERT_EXPIRED / expired), skew tolerated only up to its bound', (t) => {
  const cert = issue();
  const opts = { authorities: [ca.publicKey], clockSkewMs: 30_000 };
  t.notThrows(() => verifyCertificate(cert, { ...opts, now: T0 + HOUR + 29_000 }));
  refusal(
    t,
    () => verifyCertificate(cert, { ...opts, now: T0 + HOUR + 30_000 }),
    'SIPC_ERR_CERT_EXPIRED',
    'expired',
  );
  refusal(
    t,
    () => verifyCertificate(cert, { ...opts, now: T0 + 2 * HOUR }),
    'SIPC_ERR_CERT_EXPIRED',
    'expired',
  );
});

test('not-yet-valid certificate is refused (CERT_EXPIRED / not-yet-valid)', (t) => {
  const cert = issue({ notBefore: T0 + HOUR });
  const opts = { authorities: [ca.publicKey], clockSkewMs: 5_000 };
  refusal(t, () => verifyCertificate(cert, { ...opts, now: T0 }), 'SIPC_ERR_CERT_EXPIRED', 'not-yet-valid');
  t.notThrows(() => verifyCertificate(cert, { ...opts, now: T0 + HOUR - 5_000 }));
});

test('certificate from another authority is refused (BAD_CERTIFICATE / untrusted-authority)', (t) => {
  const foreign = issueCertificate(otherCa, { subjectKey: subject.publicKey, name: 'helper', notBefore: T0 });
  refusal(
    t,
    () => verifyCertificate(foreign, { authorities: [ca.publicKey], now: T0 + 1 }),
    'SIPC_ERR_BAD_CERTIFICATE',
    'untrusted-authority',
  );
  // Trusting both authorities accepts it.
  t.notThrows(() =>
    verifyCertificate(foreign, { authorities: [ca.publicKey, otherCa.publicKey], now: T0 + 1 }),
  );
});

test('tampered certificate is refused: any changed byte of the signed part or the signature', (t) => {
  const cert = issue();
  // Flip every byte of the signed part and of the signature in turn: each must be refused
  // (malformed or bad signature), never accepted.
  const outerPrefix = cert.bytes.byteLength - cert.tbs.byteLength - cert.signature.byteLength;
  t.true(outerPrefix > 0);
  let badSignature = 0;
  for (let i = 0; i < cert.bytes.byteLength; i++) {
    const bytes = new Uint8Array(cert.bytes);
    bytes[i]! ^= 0x01;
    const err = t.throws(() =>
      verifyCertificate(bytes, { authorities: [ca.publicKey, otherCa.publicKey], now: T0 + 1 }),
    );
    t.true(isSecureIpcError(err), `byte ${i}: ${String(err)}`);
    if (certificateRefusal(err) === 'bad-signature') badSignature++;
  }
  t.true(badSignature > 32, `most flips reach the signature check (${badSignature})`);
  // A re-encoded certificate with a changed role (a privilege escalation attempt) keeps the old signature.
  const forged = encode({
    v: 1,
    tbs: encode({
      v: 1,
      serial: cert.serial,
      subject: cert.subjectKey,
      name: cert.name,
      roles: ['admin'],
      nbf: cert.notBefore / 1000,
      naf: cert.notAfter / 1000,
      issuer: cert.issuer,
    }),
    sig: cert.signature,
  });
  refusal(
    t,
    () => verifyCertificate(forged, { authorities: [ca.publicKey], now: T0 + 1 }),
    'SIPC_ERR_BAD_CERTIFICATE',
    'bad-signature',
  );
});

test('a valid certificate presented for another static key is refused (BAD_CERTIFICATE / subject-mismatch)', (t) => {
  const cert = issue();
  const thief = generateKeyPair();
  refusal(
    t,
    () => verifyCertificate(cert, { authorities: [ca.publicKey], now: T0 + 1, subjectKey: thief.publicKey }),
    'SIPC_ERR_BAD_CERTIFICATE',
    'subject-mismatch',
  );
});

test('revoked serial or subject key is refused (REVOKED)', (t) => {
  const cert = issue({ serial: 7 });
  const opts = { authorities: [ca.publicKey], now: T0 + 1 };
  t.notThrows(() => verifyCertificate(cert, { ...opts, revocations: new RevocationList({ serials: [8] }) }));
  refusal(
    t,
    () => verifyCertificate(cert, { ...opts, revocations: new RevocationList({ serials: [7] }) }),
    'SIPC_ERR_REVOKED',
    'revoked-serial',
  );
  refusal(
    t,
    () =>
      verifyCertificate(cert, {
        ...opts,
        revocations: new RevocationList({ keys: [encodeKey(subject.publicKey)] }),
      }),
    'SIPC_ERR_REVOKED',
    'revoked-key',
  );
});

test('malformed certificates are refused before any allocation beyond the cap', (t) => {
  const cert = issue();
  const cases: Array<[string, Uint8Array]> = [
    ['oversized', new Uint8Array(MAX_CERTIFICATE_BYTES + 1)],
    ['empty', new Uint8Array(0)],
    ['truncated', cert.bytes.subarray(0, cert.bytes.byteLength - 1)],
    ['not a map', encode([1, 2, 3])],
    ['unknown outer field', encode({ v: 1, tbs: cert.tbs, sig: cert.signature, x: 1 })],
    ['version 2', encode({ v: 2, tbs: cert.tbs, sig: cert.signature })],
    ['short signature', encode({ v: 1, tbs: cert.tbs, sig: cert.signature.subarray(0, 63) })],
    ['string tbs', encode({ v: 1, tbs: 'x', sig: cert.signature })],
  ];
  const fields = {
    v: 1,
    serial: 1,
    subject: subject.publicKey,
    name: 'n',
    roles: [] as string[],
    nbf: 1,
    naf: 2,
    issuer: ca.publicKey,
  };
  const bad: Array<[string, Record<string, unknown>]> = [
    ['serial 0', { ...fields, serial: 0 }],
    ['serial float', { ...fields, serial: 1.5 }],
    ['short subject', { ...fields, subject: new Uint8Array(31) }],
    ['empty name', { ...fields, name: '' }],
    ['control char in name', { ...fields, name: 'a\nb' }],
    ['role with space', { ...fields, roles: ['a b'] }],
    ['repeated role', { ...fields, roles: ['a', 'a'] }],
    ['window inverted', { ...fields, nbf: 5, naf: 5 }],
    ['unknown signed field', { ...fields, extra: true }],
    ['missing field', { ...fields, issuer: undefined }],
  ];
  for (const [name, tbsFields] of bad) {
    const clean = Object.fromEntries(Object.entries(tbsFields).filter(([, v]) => v !== undefined));
    cases.push([name, encode({ v: 1, tbs: encode(clean), sig: new Uint8Array(64) })]);
  }
  for (const [name, bytes] of cases) {
    const err = t.throws(() => decodeCertificate(bytes), undefined, name);
    t.is(codeOf(err), 'SIPC_ERR_BAD_CERTIFICATE', name);
  }
});

test('issue refuses bad input with typed errors', (t) => {
  t.is(codeOf(t.throws(() => issue({ subjectKey: 'not a key' }))), 'SIPC_ERR_BAD_KEY');
  t.is(codeOf(t.throws(() => issue({ ttlMs: 10 }))), 'SIPC_ERR_INVALID_ARGUMENT');
  t.is(codeOf(t.throws(() => issue({ roles: ['*'] }))), 'SIPC_ERR_BAD_CERTIFICATE');
  t.is(codeOf(t.throws(() => issue({ name: 'x'.repeat(256) }))), 'SIPC_ERR_BAD_CERTIFICATE');
});

test('certificate files: armored text round trip, JSON view, wrong kind of file refused', async (t) => {
  const dir = tempDir(t);
  const cert = issue();
  const path = join(dir, 'helper.cert');
  await writeCertificateFile(path, cert);
  t.is(statSync(path).mode & 0o777, 0o644);
  t.regex(readFileSync(path, 'utf8'), /^-----BEGIN SECURE-IPC CERTIFICATE-----\n/);
  const loaded = await readCertificateFile(path);
  t.deepEqual(Buffer.from(loaded.bytes), Buffer.from(cert.bytes));
  t.deepEqual(certificateToJSON(loaded), {
    version: 1,
    serial: cert.serial,
    subject: encodeKey(subject.publicKey),
    name: 'helper',
    roles: ['files-reader', 'metrics'],
    notBefore: '2026-01-01T00:00:00.000Z',
    notAfter: '2026-01-01T01:00:00.000Z',
    issuer: encodeKey(ca.publicKey),
  });
  t.deepEqual(Buffer.from(certificateFromText(certificateToText(cert)).bytes), Buffer.from(cert.bytes));
  const caPath = join(dir, 'ca.key');
  const tmpCa = generateAuthority();
  await writeAuthorityFile(caPath, tmpCa);
  zeroAuthority(tmpCa);
  const err = await t.throwsAsync(readCertificateFile(caPath));
  t.is(codeOf(err), 'SIPC_ERR_BAD_CERTIFICATE');
  writeFileSync(join(dir, 'huge.cert'), 'A'.repeat(100_000));
  const big = await t.throwsAsync(readCertificateFile(join(dir, 'huge.cert')));
  t.is(codeOf(big), 'SIPC_ERR_BAD_CERTIFICATE');
});

test('authority key file: 0600, never overwritten, refused when group/others can read, same key back', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'ca.key');
  const authority = generateAuthority();
  await writeAuthorityFile(path, authority);
  if (process.platform !== 'win32') t.is(statSync(path).mode & 0o777, 0o600);
  const again = await t.throwsAsync(writeAuthorityFile(path, authority));
  t.is(codeOf(again), 'SIPC_ERR_INVALID_ARGUMENT');
  const back = await readAuthorityFile(path);
  t.deepEqual(Buffer.from(back.publicKey), Buffer.from(authority.publicKey));
  const cert = issueCertificate(back, { subjectKey: subject.publicKey, name: 'x', notBefore: T0 });
  t.notThrows(() => verifyCertificate(cert, { authorities: [authority.publicKey], now: T0 + 1 }));
  zeroAuthority(back);
  t.true(
    back.secretKey.every((b) => b === 0),
    'zeroAuthority clears the secret key',
  );
  if (process.platform === 'win32') return t.log('mode-bit refusal not applicable on Windows (ACLs)');
  chmodSync(path, 0o640);
  const insecure = await t.throwsAsync(readAuthorityFile(path));
  t.is(codeOf(insecure), 'SIPC_ERR_INSECURE_KEY_FILE');
});

test('known-answer vector of docs/protocol.md "Certificates" (encoding and deterministic signature)', (t) => {
  const authority = authorityFromSeed(new Uint8Array(32).fill(1));
  const tbs =
    '88a17601a673657269616c01a77375626a656374c420020202020202020202020202020202020202020202020202' +
    '0202020202020202a46e616d65a668656c706572a5726f6c657391a6726561646572a36e6266ce6955b900a36e6166' +
    'ce69570a80a6697373756572c4208a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c';
  const sig =
    '726d2b7195a555ac154e7d0355ffc853a10427fcfdca2ed8e7b23482cd9d886d' +
    'ccb10fcedb800a7418126429ea9e3ee829496dcbebc3f17645988a8033f5510d';
  t.is(
    Buffer.from(authority.publicKey).toString('hex'),
    '8a88e3dd7409f195fd52db2d3cba5d72ca6709bf1d94121bf3748801b40f6f5c',
  );
  const cert = issueCertificate(authority, {
    subjectKey: new Uint8Array(32).fill(2),
    name: 'helper',
    roles: ['reader'],
    serial: 1,
    notBefore: Date.UTC(2026, 0, 1),
    ttlMs: 24 * HOUR,
  });
  t.is(Buffer.from(cert.tbs).toString('hex'), tbs);
  t.is(Buffer.from(cert.signature).toString('hex'), sig);
  const wire = Buffer.from(`83a17601a3746273c48b${tbs}a3736967c440${sig}`, 'hex');
  t.is(wire.byteLength, 219);
  t.deepEqual(Buffer.from(cert.bytes), wire);
  const verified = verifyCertificate(wire, {
    authorities: [authority.publicKey],
    now: Date.UTC(2026, 0, 1, 12),
  });
  t.is(verified.name, 'helper');
  zeroAuthority(authority);
});
