import { once } from 'node:events';
import test from 'ava';
import { isSecureIpcError } from '../src/errors.js';
import { type Connection, isTransport } from '../src/transport/contract.js';
import { memoryPair, memoryTransport } from '../src/transport/memory-transport.js';

const transport = memoryTransport();

test('memory transport: branded, listens and connects by name, refuses bad and busy addresses', async (t) => {
  t.true(isTransport(transport));
  t.deepEqual(transport.schemes, ['memory:']);
  const address = `memory://mt-basic-${process.pid}`;
  const listener = await transport.listen(address);
  t.teardown(() => listener.close());
  t.is(listener.address, address);
  t.true(isSecureIpcError(await t.throwsAsync(transport.listen(address)), 'SIPC_ERR_ADDRESS_IN_USE'));
  t.true(isSecureIpcError(await t.throwsAsync(transport.listen('unix:///x')), 'SIPC_ERR_INVALID_ADDRESS'));
  t.true(isSecureIpcError(await t.throwsAsync(transport.listen('memory://')), 'SIPC_ERR_INVALID_ADDRESS'));
  t.true(
    isSecureIpcError(
      await t.throwsAsync(transport.connect('memory://nobody-here')),
      'SIPC_ERR_CONNECT_FAILED',
    ),
  );

  const accepted = once(listener, 'connection') as Promise<[Connection]>;
  const client = await transport.connect(address);
  const [server] = await accepted;
  t.deepEqual(client.peer, { transport: 'memory' });
  t.deepEqual(server.peer, { transport: 'memory' });
  client.write(Buffer.from('ping'));
  const [chunk] = (await once(server, 'data')) as [Buffer];
  t.is(chunk.toString(), 'ping');
  client.end();
  server.resume();
  await once(server, 'end');

  const closedEvent = once(listener, 'close');
  await listener.close();
  await closedEvent;
  t.true(server.destroyed, 'close destroys open connections');
  const again = await transport.listen(address);
  await again.close();
});

test('memory pair: backpressure holds the writer until the reader drains', async (t) => {
  const [a, b] = memoryPair();
  t.teardown(() => {
    a.destroy();
    b.destroy();
  });
  let writes = 0;
  while (a.write(Buffer.alloc(16 * 1024))) writes++;
  t.true(writes < 64, 'write() reports backpressure while nobody reads');
  const drained = once(a, 'drain');
  b.resume();
  await drained;
  t.pass();
});

test('memory pair: destroying one end ends the other after the data already sent', async (t) => {
  const [a, b] = memoryPair();
  const got: Buffer[] = [];
  b.on('data', (c: Buffer) => got.push(c));
  a.write(Buffer.from('last'));
  a.destroy();
  await once(b, 'end');
  t.is(Buffer.concat(got).toString(), 'last');
  b.on('error', () => {});
  b.write(Buffer.from('into the void'));
  const [err] = (await once(b, 'error')) as [Error];
  t.true(isSecureIpcError(err, 'SIPC_ERR_CONNECTION_CLOSED'));
});
