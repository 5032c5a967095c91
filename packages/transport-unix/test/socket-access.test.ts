import { once } from 'node:events';
import { chmodSync, statSync } from 'node:fs';
import { dirname } from 'node:path';
import { type Connection, isSecureIpcError, type PeerInfo } from '@secure-ipc/core';
import test, { type ExecutionContext } from 'ava';
import { unixTransport } from '../src/index.js';
import { peerProcess, tempDir } from './helpers.js';

const NOBODY = 65534;
const linux = process.platform === 'linux';
const root = process.geteuid?.() === 0;
const unix = process.platform !== 'win32';

/** A test that needs root on Linux (to run a child as uid 65534); skipped elsewhere, saying why. */
function asRootOnLinux(title: string, fn: (t: ExecutionContext) => Promise<void>): void {
  if (linux && root) test(title, fn);
  else test.skip(`${title} (skipped: needs root on Linux to run a client as uid 65534)`, fn);
}
function onUnix(title: string, fn: (t: ExecutionContext) => Promise<void> | void): void {
  if (unix) test(title, fn);
  else test.skip(`${title} (skipped: Unix domain socket files do not exist on Windows)`, fn);
}

/** A directory under the temp dir that another user may traverse (mkdtemp makes it 0700). */
function traversableBase(t: ExecutionContext): string {
  const base = tempDir(t);
  chmodSync(base, 0o711);
  return base;
}

/** The peer fixture as uid/gid 65534: connect to `address` trusting a server of uid 0. */
function nobodyConnects(t: ExecutionContext, address: string) {
  return peerProcess(t, ['connect', address, '{"allowedUids":[0]}'], { uid: NOBODY });
}

asRootOnLinux(
  'by default a socket is owner-only: another user cannot connect, whatever allowedUids says',
  async (t) => {
    const address = `unix://${traversableBase(t)}/svc/s.sock`;
    const listener = await unixTransport({ allowedUids: [NOBODY] }).listen(address);
    t.teardown(() => listener.close());
    const path = address.slice('unix://'.length);
    t.is(statSync(path).mode & 0o777, 0o600);
    t.is(statSync(dirname(path)).mode & 0o777, 0o700);
    const child = nobodyConnects(t, address);
    t.is(await child.next(), 'error SIPC_ERR_CONNECT_FAILED');
  },
);

asRootOnLinux(
  "socketMode 0o660 + socketGroup: a client of that group reaches a root service, which sees the client's uid",
  async (t) => {
    const address = `unix://${traversableBase(t)}/svc/s.sock`;
    const listener = await unixTransport({ allowedUids: [NOBODY] }).listen(address, {
      socketMode: 0o660,
      socketGroup: NOBODY,
    });
    t.teardown(() => listener.close());
    const path = address.slice('unix://'.length);
    t.like(statSync(path), { uid: 0, gid: NOBODY });
    t.is(statSync(path).mode & 0o777, 0o660);
    t.like(statSync(dirname(path)), { uid: 0, gid: NOBODY });
    t.is(
      statSync(dirname(path)).mode & 0o777,
      0o710,
      'the group may traverse the directory, nobody may list it',
    );
    const accepted = once(listener, 'connection') as Promise<[Connection]>;
    const child = nobodyConnects(t, address);
    const [server] = await accepted;
    t.like(server.peer, { uid: NOBODY, gid: NOBODY, pid: child.child.pid });
    t.is(await child.next(), 'connected 0');
  },
);

asRootOnLinux(
  'socketMode 0o666: every user may connect(), and the credential policy still refuses one it does not allow',
  async (t) => {
    const address = `unix://${traversableBase(t)}/svc/s.sock`;
    const listener = await unixTransport().listen(address, { socketMode: 0o666 });
    t.teardown(() => listener.close());
    const path = address.slice('unix://'.length);
    t.is(statSync(path).mode & 0o777, 0o666);
    t.is(statSync(dirname(path)).mode & 0o777, 0o711);
    let connections = 0;
    listener.on('connection', () => connections++);
    const rejected = once(listener, 'reject') as Promise<[Error, PeerInfo]>;
    const child = nobodyConnects(t, address);
    const [err, info] = await rejected;
    t.true(isSecureIpcError(err, 'SIPC_ERR_PEER_CREDENTIALS'), String(err));
    t.like(info, { uid: NOBODY });
    t.is(connections, 0);
    t.is(await child.next(), 'connected 0');
    t.is(await child.next(), 'closed');
  },
);

onUnix(
  'socketMode 0o660 without a group: the socket and its new directory get this process’s group',
  async (t) => {
    const path = `${tempDir(t)}/svc/s.sock`;
    const listener = await unixTransport({ socketMode: 0o660 }).listen(`unix://${path}`);
    t.teardown(() => listener.close());
    t.is(statSync(path).mode & 0o777, 0o660);
    t.is(statSync(path).gid, process.getegid!());
    t.is(statSync(dirname(path)).mode & 0o777, 0o710);
    // An existing directory is left as it is (it is only verified).
    const again = await unixTransport().listen(`unix://${path}.2`, { socketMode: 0o660 });
    t.teardown(() => again.close());
    t.is(statSync(dirname(path)).mode & 0o777, 0o710);
  },
);

onUnix('socketMode and socketGroup are checked where they are given, with a typed error', async (t) => {
  for (const socketMode of [0o644, 0o700, 0o777, 0o640, 0, 1.5, '0660', -1] as unknown[]) {
    const err = t.throws(() => unixTransport({ socketMode: socketMode as number }));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), `${String(socketMode)}: ${String(err)}`);
    await t.throwsAsync(
      unixTransport().listen(`unix://${tempDir(t)}/s.sock`, { socketMode: socketMode as number }),
      { code: 'SIPC_ERR_INVALID_ARGUMENT' } as never,
    );
  }
  for (const socketGroup of [-1, 1.5, '0', 2 ** 32] as unknown[]) {
    const err = t.throws(() => unixTransport({ socketGroup: socketGroup as number }));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), String(socketGroup));
  }
  const local = await t.throwsAsync(
    unixTransport({ runtimeDirectory: `${tempDir(t)}/rt` }).listen('local://app', { socketMode: 0o660 }),
  );
  t.true(isSecureIpcError(local, 'SIPC_ERR_INVALID_ARGUMENT'));
  t.regex(local!.message, /local:\/\//);
  if (linux) {
    const abstract = await t.throwsAsync(unixTransport().listen('unix-abstract:x', { socketGroup: 0 }));
    t.true(isSecureIpcError(abstract, 'SIPC_ERR_INVALID_ARGUMENT'));
    t.regex(abstract!.message, /no file permissions/);
  }
});
