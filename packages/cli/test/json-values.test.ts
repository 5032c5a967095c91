// The JSON forms of RPC values (package README, "Values as JSON") at the function level, for the
// cases a test server cannot easily send: an ext of an unregistered type, and the edges of the
// params parser. The end-to-end forms are checked through the binary in call.test.ts.
import { isSecureIpcError } from '@secure-ipc/core';
import test from 'ava';
import { parseJSONParams, toJSONValue } from '../src/json-values.js';

// The shape core decodes an unregistered ext into (`@msgpack/msgpack`'s ExtData: a class instance).
class ExtData {
  constructor(
    readonly type: number,
    readonly data: Uint8Array,
  ) {}
}

test('toJSONValue: an unregistered ext, and nesting inside maps, sets and arrays', (t) => {
  t.deepEqual(toJSONValue(new ExtData(42, new Uint8Array([1, 2, 3]))), {
    $ext: { type: 42, base64: 'AQID' },
  });
  t.deepEqual(toJSONValue(new Map([[new Uint8Array([255]), new Set([1n])]])), {
    $map: [[{ $base64: '/w==' }, { $set: ['1'] }]],
  });
  t.deepEqual(toJSONValue([undefined, Number.NEGATIVE_INFINITY, { a: undefined }]), [
    null,
    '-Infinity',
    { a: null },
  ]);
  // An object with a data field is not an ext: only a class instance of that shape is.
  t.deepEqual(toJSONValue({ type: 1, data: new Uint8Array([0]) }), { type: 1, data: { $base64: 'AA==' } });
});

test('parseJSONParams: {"$base64"} alone is bytes, anywhere; other objects stay objects; __proto__ stays a key', (t) => {
  const bytes = parseJSONParams('[{"$base64": "AAEC"}, {"k": {"$base64": ""}}]') as [
    Uint8Array,
    { k: Uint8Array },
  ];
  t.deepEqual(bytes[0], new Uint8Array([0, 1, 2]));
  t.deepEqual(bytes[1].k, new Uint8Array([]));
  t.deepEqual(parseJSONParams('{"$base64": "AA==", "other": 1}'), { $base64: 'AA==', other: 1 });
  const proto = parseJSONParams('{"__proto__": {"polluted": true}}') as Record<string, unknown>;
  t.is(Object.getPrototypeOf(proto), Object.prototype, 'never a prototype');
  t.deepEqual(Object.keys(proto), ['__proto__']);
  t.is(({} as { polluted?: unknown }).polluted, undefined);
  for (const bad of ['{"$base64": 5}', '{"$base64": "AAE"}', '{"$base64": "A A="}', '{', '']) {
    const err = t.throws(() => parseJSONParams(bad), undefined, bad);
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), bad);
  }
});
