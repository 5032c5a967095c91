// The value model (docs/protocol.md, "Values"): every supported JS value round-trips exactly
// (property tests), the registered encodings are as specified (byte vectors), and what cannot
// cross is refused at encode with the path of the field, at the call that caused it.
import { fc, testProp } from '@fast-check/ava';
import { ExtData } from '@msgpack/msgpack';
import test from 'ava';
import { decodeEnvelope } from '../src/envelope/decode.js';
import { encodeEnvelope } from '../src/envelope/encode.js';
import { EnvelopeKind } from '../src/envelope/types.js';
import { isSecureIpcError, type SecureIpcError } from '../src/errors.js';
import { decodeBudgetRefusal } from '../src/msgpack/decode-budget.js';
import { decodeValue, encodeValue } from '../src/msgpack/value-codec.js';
import { createPolicy } from '../src/rpc/policy.js';
import { memoryRpc } from './fixtures/memory-rpc.js';

const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const unhex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));
const everything = createPolicy({
  defaultRoles: ['all'],
  roles: { all: { call: ['*'], publish: ['*'], subscribe: ['*'] } },
});

/** Through the wire's own path: an envelope encoded, decoded (budget included), its p read back. */
function roundTrip(value: unknown): unknown {
  const decoded = decodeEnvelope(encodeEnvelope({ k: EnvelopeKind.Response, id: 1, p: value }));
  if (!decoded.ok) throw decoded.error;
  return decoded.envelope.p;
}

// What a value arrives as: a bigint within +-(2^53 - 1) is a number (the wire has one integer type).
function arrival(value: unknown): unknown {
  if (typeof value === 'bigint')
    return value >= -(2n ** 53n - 1n) && value <= 2n ** 53n - 1n ? Number(value) : value;
  if (Array.isArray(value)) return value.map(arrival);
  if (value instanceof Map) return new Map([...value].map(([k, v]) => [arrival(k), arrival(v)]));
  if (value instanceof Set) return new Set([...value].map(arrival));
  if (value === null || typeof value !== 'object' || value instanceof Uint8Array || value instanceof Date)
    return value;
  return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, arrival(v)]));
}

const scalar = fc.oneof(
  fc.constant(null),
  fc.boolean(),
  fc.integer(),
  fc.maxSafeInteger(),
  fc.double(), // NaN, +-Infinity, -0 included
  fc.bigInt({ min: -(2n ** 63n), max: 2n ** 64n - 1n }),
  fc.string({ unit: 'binary' }), // every code point, well-formed
  fc.string({ unit: 'grapheme-ascii' }),
  fc.uint8Array({ maxLength: 40 }),
  fc.date({ noInvalidDate: true }),
);
// Map keys: the scalar key types; no bigint (1n and 1 are one key on the wire, two in a JS Map).
const mapKey = fc.oneof(
  fc.string(),
  fc.integer(),
  fc.double(),
  fc.uint8Array({ maxLength: 4 }),
  fc.constant(null),
  fc.boolean(),
);
const propertyKey = fc.string().filter((k) => k !== '__proto__');

const { value } = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    scalar,
    tie('array'),
    tie('object'),
    tie('map'),
    tie('set'),
  ),
  array: fc.array(tie('value'), { maxLength: 5 }),
  object: fc.dictionary(propertyKey, tie('value'), { maxKeys: 5, noNullPrototype: true }),
  map: fc.array(fc.tuple(mapKey, tie('value')), { maxLength: 5 }).map((entries) => new Map(entries)),
  // Set items that stay distinct on arrival (no two equal after bigint -> number).
  set: fc
    .uniqueArray(scalar, { maxLength: 5, selector: (v) => (typeof v === 'bigint' ? Number(v) : v) })
    .map((items) => new Set(items)),
}));

testProp('every supported value round-trips exactly through an envelope', [value], (t, v) => {
  t.deepEqual(roundTrip(v), arrival(v));
});

testProp('what arrives re-encodes to the same bytes (values are stable across hops)', [value], (t, v) => {
  const once = encodeValue(v);
  t.is(decodeBudgetRefusal(once), undefined);
  // After one hop: an object's integer-like keys come first in JS, whatever order they came in.
  const twice = encodeValue(decodeValue(once));
  t.is(hex(encodeValue(decodeValue(twice))), hex(twice));
  t.deepEqual(decodeValue(twice), decodeValue(once));
});

