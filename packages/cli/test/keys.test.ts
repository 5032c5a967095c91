import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { cli, keyFile, tempDir } from './helpers.js';

const KEY = /^[A-Za-z0-9+/]{43}=$/;

test('keygen prints a marked secret key; pubkey derives its 44-character public key from it on stdin', async (t) => {
  const gen = await cli(['keygen']);
  t.is(gen.code, 0, gen.stderr);
  const lines = gen.stdout.split('\n');
  t.deepEqual(
    [lines[0], lines[2], lines[3]],
    ['-----BEGIN SECURE-IPC SECRET KEY-----', '-----END SECURE-IPC SECRET KEY-----', ''],
  );
  const secret = lines[1]!;
  t.regex(secret, KEY);
  const pub = await cli(['pubkey'], { input: gen.stdout });
  t.is(pub.code, 0, pub.stderr);
  t.regex(pub.stdout.trim(), KEY);
  t.not(pub.stdout.trim(), secret);
  const again = await cli(['pubkey'], { input: gen.stdout.replace(/\n/g, '\r\n') });
  t.is(again.stdout, pub.stdout, 'the public key is a function of the secret key');
});

test('keygen --out creates the file 0600 and never overwrites', async (t) => {
  const dir = await tempDir(t);
  const { path, pub } = await keyFile(dir, 'a.key');
  t.is((await stat(path)).mode & 0o777, 0o600);
  t.regex(pub, KEY);
  const before = await readFile(path, 'utf8');
  const second = await cli(['keygen', '--out', path]);
  t.is(second.code, 3);
  t.regex(second.stderr, /secure-ipc keygen: cannot create .*: the file exists \(never overwritten\)/);
  t.is(await readFile(path, 'utf8'), before);
});

test('pubkey refuses a secret key file readable by group or others (exit 3, no stack trace)', async (t) => {
  const dir = await tempDir(t);
  const { path } = await keyFile(dir, 'a.key');
  await chmod(path, 0o644);
  const r = await cli(['pubkey', '--key', path]);
  t.is(r.code, 3);
  t.regex(r.stderr, /SIPC_ERR_INSECURE_KEY_FILE/);
  t.notRegex(r.stderr, /\n\s+at /);
});

test('pubkey rejects garbage on stdin and a malformed key file (exit 3)', async (t) => {
  const dir = await tempDir(t);
  const r = await cli(['pubkey'], { input: 'not a key' });
  t.is(r.code, 3);
  t.regex(r.stderr, /is not a secure-ipc secret key file/);
  const bad = join(dir, 'bad.key');
  await writeFile(bad, 'x'.repeat(44), { mode: 0o600 });
  const r2 = await cli(['pubkey', '--key', bad]);
  t.is(r2.code, 3);
  t.regex(r2.stderr, /SIPC_ERR_BAD_KEY/);
});

test('usage errors: unknown command, unknown option (exit 2), missing file (exit 3), clear messages', async (t) => {
  const none = await cli([]);
  t.is(none.code, 2);
  t.regex(none.stderr, /usage:/);
  const unknown = await cli(['frobnicate']);
  t.is(unknown.code, 2);
  t.regex(unknown.stderr, /unknown command "frobnicate"/);
  const opt = await cli(['keygen', '--bogus']);
  t.is(opt.code, 2);
  t.regex(opt.stderr, /Unknown option '--bogus'/);
  const missing = await cli(['pubkey', '--key', '/nonexistent/key']);
  t.is(missing.code, 3, 'a missing key file is a file problem (error-lines.test.ts: every command)');
  t.regex(missing.stderr, /Cannot open \/nonexistent\/key/);
  const help = await cli(['--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /secure-ipc serve --listen ADDRESS/);
});
