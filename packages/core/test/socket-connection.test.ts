import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { isSecureIpcError } from '../src/errors.js';
import { abortError, awaitConnect, socketConnection } from '../src/transport/socket-connection.js';

test('awaitConnect resolves on connect; socketConnection attaches a frozen peer and swallows stray errors', async (t) => {
  const server = net.createServer((s) => s.end());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => server.close());
  const { port } = server.address() as net.AddressInfo;
  const socket = await awaitConnect(net.connect({ host: '127.0.0.1', port }), `tcp://127.0.0.1:${port}`);
  const conn = socketConnection(socket, { transport: 'tcp', address: '127.0.0.1', port });
  t.is(conn.peer.transport, 'tcp');
  t.true(Object.isFrozen(conn.peer));
  t.notThrows(() => conn.emit('error', new Error('nobody listens')));
  conn.destroy();
});

test('awaitConnect: nothing listening is SIPC_ERR_CONNECT_FAILED with the OS error as cause', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'sipc-sc-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const path = join(dir, 'none.sock');
  const err = await t.throwsAsync(awaitConnect(net.connect(path), `unix://${path}`));
  t.true(isSecureIpcError(err, 'SIPC_ERR_CONNECT_FAILED'));
  t.is((err?.cause as NodeJS.ErrnoException | undefined)?.code, 'ENOENT');
  t.regex(err?.message ?? '', /ENOENT/);
});

test('awaitConnect honours a pre-aborted and a later abort (socket destroyed, SIPC_ERR_ABORTED)', async (t) => {
  const pre = AbortSignal.abort(new Error('changed my mind'));
  const s1 = net.connect({ host: '127.0.0.1', port: 9 });
  s1.on('error', () => {});
  const e1 = await t.throwsAsync(awaitConnect(s1, 'tcp://127.0.0.1:9', { signal: pre }));
  t.true(isSecureIpcError(e1, 'SIPC_ERR_ABORTED'));
  t.true(s1.destroyed);
  // The abort comes in the same tick as the connect call, before the event loop can report the
  // connect's outcome, so the abort always wins.
  const ac = new AbortController();
  const s2 = net.connect({ host: '127.0.0.1', port: 9 });
  s2.on('error', () => {});
  const p = awaitConnect(s2, 'tcp://127.0.0.1:9', { signal: ac.signal });
  ac.abort();
  const e2 = await t.throwsAsync(p);
  t.true(isSecureIpcError(e2, 'SIPC_ERR_ABORTED'));
  t.true(s2.destroyed);
  t.true(isSecureIpcError(abortError({}), 'SIPC_ERR_ABORTED'));
});
