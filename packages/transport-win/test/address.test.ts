/** Address rules: pipe://NAME and local://APP-ID, name rules and the 256-character limit (every OS). */
import { isSecureIpcError } from '@secure-ipc/core';
import test from 'ava';
import { localPipeName, MAX_PIPE_PATH_LENGTH, parsePipeAddress, systemPipeName } from '../src/address.js';

const SID = 'S-1-5-21-1111111111-2222222222-3333333333-1001';
const sid = () => SID;

test('pipe://NAME maps to \\\\.\\pipe\\NAME', (t) => {
  t.deepEqual(parsePipeAddress('pipe://my-service', sid), { path: '\\\\.\\pipe\\my-service', local: false });
  // Windows allows spaces, dots, slashes and non-ASCII in pipe names; only the backslash is special.
  t.is(parsePipeAddress('pipe://a b/c.d-é', sid).path, '\\\\.\\pipe\\a b/c.d-é');
});

test('local://APP-ID maps to a pipe name that includes the user SID', (t) => {
  const parsed = parsePipeAddress('local://my-app', sid);
  t.is(parsed.path, `\\\\.\\pipe\\secure-ipc-${SID}-my-app`);
  t.true(parsed.local);
  t.is(localPipeName('my-app', 'S-1-5-18'), 'secure-ipc-S-1-5-18-my-app');
  // Two users never share the endpoint of one app id.
  t.not(parsed.path, parsePipeAddress('local://my-app', () => 'S-1-5-21-1-2-3-1002').path);
});

test('local://system/APP-ID maps to one well-known pipe name without a SID', (t) => {
  const noSid = () => {
    throw new Error('a system address needs no user SID');
  };
  t.deepEqual(parsePipeAddress('local://system/my-helper', noSid), {
    path: '\\\\.\\pipe\\secure-ipc-system-my-helper',
    local: false,
    system: true,
  });
  t.is(systemPipeName('a.b_c-1'), 'secure-ipc-system-a.b_c-1');
  // Never a per-user name: those continue with the SID (S-1-...).
  t.not(parsePipeAddress('local://system/x', noSid).path, parsePipeAddress('local://x', sid).path);
  // `local://system` without the slash is an ordinary per-user app id.
  t.is(parsePipeAddress('local://system', sid).path, `\\\\.\\pipe\\secure-ipc-${SID}-system`);
});

const invalidAddresses: [string, string][] = [
  ['local://system/', 'empty system app id'],
  ['local://system/a/b', 'slash in system app id'],
  ['local://system/-x', 'system app id starting with a dash'],
  [`local://system/${'a'.repeat(65)}`, 'system app id over 64 characters'],
  ['pipe://', 'empty name'],
  ['pipe://a\\b', 'backslash'],
  ['pipe://a\u0000b', 'NUL'],
  ['pipe://a\nb', 'newline'],
  ['unix:///tmp/x.sock', 'another transport'],
  ['pipe:name', 'no //'],
  ['\\\\.\\pipe\\raw', 'a raw pipe path is not an address'],
  ['local://', 'empty app id'],
  ['local://-leading-dash', 'app id starting with a dash'],
  ['local://has space', 'space in app id'],
  ['local://a/b', 'slash in app id'],
  [`local://${'a'.repeat(65)}`, 'app id over 64 characters'],
];
for (const [address, why] of invalidAddresses) {
  test(`invalid address is SIPC_ERR_INVALID_ADDRESS: ${why}`, (t) => {
    const err = t.throws(() => parsePipeAddress(address, sid));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ADDRESS'), String(err));
  });
}

test('a malformed user SID never yields a local:// pipe name', (t) => {
  const err = t.throws(() => parsePipeAddress('local://app', () => 'not-a-sid'));
  t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ADDRESS'));
});

test('the full pipe path may be 256 characters, not 257 (SIPC_ERR_PATH_TOO_LONG names the limit)', (t) => {
  const room = MAX_PIPE_PATH_LENGTH - '\\\\.\\pipe\\'.length;
  t.is(MAX_PIPE_PATH_LENGTH, 256);
  t.is(parsePipeAddress(`pipe://${'x'.repeat(room)}`, sid).path.length, 256);
  const err = t.throws(() => parsePipeAddress(`pipe://${'x'.repeat(room + 1)}`, sid));
  t.true(isSecureIpcError(err, 'SIPC_ERR_PATH_TOO_LONG'));
  t.regex(err!.message, /257 characters; Windows allows 256/);
  t.deepEqual((err as { details?: unknown }).details, { length: 257, limit: 256 });
});

test('local:// names count toward the limit too', (t) => {
  // A 64-character app id fits with a realistic SID; the longest valid SID (a 48-bit authority and
  // 15 sub-authorities of 32 bits) pushes it over.
  t.notThrows(() => parsePipeAddress(`local://${'a'.repeat(64)}`, sid));
  const longSid = `S-1-281474976710655${'-4294967295'.repeat(15)}`;
  const err = t.throws(() => parsePipeAddress(`local://${'a'.repeat(64)}`, () => longSid));
  t.true(isSecureIpcError(err, 'SIPC_ERR_PATH_TOO_LONG'));
});
