/**
 * The marked secret key file of docs/protocol.md "Files" (issue 12, row 12): a public key, or any
 * other bare 44-character base64 text, is refused as a secret key; old unmarked files are read
 * only with the explicit opt-in. Real files, written the way the old version and a user's slip
 * write them.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import {
  certificateToText,
  encodeKey,
  generateAuthority,
  generateKeyPair,
  issueCertificate,
  readSecretKeyFile,
  secretKeyFromText,
  secretKeyToText,
  writeAuthorityFile,
  writeSecretKeyFile,
} from '../src/index.js';
import { codeOf, tempDir } from './identity-helpers.js';

// The example of docs/protocol.md "Files": the secret key of bytes 0x01..0x20.
const EXAMPLE_KEY = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
const EXAMPLE_TEXT =
  '-----BEGIN SECURE-IPC SECRET KEY-----\nAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\n-----END SECURE-IPC SECRET KEY-----\n';

test('the format of docs/protocol.md "Files": three lines, the example byte for byte', (t) => {
  t.is(secretKeyToText(EXAMPLE_KEY), EXAMPLE_TEXT);
  t.deepEqual(Buffer.from(secretKeyFromText(EXAMPLE_TEXT)), Buffer.from(EXAMPLE_KEY));
  // CRLF and surrounding white space are accepted, nothing else.
  t.deepEqual(
    Buffer.from(secretKeyFromText(`  ${EXAMPLE_TEXT.replace(/\n/g, '\r\n')}\n`)),
    Buffer.from(EXAMPLE_KEY),
  );
});

test('a public key file given as a secret key is refused (reason unmarked), saying what it may be and how to convert', async (t) => {
  const dir = tempDir(t);
  const kp = generateKeyPair();
  const pub = join(dir, 'server.pub');
  // What `secure-ipc pubkey > server.pub` leaves, and what a user may then pass as --key.
  writeFileSync(pub, `${encodeKey(kp.publicKey)}\n`, { mode: 0o600 });
  const err = await t.throwsAsync(readSecretKeyFile(pub));
  t.is(codeOf(err), 'SIPC_ERR_BAD_KEY');
  t.like((err as { details?: unknown }).details, { reason: 'unmarked' });
  t.true(
    err!.message.startsWith(
      `${pub} holds a bare 44-character base64 key without the "-----BEGIN SECURE-IPC SECRET KEY-----" line`,
    ),
  );
  t.regex(err!.message, /it could be a public key .* which must never be used as a secret/);
  t.regex(err!.message, /convert it once: secure-ipc keygen --import FILE --out NEW/);
  // The same text without a file.
  const textErr = t.throws(() => secretKeyFromText(encodeKey(kp.publicKey)));
  t.like((textErr as { details?: unknown }).details, { reason: 'unmarked' });
});

test('an old unmarked secret key file is read only with allowUnmarked, and then gives the same key pair', async (t) => {
  const dir = tempDir(t);
  const kp = generateKeyPair();
  const old = join(dir, 'old.key');
  // Byte for byte what writeSecretKeyFile wrote before the marked format (and what `wg genkey` prints).
  writeFileSync(old, `${encodeKey(kp.secretKey)}\n`, { mode: 0o600 });
  t.is(codeOf(await t.throwsAsync(readSecretKeyFile(old))), 'SIPC_ERR_BAD_KEY', 'refused by default');
  const read = await readSecretKeyFile(old, { allowUnmarked: true });
  t.deepEqual(Buffer.from(read.publicKey), Buffer.from(kp.publicKey));
  t.deepEqual(
    Buffer.from(secretKeyFromText(encodeKey(kp.secretKey), { allowUnmarked: true })),
    Buffer.from(kp.secretKey),
  );
  // The opt-in is for the bare form only: it does not relax the file checks or the content rules.
  writeFileSync(join(dir, 'junk.key'), `${'A'.repeat(43)}=\nextra\n`, { mode: 0o600 });
  t.is(
    codeOf(await t.throwsAsync(readSecretKeyFile(join(dir, 'junk.key'), { allowUnmarked: true }))),
    'SIPC_ERR_BAD_KEY',
  );
});

test('a marked file is read back; other secure-ipc files given as a secret key are named for what they are', async (t) => {
  const dir = tempDir(t);
  const kp = generateKeyPair();
  await writeSecretKeyFile(join(dir, 'k'), kp.secretKey);
  t.deepEqual(Buffer.from((await readSecretKeyFile(join(dir, 'k'))).publicKey), Buffer.from(kp.publicKey));
  const authority = generateAuthority();
  await writeAuthorityFile(join(dir, 'ca.key'), authority);
  const err = await t.throwsAsync(readSecretKeyFile(join(dir, 'ca.key')));
  t.is(codeOf(err), 'SIPC_ERR_BAD_KEY');
  t.regex(err!.message, /ca\.key is a secure-ipc authority key file, not a secret key file/);
  t.like((err as { details?: unknown }).details, { reason: 'other-label' });
  // A certificate is over the key file's size cap, so its text is checked without a file.
  const cert = certificateToText(issueCertificate(authority, { subjectKey: kp.publicKey, name: 'x' }));
  t.regex(
    t.throws(() => secretKeyFromText(cert))!.message,
    /is a secure-ipc certificate file, not a secret key file/,
  );
});

for (const [what, text] of [
  ['a non-canonical key line (padding bits set)', EXAMPLE_TEXT.replace('eHyA=', 'eHyB=')],
  ['a missing END line', EXAMPLE_TEXT.split('\n').slice(0, 2).join('\n')],
  [
    'a second key line',
    EXAMPLE_TEXT.replace('\n-----END', '\nAQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=\n-----END'),
  ],
  [
    'a 31-byte key',
    secretKeyToText(EXAMPLE_KEY).replace(
      'AQIDBAUGBwgJCgsMDQ4PEBESExQVFhcYGRobHB0eHyA=',
      Buffer.alloc(31, 1).toString('base64'),
    ),
  ],
] as const) {
  test(`malformed secret key text is SIPC_ERR_BAD_KEY: ${what}`, (t) => {
    const err = t.throws(() => secretKeyFromText(text, { allowUnmarked: true }));
    t.is(codeOf(err), 'SIPC_ERR_BAD_KEY');
    t.like((err as { details?: unknown }).details, { reason: 'malformed' });
  });
}