test('a native map keeps its wire order when a non-string key comes after an integer-like string key', (t) => {
  // fast-check seed 1499881160 found this: the entries read as object properties before the first
  // non-string key were listed integer-like first ("0" before ""), so the Map came out reordered.
  const m = new Map<unknown, unknown>([
    ['', null],
    ['0', 0],
    [0, ''],
  ]);
  const back = roundTrip(m) as Map<unknown, unknown>;
  t.deepEqual([...back.keys()], ['', '0', 0]);
  t.deepEqual(back, m);
  // And after a __proto__ key, which turns the rest of a string-keyed map into a Map too.
  const wire = unhex(`83a0c0a13000a9${hex(new TextEncoder().encode('__proto__'))}02`);
  t.deepEqual([...(decodeValue(wire) as Map<unknown, unknown>).keys()], ['', '0', '__proto__']);
});

test('integers: exact over 64 bits, bigint only beyond +-(2^53 - 1); -0 and fractions as float 64', (t) => {
  t.is(roundTrip(2n ** 64n - 1n), 2n ** 64n - 1n);
  t.is(roundTrip(-(2n ** 63n)), -(2n ** 63n));
  t.is(roundTrip(2n ** 53n), 2n ** 53n);
  t.is(roundTrip(5n), 5);
  t.is(roundTrip(Number.MAX_SAFE_INTEGER), Number.MAX_SAFE_INTEGER);
  t.is(roundTrip(-Number.MAX_SAFE_INTEGER), -Number.MAX_SAFE_INTEGER);
  t.true(Object.is(roundTrip(-0), -0));
  t.is(hex(encodeValue(-0)), 'cb8000000000000000');
  t.is(hex(encodeValue(2 ** 53)), 'cb4340000000000000', 'an unsafe integer number is a float 64');
  t.is(hex(encodeValue(2n ** 63n)), 'cf8000000000000000');
  t.is(hex(encodeValue(-(2n ** 63n))), 'd38000000000000000');
  t.is(hex(encodeValue(5n)), '05');
  t.is(decodeValue(unhex('ca3fc00000')), 1.5, 'float 32 decodes to a number');
  t.is(decodeValue(unhex('cf001fffffffffffff')), Number.MAX_SAFE_INTEGER);
  t.is(decodeValue(unhex('cf0020000000000000')), 2n ** 53n);
  t.is(decodeValue(unhex('d3ffe0000000000001')), -Number.MAX_SAFE_INTEGER);
  t.is(decodeValue(unhex('d3ffe0000000000000')), -(2n ** 53n));
});

test('the registered encodings: Map (native or ext 1), Set (ext 2), Date (timestamp ext -1), Uint8Array (bin)', (t) => {
  t.is(hex(encodeValue(new Map([['a', 1]]))), 'd60192a16101', 'string keys: ext 1, an array of key, value');
  t.is(hex(encodeValue(new Map())), 'd40190', 'empty: ext 1 of an empty array');
  t.is(
    hex(
      encodeValue(
        new Map<unknown, unknown>([
          [1, 'x'],
          [new Uint8Array([9]), 2],
        ]),
      ),
    ),
    '8201a178c4010902',
    'other keys: a native map',
  );
  t.is(hex(encodeValue(new Set([1, 'a']))), 'd6029201a161');
  t.is(hex(encodeValue(new Date(1_700_000_000_000))), 'd6ff6553f100', 'whole seconds: timestamp 32');
  t.is(hex(encodeValue(new Date(1_700_000_000_123))), 'd7ff1d5353006553f100', 'milliseconds: timestamp 64');
  t.is(hex(encodeValue(new Date(-1))), 'c70cff3b8b87c0ffffffffffffffff', 'before 1970: timestamp 96');
  t.is(hex(encodeValue(Buffer.from([1, 2]))), 'c4020102');
  const bin = decodeValue(unhex('c4020102'));
  t.is(Object.getPrototypeOf(bin), Uint8Array.prototype, 'a Buffer arrives as a Uint8Array');
  // A map with only string keys is a plain object; any other key type (or __proto__) a Map.
  t.deepEqual(decodeValue(unhex('81a16101')), { a: 1 });
  t.deepEqual(
    decodeValue(unhex('8201a161a162c3')),
    new Map<unknown, unknown>([
      [1, 'a'],
      ['b', true],
    ]),
  );
  const proto = decodeValue(unhex('81a95f5f70726f746f5f5f01')) as Map<string, number>;
  t.true(proto instanceof Map);
  t.is(proto.get('__proto__'), 1);
  t.is(Object.getPrototypeOf({}).polluted, undefined);
  // A timestamp a Date cannot hold exactly stays an ExtData that re-encodes identically.
  const nanos = decodeValue(unhex('d7ff0000000400000001'));
  t.true(nanos instanceof ExtData);
  t.is(hex(encodeValue(nanos)), 'd7ff0000000400000001');
  const unknown = decodeValue(unhex('d505abcd')) as ExtData;
  t.is(unknown.type, 5);
  t.is(hex(encodeValue(unknown)), 'd505abcd');
  // undefined properties are omitted; the object is as if they were absent.
  t.is(hex(encodeValue({ a: 1, b: undefined })), '81a16101');
});

