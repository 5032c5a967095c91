/**
 * Streamed input (client and bidirectional streams, docs/protocol.md "Streamed input"): the new
 * kinds 9-12 and `h.stream` are valid only at protocol version 2, with their field rules; the
 * input credit is exact (an item beyond it is refused even while the reader waits).
 */
import { decode, encode } from '@msgpack/msgpack';
import test, { type ExecutionContext } from 'ava';
import { decodeEnvelope } from '../src/envelope/decode.js';
import { encodeEnvelope } from '../src/envelope/encode.js';
import { EnvelopeKind as Kind } from '../src/envelope/types.js';
import { isSecureIpcError } from '../src/errors.js';
import type { AnyHandler } from '../src/rpc/dispatcher.js';
import { RpcPeer } from '../src/rpc/peer.js';
import { createPolicy } from '../src/rpc/policy.js';
import type { InputItemOf } from '../src/rpc/service-types.js';
import { InputSender, RemoteStream } from '../src/rpc/streams.js';
import { memoryRpc } from './fixtures/memory-rpc.js';
import { channelPair, closed, endless, messages } from './helpers.js';

const V2 = 2;

function reason(bytes: Uint8Array, version: number): string | undefined {
  const r = decodeEnvelope(bytes, undefined, version);
  return r.ok ? undefined : r.error.message;
}

test('kinds 9-12 and h.stream are invalid envelopes on version 1, with the id kept for the answer', (t) => {
  for (const env of [
    { v: 1, k: 9, id: 3, p: 1 },
    { v: 1, k: 10, id: 3 },
    { v: 1, k: 11, id: 3, p: 4 },
    { v: 1, k: 12, id: 3 },
  ]) {
    const r = decodeEnvelope(encode(env));
    t.false(r.ok);
    if (!r.ok) {
      t.is(r.error.code, 'SIPC_ERR_BAD_ENVELOPE');
      t.is(r.id, 3);
      t.is(r.kind, env.k);
      t.regex(r.error.message, /unknown kind/);
    }
    t.is(reason(encode(env), V2), undefined, `kind ${env.k} on version 2`);
  }
  const streamed = encode({ v: 1, k: 1, id: 1, m: 'up', h: { stream: true } });
  t.regex(reason(streamed, 1) ?? '', /unknown header/);
  t.is(reason(streamed, V2), undefined);
  t.is(reason(encode({ v: 1, k: 13, id: 1 }), V2)?.includes('unknown kind'), true);
});

test('field rules of the new kinds and of h.stream on version 2', (t) => {
  const bad: Array<[unknown, RegExp]> = [
    [{ v: 1, k: 10, id: 1, p: 1 }, /unexpected payload/],
    [{ v: 1, k: 12, id: 1, p: 1 }, /unexpected payload/],
    [{ v: 1, k: 11, id: 1 }, /invalid credit/],
    [{ v: 1, k: 11, id: 1, p: 0 }, /invalid credit/],
    [{ v: 1, k: 11, id: 1, p: 65537 }, /invalid credit/],
    [{ v: 1, k: 11, id: 1, p: 1.5 }, /invalid credit/],
    [{ v: 1, k: 9, id: 1, m: 'x', p: 1 }, /unexpected method/],
    [{ v: 1, k: 9, id: 1, h: { stream: true } }, /headers on a non-request/],
    [{ v: 1, k: 9, p: 1 }, /missing or invalid id/],
    [{ v: 1, k: 1, id: 1, m: 'up', h: { stream: 1 } }, /invalid stream header/],
    [{ v: 1, k: 1, id: 1, m: 'up', h: { stream: false } }, /invalid stream header/],
    [{ v: 1, k: 1, id: 1, m: 'up', p: 1, h: { stream: true } }, /carries no payload/],
  ];
  for (const [env, why] of bad) t.regex(reason(encode(env), V2) ?? 'valid', why, JSON.stringify(env));
  // An input item without `p` is an undefined item, as for stream items.
  const item = decodeEnvelope(encodeEnvelope({ k: Kind.InputItem, id: 5 }), undefined, V2);
  t.true(item.ok);
  if (item.ok) t.is(item.envelope.p, undefined);
  const req = decodeEnvelope(
    encodeEnvelope({ k: Kind.Request, id: 5, m: 'up', h: { stream: true, timeout: 10 } }),
    undefined,
    V2,
  );
  t.true(req.ok);
  if (req.ok) t.deepEqual(req.envelope.h, { stream: true, timeout: 10 });
});

