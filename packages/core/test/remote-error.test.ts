// Remote application errors are a row of the error table (SIPC_ERR_REMOTE / RemoteError): typed,
// branded, carrying the peer's code as remoteCode and its data; rethrown, they are not public (a proxy wraps them).
import test from 'ava';
import { fromWireError, PublicError, publicWireError } from '../src/envelope/wire-errors.js';
import { createError, Errors, isSecureIpcError, RemoteError } from '../src/errors.js';

test('an unknown wire code becomes a RemoteError: SIPC_ERR_REMOTE, remoteCode, data, details.remote', (t) => {
  const err = fromWireError({ code: 'SHOP_EMPTY', message: 'out of stock', data: { sku: 7 } });
  t.true(err instanceof RemoteError);
  t.true(err instanceof Errors.RemoteError);
  t.true(isSecureIpcError(err));
  t.true(isSecureIpcError(err, 'SIPC_ERR_REMOTE'));
  t.is(err.code, 'SIPC_ERR_REMOTE');
  t.is(err.name, 'RemoteError');
  t.is(err.message, 'out of stock');
  if (!isSecureIpcError(err, 'SIPC_ERR_REMOTE')) return;
  t.is(err.remoteCode, 'SHOP_EMPTY');
  t.deepEqual(err.data, { sku: 7 });
  t.deepEqual(err.details, { remote: true });
});

test('a table code keeps its own class; SIPC_ERR_REMOTE itself on the wire stays a RemoteError', (t) => {
  const busy = fromWireError({ code: 'SIPC_ERR_BUSY', message: 'Too many requests in flight' });
  t.true(isSecureIpcError(busy, 'SIPC_ERR_BUSY'));
  t.false(busy instanceof RemoteError);
  const remote = fromWireError({ code: 'SIPC_ERR_REMOTE', message: 'x' });
  t.true(remote instanceof RemoteError);
  t.is((remote as RemoteError).remoteCode, 'SIPC_ERR_REMOTE');
});

test('a RemoteError rethrown by a handler is not public: a proxy passes it on as a PublicError', (t) => {
  const err = fromWireError({ code: 'SHOP_EMPTY', message: 'out of stock', data: [1] });
  t.is(publicWireError(err), undefined, 'crosses as SIPC_ERR_HANDLER with a correlation id');
  if (!isSecureIpcError(err, 'SIPC_ERR_REMOTE')) return t.fail();
  const passed = new PublicError(err.remoteCode, err.message, { data: err.data, cause: err });
  t.deepEqual(publicWireError(passed), { code: 'SHOP_EMPTY', message: 'out of stock', data: [1] });
});

test('createError(SIPC_ERR_REMOTE) builds a RemoteError (the table generates every row)', (t) => {
  const err = createError('SIPC_ERR_REMOTE');
  t.true(err instanceof RemoteError);
  t.is(err.remoteCode, 'SIPC_ERR_REMOTE');
  t.is(err.message, 'The peer answered with an application error');
});
