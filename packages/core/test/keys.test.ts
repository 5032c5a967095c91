import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { isSecureIpcError } from '../src/errors.js';
import { readSecretKeyFile, writeSecretKeyFile } from '../src/keys/key-file.js';
import { generateKeyPair, keyFingerprint, keyPairFromSecretKey, zeroKeyPair } from '../src/keys/key-pair.js';
import { decodeKey, encodeKey } from '../src/keys/key-text.js';

const isPosix = process.platform !== 'win32';

test('generateKeyPair gives distinct 32-byte X25519 pairs that rebuild from the secret', (t) => {
  const a = generateKeyPair();
  const b = generateKeyPair();
  t.is(a.publicKey.byteLength, 32);
  t.is(a.secretKey.byteLength, 32);
  t.notDeepEqual(Buffer.from(a.publicKey), Buffer.from(b.publicKey));
  const again = keyPairFromSecretKey(a.secretKey);
  t.deepEqual(Buffer.from(again.publicKey), Buffer.from(a.publicKey));
});

test('keyPairFromSecretKey matches a known X25519 vector (RFC 7748 section 6.1, Alice)', (t) => {
  const sk = Buffer.from('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a', 'hex');
  const kp = keyPairFromSecretKey(sk);
  t.is(
    Buffer.from(kp.publicKey).toString('hex'),
    '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a',
  );
});

test('encodeKey/decodeKey round-trip as 44-char standard base64', (t) => {
  const { publicKey } = generateKeyPair();
  const text = encodeKey(publicKey);
  t.is(text.length, 44);
  t.regex(text, /^[A-Za-z0-9+/]{43}=$/);
  t.deepEqual(Buffer.from(decodeKey(text)), Buffer.from(publicKey));
});

test('decodeKey refuses anything but canonical base64 of 32 bytes with SIPC_ERR_BAD_KEY', (t) => {
  const good = encodeKey(generateKeyPair().publicKey);
  const bad = [
    '',
    good.slice(0, 43),
    `${good} `,
    good.replace(/=$/, 'A'),
    Buffer.alloc(31).toString('base64'),
    Buffer.alloc(33).toString('base64'),
    `${good.slice(0, 42).replace(/./, '-')}A=`, // url-safe alphabet
    'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAB=', // non-zero padding bits
    42 as unknown as string,
  ];
  for (const text of bad) {
    const err = t.throws(() => decodeKey(text));
    t.true(isSecureIpcError(err, 'SIPC_ERR_BAD_KEY'), String(text));
  }
});

test('keyFingerprint is stable, short, and differs per key', (t) => {
  const a = generateKeyPair().publicKey;
  const b = generateKeyPair().publicKey;
  t.is(keyFingerprint(a), keyFingerprint(Uint8Array.from(a)));
  t.not(keyFingerprint(a), keyFingerprint(b));
  t.regex(keyFingerprint(a), /^BLAKE2b:[A-Za-z0-9+/]{43}$/);
});

test('zeroKeyPair wipes both keys', (t) => {
  const kp = generateKeyPair();
  zeroKeyPair(kp);
  t.true(kp.secretKey.every((b) => b === 0));
  t.true(kp.publicKey.every((b) => b === 0));
});

test('secret key file: written 0600 with O_EXCL, read back, refused when group/other can read', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sipc-keys-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'server.key');
  const kp = generateKeyPair();
  await writeSecretKeyFile(file, kp.secretKey);
  if (isPosix) t.is((await stat(file)).mode & 0o777, 0o600);
  const written = await readFile(file, 'latin1');
  t.is(
    written,
    `-----BEGIN SECURE-IPC SECRET KEY-----\n${encodeKey(kp.secretKey)}\n-----END SECURE-IPC SECRET KEY-----\n`,
  );
  const loaded = await readSecretKeyFile(file);
  t.deepEqual(Buffer.from(loaded.publicKey), Buffer.from(kp.publicKey));

  const again = await t.throwsAsync(writeSecretKeyFile(file, kp.secretKey));
  t.true(isSecureIpcError(again, 'SIPC_ERR_INVALID_ARGUMENT'));
  t.is(await readFile(file, 'latin1'), written, 'existing file untouched');

  if (!isPosix) {
    t.log('POSIX mode bits do not exist on Windows: the permission refusal is not checked here');
    return;
  }
  for (const mode of [0o640, 0o604, 0o620, 0o644]) {
    await chmod(file, mode);
    const err = await t.throwsAsync(readSecretKeyFile(file));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INSECURE_KEY_FILE'), mode.toString(8));
  }
});

test('secret key file: garbage content is SIPC_ERR_BAD_KEY, a missing file is INVALID_ARGUMENT', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sipc-keys-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'bad.key');
  await writeFile(file, 'not a key\n', { mode: 0o600 });
  t.true(isSecureIpcError(await t.throwsAsync(readSecretKeyFile(file)), 'SIPC_ERR_BAD_KEY'));
  await writeFile(join(dir, 'big.key'), 'A'.repeat(4096), { mode: 0o600 });
  t.true(isSecureIpcError(await t.throwsAsync(readSecretKeyFile(join(dir, 'big.key'))), 'SIPC_ERR_BAD_KEY'));
  t.true(
    isSecureIpcError(
      await t.throwsAsync(readSecretKeyFile(join(dir, 'missing'))),
      'SIPC_ERR_INVALID_ARGUMENT',
    ),
  );
});
