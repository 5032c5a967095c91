/**
 * Secret keys are marked (issue 12, row 12): `pubkey`, `serve` and `ping` refuse a public key — or
 * any bare 44-character base64 — given as `--key`; old unmarked key files are read only with
 * `--allow-unmarked-key` (with a warning) and convert once with `keygen --import`. Each command
 * runs as its own process on real files.
 */
import { execFileSync } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { cli, keyFile, serve, tempDir } from './helpers.js';

const KEY = /^[A-Za-z0-9+/]{43}=$/;
const REFUSED =
  /holds a bare 44-character base64 key without the "-----BEGIN SECURE-IPC SECRET KEY-----" line: it could be a public key/;

/** A key pair from the CLI, plus its public key saved as a .pub file and its secret in the old bare form. */
async function keys(dir: string, name: string) {
  const { path, pub } = await keyFile(dir, `${name}.key`);
  const pubFile = join(dir, `${name}.pub`);
  await writeFile(pubFile, `${pub}\n`, { mode: 0o600 });
  const old = join(dir, `${name}.old`);
  const secretLine = (await readFile(path, 'latin1')).split('\n')[1]!;
  // Byte for byte what `keygen --out` wrote before secret keys were marked.
  await writeFile(old, `${secretLine}\n`, { mode: 0o600 });
  return { path, pub, pubFile, old };
}

test('pubkey --key FILE.pub is refused (exit 3): a public key is not a secret key', async (t) => {
  const dir = await tempDir(t);
  const { pubFile } = await keys(dir, 'server');
  const r = await cli(['pubkey', '--key', pubFile]);
  t.is(r.code, 3);
  t.regex(r.stderr, REFUSED);
  t.regex(r.stderr, /SIPC_ERR_BAD_KEY/);
  t.is(r.stdout, '');
  const stdin = await cli(['pubkey'], { input: await readFile(pubFile, 'latin1') });
  t.is(stdin.code, 3, 'nor on stdin');
  t.regex(stdin.stderr, REFUSED);
});

test('serve and ping refuse a .pub file as --key (exit 3) before listening or connecting', async (t) => {
  const dir = await tempDir(t);
  const server = await keys(dir, 'server');
  const client = await keys(dir, 'client');
  const address = `unix://${join(dir, 's.sock')}`;
  const s = await cli(['serve', '--listen', address, '--key', server.pubFile, '--allow', client.pub]);
  t.is(s.code, 3);
  t.regex(s.stderr, REFUSED);
  const p = await cli(['ping', address, '--key', client.pubFile, '--server-key', server.pub, '--count', '1']);
  t.is(p.code, 3);
  t.regex(p.stderr, REFUSED);
});

test('an old unmarked key file: refused by default, read with --allow-unmarked-key and a warning, the same key', async (t) => {
  const dir = await tempDir(t);
  const { pub, old } = await keys(dir, 'server');
  const refused = await cli(['pubkey', '--key', old]);
  t.is(refused.code, 3);
  t.regex(refused.stderr, /convert it once: secure-ipc keygen --import FILE --out NEW/);
  const allowed = await cli(['pubkey', '--key', old, '--allow-unmarked-key']);
  t.is(allowed.code, 0, allowed.stderr);
  t.is(allowed.stdout.trim(), pub, 'the same public key as the marked file');
  t.regex(
    allowed.stderr,
    new RegExp(
      `^secure-ipc: warning: ${old} is an unmarked secret key .* Convert it once: secure-ipc keygen --import ${old} --out NEW\\n$`,
    ),
  );
  // The flag does not make a marked file warn.
  const marked = await cli(['pubkey', '--key', join(dir, 'server.key'), '--allow-unmarked-key']);
  t.is(marked.stderr, '');
});

test('serve and ping run on old unmarked key files with --allow-unmarked-key (the migration keeps services up)', async (t) => {
  const dir = await tempDir(t);
  const server = await keys(dir, 'server');
  const client = await keys(dir, 'client');
  const address = `unix://${join(dir, 's.sock')}`;
  const s = await serve(t, [
    '--listen',
    address,
    '--key',
    server.old,
    '--allow',
    client.pub,
    '--allow-unmarked-key',
  ]);
  t.is(s.firstLine, `listening ${address}`);
  t.regex(s.stderr(), /warning: .*server\.old is an unmarked secret key/);
  const p = await cli([
    'ping',
    address,
    '--key',
    client.old,
    '--server-key',
    server.pub,
    '--count',
    '1',
    '--interval',
    '0',
    '--allow-unmarked-key',
  ]);
  t.is(p.code, 0, p.stderr);
  t.regex(p.stdout, /1 pings, 0 failed/);
  t.is(await s.stop(), 0);
});

test('keygen --import converts an old key file (or stdin) to the marked format: same public key, 0600, no overwrite', async (t) => {
  const dir = await tempDir(t);
  const { pub, old } = await keys(dir, 'server');
  const out = join(dir, 'server.new');
  const r = await cli(['keygen', '--import', old, '--out', out]);
  t.is(r.code, 0, r.stderr);
  t.regex(
    r.stderr,
    new RegExp(`imported the unmarked secret key of ${old}; public key: ${pub.replace(/[+/]/g, '\\$&')}`),
  );
  t.regex(
    await readFile(out, 'latin1'),
    /^-----BEGIN SECURE-IPC SECRET KEY-----\n[A-Za-z0-9+/]{43}=\n-----END SECURE-IPC SECRET KEY-----\n$/,
  );
  t.is(
    (await cli(['pubkey', '--key', out])).stdout.trim(),
    pub,
    'the converted file is read without the flag',
  );
  t.is((await cli(['keygen', '--import', old, '--out', out])).code, 3, 'never overwrites');
  const piped = await cli(['keygen', '--import', '-'], { input: await readFile(old, 'latin1') });
  t.is(piped.code, 0, piped.stderr);
  t.is((await cli(['pubkey'], { input: piped.stdout })).stdout.trim(), pub);
});

// wireguard-tools is not a dependency of the project: the interoperability claim of docs/identity.md
// is checked where `wg` is installed, and this test says so where it is not.
const hasWg = (() => {
  try {
    execFileSync('wg', ['--version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
})();
(hasWg ? test : test.skip)(
  `wg genkey imports, and secure-ipc pubkey equals wg pubkey${hasWg ? '' : ' (skipped: wireguard-tools `wg` is not installed)'}`,
  async (t) => {
    const wgSecret = execFileSync('wg', ['genkey'], { encoding: 'latin1' });
    const wgPublic = execFileSync('wg', ['pubkey'], { input: wgSecret, encoding: 'latin1' }).trim();
    t.regex(wgPublic, KEY);
    t.is((await cli(['pubkey'], { input: wgSecret })).code, 3, 'a bare wg key is refused without the flag');
    const dir = await tempDir(t);
    const file = join(dir, 'from-wg.key');
    const imported = await cli(['keygen', '--import', '-', '--out', file], { input: wgSecret });
    t.is(imported.code, 0, imported.stderr);
    t.is((await cli(['pubkey', '--key', file])).stdout.trim(), wgPublic);
    // And back: the key line of a secure-ipc key file is what wg reads.
    const { path, pub } = await keyFile(dir, 'sipc.key');
    const line = (await readFile(path, 'latin1')).split('\n')[1]!;
    t.is(execFileSync('wg', ['pubkey'], { input: `${line}\n`, encoding: 'latin1' }).trim(), pub);
  },
);
