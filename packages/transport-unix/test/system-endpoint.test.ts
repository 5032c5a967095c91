import { once } from 'node:events';
import { chmodSync, chownSync, mkdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { isSecureIpcError } from '@secure-ipc/core';
import test, { type ExecutionContext } from 'ava';
import { resolveLocalPath, unixTransport } from '../src/index.js';
import { peerProcess, tempDir } from './helpers.js';

const NOBODY = 65534;
const linux = process.platform === 'linux';

function asRootOnLinux(title: string, fn: (t: ExecutionContext) => Promise<void>): void {
  if (linux && process.geteuid?.() === 0) test(title, fn);
  else
    test.skip(
      `${title} (skipped: needs root on Linux, the server of a system endpoint, and a uid-65534 client)`,
      fn,
    );
}

/** The peer fixture as uid 65534 with transport options `options`. */
function nobody(t: ExecutionContext, role: 'connect' | 'listen', address: string, options: object) {
  return peerProcess(t, [role, address, JSON.stringify(options)], { uid: NOBODY });
}

/** A system directory under a fresh temp dir any user may traverse (mkdtemp makes it 0700). */
function systemDir(t: ExecutionContext): string {
  const base = tempDir(t);
  chmodSync(base, 0o711);
  return join(base, 'system');
}

asRootOnLinux(
  'a root service on local://system/helper is reached by uid 65534 with no policy of its own',
  async (t) => {
    const systemDirectory = systemDir(t);
    const listener = await unixTransport({ systemDirectory }).listen('local://system/helper', {
      socketMode: 0o666,
      allowedUids: [NOBODY],
    });
    t.teardown(() => listener.close());
    t.like(statSync(systemDirectory), { uid: 0 });
    t.is(
      statSync(systemDirectory).mode & 0o777,
      0o711,
      'any user may traverse it, nobody may list or write it',
    );
    const sock = join(systemDirectory, 'helper.sock');
    t.like(statSync(sock), { uid: 0 });
    t.is(statSync(sock).mode & 0o777, 0o666);
    const accepted = once(listener, 'connection');
    // The client names no allowedUids: for a system endpoint it accepts only a server of uid 0.
    const client = nobody(t, 'connect', 'local://system/helper', { systemDirectory });
    t.is(await client.next(), 'connected 0');
    await accepted;
  },
);

asRootOnLinux('a client refuses a system endpoint whose directory is not root’s', async (t) => {
  const systemDirectory = systemDir(t);
  mkdirSync(systemDirectory, { mode: 0o700 });
  chownSync(systemDirectory, NOBODY, NOBODY);
  // uid 65534 serves a socket where a system endpoint's would be.
  const impostor = nobody(t, 'listen', `unix://${join(systemDirectory, 'helper.sock')}`, {
    allowAnyUser: true,
  });
  t.is(await impostor.next(), 'ready');
  const err = await t.throwsAsync(unixTransport({ systemDirectory }).connect('local://system/helper'));
  t.true(isSecureIpcError(err, 'SIPC_ERR_INSECURE_DIRECTORY'), String(err));
  t.regex(err!.message, /owned by uid 65534, not by root/);
});

asRootOnLinux(
  'only root serves local://system/: another user’s listen is refused with a typed error',
  async (t) => {
    const systemDirectory = systemDir(t);
    const child = nobody(t, 'listen', 'local://system/helper', { systemDirectory });
    t.is(await child.next(), 'error SIPC_ERR_INVALID_ARGUMENT');
  },
);

asRootOnLinux('listen refuses a system directory whose parent others may write', async (t) => {
  const base = tempDir(t);
  chmodSync(base, 0o777);
  const err = await t.throwsAsync(
    unixTransport({ systemDirectory: join(base, 'system') }).listen('local://system/helper'),
  );
  t.true(isSecureIpcError(err, 'SIPC_ERR_INSECURE_DIRECTORY'), String(err));
  t.regex(err!.message, /writable by group or others/);
});

test('local://system/ addresses: the path, and ids that are refused', (t) => {
  if (process.platform === 'win32') {
    t.pass('transport-unix does not run on Windows');
    return;
  }
  const root = linux ? '/run/secure-ipc-system' : '/var/run/secure-ipc-system';
  t.is(resolveLocalPath('local://system/helper'), `${root}/helper.sock`);
  t.is(resolveLocalPath('local://system/helper', { systemDirectory: '/srv/s' }), '/srv/s/helper.sock');
  for (const bad of [
    'local://system/',
    'local://system/a/b',
    'local://system/-x',
    `local://system/${'a'.repeat(65)}`,
  ]) {
    const err = t.throws(() => resolveLocalPath(bad));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ADDRESS'), bad);
  }
});
