import { chmodSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import {
  decryptSecretKey,
  encryptSecretKey,
  readEncryptedKeyFile,
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
