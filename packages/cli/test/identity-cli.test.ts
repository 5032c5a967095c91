// The identity commands (ca init, cert issue/inspect, revoke) through the real dispatcher
// (runCli), in process: exit codes, stdout/stderr, files and their modes.
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import {
  certificateTrust,
  decodeKey,
  encodeKey,
  generateKeyPair,
  readCertificateFile,
  readRevocationFile,
  verifyCertificate,
} from '@secure-ipc/core';
import test, { type ExecutionContext } from 'ava';
import { runCli } from '../src/cli.js';

async function run(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const stdout = new PassThrough();
  const stderr = new PassThrough();
  let out = '';
  let err = '';
  stdout.on('data', (d) => {
    out += String(d);
  });
  stderr.on('data', (d) => {
    err += String(d);
  });
  const code = await runCli(args, { stdout, stderr, stdin: new PassThrough() });
  return { code, stdout: out, stderr: err };
}

/** `secure-ipc cert issue` with the required options, then `extra`. */
function issue(ca: string, subject: Uint8Array, name: string, out: string, ...extra: string[]) {
  return run([
    'cert',
    'issue',
    '--ca',
    ca,
    '--pubkey',
    encodeKey(subject),
    '--name',
    name,
    '--out',
    out,
    ...extra,
  ]);
}

async function dir(t: ExecutionContext): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'sipc-cli-identity-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

test('ca init writes a 0600 authority key, prints its public key, never overwrites', async (t) => {
  const d = await dir(t);
  const path = join(d, 'ca.key');
  const r = await run(['ca', 'init', '--out', path]);
  t.is(r.code, 0, r.stderr);
  t.notThrows(() => decodeKey(r.stdout.trim()));
  t.is((await stat(path)).mode & 0o777, 0o600);
  const before = await readFile(path, 'utf8');
  const again = await run(['ca', 'init', '--out', path]);
  t.is(again.code, 3);
  t.regex(again.stderr, /must not exist/);
  t.is(await readFile(path, 'utf8'), before);
  t.is((await run(['ca', 'init'])).code, 2, 'missing --out is a usage error');
  const noDir = await run(['ca', 'init', '--out', join(d, 'missing-dir', 'ca.key')]);
  t.is(noDir.code, 3);
  t.regex(noDir.stderr, /ENOENT/);
  t.is((await run(['ca', 'create', '--out', path])).code, 2);
});

test('cert issue: roles, ttl (default 24h), verifiable by the printed authority key; cert inspect', async (t) => {
  const d = await dir(t);
  const caPath = join(d, 'ca.key');
  const caPub = (await run(['ca', 'init', '--out', caPath])).stdout.trim();
  const subject = generateKeyPair();
  const certPath = join(d, 'helper.cert');
  const issued = await issue(
    caPath,
    subject.publicKey,
    'helper',
    certPath,
    '--role',
    'reader',
    '--role',
    'metrics',
  );
  t.is(issued.code, 0, issued.stderr);
  const json = JSON.parse(issued.stdout);
  t.is(json.name, 'helper');
  t.deepEqual(json.roles, ['reader', 'metrics']);
  t.is(json.issuer, caPub);
  t.is(Date.parse(json.notAfter) - Date.parse(json.notBefore), 24 * 3_600_000, 'default ttl 24h');
  const cert = await readCertificateFile(certPath);
  t.notThrows(() => verifyCertificate(cert, { authorities: [caPub], subjectKey: subject.publicKey }));
  // The certificate file feeds certificateTrust exactly as serve/ping will use it.
  const decision = certificateTrust({ authorities: [caPub] })({
    remoteStaticKey: subject.publicKey,
    payload: { cert: cert.bytes },
  });
  t.deepEqual([...decision.roles], ['reader', 'metrics']);

  for (const [ttl, ms] of [
    ['90s', 90_000],
    ['15m', 900_000],
    ['7d', 7 * 86_400_000],
  ] as const) {
    const p = join(d, `${ttl}.cert`);
    const r = await issue(caPath, subject.publicKey, 'x', p, '--ttl', ttl);
    t.is(r.code, 0, r.stderr);
    const c = await readCertificateFile(p);
    t.is(c.notAfter - c.notBefore, ms, ttl);
  }

  const inspected = await run(['cert', 'inspect', certPath]);
  t.is(inspected.code, 0, inspected.stderr);
  const view = JSON.parse(inspected.stdout);
  t.like(view, {
    name: 'helper',
    serial: cert.serial,
    subject: encodeKey(subject.publicKey),
    issuer: caPub,
    signatureValid: true,
    validNow: true,
  });

  // A tampered file: the name changed inside the signed bytes.
  const bytes = Buffer.from(cert.bytes);
  bytes[bytes.indexOf('helper')] = 'H'.charCodeAt(0);
  const body = bytes.toString('base64');
  await writeFile(
    join(d, 'bad.cert'),
    `-----BEGIN SECURE-IPC CERTIFICATE-----\n${body}\n-----END SECURE-IPC CERTIFICATE-----\n`,
  );
  const bad = await run(['cert', 'inspect', join(d, 'bad.cert')]);
  t.is(bad.code, 1, 'a signature that does not verify exits 1');
  t.like(JSON.parse(bad.stdout), { name: 'Helper', signatureValid: false });
});