test('what cannot cross is refused at encode with the path of the field', (t) => {
  class Point {
    x = 1;
  }
  const cyclic: Record<string, unknown> = { a: [1] };
  (cyclic.a as unknown[]).push(cyclic);
  const sparse = [1];
  sparse[2] = 3;
  let deep: unknown = 1;
  for (let i = 0; i < 32; i++) deep = [deep];
  const cases: [unknown, string][] = [
    [{ items: [0, 1, 2, { when: () => 1 }] }, 'params.items[3].when: a function is not supported'],
    [{ e: new Error('x') }, 'params.e: an Error is not supported'],
    [{ p: new Point() }, 'params.p: a Point instance is not supported'],
    [{ s: Symbol('s') }, 'params.s: a symbol is not supported'],
    [
      [1, undefined],
      'params[1]: undefined is not supported here (only as an object property, which is omitted)',
    ],
    [sparse, 'params[1]: a sparse array (a hole) is not supported'],
    [
      { big: 2n ** 64n },
      'params.big: a bigint outside the 64-bit range (-2^63 to 2^64 - 1) is not supported',
    ],
    [
      { 'odd key': '\ud800' },
      'params["odd key"]: a string with a lone surrogate (not well-formed UTF-16) is not supported',
    ],
    [{ f: new Float32Array(1) }, 'params.f: a Float32Array is not supported'],
    [{ d: new Date(Number.NaN) }, 'params.d: an invalid Date is not supported'],
    [
      new Map([['k', [undefined]]]),
      'params["k"][0]: undefined is not supported here (only as an object property, which is omitted)',
    ],
    [
      new Map([[{}, 1]]),
      'params[<key>]: a Map key must be a string, number, bigint, boolean, null or Uint8Array; an Object instance is not supported',
    ],
    [new Set([undefined]), 'params[0]: undefined as a Set item is not supported'],
    [cyclic, 'params.a[1]: a cycle (the value contains itself) is not supported'],
    [
      deep,
      `params${'[0]'.repeat(31)}: containers nested deeper than 32 (the envelope included) are not supported`,
    ],
    [
      JSON.parse('{"__proto__": 1}'),
      'params.__proto__: a property named __proto__ is not supported (a Map can carry that key)',
    ],
    [
      new ExtData(1, new Uint8Array(0)),
      'params: an ExtData of the registered type 1 is not supported (send a Map)',
    ],
  ];
  for (const [v, message] of cases) {
    const err = t.throws(() =>
      encodeEnvelope({ k: EnvelopeKind.Request, id: 1, m: 'svc.m', p: v }),
    ) as SecureIpcError;
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), message);
    t.is(err.message, message);
  }
  // Each field is named by what it is: result, payload, item, error data.
  const named = (k: EnvelopeKind, extra: object) =>
    (t.throws(() => encodeEnvelope({ k, id: 1, ...extra })) as Error).message;
  t.is(named(EnvelopeKind.Response, { p: { x: [Symbol()] } }), 'result.x[0]: a symbol is not supported');
  t.is(named(EnvelopeKind.StreamItem, { p: () => 1 }), 'item: a function is not supported');
  t.is(
    (t.throws(() => encodeEnvelope({ k: EnvelopeKind.Event, m: 't', p: { a: Symbol() } })) as Error).message,
    'payload.a: a symbol is not supported',
  );
  t.is(
    named(EnvelopeKind.Error, { e: { code: 'X', message: 'm', data: { n: 2n ** 70n } } }).split(':')[0],
    'error.data.n',
  );
  // A getter that throws: its error is the cause.
  const boom = new Error('boom');
  const getter = t.throws(() =>
    encodeEnvelope({
      k: EnvelopeKind.Request,
      id: 1,
      m: 'svc.m',
      p: {
        get x() {
          throw boom;
        },
      },
    }),
  ) as SecureIpcError;
  t.is(getter.cause, boom);
});

