import { decode, encode } from '@msgpack/msgpack';
import test from 'ava';
import { decodeEnvelope } from '../src/envelope/decode.js';
import {
  encodeEnvelope,
  encodeEnvelopeSplit,
  joinEnvelope,
  SPLIT_MIN_BYTES,
  type SplitEnvelope,
} from '../src/envelope/encode.js';
import { EnvelopeKind as Kind } from '../src/envelope/types.js';
import { validateEnvelope } from '../src/envelope/validate.js';
import { fromWireError, opaqueWireError, PublicError, publicWireError } from '../src/envelope/wire-errors.js';
import { createError, isSecureIpcError, RemoteError } from '../src/errors.js';

test('round trip keeps binary binary and drops absent fields', (t) => {
  const bin = new Uint8Array([0, 1, 2, 255]);
  const bytes = encodeEnvelope({
    k: Kind.Request,
    id: 7,
    m: 'files.read',
    p: { data: bin },
    h: { idem: 'a' },
  });
  const r = decodeEnvelope(bytes);
  if (!r.ok) return t.fail(r.error.message);
  const data = (r.envelope.p as { data: Uint8Array }).data;
  t.true(data instanceof Uint8Array);
  t.deepEqual([...data], [0, 1, 2, 255]);
  t.deepEqual({ ...r.envelope, p: null }, { v: 1, k: 1, id: 7, m: 'files.read', p: null, h: { idem: 'a' } });
  t.is(r.envelope.v, 1);
});

test('ids and names of every size encode as msgpack would', (t) => {
  for (const id of [0, 127, 128, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1]) {
    for (const m of [
      'a',
      'x'.repeat(31),
      'y'.repeat(32),
      'z'.repeat(255),
      'é'.repeat(128), // 256 UTF-8 bytes: the limit counts bytes
      'w'.repeat(256),
    ]) {
      const r = decodeEnvelope(encodeEnvelope({ k: Kind.Request, id, m, p: [id] }));
      t.true(r.ok);
      if (r.ok) t.deepEqual([r.envelope.id, r.envelope.m, r.envelope.p], [id, m, [id]]);
    }
  }
  t.true(
    isSecureIpcError(
      t.throws(() => encodeEnvelope({ k: Kind.Cancel, id: -1 })),
      'SIPC_ERR_INVALID_ARGUMENT',
    ),
  );
  const long = t.throws(() => encodeEnvelope({ k: Kind.Event, m: 'x'.repeat(257) }));
  t.true(isSecureIpcError(long, 'SIPC_ERR_INVALID_ARGUMENT'));
  // 129 characters, 258 UTF-8 bytes: too long, though shorter than 256 UTF-16 units.
  const wide = t.throws(() => encodeEnvelope({ k: Kind.Event, m: 'é'.repeat(129) }));
  t.true(isSecureIpcError(wide, 'SIPC_ERR_INVALID_ARGUMENT'));
});

test('every kind round-trips', (t) => {
  const cases = [
    { k: Kind.Request, id: 1, m: 'a', p: 1 },
    { k: Kind.Response, id: 1, p: null },
    { k: Kind.Error, id: 1, e: { code: 'SIPC_ERR_FORBIDDEN', message: 'no', data: { x: 1 } } },
    { k: Kind.Event, m: 'topic.x', p: 'hi' },
    { k: Kind.Cancel, id: 2 },
    { k: Kind.StreamItem, id: 3, p: [1, 2] },
    { k: Kind.StreamEnd, id: 3 },
    { k: Kind.Credit, id: 3, p: 8 },
  ] as const;
  for (const env of cases) {
    const r = decodeEnvelope(encodeEnvelope(env));
    t.true(r.ok, JSON.stringify(env));
    if (r.ok) t.deepEqual(r.envelope, { v: 1, ...env });
  }
});

