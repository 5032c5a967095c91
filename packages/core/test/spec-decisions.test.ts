import { encode } from '@msgpack/msgpack';
import test, { type ExecutionContext } from 'ava';
import type { SecureChannel } from '../src/channel/options.js';
import { decodeEnvelope } from '../src/envelope/decode.js';
import { encodeEnvelope } from '../src/envelope/encode.js';
import type { Envelope } from '../src/envelope/types.js';
import { fromWireError, PublicError, publicWireError, wireMessage } from '../src/envelope/wire-errors.js';
import { isSecureIpcError, type SecureIpcError } from '../src/errors.js';
import { decodePayload, offeredVersions } from '../src/handshake/payloads.js';
import { createPolicy } from '../src/rpc/policy.js';
import { memoryRpc } from './fixtures/memory-rpc.js';
import { rawChannelToServer } from './fixtures/raw-rpc-peer.js';

const everything = createPolicy({ roles: { all: { call: ['*'] } }, defaultRoles: ['all'] });

// A served server (default policy: $ping only) and a raw channel to it.
async function rawPeer(t: ExecutionContext): Promise<SecureChannel> {
  return (await rawChannelToServer(t, 'memory')).channel;
}

// Send one envelope and resolve with the server's next one.
function exchange(channel: SecureChannel, envelope: Envelope | Uint8Array): Promise<Envelope> {
  return new Promise((resolve, reject) => {
    channel.once('message', (m: Uint8Array) => {
      const r = decodeEnvelope(m);
      if (r.ok) resolve(r.envelope);
      else reject(r.error);
    });
    channel.send(envelope instanceof Uint8Array ? envelope : encodeEnvelope(envelope)).catch(reject);
  });
}

test('p is optional on a request: a $ping without p is answered, and the answer has no p', async (t) => {
  const channel = await rawPeer(t);
  const reply = await exchange(channel, { k: 1, id: 1, m: '$ping' });
  t.deepEqual({ ...reply }, { v: 1, k: 2, id: 1 });
  t.false('p' in reply);
});

test('a handler called without params gets undefined and its undefined result crosses as no p', async (t) => {
  const { server, client } = await memoryRpc(t, { policy: everything });
  let seen: unknown = 'unset';
  server.handle('nothing', (params: unknown) => {
    seen = params;
    return undefined;
  });
  t.is(await client.request('nothing', undefined), undefined);
  t.is(seen, undefined);
});

test('an event that carries an id is never answered: the channel closes with SIPC_ERR_BAD_ENVELOPE', async (t) => {
  const channel = await rawPeer(t);
  let answered = false;
  channel.on('message', () => {
    answered = true;
  });
  const closed = new Promise<SecureIpcError | undefined>((resolve) => channel.once('close', resolve));
  t.teardown(() => channel.close());
  // Hand-built: the encoder writes no id on an event, so the bytes are made as a peer would.
  await channel.send(encode({ v: 1, k: 4, id: 7, m: 'tick' })).catch(() => {});
  await closed;
  t.false(answered, 'nothing was answered to id 7');
});

test('lengths count UTF-8 bytes: a $subscribe pattern of 256 bytes is read, one of 258 is BAD_ENVELOPE', async (t) => {
  const channel = await rawPeer(t);
  const ok = await exchange(channel, { k: 1, id: 1, m: '$subscribe', p: 'é'.repeat(128) });
  // Read, then refused by the default policy (no subscribe grant): not refused for its length.
  t.like(ok, { k: 3, id: 1, e: { code: 'SIPC_ERR_FORBIDDEN' } });
  const long = await exchange(channel, { k: 1, id: 2, m: '$subscribe', p: 'é'.repeat(129) });
  t.like(long, { k: 3, id: 2, e: { code: 'SIPC_ERR_BAD_ENVELOPE' } });
});

test('the client refuses a subscription pattern over 256 UTF-8 bytes itself, before sending it', async (t) => {
  const { client } = await memoryRpc(t);
  const err = await t.throwsAsync(client.subscribe('é'.repeat(129), () => {}));
  t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), String(err));
  t.regex((err as Error).message, /256 UTF-8 bytes/);
  // 256 bytes is sent, and refused by the server's default policy (not for its length).
  const denied = await t.throwsAsync(client.subscribe('é'.repeat(128), () => {}));
  t.true(isSecureIpcError(denied, 'SIPC_ERR_FORBIDDEN'), String(denied));
});

