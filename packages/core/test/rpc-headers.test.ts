// A handler sees the request's headers under the API's names (timeoutMs, idempotencyKey,
// traceparent), while the wire keeps its own (h.timeout, h.idem, h.trace; docs/protocol.md).
import test from 'ava';
import { secureAccept, secureConnect } from '../src/channel/secure-channel.js';
import { decodeEnvelope } from '../src/envelope/decode.js';
import { EnvelopeKind } from '../src/envelope/types.js';
import { generateKeyPair } from '../src/keys/key-pair.js';
import { createClient } from '../src/rpc/client.js';
import { createPolicy } from '../src/rpc/policy.js';
import type { HandlerContext } from '../src/rpc/service-types.js';
import { memoryTransport } from '../src/transport/memory-transport.js';
import { memoryRpc } from './fixtures/memory-rpc.js';

const traceparent = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

test('the handler context names the headers as RequestOptions does, and only those sent', async (t) => {
  const { server, client } = await memoryRpc(t, {
    policy: createPolicy({ roles: { app: { call: ['headers'] } }, defaultRoles: ['app'] }),
  });
  server.handle('headers', (_: unknown, ctx: HandlerContext) => ({ ...ctx.headers }));
  t.deepEqual(await client.request('headers', null), {});
  const seen = (await client.request('headers', null, {
    timeoutMs: 5_000,
    idempotencyKey: 'op-1',
    traceparent,
  })) as Record<string, unknown>;
  t.deepEqual(Object.keys(seen).sort(), ['idempotencyKey', 'timeoutMs', 'traceparent']);
  t.is(seen.idempotencyKey, 'op-1');
  t.is(seen.traceparent, traceparent);
  t.true((seen.timeoutMs as number) >= 1 && (seen.timeoutMs as number) <= 5_000, String(seen.timeoutMs));
  t.deepEqual(await client.request('headers', null, { traceparent }), { traceparent });
});

test('on the wire the headers keep their protocol names h.timeout, h.idem, h.trace', async (t) => {
  const serverKeys = generateKeyPair();
  const clientKeys = generateKeyPair();
  const transport = memoryTransport();
  const address = `memory://headers-wire-${process.pid}`;
  const listener = await transport.listen(address);
  t.teardown(() => listener.close());
  const accepted = new Promise<Uint8Array>((resolve) => {
    listener.once('connection', async (connection) => {
      const channel = await secureAccept(connection, {
        keyPair: serverKeys,
        trust: { keys: [clientKeys.publicKey] },
      });
      t.teardown(() => channel.close());
      channel.once('message', resolve);
    });
  });
  const channel = await secureConnect(await transport.connect(address), {
    keyPair: clientKeys,
    trust: { keys: [serverKeys.publicKey] },
  });
  const client = createClient(channel);
  t.teardown(() => client.close());
  void client.request('x', 1, { timeoutMs: 9_000, idempotencyKey: 'k', traceparent }).catch(() => {});
  const decoded = decodeEnvelope(await accepted);
  t.true(decoded.ok);
  if (!decoded.ok) return;
  t.is(decoded.envelope.k, EnvelopeKind.Request);
  t.deepEqual(Object.keys(decoded.envelope.h ?? {}).sort(), ['idem', 'timeout', 'trace']);
  t.is(decoded.envelope.h?.idem, 'k');
  t.is(decoded.envelope.h?.trace, traceparent);
  t.true((decoded.envelope.h?.timeout ?? 0) >= 1 && (decoded.envelope.h?.timeout ?? 0) <= 9_000);
});