// Every shape of invalid envelope: [name, raw value, expected id (undefined = connection must close)].
const invalid: Array<[string, unknown, number | undefined]> = [
  ['not a map (array)', [1, 1, 1], undefined],
  ['not a map (string)', 'hello', undefined],
  ['not a map (binary)', new Uint8Array(3), undefined],
  ['nil', null, undefined],
  ['no version', { k: 1, id: 5, m: 'a' }, 5],
  ['version 2', { v: 2, k: 1, id: 5, m: 'a' }, 5],
  ['unknown kind 0', { v: 1, k: 0, id: 5 }, 5],
  ['unknown kind 9', { v: 1, k: 9, id: 5 }, 5],
  ['kind is a string', { v: 1, k: '1', id: 5, m: 'a' }, 5],
  ['unknown top-level field', { v: 1, k: 1, id: 5, m: 'a', x: 1 }, 5],
  ['negative id', { v: 1, k: 1, id: -1, m: 'a' }, undefined],
  ['fractional id', { v: 1, k: 1, id: 1.5, m: 'a' }, undefined],
  ['string id', { v: 1, k: 1, id: '1', m: 'a' }, undefined],
  ['id above 2^53', { v: 1, k: 1, id: 2 ** 60, m: 'a' }, undefined],
  ['request without id', { v: 1, k: 1, m: 'a' }, undefined],
  ['request without method', { v: 1, k: 1, id: 5 }, 5],
  ['request with empty method', { v: 1, k: 1, id: 5, m: '' }, 5],
  ['request with binary method', { v: 1, k: 1, id: 5, m: new Uint8Array(1) }, 5],
  ['method too long', { v: 1, k: 1, id: 5, m: 'x'.repeat(257) }, 5],
  ['response with method', { v: 1, k: 2, id: 5, m: 'a' }, 5],
  ['error without e', { v: 1, k: 3, id: 5 }, 5],
  ['error with numeric code', { v: 1, k: 3, id: 5, e: { code: 1, message: 'x' } }, 5],
  ['error code with spaces', { v: 1, k: 3, id: 5, e: { code: 'A B', message: 'x' } }, 5],
  ['error without message', { v: 1, k: 3, id: 5, e: { code: 'X' } }, 5],
  ['error with stack field', { v: 1, k: 3, id: 5, e: { code: 'X', message: 'x', stack: 's' } }, 5],
  ['error message too long', { v: 1, k: 3, id: 5, e: { code: 'X', message: 'x'.repeat(1025) } }, 5],
  ['e on a response', { v: 1, k: 2, id: 5, e: { code: 'X', message: 'x' } }, 5],
  // An event is never answered, even one that carries an id: the id is not one to answer to.
  ['event with id', { v: 1, k: 4, id: 5, m: 't' }, undefined],
  ['event without topic', { v: 1, k: 4, p: 1 }, undefined],
  ['cancel with payload', { v: 1, k: 5, id: 5, p: 1 }, 5],
  ['stream end with payload', { v: 1, k: 7, id: 5, p: 1 }, 5],
  ['credit of zero', { v: 1, k: 8, id: 5, p: 0 }, 5],
  ['credit as string', { v: 1, k: 8, id: 5, p: '8' }, 5],
  ['credit too large', { v: 1, k: 8, id: 5, p: 1e9 }, 5],
  ['headers on a response', { v: 1, k: 2, id: 5, h: {} }, 5],
  ['headers not a map', { v: 1, k: 1, id: 5, m: 'a', h: [1] }, 5],
  ['unknown header', { v: 1, k: 1, id: 5, m: 'a', h: { user: 'root' } }, 5],
  ['timeout zero', { v: 1, k: 1, id: 5, m: 'a', h: { timeout: 0 } }, 5],
  ['timeout string', { v: 1, k: 1, id: 5, m: 'a', h: { timeout: '10' } }, 5],
  ['empty idem', { v: 1, k: 1, id: 5, m: 'a', h: { idem: '' } }, 5],
  ['idem too long', { v: 1, k: 1, id: 5, m: 'a', h: { idem: 'k'.repeat(129) } }, 5],
  ['bad traceparent', { v: 1, k: 1, id: 5, m: 'a', h: { trace: 'not-a-trace' } }, 5],
];

for (const [name, raw, id] of invalid) {
  test(`invalid envelope: ${name}`, (t) => {
    const r = decodeEnvelope(encode(raw));
    t.false(r.ok);
    if (r.ok) return;
    t.is(r.error.code, 'SIPC_ERR_BAD_ENVELOPE');
    t.true(isSecureIpcError(r.error, 'SIPC_ERR_BAD_ENVELOPE'));
    t.is(r.id, id);
  });
}

test('invalid envelope: bytes that are not msgpack, truncated, trailing, or a huge declared length', (t) => {
  const cases = [
    new Uint8Array([0xc1]), // never-used byte
    new Uint8Array([0x85, 0xa1]), // truncated map
    new Uint8Array([...encode({ v: 1, k: 4, m: 't' }), 0x01]), // trailing value
    new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff]), // array32 of 4G elements in 5 bytes
    new Uint8Array([0xc6, 0xff, 0xff, 0xff, 0xff]), // bin32 of 4 GiB in 5 bytes
    new Uint8Array([0x81, 0xa9, ...new TextEncoder().encode('__proto__'), 0x01]),
    new Uint8Array(0),
  ];
  for (const bytes of cases) {
    const r = decodeEnvelope(bytes);
    t.false(r.ok);
    if (!r.ok) {
      t.is(r.error.code, 'SIPC_ERR_BAD_ENVELOPE');
      t.is(r.id, undefined);
    }
  }
});

