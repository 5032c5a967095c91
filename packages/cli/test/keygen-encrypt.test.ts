// `secure-ipc keygen --encrypt`: the passphrase-encrypted key file a configuration's
// `identity.key.encryptedFile` (and the strict profile) asks for, written by the CLI; the
// passphrase from --passphrase-file, checked as a secret file before any key is made.
import { chmod, readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { encodeKey, keyPairFromSecretKey, readEncryptedKeyFile } from '@secure-ipc/core';
import test from 'ava';
import { cli, keyFile, tempDir } from './helpers.js';

const posix = process.platform !== 'win32';

async function passphraseFile(dir: string, name: string, content: string, mode = 0o600): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, content, { mode });
  await chmod(path, mode);
  return path;
}

test('keygen --import FILE --encrypt --passphrase-file: an encrypted key file (0600) of the same key, the passphrase without its newline; --json names it', async (t) => {
  const dir = await tempDir(t);
  const plain = await keyFile(dir, 'plain.key');
  const pass = await passphraseFile(dir, 'pass', 'correct horse battery staple\n');
  const out = join(dir, 'helper.key.enc');
  const r = await cli([
    'keygen',
    '--import',
    plain.path,
    '--encrypt',
    '--passphrase-file',
    pass,
    '--out',
    out,
    '--json',
  ]);
  t.is(r.code, 0, r.stderr);
  const line = JSON.parse(r.stdout) as Record<string, unknown>;
  t.deepEqual(line, {
    encryptedKeyFile: out,
    publicKey: plain.pub,
    importedFrom: plain.path,
    unmarked: false,
  });
  if (posix) t.is((await stat(out)).mode & 0o777, 0o600);
  const text = await readFile(out, 'utf8');
  t.regex(text, /^-----BEGIN SECURE-IPC ENCRYPTED KEY-----\n/);
  const secret = await readEncryptedKeyFile(out, 'correct horse battery staple');
  t.is(encodeKey(keyPairFromSecretKey(secret).publicKey), plain.pub);
  // Never overwritten, as a plain key file.
  const again = await cli(['keygen', '--encrypt', '--passphrase-file', pass, '--out', out]);
  t.is(again.code, 3);
  t.regex(again.stderr, /the file exists \(never overwritten\)/);
});

test('keygen --encrypt refuses: no --out, --passphrase-file without --encrypt, no passphrase (2); an empty or group-readable passphrase file (3), and writes no key', async (t) => {
  const dir = await tempDir(t);
  const out = join(dir, 'k.enc');
  const pass = await passphraseFile(dir, 'pass', 'pw');
  const noOut = await cli(['keygen', '--encrypt', '--passphrase-file', pass]);
  t.is(noOut.code, 2);
  t.regex(noOut.stderr, /--encrypt needs --out FILE/);
  const alone = await cli(['keygen', '--passphrase-file', pass, '--out', out]);
  t.is(alone.code, 2);
  t.regex(alone.stderr, /--passphrase-file goes with --encrypt/);
  if (process.env.SECURE_IPC_PASSPHRASE === undefined) {
    const none = await cli(['keygen', '--encrypt', '--out', out]);
    t.is(none.code, 2);
    t.regex(
      none.stderr,
      /--encrypt needs its passphrase: --passphrase-file FILE or the SECURE_IPC_PASSPHRASE variable/,
    );
  }
  const empty = await cli([
    'keygen',
    '--encrypt',
    '--passphrase-file',
    await passphraseFile(dir, 'empty', '\n'),
    '--out',
    out,
  ]);
  t.is(empty.code, 3);
  t.regex(empty.stderr, /holds no passphrase/);
  if (posix) {
    const readable = await passphraseFile(dir, 'readable', 'pw', 0o644);
    const r = await cli(['keygen', '--encrypt', '--passphrase-file', readable, '--out', out]);
    t.is(r.code, 3);
    t.regex(r.stderr, /accessible by group or others/);
  }
  await t.throwsAsync(stat(out), undefined, 'no key file was written');
});