test('a PublicError message over 1024 UTF-8 bytes crosses cut at a character boundary', async (t) => {
  // 400 euro signs are 1200 bytes; 341 of them (1023 bytes) fit, the 342nd would not.
  const wire = publicWireError(new PublicError('SHOP_CLOSED', '€'.repeat(400)))!;
  t.is(wire.message, '€'.repeat(341));
  t.true(Buffer.byteLength(wire.message) <= 1024);
  t.is(wireMessage('a'.repeat(1024)), 'a'.repeat(1024), 'exactly 1024 bytes stay whole');
  t.is(
    wireMessage(`${'a'.repeat(1023)}é`),
    'a'.repeat(1023),
    'a 2-byte character that would end at 1025 is left out',
  );
  t.is(wireMessage('x\ud800y'), 'x\ufffdy', 'a lone surrogate crosses as U+FFFD (well-formed UTF-8)');
  const { server, client } = await memoryRpc(t, { policy: everything });
  server.handle('shop.buy', () => {
    throw new PublicError('SHOP_CLOSED', `${'é'.repeat(600)}`);
  });
  const err = (await t.throwsAsync(client.request('shop.buy', {}))) as SecureIpcError;
  t.true(isSecureIpcError(err, 'SIPC_ERR_REMOTE'));
  t.is(err.message, 'é'.repeat(512), 'the caller gets the cut message, not a BAD_ENVELOPE');
});

test('a request with an invalid header is refused locally, with the reason, and nothing is sent', async (t) => {
  const { server, client } = await memoryRpc(t, { policy: everything });
  let calls = 0;
  server.handle('work', () => {
    calls++;
    return 1;
  });
  for (const [traceparent, idempotencyKey] of [
    ['00-4BF92F3577B34DA6A3CE929D0E0E4736-00F067AA0BA902B7-01', undefined],
    ['01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01', undefined],
    [`00-${'0'.repeat(32)}-00f067aa0ba902b7-01`, undefined],
    [`00-4bf92f3577b34da6a3ce929d0e0e4736-${'0'.repeat(16)}-01`, undefined],
    [undefined, 'é'.repeat(65)],
  ] as const) {
    const err = await t.throwsAsync(client.request('work', {}, { traceparent, idempotencyKey }));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), String(err));
    t.regex((err as Error).message, /headers are invalid: invalid (trace|idem) header/);
  }
  t.is(
    await client.request(
      'work',
      {},
      { traceparent: '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01' },
    ),
    1,
  );
  t.is(await client.request('work', {}, { idempotencyKey: 'é'.repeat(64) }), 1, '128 bytes is the limit');
  t.is(calls, 2);
});

test('a correlation id is taken only as a string of 1 to 128 UTF-8 bytes', (t) => {
  const wire = (id: unknown) =>
    fromWireError({ code: 'SIPC_ERR_HANDLER', message: 'm', data: { correlationId: id } }).details
      ?.correlationId;
  t.is(wire('a'.repeat(128)), 'a'.repeat(128));
  t.is(wire('é'.repeat(65)), undefined);
  t.is(wire(''), undefined);
  t.is(wire(7), undefined);
});

test('handshake payloads: non-string keys, a key twice, float or repeated versions are refused', (t) => {
  const refused = (hex: string) => {
    const err = t.throws(() => offeredVersions(decodePayload(Buffer.from(hex.replace(/ /g, ''), 'hex'))));
    return isSecureIpcError(err, 'SIPC_ERR_PROTOCOL');
  };
  t.true(refused('82 a8 76657273696f6e73 91 01 01 a1 78'), 'an integer key');
  t.true(refused('82 a8 76657273696f6e73 91 01 c2 01'), 'a boolean key');
  t.true(refused('82 a8 76657273696f6e73 91 01 a8 76657273696f6e73 91 02'), 'versions twice');
  t.true(refused('81 a8 76657273696f6e73 91 cb 3ff0000000000000'), 'a float 1.0');
  t.true(refused('81 a8 76657273696f6e73 92 01 01'), 'version 1 twice');
  t.deepEqual(offeredVersions(decodePayload(Buffer.from('81a876657273696f6e739202cd0001', 'hex'))), [2, 1]);
});
