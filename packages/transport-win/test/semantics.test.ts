/**
 * Windows pipe semantics this transport documents: end() closes both directions, there is no file
 * to clean up, and the typed errors of connect/listen. Windows only (Wine in CI).
 */
import { once } from 'node:events';
import { type Connection, isSecureIpcError } from '@secure-ipc/core';
import anyTest, { type TestFn } from 'ava';
import { pipeTransport } from '../src/index.js';
import { uniqueName } from './helpers.js';

// Explicit platform gate: these tests need Windows (node.exe under Wine in CI).
const test = (process.platform === 'win32' ? anyTest : anyTest.skip) as TestFn;

test('end() on a named pipe closes both directions: the peer gets the data and end, a late reply is lost, both sides close', async (t) => {
  const transport = pipeTransport();
  const listener = await transport.listen(`pipe://${uniqueName('end')}`);
  t.teardown(() => listener.close());
  const served = new Promise<{ got: string; closed: boolean }>((resolve) => {
    listener.once('connection', (conn: Connection) => {
      let got = '';
      conn.on('data', (d: Buffer) => {
        got += String(d);
      });
      conn.once('end', () => {
        // Half-open on Unix would deliver this; on a Windows pipe the writer has already closed.
        conn.write('late reply');
      });
      conn.once('close', () => resolve({ got, closed: true }));
    });
  });
  const client = await transport.connect(listener.address);
  let clientGot = '';
  client.on('data', (d: Buffer) => {
    clientGot += String(d);
  });
  const clientClosed = once(client, 'close');
  client.end('last words');
  const server = await served;
  await clientClosed;
  t.is(server.got, 'last words');
  t.true(server.closed);
  t.false(clientGot.includes('late reply'));
});

test('connecting to a pipe nobody serves rejects with SIPC_ERR_CONNECT_FAILED (cause ENOENT)', async (t) => {
  const err = await t.throwsAsync(pipeTransport().connect(`pipe://${uniqueName('nobody')}`));
  t.true(isSecureIpcError(err, 'SIPC_ERR_CONNECT_FAILED'), String(err));
  t.is((err!.cause as { code?: string }).code, 'ENOENT');
});

test('no file to clean up: after close() the name is gone and can be listened on again', async (t) => {
  const transport = pipeTransport();
  const address = `pipe://${uniqueName('reuse')}`;
  const first = await transport.listen(address);
  const conn = await transport.connect(address);
  const closed = once(conn, 'close');
  await first.close(); // also destroys the open connection
  await closed;
  const err = await t.throwsAsync(transport.connect(address));
  t.true(isSecureIpcError(err, 'SIPC_ERR_CONNECT_FAILED'), String(err));
  const second = await transport.listen(address);
  t.teardown(() => second.close());
  const again = await transport.connect(address);
  t.teardown(() => again.destroy());
  t.is(again.peer.transport, 'pipe');
});

test('an already aborted signal rejects listen and connect with SIPC_ERR_ABORTED', async (t) => {
  const transport = pipeTransport();
  const signal = AbortSignal.abort(new Error('stop'));
  const address = `pipe://${uniqueName('abort')}`;
  const l = await t.throwsAsync(transport.listen(address, { signal }));
  t.true(isSecureIpcError(l, 'SIPC_ERR_ABORTED'));
  const c = await t.throwsAsync(transport.connect(address, { signal }));
  t.true(isSecureIpcError(c, 'SIPC_ERR_ABORTED'));
});

test('the listener emits close and a closed listener cannot be read back', async (t) => {
  const listener = await pipeTransport().listen(`local://${uniqueName('close')}`);
  const closed = once(listener, 'close');
  await listener.close();
  await closed;
  await listener.close(); // idempotent
  const err = t.throws(() => listener.readSecurityDescriptor());
  t.true(isSecureIpcError(err));
});