test('cert issue and inspect refuse bad input with clear messages and exit codes', async (t) => {
  const d = await dir(t);
  const caPath = join(d, 'ca.key');
  await run(['ca', 'init', '--out', caPath]);
  const pub = encodeKey(generateKeyPair().publicKey);
  const base = ['cert', 'issue', '--ca', caPath, '--pubkey', pub, '--name', 'n', '--out', join(d, 'c.cert')];
  for (const ttl of ['0s', '10', '1w', '5 m', '3651d']) {
    const r = await run([...base, '--ttl', ttl]);
    t.is(r.code, 2, ttl);
    t.regex(r.stderr, /--ttl must be a duration/);
  }
  t.is((await run([...base.slice(0, 4), '--pubkey', 'nope', ...base.slice(6)])).code, 3);
  t.is((await run([...base, '--bogus'])).code, 2);
  t.is((await run(base.filter((a) => a !== '--name' && a !== 'n'))).code, 2);
  t.is((await run(['cert', 'issue', '--ca', join(d, 'missing.key'), ...base.slice(4)])).code, 3);
  t.is((await run(['cert', 'inspect', caPath])).code, 3, 'an authority key is not a certificate');
  t.is((await run(['cert', 'inspect'])).code, 2);
  const r = await run(['cert', 'inspect', join(d, 'absent.cert')]);
  t.is(r.code, 3);
  t.notRegex(r.stderr, /\n\s+at /, 'no stack trace');
});

test('revoke adds serials and keys to a list file (created if absent)', async (t) => {
  const d = await dir(t);
  const list = join(d, 'revoked.json');
  const key = encodeKey(generateKeyPair().publicKey);
  t.is((await run(['revoke', '--list', list, '--serial', '12345'])).code, 0);
  const r = await run(['revoke', '--list', list, '--pubkey', key]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /1 serials, 1 keys/);
  const parsed = await readRevocationFile(list);
  t.true(parsed.serials.has(12345));
  t.true(parsed.keys.has(key));
  t.is((await run(['revoke', '--list', list])).code, 2, 'needs --serial or --pubkey');
  t.is((await run(['revoke', '--list', list, '--serial', '1', '--pubkey', key])).code, 2, 'not both');
  t.is((await run(['revoke', '--list', list, '--serial', 'x'])).code, 2);
  await writeFile(list, '{not json');
  t.is((await run(['revoke', '--list', list, '--serial', '2'])).code, 3, 'a broken list is a file error');
});