test('the refusal happens at the call: request, notify/publish; a handler result is reported on the server', async (t) => {
  const { server, client } = await memoryRpc(t, { policy: everything });
  const failures: { correlationId: string; method: string; error: unknown }[] = [];
  server.on('handlerError', (f) => failures.push(f));
  server.handle('echo', (p: unknown) => p);
  server.handle('bad.result', () => ({ rows: [{ at: new Map([[{}, 1]]) }] }) as never);
  server.handle('bad.item', async function* () {
    yield 1;
    yield { x: () => 1 } as never;
  });
  const request = await t.throwsAsync(client.request('echo', { items: [1, { when: Symbol() }] } as never));
  t.true(isSecureIpcError(request, 'SIPC_ERR_INVALID_ARGUMENT'));
  t.is(request!.message, 'params.items[1].when: a symbol is not supported');
  const publish = await t.throwsAsync(client.publish('topic', { f: () => 1 } as never));
  t.is(publish!.message, 'payload.f: a function is not supported');
  await t.throwsAsync(async () => server.publish('topic', { s: new Set([undefined]) } as never), {
    message: 'payload.s[0]: undefined as a Set item is not supported',
  });
  // A result that cannot be encoded: the caller gets SIPC_ERR_HANDLER with a correlation id, the
  // server reports the real error (with the path, never the value) under the same id.
  const result = (await t.throwsAsync(client.request('bad.result', null))) as SecureIpcError;
  t.true(isSecureIpcError(result, 'SIPC_ERR_HANDLER'));
  const reported = failures.find((f) => f.correlationId === result.details?.correlationId);
  t.truthy(reported);
  t.is(reported?.method, 'bad.result');
  t.is(
    (reported?.error as Error | undefined)?.message,
    'result.rows[0].at[<key>]: a Map key must be a string, number, bigint, boolean, null or Uint8Array; an Object instance is not supported',
  );
  const items: unknown[] = [];
  const stream = (await t.throwsAsync(async () => {
    const source = (await client.request('bad.item', null)) as AsyncIterable<unknown>;
    for await (const item of source) items.push(item);
  })) as SecureIpcError;
  t.deepEqual(items, [1]);
  t.true(isSecureIpcError(stream, 'SIPC_ERR_HANDLER'));
  const streamed = failures.find((f) => f.correlationId === stream.details?.correlationId);
  t.is((streamed?.error as Error | undefined)?.message, 'item.x: a function is not supported');
  // Values cross a real session exactly, both ways.
  const sent = {
    big: 2n ** 64n - 1n,
    keys: new Map<unknown, unknown>([
      [1, 'a'],
      [new Uint8Array([7]), null],
    ]),
    s: new Set(['x']),
    when: new Date(5),
    bin: Buffer.from([1]),
  };
  t.deepEqual(await client.request('echo', sent as never), { ...sent, bin: new Uint8Array([1]) });
  t.deepEqual(await client.ping(sent), { ...sent, bin: new Uint8Array([1]) });
});

test('headers written after their payload survive the buffer growing under them', (t) => {
  // The codec's buffer starts at 2 KiB: put the late-written header (a non-ASCII string's, an
  // ext 1's, an object's whose undefined properties shrink it) at every offset around the end.
  for (let k = 1990; k < 2070; k++) {
    const pad = 'x'.repeat(k);
    const values: unknown[] = [
      [pad, 'é'],
      [pad, new Map([['a', 'b']])],
      [pad, new Set([1])],
      [pad, { a: 1, b: undefined, c: 'é' }],
    ];
    for (const v of values) {
      const bytes = encodeValue(v);
      t.deepEqual(decodeValue(bytes), stripUndefined(v as unknown[]));
    }
  }
});

function stripUndefined(v: unknown[]): unknown[] {
  return v.map((x) =>
    x !== null && typeof x === 'object' && Object.getPrototypeOf(x) === Object.prototype
      ? Object.fromEntries(Object.entries(x).filter(([, y]) => y !== undefined))
      : x,
  );
}

test('a getter that encodes while its object is being encoded gets its own buffer', (t) => {
  const inner = { n: 2n ** 60n };
  const outer = {
    a: 'first',
    get b() {
      return hex(encodeValue(inner));
    },
    c: 'last',
  };
  const bytes = encodeValue(outer);
  t.deepEqual(decodeValue(bytes), { a: 'first', b: hex(encodeValue(inner)), c: 'last' });
  // The same object inside the outer value and the nested encode is not taken for a cycle.
  const shared = { x: 1 };
  const both = {
    get first() {
      encodeValue({ again: shared });
      return shared;
    },
    second: [shared],
  };
  t.deepEqual(decodeValue(encodeValue(both)), { first: { x: 1 }, second: [{ x: 1 }] });
});