test('the consumer counts credit exactly: one item beyond it is refused while the reader waits', async (t) => {
  const grants: number[] = [];
  const stream = new RemoteStream<number>(
    4,
    (n) => grants.push(n),
    () => {},
  );
  const it = stream[Symbol.asyncIterator]();
  // The reader waits: items go straight to it, each still spends a credit.
  for (let i = 0; i < 4; i++) {
    const next = it.next();
    t.true(stream.push(i));
    t.deepEqual(await next, { value: i, done: false });
  }
  t.deepEqual(grants, [2, 2]);
  // 4 granted back: exactly 4 more fit, the fifth is an overrun.
  for (let i = 0; i < 4; i++) t.true(stream.push(i));
  t.false(stream.push(99));
});

test('the input sender pulls one item per credit, stops on stop() and calls return()', async (t) => {
  let pulled = 0;
  let returned = false;
  const sent: unknown[] = [];
  const source = (async function* () {
    try {
      for (;;) yield ++pulled;
    } finally {
      returned = true;
    }
  })();
  const sender = new InputSender(
    source,
    (item) => {
      sent.push(item);
      return undefined;
    },
    () => t.fail('ended'),
    (err) => t.fail(String(err)),
  );
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.is(pulled, 16);
  t.is(sent.length, 16);
  sender.gate.grant(3);
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.is(pulled, 19);
  sender.stop();
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.true(returned);
  t.is(pulled, 19);
});

test('InputItemOf types a streamed input; a unary method has none', (t) => {
  interface Svc {
    upload(p: AsyncIterable<{ n: number }>): number;
    echo(p: AsyncIterable<string>): AsyncIterable<string>;
    plain(p: { n: number }): number;
  }
  const item: InputItemOf<Svc, 'upload'> = { n: 1 };
  // @ts-expect-error: the bidirectional method's input items are strings
  const wrong: InputItemOf<Svc, 'echo'> = 1;
  // @ts-expect-error: a unary method takes no streamed input
  const none: InputItemOf<Svc, 'plain'> = { n: 1 };
  t.deepEqual([item, wrong, none], [{ n: 1 }, 1, { n: 1 }]);
});

/** An RPC peer serving `handlers` on one end of a memory channel pair; the other end raw. */
async function served(t: ExecutionContext, handlers: Record<string, AnyHandler>) {
  const [client, server] = await channelPair(t, 'memory');
  // Streamed input needs version 2 or higher; new peers negotiate version 4.
  t.is(client.version, 4);
  const errors: unknown[] = [];
  const peer = new RpcPeer(server, {
    handlers: new Map(Object.entries(handlers)),
    onError: (e) => errors.push(e),
  });
  return { client, server, peer, errors };
}

test('a hand-built peer: h.stream with h.idem is SIPC_ERR_INVALID_ARGUMENT; the caller refuses it locally', async (t) => {
  const { client } = await served(t, { up: () => 1 });
  const reply = messages(client, 1);
  await client.send(encode({ v: 1, k: 1, id: 1, m: 'up', h: { stream: true, idem: 'k' } }));
  t.like(decode((await reply)[0]!), { k: 3, id: 1, e: { code: 'SIPC_ERR_INVALID_ARGUMENT' } });
  const caller = new RpcPeer(client);
  const err = await t.throwsAsync(caller.request('up', (async function* () {})(), { idempotencyKey: 'k' }));
  t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), String(err));
});

