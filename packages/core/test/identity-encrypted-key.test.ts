import { chmodSync, readFileSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { sodium } from '../src/crypto/sodium.js';
import {
  decryptSecretKey,
  encryptSecretKey,
  MAX_PASSPHRASE_FILE_BYTES,
  readEncryptedKeyFile,
  readPassphraseFile,
  writeEncryptedKeyFile,
} from '../src/index.js';
import { generateKeyPair } from '../src/keys/key-pair.js';
import { codeOf, tempDir } from './identity-helpers.js';

// libsodium's INTERACTIVE limits keep the suite fast; the default (MODERATE) is exercised once.
const FAST = { opslimit: 2, memlimit: 64 * 1024 * 1024 };

test('encrypted key file: round trip, 0600, versioned armor, default (MODERATE) limits', async (t) => {
  const dir = tempDir(t);
  const { secretKey } = generateKeyPair();
  const path = join(dir, 'key.enc');
  await writeEncryptedKeyFile(path, secretKey, 'correct horse battery staple');
  if (process.platform !== 'win32') t.is(statSync(path).mode & 0o777, 0o600);
  const text = readFileSync(path, 'utf8');
  t.regex(text, /^-----BEGIN SECURE-IPC ENCRYPTED KEY-----\n/);
  t.false(
    text.includes(Buffer.from(secretKey).toString('base64')),
    'the key is not in the file in the clear',
  );
  const header = Buffer.from(text.split('\n').slice(1, -2).join(''), 'base64');
  t.is(header.subarray(0, 6).toString('ascii'), 'SIPCEK');
  t.is(header[6], 1, 'format version 1');
  t.is(header.readUInt32BE(8), 3, 'opslimit MODERATE');
  t.is(header.readUInt32BE(12), 256 * 1024 * 1024, 'memlimit MODERATE');
  const back = await readEncryptedKeyFile(path, 'correct horse battery staple');
  t.deepEqual(Buffer.from(back), Buffer.from(secretKey));
  t.is(
    codeOf(await t.throwsAsync(writeEncryptedKeyFile(path, secretKey, 'x', FAST))),
    'SIPC_ERR_INVALID_ARGUMENT',
  );
});

test('wrong passphrase and any modified byte are refused with SIPC_ERR_BAD_KEY', (t) => {
  const { secretKey } = generateKeyPair();
  const text = encryptSecretKey(secretKey, 'pass-1', FAST);
  t.is(codeOf(t.throws(() => decryptSecretKey(text, 'pass-2'))), 'SIPC_ERR_BAD_KEY');
  const body = Buffer.from(text.split('\n').slice(1, -2).join(''), 'base64');
  // Salt, nonce, ciphertext and MAC: every byte matters (limits are range-checked separately).
  for (const i of [16, 31, 32, 55, 56, 80, body.length - 1]) {
    const copy = Buffer.from(body);
    copy[i]! ^= 0x80;
    const tampered = `-----BEGIN SECURE-IPC ENCRYPTED KEY-----\n${copy.toString('base64')}\n-----END SECURE-IPC ENCRYPTED KEY-----\n`;
    t.is(codeOf(t.throws(() => decryptSecretKey(tampered, 'pass-1'))), 'SIPC_ERR_BAD_KEY', `byte ${i}`);
  }
  // A crafted file asking for 4 GiB of Argon2 memory is refused before hashing.
  const greedy = Buffer.from(body);
  greedy.writeUInt32BE(0xffffffff, 12);
  const greedyText = `-----BEGIN SECURE-IPC ENCRYPTED KEY-----\n${greedy.toString('base64')}\n-----END SECURE-IPC ENCRYPTED KEY-----\n`;
  t.regex(t.throws(() => decryptSecretKey(greedyText, 'pass-1'))!.message, /out-of-range/);
  t.is(codeOf(t.throws(() => encryptSecretKey(secretKey, '', FAST))), 'SIPC_ERR_INVALID_ARGUMENT');
  t.deepEqual(Buffer.from(decryptSecretKey(text, Buffer.from('pass-1'))), Buffer.from(secretKey));
});

test('an encrypted key file that group or others can read is refused', async (t) => {
  if (process.platform === 'win32')
    return t.pass('skipped on Windows: no POSIX mode bits (ACLs guard the file)');
  const dir = tempDir(t);
  const path = join(dir, 'key.enc');
  writeFileSync(path, encryptSecretKey(generateKeyPair().secretKey, 'p', FAST), { mode: 0o600 });
  chmodSync(path, 0o604);
  t.is(codeOf(await t.throwsAsync(readEncryptedKeyFile(path, 'p'))), 'SIPC_ERR_INSECURE_KEY_FILE');
  chmodSync(path, 0o620);
  t.is(codeOf(await t.throwsAsync(readEncryptedKeyFile(path, 'p'))), 'SIPC_ERR_INSECURE_KEY_FILE');
  chmodSync(path, 0o600);
  t.is((await readEncryptedKeyFile(path, 'p')).byteLength, 32);
});

/** A well-formed encrypted key file with any limits, built the way the format says (real Argon2id). */
function encryptWithLimits(
  secretKey: Uint8Array,
  passphrase: string,
  opslimit: number,
  memlimit: number,
): string {
  const out = Buffer.alloc(6 + 2 + 8 + 16 + 24 + 48);
  out.write('SIPCEK', 0, 'ascii');
  out[6] = 1;
  out[7] = sodium.crypto_pwhash_ALG_ARGON2ID13;
  out.writeUInt32BE(opslimit, 8);
  out.writeUInt32BE(memlimit, 12);
  const salt = out.subarray(16, 32);
  const nonce = out.subarray(32, 56);
  sodium.randombytes_buf(salt);
  sodium.randombytes_buf(nonce);
  const key = Buffer.alloc(32);
  sodium.crypto_pwhash(
    key,
    Buffer.from(passphrase),
    salt,
    opslimit,
    memlimit,
    sodium.crypto_pwhash_ALG_ARGON2ID13,
  );
  sodium.crypto_secretbox_easy(out.subarray(56), secretKey, nonce, key);
  return `-----BEGIN SECURE-IPC ENCRYPTED KEY-----\n${out.toString('base64')}\n-----END SECURE-IPC ENCRYPTED KEY-----\n`;
}

test('writing refuses Argon2 limits below the minimum (opslimit 2, memlimit 64 MiB); the minimum itself is accepted', (t) => {
  const { secretKey } = generateKeyPair();
  for (const limits of [
    { opslimit: 1, memlimit: 64 * 1024 * 1024 },
    { opslimit: 2, memlimit: 64 * 1024 * 1024 - 1024 },
    { opslimit: 1, memlimit: 8192 }, // libsodium's own minimum, which main accepted
  ]) {
    const err = t.throws(() => encryptSecretKey(secretKey, 'p', limits));
    t.is(codeOf(err), 'SIPC_ERR_INVALID_ARGUMENT', JSON.stringify(limits));
    t.regex(err!.message, /allowed opslimit 2\.\.16, memlimit 64 MiB\.\.1024 MiB/);
  }
  t.deepEqual(
    Buffer.from(decryptSecretKey(encryptSecretKey(secretKey, 'p', FAST), 'p')),
    Buffer.from(secretKey),
  );
});

test('reading refuses a file that claims Argon2 limits below the minimum, before any key derivation', (t) => {
  const { secretKey } = generateKeyPair();
  // Real files whose every byte is right for their (too cheap) limits: main opened them.
  for (const [opslimit, memlimit] of [
    [1, 64 * 1024 * 1024],
    [2, 8192],
    [1, 8192],
  ] as const) {
    const text = encryptWithLimits(secretKey, 'pass', opslimit, memlimit);
    const real = sodium.crypto_pwhash;
    let derivations = 0;
    sodium.crypto_pwhash = (...args) => {
      derivations++;
      return real(...args);
    };
    let err: Error | undefined;
    try {
      err = t.throws(() => decryptSecretKey(text, 'pass'));
    } finally {
      sodium.crypto_pwhash = real;
    }
    t.is(codeOf(err), 'SIPC_ERR_BAD_KEY', `${opslimit} / ${memlimit}`);
    t.regex(err!.message, /below the minimum, they give the passphrase almost no protection/);
    t.like((err as { details?: unknown }).details, { opslimit, memlimit, reason: 'weak' });
    t.is(derivations, 0, 'refused before running Argon2');
  }
});

test('readPassphraseFile: the bytes without one trailing newline; empty, too large, a link, group- or other-readable are refused', async (t) => {
  const dir = tempDir(t);
  const file = (name: string, content: string | Buffer, mode = 0o600) => {
    const p = join(dir, name);
    writeFileSync(p, content, { mode });
    chmodSync(p, mode);
    return p;
  };
  t.is((await readPassphraseFile(file('plain', 'pass word'))).toString(), 'pass word');
  t.is((await readPassphraseFile(file('lf', 'pass word\n'))).toString(), 'pass word');
  t.is((await readPassphraseFile(file('crlf', 'pass word\r\n'))).toString(), 'pass word');
  // Only one newline is the editor's: the rest is the passphrase.
  t.is((await readPassphraseFile(file('two', 'pass\n\n'))).toString(), 'pass\n');
  t.is((await readPassphraseFile(file('cr', 'pass\r'))).toString(), 'pass\r');
  const binary = Buffer.from([0xff, 0x00, 0x41]);
  t.deepEqual(await readPassphraseFile(file('bytes', binary)), binary);
  const empty = await t.throwsAsync(readPassphraseFile(file('empty', '\n')));
  t.is(codeOf(empty), 'SIPC_ERR_BAD_KEY');
  t.regex(empty!.message, /holds no passphrase/);
  t.is(
    codeOf(await t.throwsAsync(readPassphraseFile(file('big', 'x'.repeat(MAX_PASSPHRASE_FILE_BYTES + 1))))),
    'SIPC_ERR_BAD_KEY',
  );
  t.is((await readPassphraseFile(file('max', 'x'.repeat(MAX_PASSPHRASE_FILE_BYTES)))).byteLength, 4096);
  t.is(codeOf(await t.throwsAsync(readPassphraseFile(join(dir, 'absent')))), 'SIPC_ERR_BAD_KEY');
  if (process.platform === 'win32') return; // owner and mode: the file's ACL is the guard there
  for (const mode of [0o640, 0o604, 0o620]) {
    const err = await t.throwsAsync(readPassphraseFile(file(`m${mode.toString(8)}`, 'pass', mode)));
    t.is(codeOf(err), 'SIPC_ERR_INSECURE_KEY_FILE', `mode ${mode.toString(8)}`);
  }
  symlinkSync(join(dir, 'plain'), join(dir, 'link'));
  const link = await t.throwsAsync(readPassphraseFile(join(dir, 'link')));
  t.regex(link!.message, /symbolic link/);
});
