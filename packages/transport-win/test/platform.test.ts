/**
 * The package imports on every OS. Outside Windows it has no schemes and listen/connect reject with
 * SIPC_ERR_UNSUPPORTED_PLATFORM without loading koffi; on Windows it handles pipe: and local:.
 * This file runs under Linux node and under the Windows node in Wine (see package.json "test").
 */
import { isSecureIpcError } from '@secure-ipc/core';
import { isTransport, selectTransport } from '@secure-ipc/core/transport';
import test from 'ava';
import { pipeTransport } from '../src/index.js';

if (process.platform === 'win32') {
  test('on win32 the transport handles pipe: and local:', (t) => {
    const transport = pipeTransport();
    t.true(isTransport(transport));
    t.is(transport.name, 'pipe');
    t.deepEqual(transport.schemes, ['pipe:', 'local:']);
    t.is(selectTransport('local://app', [transport]), transport);
  });
} else {
  test(`on ${process.platform} the factory works but listen/connect reject with SIPC_ERR_UNSUPPORTED_PLATFORM`, async (t) => {
    const transport = pipeTransport({ allowAnyUser: false });
    t.true(isTransport(transport));
    t.deepEqual(transport.schemes, []);
    t.is(selectTransport('pipe://x', [transport]), undefined);
    for (const address of ['pipe://x', 'local://app']) {
      const l = await t.throwsAsync(transport.listen(address));
      t.true(isSecureIpcError(l, 'SIPC_ERR_UNSUPPORTED_PLATFORM'), String(l));
      const c = await t.throwsAsync(transport.connect(address));
      t.true(isSecureIpcError(c, 'SIPC_ERR_UNSUPPORTED_PLATFORM'), String(c));
    }
  });
}

test('bad options fail at construction with SIPC_ERR_INVALID_ARGUMENT (every OS)', (t) => {
  for (const options of [{ allowedSids: ['root'] }, { allowAnyUser: 'yes' }, { busyTimeoutMs: -1 }]) {
    const err = t.throws(() => pipeTransport(options as never));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), JSON.stringify(options));
  }
});
