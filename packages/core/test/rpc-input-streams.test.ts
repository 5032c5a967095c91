/**
 * Streamed input (client and bidirectional streams, docs/protocol.md "Streamed input"): the new
 * kinds 9-12 and `h.stream` are valid only at protocol version 2, with their field rules; the
 * input credit is exact (an item beyond it is refused even while the reader waits).
 */
import { encode } from '@msgpack/msgpack';
import test from 'ava';
import { decodeEnvelope } from '../src/envelope/decode.js';
import { encodeEnvelope } from '../src/envelope/encode.js';
import { EnvelopeKind as Kind } from '../src/envelope/types.js';
import type { InputItemOf } from '../src/rpc/service-types.js';
import { InputSender, RemoteStream } from '../src/rpc/streams.js';

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
