// Issue 12, row 11: a handler's internals (messages, Node error codes with paths, `data`) must not
// reach the caller. Only a PublicError crosses with its message and data; anything else crosses
// as SIPC_ERR_HANDLER with a correlation id, and the server's 'handlerError' event carries the
// real error under the same id (never the params). Real server and client over memory.
import test from 'ava';
import { PublicError } from '../src/envelope/wire-errors.js';
import { isSecureIpcError, type SecureIpcError } from '../src/errors.js';
import type { HandlerFailure } from '../src/rpc/dispatcher.js';
import { createPolicy } from '../src/rpc/policy.js';
import { memoryRpc } from './fixtures/memory-rpc.js';

const everything = createPolicy({ roles: { all: { call: ['*'] } }, defaultRoles: ['all'] });

test('issue 12 row 11: an ENOENT with a path reaches the caller as SIPC_ERR_HANDLER with only a correlation id', async (t) => {
  const { server, client } = await memoryRpc(t, { policy: everything });
  const failures: HandlerFailure[] = [];
  server.on('handlerError', (f) => failures.push(f));
  const thrown = Object.assign(new Error('ENOENT: /etc/secret'), {
    code: 'ENOENT',
    data: { path: '/etc/secret' },
  });
  server.handle('files.read', () => {
    throw thrown;
  });
  const err = (await t.throwsAsync(client.request('files.read', { path: '/etc/secret' }))) as SecureIpcError;
  t.true(isSecureIpcError(err, 'SIPC_ERR_HANDLER'), String(err));
  t.false(isSecureIpcError(err, 'SIPC_ERR_REMOTE'), 'the Node code does not cross');
  const id = err.details?.correlationId as string;
  t.is(typeof id, 'string');
  t.is(err.message, `The handler failed (correlation id ${id})`);
  t.false(
    JSON.stringify({ ...err, message: err.message }).includes('secret'),
    'no path, no message, no data',
  );
  t.is(failures.length, 1);
  t.deepEqual(Object.keys(failures[0]!).sort(), ['channelId', 'correlationId', 'error', 'method', 'peerId']);
  t.is(failures[0]!.correlationId, id, 'the server reports the real error under the same id');
  t.is(failures[0]!.error, thrown);
  t.is(failures[0]!.method, 'files.read');
  t.is(failures[0]!.peerId, [...server.peers][0]!.peerId);
});

test('issue 12 row 11: a PublicError crosses with its code, message and data (never its cause)', async (t) => {
  const { server, client } = await memoryRpc(t, { policy: everything });
  const failures: HandlerFailure[] = [];
  server.on('handlerError', (f) => failures.push(f));
  server.handle('shop.buy', () => {
    throw new PublicError('SHOP_EMPTY', 'out of stock', {
      data: { sku: 7 },
      cause: new Error('row 7 locked'),
    });
  });
  server.handle('shop.name', () => {
    throw new PublicError('SIPC_ERR_INVALID_ARGUMENT', 'name is at most 64 characters');
  });
  const app = await t.throwsAsync(client.request('shop.buy', null));
  t.true(isSecureIpcError(app, 'SIPC_ERR_REMOTE'));
  t.like(app, { message: 'out of stock', remoteCode: 'SHOP_EMPTY', data: { sku: 7 } });
  t.false(JSON.stringify(app).includes('row 7'));
  const typed = await t.throwsAsync(client.request('shop.name', null));
  t.true(isSecureIpcError(typed, 'SIPC_ERR_INVALID_ARGUMENT'), 'a table code gets its typed class');
  t.is(typed!.message, 'name is at most 64 characters');
  t.is(failures.length, 0, 'public errors are answers, not failures to report');
});

test('a result that cannot be encoded, and a throwing handlerError listener, still answer opaquely', async (t) => {
  const { server, client } = await memoryRpc(t, { policy: everything });
  const errors: unknown[] = [];
  server.on('error', (e) => errors.push(e));
  server.on('handlerError', () => {
    throw new Error('the log is full');
  });
  server.handle('bad.result', () => ({ fn: () => 1n }) as unknown);
  server.handle('bad.data', () => {
    throw new PublicError('APP', 'x', { data: { n: 10n ** 30n } });
  });
  for (const method of ['bad.result', 'bad.data']) {
    const err = (await t.throwsAsync(client.request(method, null))) as SecureIpcError;
    t.true(isSecureIpcError(err, 'SIPC_ERR_HANDLER'), `${method}: ${String(err)}`);
    t.is(typeof err.details?.correlationId, 'string');
  }
  t.is(errors.length, 2, "the listener's own failure goes to 'error'");
  t.is(await client.request('$ping' as never, 'still up' as never), 'still up');
});

test("a RemoteError a proxy rethrows is not public; wrapped in a PublicError it passes the peer's code on", async (t) => {
  const upstream = await memoryRpc(t, { policy: everything });
  upstream.server.handle('stock', () => {
    throw new PublicError('SHOP_EMPTY', 'out of stock', { data: { sku: 7 } });
  });
  const proxy = await memoryRpc(t, { policy: everything });
  proxy.server.handle('raw', () => upstream.client.request('stock', null));
  proxy.server.handle('wrapped', async () => {
    try {
      return await upstream.client.request('stock', null);
    } catch (err) {
      if (isSecureIpcError(err, 'SIPC_ERR_REMOTE'))
        throw new PublicError(err.remoteCode, err.message, { data: err.data, cause: err });
      throw err;
    }
  });
  t.true(isSecureIpcError(await t.throwsAsync(proxy.client.request('raw', null)), 'SIPC_ERR_HANDLER'));
  const wrapped = await t.throwsAsync(proxy.client.request('wrapped', null));
  t.like(wrapped, {
    code: 'SIPC_ERR_REMOTE',
    remoteCode: 'SHOP_EMPTY',
    message: 'out of stock',
    data: { sku: 7 },
  });
});
