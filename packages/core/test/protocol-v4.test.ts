/**
 * Protocol version 4 (docs/protocol.md 3.4 and "Fields", `h.tracestate`): the W3C tracestate
 * grammar and limits as `isTracestate` checks them, the header valid only on requests that carry
 * `h.trace` on channels of version 4 and higher, negotiation with version-3 peers, and the
 * caller: `RequestOptions.tracestate` reaches the handler on version 4, is left out below it
 * (the call still goes), and an invalid one is refused at the call with nothing sent.
 */
import { encode } from '@msgpack/msgpack';
import test from 'ava';
import { PROTOCOL_VERSION, SUPPORTED_VERSIONS } from '../src/constants.js';
import { decodeEnvelope } from '../src/envelope/decode.js';
import { encodeEnvelope } from '../src/envelope/encode.js';
import { EnvelopeKind as Kind } from '../src/envelope/types.js';
import { isTracestate, MAX_TRACESTATE_LENGTH, MAX_TRACESTATE_MEMBERS } from '../src/envelope/validate.js';
import { createClient } from '../src/rpc/client.js';
import { createPolicy } from '../src/rpc/policy.js';
import { createServer } from '../src/rpc/server.js';
import type { HandlerContext, RequestHeaders } from '../src/rpc/service-types.js';
import { memoryRpc } from './fixtures/memory-rpc.js';
import { channelPair, messages } from './helpers.js';

const everything = createPolicy({ roles: { all: { call: ['*'] } }, defaultRoles: ['all'] });
const traceparent = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
const tracestate = 'rojo=00f067aa0ba902b7,congo=t61rcWkgMzE';

/** `count` distinct members `k0=v`, `k1=v`, ... joined by commas. */
const members = (count: number, value = 'v') =>
  Array.from({ length: count }, (_, i) => `k${i}=${value}`).join(',');

test('version 4 is the current version, offered first', (t) => {
  t.is(PROTOCOL_VERSION, 4);
  t.deepEqual([...SUPPORTED_VERSIONS], [4, 3, 2, 1]);
});

test('isTracestate accepts what W3C Trace Context Level 1 allows, within 512 characters and 32 members', (t) => {
  const valid = [
    'rojo=00f067aa0ba902b7',
    tracestate,
    members(MAX_TRACESTATE_MEMBERS),
    // exactly 512 characters: members of 256 and 255 characters and the comma
    `a=${'x'.repeat(254)},b=${'y'.repeat(253)}`,
    'fw529a3039@dt=abc', // multi-tenant key, the W3C example
    '1a2b@sys=v', // a tenant-id may start with a digit
    `${'t'.repeat(241)}@${'s'.repeat(14)}=v`, // the longest tenant-id and system-id
    `${'k'.repeat(256)}=v`, // the longest simple-key
    `k=${'v'.repeat(256)}`, // the longest value
    'a-b_c*d/e=1', // every key character
    'k=!"#$%&\'()*+-./09:;<>?@AZ[\\]^_`az{|}~', // every printable but "," and "="
    'k= leading spaces are part of the value',
    '', // W3C: an empty tracestate must be accepted
    ' ,\t, ',
    'a=1,,b=2',
    ',a=1,',
    'a=1 , b=2', // optional whitespace around members
    '\ta=1\t,\tb=2\t',
    'a=b ', // a trailing space is optional whitespace, not part of the value
    `${members(MAX_TRACESTATE_MEMBERS)},,,`, // empty members do not count
  ];
  t.is(valid[3]?.length, MAX_TRACESTATE_LENGTH);
  for (const v of valid) t.true(isTracestate(v), JSON.stringify(v));
});

test('isTracestate refuses anything else', (t) => {
  const invalid: unknown[] = [
    members(MAX_TRACESTATE_MEMBERS + 1), // 33 members
    `a=${'x'.repeat(254)},b=${'y'.repeat(253)} `, // 513 characters, though the last is whitespace
    `${members(31)},k=${'v'.repeat(MAX_TRACESTATE_LENGTH)}`,
    'Rojo=1', // upper case in a key
    'rOjo=1',
    '_k=1', // a key starts with a-z (or a digit before "@")
    '1k=1', // a simple-key does not start with a digit
    'k.x=1',
    'k@=1', // empty system-id
    '@s=1', // empty tenant-id
    't@1s=1', // a system-id starts with a-z
    't@s@x=1', // two "@"
    `${'t'.repeat(242)}@s=1`, // tenant-id of 242
    `t@${'s'.repeat(15)}=1`, // system-id of 15
    `${'k'.repeat(257)}=v`, // key too long
    `k=${'v'.repeat(257)}`, // value too long
    'k', // no "="
    '=v', // no key
    'k=', // empty value
    'k= ', // only whitespace after "=": empty value
    'k=a=b', // "=" in the value
    'k=a\tb', // a tab inside the value
    'k=a\nb',
    'k=a\u0000b',
    'k=\u007f',
    'k=é', // not ASCII
    'k=1,k=2', // a key twice
    'a=1, b=2,a=3',
    'k =1', // whitespace between key and "="
    'k=1;l=2x=3',
    undefined,
    null,
    42,
    ['k=1'],
    { k: '1' },
  ];
  for (const v of invalid) t.false(isTracestate(v), JSON.stringify(v));
  t.is(String(invalid[1]).length, MAX_TRACESTATE_LENGTH + 1);
});

function reason(env: Record<string, unknown>, version: number): string | undefined {
  const r = decodeEnvelope(encode(env), undefined, version);
  return r.ok ? undefined : r.error.message;
}