test('a traceparent header in W3C form is accepted', (t) => {
  const trace = '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01';
  const r = decodeEnvelope(encodeEnvelope({ k: Kind.Request, id: 1, m: 'a', h: { trace, timeout: 5 } }));
  t.true(r.ok);
});

test('encodeEnvelope refuses values msgpack cannot carry with a typed error', (t) => {
  const err = t.throws(() => encodeEnvelope({ k: Kind.Response, id: 1, p: 10n ** 30n }));
  t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'));
});

test('publicWireError: only PublicError (code, message, data) and typed errors for the peer (code) cross', (t) => {
  const forbidden = createError('SIPC_ERR_FORBIDDEN', 'nope: /etc/secret', {
    cause: new Error('secret path /etc'),
  });
  t.deepEqual(publicWireError(forbidden), { code: 'SIPC_ERR_FORBIDDEN', message: 'Forbidden by policy' });
  const pub = new PublicError('SHOP_EMPTY', 'out of stock', {
    data: { sku: 1 },
    cause: new Error('db row 7'),
  });
  t.deepEqual(publicWireError(pub), { code: 'SHOP_EMPTY', message: 'out of stock', data: { sku: 1 } });
  t.is(publicWireError(new PublicError('X', 'y'.repeat(2000)))?.message.length, 1024);
  for (const internal of [
    new Error('plain'),
    'a string',
    null,
    Object.assign(new Error('ENOENT: /etc/secret'), { code: 'ENOENT' }),
    Object.assign(new Error('out of stock'), { code: 'SHOP_EMPTY', data: { sku: 1 } }),
    createError('SIPC_ERR_CONNECT_FAILED', 'Could not connect to unix:///run/internal.sock'),
    createError('SIPC_ERR_INVALID_ARGUMENT', 'bad option'),
    new RemoteError('from the next hop', { remoteCode: 'APP_X' }),
  ])
    t.is(publicWireError(internal), undefined, String(internal));
});

test('opaqueWireError carries the correlation id only; fromWireError exposes it', (t) => {
  const wire = opaqueWireError('0c0ffee0-0000-4000-8000-000000000000');
  t.deepEqual(wire, {
    code: 'SIPC_ERR_HANDLER',
    message: 'The handler failed (correlation id 0c0ffee0-0000-4000-8000-000000000000)',
    data: { correlationId: '0c0ffee0-0000-4000-8000-000000000000' },
  });
  const err = fromWireError(wire);
  t.true(isSecureIpcError(err, 'SIPC_ERR_HANDLER'));
  t.is(err.details?.correlationId, '0c0ffee0-0000-4000-8000-000000000000');
  t.is(fromWireError({ code: 'SIPC_ERR_HANDLER', message: 'old peer' }).details?.correlationId, undefined);
});

test('PublicError refuses codes the wire cannot carry and SIPC_ERR_REMOTE', (t) => {
  for (const code of ['', 'has space', 'x'.repeat(65), 'SIPC_ERR_REMOTE', 7 as unknown as string])
    t.true(
      isSecureIpcError(
        t.throws(() => new PublicError(code, 'm')),
        'SIPC_ERR_INVALID_ARGUMENT',
      ),
      String(code),
    );
  t.true(
    isSecureIpcError(
      t.throws(() => new PublicError('X', undefined as unknown as string)),
      'SIPC_ERR_INVALID_ARGUMENT',
    ),
  );
  const e = new PublicError('SIPC_ERR_INVALID_ARGUMENT', 'name too long');
  t.like(e, { name: 'PublicError', code: 'SIPC_ERR_INVALID_ARGUMENT', message: 'name too long' });
  t.true(e instanceof Error);
});

test('fromWireError rebuilds typed errors for known codes and RemoteError otherwise', (t) => {
  const known = fromWireError({ code: 'SIPC_ERR_NO_SUCH_METHOD', message: 'No such method: x' });
  t.true(isSecureIpcError(known, 'SIPC_ERR_NO_SUCH_METHOD'));
  t.is(known.message, 'No such method: x');
  const app = fromWireError({ code: 'SHOP_EMPTY', message: 'out', data: 1 });
  t.true(app instanceof RemoteError);
  t.is((app as RemoteError).remoteCode, 'SHOP_EMPTY');
  t.is((app as RemoteError).data, 1);
});

