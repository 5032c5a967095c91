// Socket activation (src/activation.ts): `systemd:NAME` listens on a socket the service manager
// bound and handed over as fd 3 with LISTEN_PID / LISTEN_FDS / LISTEN_FDNAMES. The end-to-end
// cases use systemd's own systemd-socket-activate, which binds, waits for the first connection and
// then starts the service with the socket, exactly as systemd does for a .socket unit.
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { existsSync } from 'node:fs';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { isSecureIpcError } from '@secure-ipc/core';
import test, { type ExecutionContext } from 'ava';
import { handedOverFd, readHandedOver } from '../src/activation.js';
import { unixTransport } from '../src/index.js';
import { tempDir } from './helpers.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/activated.js', import.meta.url));
const linux = process.platform === 'linux';
const activator = linux && spawnSync('systemd-socket-activate', ['--version']).status === 0;

function withActivator(title: string, fn: (t: ExecutionContext) => Promise<void>): void {
  if (activator) test(title, fn);
  else
    test.skip(
      `${title} (skipped: needs Linux and systemd-socket-activate, Debian package systemd; CI installs it)`,
      fn,
    );
}

/** systemd-socket-activate listening on `path` (fd name `helper`), starting the fixture on the first connection. */
async function activate(t: ExecutionContext, path: string, address: string, policy = '{}') {
  const tool: ChildProcess = spawn(
    'systemd-socket-activate',
    ['-l', path, '--fdname=helper', process.execPath, FIXTURE, address, policy],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  t.teardown(async () => {
    if (tool.exitCode === null && tool.signalCode === null) tool.kill('SIGKILL');
    await once(tool, 'exit').catch(() => undefined);
  });
  // A path: wait until the tool has bound it. A TCP address: give the tool a moment to bind.
  if (path.startsWith('/')) for (let i = 0; i < 200 && !existsSync(path); i++) await sleep(25);
  else await sleep(300);
  const lines = createInterface({ input: tool.stdout! })[Symbol.asyncIterator]();
  return { tool, next: async () => (await lines.next()).value as string };
}

withActivator(
  'systemd:helper listens on the socket systemd-socket-activate handed over as fd 3',
  async (t) => {
    const path = `${tempDir(t)}/s.sock`;
    const service = await activate(t, path, 'systemd:helper');
    t.true(existsSync(path), 'the manager bound the socket before the service runs');
    const conn = await unixTransport().connect(`unix://${path}`); // starts the service
    t.teardown(() => void conn.destroy());
    t.is(await service.next(), 'ready');
    t.is(await service.next(), 'env unset', 'LISTEN_* are removed so children do not inherit them');
    // SO_PEERCRED names the process that called listen(): here the tool, which then exec'd the
    // service in place (same pid); under systemd itself it is PID 1 (docs/deployment.md).
    t.like(conn.peer, { transport: 'unix', uid: process.geteuid!(), pid: service.tool.pid });
    conn.write('hello');
    const [echo] = (await once(conn, 'data')) as [Buffer];
    t.is(String(echo), 'hello');
    service.tool.stdin!.write('close\n');
    t.is(await service.next(), 'closed');
    t.true(existsSync(path), 'the socket file is the manager’s: closing the listener leaves it');
  },
);

withActivator('the credential policy applies to a handed-over socket as to one bound here', async (t) => {
  const path = `${tempDir(t)}/s.sock`;
  const service = await activate(t, path, 'systemd:', '{"allowedUids":[123456]}');
  const conn = await unixTransport().connect(`unix://${path}`);
  t.teardown(() => void conn.destroy());
  conn.on('error', () => {}); // the reset of the refusal
  const closed = once(conn, 'close');
  t.is(await service.next(), 'ready');
  t.is(await service.next(), 'env unset');
  t.is(await service.next(), 'reject SIPC_ERR_PEER_CREDENTIALS');
  await closed;
});

withActivator('a name that was not handed over fails the listen with the names there are', async (t) => {
  const path = `${tempDir(t)}/s.sock`;
  const service = await activate(t, path, 'systemd:other');
  const conn = await unixTransport().connect(`unix://${path}`);
  t.teardown(() => void conn.destroy());
  t.regex(
    await service.next(),
    /^error SIPC_ERR_LISTEN_FAILED .*no socket named other was handed over \(names: helper\)/,
  );
});

withActivator(
  'a TCP socket handed over is refused: transport-unix listens on Unix sockets only',
  async (t) => {
    const probe = net.createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as net.AddressInfo;
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const service = await activate(t, `127.0.0.1:${port}`, 'systemd:helper');
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => {});
    t.teardown(() => void client.destroy());
    t.regex(await service.next(), /^error SIPC_ERR_LISTEN_FAILED .*not a Unix socket/);
  },
);

test('LISTEN_* are read as sd_listen_fds reads them', (t) => {
  t.regex(readHandedOver({}, 10).missing!, /no socket was handed over/);
  t.regex(
    readHandedOver({ LISTEN_PID: '11', LISTEN_FDS: '1' }, 10).missing!,
    /for process 11, not this one \(10\)/,
  );
  t.regex(readHandedOver({ LISTEN_PID: '10', LISTEN_FDS: 'x' }, 10).missing!, /not a count/);
  t.regex(readHandedOver({ LISTEN_PID: '10', LISTEN_FDS: '0' }, 10).missing!, /not a count/);
  const two = readHandedOver({ LISTEN_PID: '10', LISTEN_FDS: '2', LISTEN_FDNAMES: 'api:admin' }, 10);
  t.deepEqual(two.fds, [
    { fd: 3, name: 'api' },
    { fd: 4, name: 'admin' },
  ]);
  t.deepEqual(readHandedOver({ LISTEN_PID: '10', LISTEN_FDS: '1' }, 10).fds, [{ fd: 3, name: 'unknown' }]);
  t.is(handedOverFd('systemd:admin', 'admin', two), 4);
  t.throws(() => handedOverFd('systemd:admin', 'admin', two), { message: /already listening/ });
  t.throws(() => handedOverFd('systemd:', '', two), {
    message: /2 sockets were handed over \(api, admin\); name one/,
  });
  t.throws(() => handedOverFd('systemd:x', 'x', two), { message: /no socket named x/ });
});

test('systemd: addresses: listen without a hand-over, connect, bad names and socketMode are typed errors', async (t) => {
  if (!linux) {
    const err = await t.throwsAsync(unixTransport().listen('systemd:x'));
    t.true(
      isSecureIpcError(err, 'SIPC_ERR_UNSUPPORTED_PLATFORM') ||
        isSecureIpcError(err, 'SIPC_ERR_INVALID_ADDRESS'),
    );
    return;
  }
  const none = await t.throwsAsync(unixTransport().listen('systemd:helper'));
  t.true(isSecureIpcError(none, 'SIPC_ERR_LISTEN_FAILED'), String(none));
  t.regex(none!.message, /no socket was handed over/);
  const connect = await t.throwsAsync(unixTransport().connect('systemd:helper'));
  t.true(isSecureIpcError(connect, 'SIPC_ERR_INVALID_ADDRESS'), String(connect));
  for (const bad of ['systemd:a:b', 'systemd:with space', `systemd:${'x'.repeat(256)}`]) {
    const err = await t.throwsAsync(unixTransport().listen(bad));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ADDRESS'), bad);
  }
  const mode = await t.throwsAsync(unixTransport().listen('systemd:helper', { socketMode: 0o660 }));
  t.true(isSecureIpcError(mode, 'SIPC_ERR_INVALID_ARGUMENT'));
  t.regex(mode!.message, /SocketMode=/);
});