test('h.tracestate is valid on requests with h.trace on version 4, an unknown header below', (t) => {
  const request = (h: Record<string, unknown>) => ({ v: 1, k: 1, id: 1, m: 'm', h });
  t.is(reason(request({ trace: traceparent, tracestate }), 4), undefined);
  t.is(reason(request({ trace: traceparent, tracestate: '' }), 4), undefined);
  const r = decodeEnvelope(encode(request({ trace: traceparent, tracestate: ' a=1 ,, ' })), undefined, 4);
  t.true(r.ok);
  if (r.ok) t.is(r.envelope.h?.tracestate, ' a=1 ,, ', 'handed on exactly as received');
  for (const version of [1, 2, 3])
    t.regex(reason(request({ trace: traceparent, tracestate }), version) ?? '', /unknown header/);
  t.regex(reason(request({ tracestate }), 4) ?? '', /a tracestate header without a trace header/);
  for (const bad of [members(33), 'K=1', 'k=1,k=2', 'k=a=b', 7, null])
    t.regex(
      reason(request({ trace: traceparent, tracestate: bad }), 4) ?? '',
      /invalid tracestate header/,
      String(bad),
    );
  // Only requests carry headers, on version 4 as before.
  t.regex(
    reason({ v: 1, k: 2, id: 1, h: { trace: traceparent, tracestate } }, 4) ?? '',
    /headers on a non-request/,
  );
  // An invalid one is answered (readable id, a request), as an invalid h.trace is.
  const answered = decodeEnvelope(encode(request({ trace: traceparent, tracestate: 'K=1' })), undefined, 4);
  t.false(answered.ok);
  if (!answered.ok) {
    t.is(answered.error.code, 'SIPC_ERR_BAD_ENVELOPE');
    t.is(answered.id, 1);
    t.is(answered.kind, Kind.Request);
  }
  // The encoder refuses to send either.
  for (const h of [{ trace: traceparent, tracestate: 'K=1' }, { tracestate }])
    t.throws(() => encodeEnvelope({ k: Kind.Request, id: 1, m: 'm', h }), {
      code: 'SIPC_ERR_INVALID_ARGUMENT',
    });
});

test('a handler sees ctx.headers.tracestate with its traceparent on a version-4 channel', async (t) => {
  const { server, client } = await memoryRpc(t, { policy: everything });
  const seen: RequestHeaders[] = [];
  server.handle('who', (_p: unknown, ctx: HandlerContext) => {
    seen.push({ ...ctx.headers });
    return 'ok';
  });
  await client.request('who', null, { traceparent, tracestate });
  await client.request('who', null, { traceparent, tracestate: ' a=1 ,, b= 2\t' });
  await client.request('who', null, { traceparent });
  // Without a traceparent the tracestate is left out (W3C), and the call still goes.
  await client.request('who', null, { tracestate });
  t.deepEqual(seen, [
    { traceparent, tracestate },
    { traceparent, tracestate: ' a=1 ,, b= 2\t' },
    { traceparent },
    {},
  ]);
});

test('a version-4 client and a version-3 peer agree on version 3 in either role; the call is answered without tracestate', async (t) => {
  for (const [clientExtra, serverExtra] of [
    [{}, { versions: [3, 2, 1] }],
    [{ versions: [3, 2, 1] }, {}],
  ]) {
    const [c, s] = await channelPair(t, 'memory', clientExtra, serverExtra);
    t.is(c.version, 3);
    t.is(s.version, 3);
    const server = createServer({ policy: everything });
    const seen: RequestHeaders[] = [];
    server.handle('who', (_p: unknown, ctx: HandlerContext) => {
      seen.push({ ...ctx.headers });
      return 'ok';
    });
    server.attach(s);
    const client = createClient(c);
    t.is(await client.request('who', null, { traceparent, tracestate }), 'ok');
    t.deepEqual(seen, [{ traceparent }]);
  }
});

test('on the wire the tracestate is h.tracestate, next to h.trace', async (t) => {
  const [c, s] = await channelPair(t);
  t.is(c.version, 4);
  const got = messages(s, 1);
  const client = createClient(c);
  void client.request('x', 1, { traceparent, tracestate }).catch(() => {});
  const [bytes] = await got;
  const r = decodeEnvelope(bytes!, undefined, 4);
  t.true(r.ok);
  if (!r.ok) return;
  t.deepEqual(r.envelope.h, { trace: traceparent, tracestate });
  // The same bytes are an unknown header to a version-3 receiver.
  t.false(decodeEnvelope(bytes!, undefined, 3).ok);
});

test('an invalid RequestOptions.tracestate is SIPC_ERR_INVALID_ARGUMENT at the call, nothing sent, on every version', async (t) => {
  for (const versions of [undefined, [3, 2, 1]]) {
    const [c, s] = await channelPair(t, 'memory', versions === undefined ? {} : { versions });
    const got = messages(s, 1);
    const client = createClient(c);
    for (const bad of [members(33), `k=${'v'.repeat(600)}`, 'Key=1', 'k=a=b', 'k=1,k=2', 'k=a\u0001', 42]) {
      const err = await t.throwsAsync(
        client.request('bad', null, { traceparent, tracestate: bad as string }),
        { code: 'SIPC_ERR_INVALID_ARGUMENT' },
        String(bad),
      );
      t.regex(err?.message ?? '', /tracestate/);
    }
    // Also without a traceparent: the argument is wrong whether or not it would be sent.
    await t.throwsAsync(client.request('bad', null, { tracestate: 'Key=1' }), {
      code: 'SIPC_ERR_INVALID_ARGUMENT',
    });
    // The first message the peer gets is the next valid request: nothing was sent before it.
    void client.request('good', null, { traceparent }).catch(() => {});
    const [bytes] = await got;
    const r = decodeEnvelope(bytes!, undefined, c.version);
    t.true(r.ok);
    if (r.ok) t.is(r.envelope.m, 'good');
  }
});
