/**
 * `serve(await loadConfig(file))` over a real Unix socket: the key from an encrypted file (the
 * passphrase from the environment), the policy as configured, the audit log with the
 * configuration's hash; a strict profile's long-lived certificate refused; a configuration with
 * problems refused whole with every problem.
 */
import { chmod, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  connect,
  encodeKey,
  generateAuthority,
  generateKeyPair,
  isSecureIpcError,
  issueCertificate,
  readAuditLog,
  serve,
  writeCertificateFile,
  writeEncryptedKeyFile,
  writeSecretKeyFile,
} from '@secure-ipc/core';
import { unixTransport } from '@secure-ipc/transport-unix';
import test, { type ExecutionContext } from 'ava';
import { canonicalJson, configHash, loadConfig } from '../src/index.js';

async function dir(t: ExecutionContext): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'sipc-config-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return d;
}

test('serve(await loadConfig(file)): an encrypted key, the configured policy, the audit log records the configuration hash', async (t) => {
  const d = await dir(t);
  const server = generateKeyPair();
  const client = generateKeyPair();
  await writeEncryptedKeyFile(join(d, 'server.key.enc'), server.secretKey, 'correct horse');
  await mkdir(join(d, 'run'), { mode: 0o700 });
  const file = join(d, 'ipc.jsonc');
  await writeFile(
    file,
    `{
  "version": 1,
  "identity": { "key": { "encryptedFile": "server.key.enc", "passphraseEnv": "HELPER_PASSPHRASE" } },
  "trust": { "keys": ["${encodeKey(client.publicKey)}"] },
  "policy": {
    "roles": { "app": { "call": ["files.read"] } },
    "peers": [{ "key": "${encodeKey(client.publicKey)}", "roles": ["app"] }]
  },
  "endpoints": [{ "name": "main", "listen": "unix://${join(d, 'run', 'helper.sock')}" }],
  "limits": { "maxIncoming": 4 },
  "audit": { "dir": "audit", "origin": "test.example/config/audit" },
  "tests": [{ "peer": "${encodeKey(client.publicKey)}", "call": "files.write", "expect": "deny" }]
}
`,
  );
  const options = await loadConfig(file, { env: { HELPER_PASSPHRASE: 'correct horse' } });
  t.deepEqual(options.keyPair.publicKey, server.publicKey);
  t.is(options.maxIncoming, 4);
  t.is(options.config.profile, 'baseline');
  const s = await serve(options);
  s.handle('files.read', () => 'contents');
  s.handle('files.write', () => 'written');
  const c = await connect({
    transport: unixTransport(),
    address: options.address,
    keyPair: client,
    trust: { keys: [server.publicKey] },
  });
  t.is(await c.request('files.read'), 'contents');
  await t.throwsAsync(c.request('files.write'), { code: 'SIPC_ERR_FORBIDDEN' });
  await c.close();
  await s.close();
  await options.config.close();
  const state = await readAuditLog(join(d, 'audit'));
  const load = state.records.find((r) => r?.type === 'config.load');
  t.is(load?.fields.hash, options.config.hash);
  t.is(options.config.hash, configHash(options.config.config));
  t.true(
    state.records.some(
      (r) => r?.type === 'rpc.call' && r.fields.method === 'files.write' && r.fields.allowed === false,
    ),
  );
  // The hash is of the settings, not of the text: key order and comments do not change it.
  t.is(canonicalJson({ b: 1, a: [2, { d: 3, c: 4 }] }), '{"a":[2,{"c":4,"d":3}],"b":1}');
});

