import { once } from 'node:events';
import type { Socket } from 'node:net';
import { networkInterfaces } from 'node:os';
import { type Connection, isSecureIpcError } from '@secure-ipc/core';
import test from 'ava';
import { isLoopback, parseTcpAddress, tcpTransport } from '../src/index.js';

const transport = tcpTransport();

/** A non-loopback address of this machine, if it has one. */
const external = Object.values(networkInterfaces())
  .flat()
  .find((i) => i !== undefined && !i.internal && i.family === 'IPv4')?.address;

for (const address of ['tcp://0.0.0.0:0', 'tcp://[::]:0', ...(external ? [`tcp://${external}:0`] : [])]) {
  test(`listening on ${address} without allowRemote is refused with SIPC_ERR_REMOTE_NOT_ALLOWED`, async (t) => {
    const err = await t.throwsAsync(transport.listen(address));
    t.true(isSecureIpcError(err, 'SIPC_ERR_REMOTE_NOT_ALLOWED'), String(err));
    t.regex(err!.message, /allowRemote: true/);
  });
}

test('allowRemote: true (per transport or per listen) permits a non-loopback bind', async (t) => {
  const a = await tcpTransport({ allowRemote: true }).listen('tcp://0.0.0.0:0');
  t.teardown(() => a.close());
  const b = await transport.listen('tcp://0.0.0.0:0', { allowRemote: true });
  t.teardown(() => b.close());
  t.regex(a.address, /^tcp:\/\/0\.0\.0\.0:[1-9]\d*$/);
  t.not(a.address, b.address);
});

test('localhost is checked by what it resolves to (loopback), and listen reports the real port for port 0', async (t) => {
  const listener = await transport.listen('tcp://localhost:0');
  t.teardown(() => listener.close());
  const { host, port } = parseTcpAddress(listener.address);
  t.is(host, 'localhost');
  t.true(port > 0);
  const accepted = once(listener, 'connection') as Promise<[Connection]>;
  const conn = await transport.connect(listener.address);
  t.teardown(() => void conn.destroy());
  const [server] = await accepted;
  t.true(isLoopback(server.peer.address!), server.peer.address);
});

test('IPv6 in brackets: listen and connect on [::1], peers carry address and port of the other end', async (t) => {
  const listener = await transport.listen('tcp://[::1]:0');
  t.teardown(() => listener.close());
  t.regex(listener.address, /^tcp:\/\/\[::1\]:\d+$/);
  const accepted = once(listener, 'connection') as Promise<[Connection]>;
  const conn = await transport.connect(listener.address);
  t.teardown(() => void conn.destroy());
  const [server] = await accepted;
  t.deepEqual(conn.peer, { transport: 'tcp', address: '::1', port: parseTcpAddress(listener.address).port });
  t.deepEqual(server.peer, {
    transport: 'tcp',
    address: '::1',
    port: (conn as unknown as Socket).localPort,
    // The accepting side of a loopback connection knows the client's uid on Linux (peer-identity.ts).
    ...(process.platform === 'linux' ? { osIdentity: `uid:${process.geteuid!()}` } : {}),
  });
});

for (const bad of [
  'tcp://::1:80',
  'tcp://127.0.0.1',
  'tcp://127.0.0.1:70000',
  'tcp://[zz::1]:1',
  'tcp://[127.0.0.1]:1',
  'tcp://a b:1',
  'tcp://127.0.0.1:1/path',
  'unix:///x.sock',
]) {
  test(`invalid address ${bad} gives SIPC_ERR_INVALID_ADDRESS`, async (t) => {
    const err = await t.throwsAsync(transport.listen(bad));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ADDRESS'), String(err));
  });
}

test('connecting to port 0 is an invalid address', async (t) => {
  const err = await t.throwsAsync(transport.connect('tcp://127.0.0.1:0'));
  t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ADDRESS'), String(err));
});

test('isLoopback knows every spelling of loopback and nothing else', (t) => {
  for (const ip of ['127.0.0.1', '127.255.0.9', '::1', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1'])
    t.true(isLoopback(ip), ip);
  for (const ip of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', '::ffff:10.0.0.1', 'localhost', '::2']) {
    t.false(isLoopback(ip), ip);
  }
});

test('allowRemote must be a boolean', (t) => {
  const err = t.throws(() => tcpTransport({ allowRemote: 'yes' as never }));
  t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), String(err));
});

test('an abort while listen is in progress rejects with SIPC_ERR_ABORTED and binds nothing', async (t) => {
  const probe = await transport.listen('tcp://127.0.0.1:0');
  const address = probe.address;
  await probe.close();
  const controller = new AbortController();
  const listening = transport.listen(address, { signal: controller.signal });
  controller.abort();
  const err = await t.throwsAsync(listening);
  t.true(isSecureIpcError(err, 'SIPC_ERR_ABORTED'), String(err));
  // The port is free again: nothing stayed bound.
  const again = await transport.listen(address);
  t.teardown(() => again.close());
  t.is(again.address, address);
});