test('input for a request that announced none, or after its end, closes the channel with SIPC_ERR_PROTOCOL', async (t) => {
  for (const extra of [
    [encode({ v: 1, k: 1, id: 1, m: 'hold', p: 1 }), encode({ v: 1, k: 9, id: 1, p: 1 })],
    [
      encode({ v: 1, k: 1, id: 1, m: 'hold', h: { stream: true } }),
      encode({ v: 1, k: 10, id: 1 }),
      encode({ v: 1, k: 9, id: 1, p: 1 }),
    ],
    [
      encode({ v: 1, k: 1, id: 1, m: 'hold', h: { stream: true } }),
      encode({ v: 1, k: 10, id: 1 }),
      encode({ v: 1, k: 10, id: 1 }),
    ],
  ]) {
    const { client, errors } = await served(t, { hold: () => new Promise(() => {}) });
    const gone = closed(client);
    for (const m of extra) await client.send(m);
    await gone;
    t.true(isSecureIpcError(errors[0], 'SIPC_ERR_PROTOCOL'), String(errors[0]));
  }
  // Input for an id that is not in flight (it crossed the answer) is ignored.
  const { client, errors } = await served(t, {});
  await client.send(encode({ v: 1, k: 9, id: 99, p: 1 }));
  await client.send(encode({ v: 1, k: 10, id: 99 }));
  const pong = messages(client, 1);
  await client.send(encode({ v: 1, k: 1, id: 1, m: '$ping', p: 'ok' }));
  t.like(decode((await pong)[0]!), { k: 2, id: 1, p: 'ok' });
  t.deepEqual(errors, []);
});

test("the request's deadline (h.timeout) ends the handler's input with SIPC_ERR_TIMEOUT and answers SIPC_ERR_TIMEOUT", async (t) => {
  let seen: unknown;
  const { client } = await served(t, {
    up: async (items: AsyncIterable<unknown>) => {
      try {
        for await (const _ of items);
      } catch (err) {
        seen = err;
      }
      return 0;
    },
  });
  const reply = messages(client, 1);
  await client.send(encode({ v: 1, k: 1, id: 1, m: 'up', h: { stream: true, timeout: 50 } }));
  await client.send(encode({ v: 1, k: 9, id: 1, p: 1 }));
  t.like(decode((await reply)[0]!), { k: 3, id: 1, e: { code: 'SIPC_ERR_TIMEOUT' } });
  t.true(isSecureIpcError(seen, 'SIPC_ERR_TIMEOUT'), String(seen));
});