test('loading refuses: a missing passphrase, a passphraseFile others can read, a configuration with problems (all of them), a strict certificate over 24 h, a certificate for another key', async (t) => {
  const d = await dir(t);
  const key = generateKeyPair();
  await writeEncryptedKeyFile(join(d, 'k.enc'), key.secretKey, 'pw');
  await writeSecretKeyFile(join(d, 'plain.key'), key.secretKey);
  const peer = encodeKey(generateKeyPair().publicKey);
  const base = (identity: string, extra = '') => `{
  "version": 1,${extra}
  "identity": ${identity},
  "trust": { "keys": ["${peer}"] },
  "policy": { "roles": {} },
  "endpoints": [{ "name": "main", "listen": "local://cfg-test" }]
}`;
  await writeFile(
    join(d, 'a.jsonc'),
    base('{ "key": { "encryptedFile": "k.enc", "passphraseEnv": "NOPE" } }'),
  );
  await t.throwsAsync(loadConfig(join(d, 'a.jsonc'), { env: {} }), {
    code: 'SIPC_ERR_BAD_KEY',
    message: /NOPE/,
  });
  // A passphraseFile is a secret file: its trailing newline is not the passphrase's, and one the
  // group or others can read is refused when loading (not only reported by the doctor).
  await writeFile(join(d, 'pass'), 'pw\n', { mode: 0o600 });
  await writeFile(
    join(d, 'p.jsonc'),
    base('{ "key": { "encryptedFile": "k.enc", "passphraseFile": "pass" } }'),
  );
  const withFile = await loadConfig(join(d, 'p.jsonc'));
  t.deepEqual(withFile.keyPair.publicKey, key.publicKey);
  await withFile.config.close();
  if (process.platform !== 'win32') {
    await chmod(join(d, 'pass'), 0o644);
    await t.throwsAsync(loadConfig(join(d, 'p.jsonc')), {
      code: 'SIPC_ERR_INSECURE_KEY_FILE',
      message: /accessible by group or others/,
    });
  }

  await writeFile(
    join(d, 'b.jsonc'),
    base('{ "key": { "file": "plain.key" }, "colour": 1 }', '\n  "limits": { "maxIncoming": -1 },'),
  );
  const err = await t.throwsAsync(loadConfig(join(d, 'b.jsonc')));
  t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_CONFIG'), String(err));
  const problems = (err as unknown as { details: { problems: { line: number; message: string }[] } }).details
    .problems;
  t.is(problems.length, 2);
  t.deepEqual(
    problems.map((p) => p.line),
    [3, 4],
  );

  // Strict: a certificate that lasts two days (and everything else strict wants, so that is the one problem).
  const ca = generateAuthority();
  const long = issueCertificate(ca, { subjectKey: key.publicKey, name: 'helper', ttlMs: 48 * 3_600_000 });
  await writeCertificateFile(join(d, 'long.cert'), long);
  await writeFile(join(d, 'revoked.list'), '');
  const strict = `{
  "version": 1, "profile": "strict",
  "identity": { "key": { "encryptedFile": "k.enc", "passphraseEnv": "PW" }, "certificate": "long.cert" },
  "trust": { "authorities": ["${encodeKey(ca.publicKey)}"], "revocations": "revoked.list" },
  "policy": { "roles": {} },
  "endpoints": [{ "name": "main", "listen": "local://cfg-test" }],
  "audit": { "dir": "audit", "origin": "test.example/strict", "required": true }
}`;
  await writeFile(join(d, 'strict.jsonc'), strict);
  await t.throwsAsync(loadConfig(join(d, 'strict.jsonc'), { env: { PW: 'pw' } }), {
    code: 'SIPC_ERR_INVALID_CONFIG',
    message: /lasts 48\.0 h, over 24 h/,
  });
  const other = issueCertificate(ca, {
    subjectKey: generateKeyPair().publicKey,
    name: 'x',
    ttlMs: 3_600_000,
  });
  await writeCertificateFile(join(d, 'other.cert'), other);
  await writeFile(join(d, 'other.jsonc'), strict.replace('long.cert', 'other.cert'));
  await t.throwsAsync(loadConfig(join(d, 'other.jsonc'), { env: { PW: 'pw' } }), { message: /another key/ });
  t.true((await readFile(join(d, 'strict.jsonc'), 'utf8')).includes('strict'));
});
