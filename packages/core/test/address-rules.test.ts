import { createServer, type Server } from 'node:net';
import test, { type ExecutionContext } from 'ava';
import { isSecureIpcError, type SecureIpcError } from '../src/index.js';
import {
  invalidAddress,
  isLocalAppId,
  listenError,
  listenServer,
  localAppId,
} from '../src/transport/index.js';

const ID_RULE =
  /the application id must be 1-64 characters of A-Z a-z 0-9 \. _ - starting with a letter or digit/;

for (const id of ['a', '7', 'my-app', 'A.b_c-1', 'notes.v2', 'x'.repeat(64)]) {
  test(`a valid local:// application id: ${JSON.stringify(id.slice(0, 20))}`, (t) => {
    t.true(isLocalAppId(id));
    t.is(localAppId(`local://${id}`), id);
  });
}

for (const id of ['', '.hidden', '-x', '_x', 'a/b', 'a\\b', 'a b', '..', 'é', 'a\0b', 'x'.repeat(65)]) {
  test(`an invalid local:// application id is refused: ${JSON.stringify(id.slice(0, 20))}`, (t) => {
    t.false(isLocalAppId(id));
    const err = t.throws(() => localAppId(`local://${id}`)) as SecureIpcError;
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ADDRESS'));
    t.regex(err.message, ID_RULE);
    t.true(err.message.startsWith(`Invalid address ${JSON.stringify(`local://${id}`)}: `));
  });
}

test('isLocalAppId refuses what is not a string', (t) => {
  for (const v of [undefined, null, 1, ['a'], { id: 'a' }]) t.false(isLocalAppId(v));
});

test('localAppId refuses an address of another scheme (or not a string) with SIPC_ERR_INVALID_ADDRESS', (t) => {
  for (const address of [
    'unix:///tmp/a.sock',
    'pipe://a',
    'LOCAL://a',
    'local:/a',
    42 as unknown as string,
  ]) {
    const err = t.throws(() => localAppId(address)) as SecureIpcError;
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ADDRESS'), String(err));
    t.is(err.message, `Invalid address ${JSON.stringify(String(address))}: expected local://APP-ID`);
  }
});

test('invalidAddress names the address (JSON-quoted) and the reason', (t) => {
  const err = invalidAddress('tcp://x:"y', 'port out of range');
  t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ADDRESS'));
  t.is(err.message, 'Invalid address "tcp://x:\\"y": port out of range');
});

test('listenError maps EADDRINUSE to SIPC_ERR_ADDRESS_IN_USE and any other refusal to SIPC_ERR_LISTEN_FAILED', (t) => {
  const inUse = Object.assign(new Error('listen EADDRINUSE'), { code: 'EADDRINUSE' });
  const a = listenError('tcp://127.0.0.1:80', inUse);
  t.true(isSecureIpcError(a, 'SIPC_ERR_ADDRESS_IN_USE'));
  t.is(a.message, 'Cannot listen on tcp://127.0.0.1:80: EADDRINUSE');
  t.is(a.cause, inUse);
  for (const code of ['EACCES', 'EADDRNOTAVAIL', 'ENOENT']) {
    const err = Object.assign(new Error(code), { code });
    const e = listenError('unix-abstract:x', err);
    t.true(isSecureIpcError(e, 'SIPC_ERR_LISTEN_FAILED'), code);
    t.is(e.message, `Cannot listen on unix-abstract:x: ${code}`);
    t.is(e.cause, err);
  }
  const plain = listenError('x://y', new Error('no code'));
  t.true(isSecureIpcError(plain, 'SIPC_ERR_LISTEN_FAILED'));
  t.is(plain.message, 'Cannot listen on x://y: Error: no code');
});

function server(t: ExecutionContext): Server {
  const s = createServer();
  t.teardown(() => new Promise<void>((resolve) => (s.listening ? s.close(() => resolve()) : resolve())));
  return s;
}

test('listenServer resolves once bound and leaves no error listener behind', async (t) => {
  const s = server(t);
  await listenServer(s, { host: '127.0.0.1', port: 0, exclusive: true }, 'tcp://127.0.0.1:0');
  t.true(s.listening);
  t.is(s.listenerCount('error'), 0);
});

test('listenServer on a port a live server holds rejects with SIPC_ERR_ADDRESS_IN_USE, the OS error as cause', async (t) => {
  const first = server(t);
  await listenServer(first, { host: '127.0.0.1', port: 0, exclusive: true }, 'tcp://127.0.0.1:0');
  const { port } = first.address() as { port: number };
  const address = `tcp://127.0.0.1:${port}`;
  const second = server(t);
  const err = (await t.throwsAsync(
    listenServer(second, { host: '127.0.0.1', port, exclusive: true }, address),
  )) as SecureIpcError;
  t.true(isSecureIpcError(err, 'SIPC_ERR_ADDRESS_IN_USE'), String(err));
  t.is(err.message, `Cannot listen on ${address}: EADDRINUSE`);
  t.is((err.cause as NodeJS.ErrnoException).code, 'EADDRINUSE');
  t.true(first.listening, 'the first server is unharmed');
  t.false(second.listening);
});

test('listenServer on an address this host does not have rejects with SIPC_ERR_LISTEN_FAILED', async (t) => {
  // 192.0.2.1 is TEST-NET-1 (RFC 5737): never assigned to a local interface.
  const err = (await t.throwsAsync(
    listenServer(server(t), { host: '192.0.2.1', port: 0 }, 'tcp://192.0.2.1:0'),
  )) as SecureIpcError;
  t.true(isSecureIpcError(err, 'SIPC_ERR_LISTEN_FAILED'), String(err));
  t.is((err.cause as NodeJS.ErrnoException).code, 'EADDRNOTAVAIL');
  t.regex(err.message, /^Cannot listen on tcp:\/\/192\.0\.2\.1:0: EADDRNOTAVAIL$/);
});
