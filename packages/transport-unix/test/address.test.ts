import { isSecureIpcError } from '@secure-ipc/core';
import test from 'ava';
import { localDirectory, resolveLocalPath, socketPathLimit, unixTransport } from '../src/index.js';
import { tempDir } from './helpers.js';

const transport = unixTransport();

test('local://APP-ID resolves under the per-user directory (the rules are in local-directory.test.ts)', (t) => {
  const dir = localDirectory();
  if (process.geteuid?.() === 0)
    t.is(dir, process.platform === 'linux' ? '/run/secure-ipc' : '/var/run/secure-ipc');
  else if (process.platform === 'linux') t.regex(dir, new RegExp(`/secure-ipc(-${process.geteuid!()})?$`));
  else t.regex(dir, /\/secure-ipc$/);
  t.is(resolveLocalPath('local://my-app'), `${dir}/my-app.sock`);
  t.is(resolveLocalPath('local://my-app', { runtimeDirectory: '/x/y' }), '/x/y/my-app.sock');
});

for (const bad of [
  'local://',
  'local://../etc',
  'local://a/b',
  'local://.hidden',
  'local://sp ace',
  `local://${'a'.repeat(65)}`,
]) {
  test(`an invalid application id is refused: ${JSON.stringify(bad.slice(0, 24))}`, (t) => {
    const err = t.throws(() => resolveLocalPath(bad));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ADDRESS'), String(err));
  });
}

for (const bad of [
  'unix://relative.sock',
  'unix:///a/../b.sock',
  'unix:///a//b.sock',
  'unix:///a/',
  'tcp://x:1',
  'unix-abstract:',
]) {
  test(`an invalid address is refused with SIPC_ERR_INVALID_ADDRESS: ${bad}`, async (t) => {
    const err = await t.throwsAsync(transport.listen(bad));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ADDRESS'), String(err));
  });
}

test(`a socket path over ${socketPathLimit()} bytes gives SIPC_ERR_PATH_TOO_LONG stating the limit (never truncated)`, async (t) => {
  const dir = tempDir(t);
  const limit = socketPathLimit();
  const fits = `${dir}/${'s'.repeat(limit - dir.length - 1)}`;
  t.is(Buffer.byteLength(fits), limit);
  const listener = await transport.listen(`unix://${fits}`);
  t.teardown(() => listener.close());
  const tooLong = `${fits}x`;
  for (const attempt of [transport.listen(`unix://${tooLong}`), transport.connect(`unix://${tooLong}`)]) {
    const err = await t.throwsAsync(attempt);
    t.true(isSecureIpcError(err, 'SIPC_ERR_PATH_TOO_LONG'), String(err));
    t.regex(err!.message, new RegExp(`the limit on ${process.platform} is ${limit} bytes`));
  }
});

test('the path limit counts bytes, not characters', async (t) => {
  const dir = tempDir(t);
  const chars = Math.ceil((socketPathLimit() - dir.length) / 2);
  const err = await t.throwsAsync(transport.listen(`unix://${dir}/${'é'.repeat(chars)}`));
  t.true(isSecureIpcError(err, 'SIPC_ERR_PATH_TOO_LONG'), String(err));
});

test('local:// listens at the resolved path, connects, and the directory is verified on connect too', async (t) => {
  const runtimeDirectory = `${tempDir(t)}/rt`;
  const local = unixTransport({ runtimeDirectory });
  const listener = await local.listen('local://demo.app_1');
  t.teardown(() => listener.close());
  t.is(listener.address, 'local://demo.app_1');
  listener.on('connection', (c) => c.end('hi'));
  const conn = await local.connect('local://demo.app_1');
  t.is(String((await conn.toArray())[0]), 'hi');
  const { chmodSync } = await import('node:fs');
  chmodSync(runtimeDirectory, 0o777);
  const err = await t.throwsAsync(local.connect('local://demo.app_1'));
  t.true(isSecureIpcError(err, 'SIPC_ERR_INSECURE_DIRECTORY'), String(err));
});

// Abstract sockets exist only on Linux: elsewhere this case is skipped, as its title says.
const linuxOnly = process.platform === 'linux' ? test : test.skip;
linuxOnly('unix-abstract:NAME listens without any file (Linux only)', async (t) => {
  const name = `sipc-test-${process.pid}-${Date.now()}`;
  const listener = await transport.listen(`unix-abstract:${name}`);
  t.teardown(() => listener.close());
  listener.on('connection', (c) => c.end('abstract'));
  const conn = await transport.connect(`unix-abstract:${name}`);
  t.is(String((await conn.toArray())[0]), 'abstract');
  const err = await t.throwsAsync(transport.listen(`unix-abstract:${name}`));
  t.true(isSecureIpcError(err, 'SIPC_ERR_ADDRESS_IN_USE'), String(err));
});