test('the hand-read fast path and the generic msgpack path decode to the same result', (t) => {
  const cases = [
    // Not $ping: its `p` stays the bytes it came as (test/values-ping.test.ts).
    { k: Kind.Request, id: 1, m: 'svc.echo', p: new Uint8Array([1, 2]) },
    { k: Kind.Request, id: 2 ** 32 + 5, m: 'files.read', p: { path: '/x' } },
    { k: Kind.Request, id: 70_000, m: 'é.unicode', p: null },
    { k: Kind.Request, id: 3, m: 'x'.repeat(40), p: [1] },
    { k: Kind.Request, id: 4, m: 'a', p: 1, h: { timeout: 10 } },
    { k: Kind.Response, id: 300, p: 'ok' },
    { k: Kind.Response, id: 5 },
    { k: Kind.Error, id: 6, e: { code: 'X', message: 'y' } },
    { k: Kind.Event, m: 'topic', p: { a: 1 } },
    { k: Kind.Cancel, id: 7 },
    { k: Kind.StreamItem, id: 8, p: new Uint8Array(1000) },
    { k: Kind.StreamEnd, id: 9 },
    { k: Kind.Credit, id: 10, p: 8 },
    { k: Kind.Credit, id: 10, p: 0 }, // invalid: both paths must refuse it the same way
  ];
  for (const env of cases) {
    const bytes = encodeEnvelope(env);
    const generic = validateEnvelope(decode(bytes));
    const fast = decodeEnvelope(bytes);
    // Binary is compared by content: one path yields Buffer views, the other Uint8Array views.
    const plain = (_k: string, v: unknown) =>
      v instanceof Uint8Array
        ? [...v]
        : (v as { type?: string; data?: unknown })?.type === 'Buffer'
          ? (v as { data: unknown }).data
          : v;
    t.is(JSON.stringify(fast, plain), JSON.stringify(generic, plain), JSON.stringify(env));
  }
});

test('binary payloads encode byte for byte as msgpack would (bin 8, 16 and 32)', (t) => {
  for (const size of [0, 1, 255, 256, 65_535, 65_536, 70_000]) {
    const p = Buffer.alloc(size, 7);
    for (const env of [
      { k: Kind.Event, m: 'bulk', p },
      { k: Kind.Request, id: 9, m: 'put', p: new Uint8Array(p) },
      { k: Kind.Response, id: 300, p },
    ]) {
      const ours = Buffer.from(encodeEnvelope(env));
      t.deepEqual(ours, Buffer.from(encode({ v: 1, ...env })), `size ${size}`);
      const r = decodeEnvelope(ours);
      t.true(r.ok && Buffer.from(r.envelope.p as Uint8Array).equals(p));
    }
  }
});

test('a split envelope joins to the bytes encodeEnvelope writes; small payloads and other values are not split', (t) => {
  for (const size of [0, 1, SPLIT_MIN_BYTES - 1, SPLIT_MIN_BYTES, 65_535, 65_536, 70_000]) {
    const p = Buffer.alloc(size, 3);
    for (const env of [
      { k: Kind.Event, m: 'bulk', p },
      { k: Kind.Request, id: 9, m: 'put', p },
      { k: Kind.Response, id: 300, p },
    ]) {
      const split = encodeEnvelopeSplit(env);
      t.deepEqual(Buffer.from(joinEnvelope(split)), Buffer.from(encodeEnvelope(env)), `size ${size}`);
      if (size < SPLIT_MIN_BYTES) t.true(split instanceof Uint8Array, `size ${size} is one buffer`);
      else {
        t.false(split instanceof Uint8Array, `size ${size} is split`);
        const { head, body, byteLength } = split as SplitEnvelope;
        t.is(body, p, 'the payload itself, not a copy');
        t.is(byteLength, head.byteLength + size);
      }
    }
  }
  t.true(
    encodeEnvelopeSplit({ k: Kind.Response, id: 1, p: { a: Buffer.alloc(10_000) } }) instanceof Uint8Array,
  );
  const withHeaders = { k: Kind.Request, id: 2, m: 'x', p: Buffer.alloc(10_000), h: { timeout: 5 } };
  t.true(encodeEnvelopeSplit(withHeaders) instanceof Uint8Array);
});