test("the caller's timeout rejects with SIPC_ERR_TIMEOUT and returns its input iterable", async (t) => {
  let seen: unknown;
  const { client } = await served(t, {
    up: async (items: AsyncIterable<unknown>) => {
      try {
        for await (const _ of items);
      } catch (err) {
        seen = err;
      }
      return 0;
    },
  });
  const caller = new RpcPeer(client);
  let returned = false;
  const forever = (async function* () {
    try {
      for (;;) {
        yield 1;
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    } finally {
      returned = true;
    }
  })();
  const err = await t.throwsAsync(caller.request('up', forever, { timeoutMs: 100 }));
  t.true(isSecureIpcError(err, 'SIPC_ERR_TIMEOUT'), String(err));
  await new Promise((resolve) => setTimeout(resolve, 50));
  t.true(returned);
  // The caller's cancel and the responder's own deadline race: either ends the handler's input.
  t.true(
    isSecureIpcError(seen, 'SIPC_ERR_CANCELLED') || isSecureIpcError(seen, 'SIPC_ERR_TIMEOUT'),
    String(seen),
  );
});

test('a refused streamed call (no such method) rejects, returns the iterable, and the items already sent are dropped', async (t) => {
  const { client, errors } = await served(t, {});
  const caller = new RpcPeer(client);
  const { source: forever, state } = endless((i) => i);
  const err = await t.throwsAsync(caller.request('nope', forever));
  t.true(isSecureIpcError(err, 'SIPC_ERR_NO_SUCH_METHOD'), String(err));
  t.is(await caller.request('$ping', 'after'), 'after');
  t.true(state.returned);
  t.deepEqual(errors, []);
});

test('$ping, $subscribe and $unsubscribe take no streamed input: SIPC_ERR_INVALID_ARGUMENT, and the input is dropped', async (t) => {
  const { client, errors } = await served(t, {});
  let id = 0;
  for (const m of ['$ping', '$subscribe', '$unsubscribe']) {
    id++;
    const reply = messages(client, 1);
    await client.send(encode({ v: 1, k: 1, id, m, h: { stream: true } }));
    // Input that crossed the answer is dropped, not a protocol violation.
    await client.send(encode({ v: 1, k: 9, id, p: 'x' }));
    await client.send(encode({ v: 1, k: 10, id }));
    const answer = decode((await reply)[0]!) as {
      k: number;
      id: number;
      e: { code: string; message: string };
    };
    t.like(answer, { k: 3, id, e: { code: 'SIPC_ERR_INVALID_ARGUMENT' } });
    t.is(answer.e.message, `${m} takes no streamed input`);
  }
  const pong = messages(client, 1);
  await client.send(encode({ v: 1, k: 1, id: ++id, m: '$ping', p: 'still open' }));
  t.like(decode((await pong)[0]!), { k: 2, id, p: 'still open' });
  t.deepEqual(errors, []);
  // Through the caller: the refusal rejects the call and stops (returns) its input iterable.
  const caller = new RpcPeer(client);
  const { source: forever, state } = endless((i) => i);
  const err = await t.throwsAsync(caller.request('$ping', forever));
  t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), String(err));
  t.is(await caller.request('$ping', 'after'), 'after');
  t.true(state.returned);
  t.deepEqual(errors, []);
});

// Over the memory transport every delivery is a nextTick: a stream whose consumer keeps up would
// run without an event-loop turn and starve the process's timers (the caller's abort timer here)
// unless its producer yields once per window (streams.ts windowTurn). Both directions.
test('an endless stream over the memory transport leaves timers running: a timer aborts it, each way', async (t) => {
  t.timeout(30_000);
  const everyone = createPolicy({ defaultRoles: ['all'], roles: { all: { call: ['*'] } } });
  const { server, client } = await memoryRpc(t, { policy: everyone });
  let received = 0;
  server.handle('sink', async (items: AsyncIterable<unknown>) => {
    for await (const _ of items) received++;
    return received;
  });
  server.handle('source', async function* () {
    for (let i = 0; ; i++) yield i;
  });
  const input = endless((i) => i);
  const upload = client.request('sink', input.source, { signal: AbortSignal.timeout(200) });
  const up = await t.throwsAsync(upload);
  t.true(isSecureIpcError(up, 'SIPC_ERR_TIMEOUT') || isSecureIpcError(up, 'SIPC_ERR_ABORTED'), String(up));
  t.true(input.state.returned);
  t.true(received > 16, `items went through before the timer (${received})`);

  const ticks = { n: 0 };
  const interval = setInterval(() => ticks.n++, 10);
  t.teardown(() => clearInterval(interval));
  const controller = new AbortController();
  setTimeout(() => controller.abort(new Error('enough')), 200);
  let got = 0;
  const err = await t.throwsAsync(async () => {
    const stream = (await client.request('source', undefined, {
      signal: controller.signal,
    })) as AsyncIterable<number>;
    for await (const _ of stream) got++;
  });
  t.true(isSecureIpcError(err, 'SIPC_ERR_ABORTED'), String(err));
  t.true(got > 16 && ticks.n > 0, `items ${got}, timer ticks ${ticks.n}`);
});
