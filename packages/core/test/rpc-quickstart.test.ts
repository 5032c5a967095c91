import test from 'ava';
import { connect, createPolicy, generateKeyPair, type RpcServer, serve } from '../src/index.js';
import { memoryTransport } from '../src/transport/index.js';

// The README's quick start, verbatim but for the assertions: a typed service and client.
interface Files {
  'files.list'(p: { dir: string }): string[];
  'files.watch'(p: { dir: string }): AsyncIterable<string>;
}

test('README quick start: typed service and client over the memory transport', async (t) => {
  const serverKeys = generateKeyPair(),
    clientKeys = generateKeyPair();
  const transport = memoryTransport(),
    address = 'memory://files-quickstart';
  const policy = createPolicy({
    roles: { reader: { call: ['files.*'] } },
    peers: [{ key: clientKeys.publicKey, roles: ['reader'] }],
  });

  const server = await serve<Files>({
    transport,
    address,
    keyPair: serverKeys,
    trust: { keys: [clientKeys.publicKey] },
    policy,
  });
  server
    .handle('files.list', ({ dir }) => [`${dir}/a.txt`, `${dir}/b.txt`])
    .handle('files.watch', async function* ({ dir }, ctx) {
      for (let i = 0; i < 3 && !ctx.signal.aborted; i++) yield `${dir}: change ${i}`;
    });

  const client = await connect<Files>({
    transport,
    address,
    keyPair: clientKeys,
    trust: { keys: [serverKeys.publicKey] },
  });
  const names = await client.request('files.list', { dir: '/tmp' });
  const changes: string[] = [];
  for await (const change of await client.request('files.watch', { dir: '/tmp' })) changes.push(change);
  t.deepEqual(names, ['/tmp/a.txt', '/tmp/b.txt']);
  t.deepEqual(changes, ['/tmp: change 0', '/tmp: change 1', '/tmp: change 2']);
  t.is(await client.ping('still there?'), 'still there?');
  t.is(server.address, address);
  await client.close();
  await server.close();
});

// Compile-time checks: tsc -b fails the build if any of these stops being a type error.
export function typeErrors(client: Awaited<ReturnType<typeof connect<Files>>>): void {
  // @ts-expect-error unknown method
  void client.request('files.delete', { dir: '/' });
  // @ts-expect-error wrong params shape
  void client.request('files.list', { path: '/' });
  // @ts-expect-error the result is string[], not number
  const n: Promise<number> = client.request('files.list', { dir: '/' });
  void n;
}

/** The same service types the handlers. */
export function handlerTypeErrors(server: RpcServer<Files>): void {
  // @ts-expect-error a handler must return string[]
  server.handle('files.list', () => 42);
  // @ts-expect-error unknown method
  server.handle('files.nope', () => []);
  // @ts-expect-error params are { dir: string }
  server.handle('files.list', ({ path }: { path: number }) => [String(path)]);
}
