// Issue 12, row 1: msgpack from a peer was bounded by bytes only, so a 16 MiB message of nested
// empty arrays decoded into ~40x its size (empty maps: 64x). The decode budget
// (src/msgpack/decode-budget.ts, docs/protocol.md section 8) refuses such values before decoding
// them; these properties check that it accepts what msgpack encodes (within depth 32), that it
// never lets a decoder read past the bytes, and, in a child process with a real full GC, that
// whatever it accepts holds at most DECODE_COST_PER_BYTE x bytes + DECODE_COST_ALLOWANCE of heap.
import { fc, testProp } from '@fast-check/ava';
import { decode, encode } from '@msgpack/msgpack';
import test from 'ava';
import { decodeEnvelope } from '../src/envelope/decode.js';
import { encodeEnvelope } from '../src/envelope/encode.js';
import { EnvelopeKind } from '../src/envelope/types.js';
import {
  DECODE_COST_ALLOWANCE,
  DECODE_COST_PER_BYTE,
  decodeBounded,
  decodeBudgetRefusal,
  MAX_DECODE_DEPTH,
} from '../src/msgpack/decode-budget.js';
import { type Recipe, UNIT_KINDS } from './fixtures/hostile-msgpack.js';
import { startLineChild } from './fixtures/line-child.js';

const MiB = 1024 * 1024;

/** msgpack-encodable values: what any peer's encoder may legitimately send (depth <= 10). */
const value = fc.letrec((tie) => ({
  any: fc.oneof(
    { maxDepth: 8, depthIdentifier: 'v' },
    fc.constantFrom(null, true, false),
    fc.integer(),
    fc.double({ noNaN: true }),
    fc.maxSafeInteger(),
    fc.string({ unit: 'binary' }),
    fc.uint8Array({ maxLength: 300 }),
    fc.date({ noInvalidDate: true }),
    fc.array(tie('any'), { maxLength: 8, depthIdentifier: 'v' }),
    fc.dictionary(
      fc.string({ unit: 'binary' }).filter((k) => k !== '__proto__'),
      tie('any'),
      { maxKeys: 8, depthIdentifier: 'v' },
    ),
  ),
})).any;

testProp(
  'the budget accepts any msgpack-encoded value within the depth limit, and decodes it as msgpack does',
  [value],
  (t, v) => {
    const bytes = encode(v);
    t.is(decodeBudgetRefusal(bytes), undefined);
    t.deepEqual(decodeBounded(bytes), decode(bytes));
  },
  { numRuns: 500 },
);

testProp(
  'on any bytes the budget never throws, and what it accepts the decoder reads without running out of bytes or leaving any',
  [fc.uint8Array({ maxLength: 200 })],
  (t, bytes) => {
    const refusal = decodeBudgetRefusal(bytes);
    if (refusal !== undefined) {
      t.pass();
      return;
    }
    try {
      decode(bytes);
      t.pass();
    } catch (err) {
      // A DecodeError (a `__proto__` key, a malformed timestamp) is the decoder's own refusal;
      // a RangeError would mean the budget walked the bytes differently from the decoder.
      t.false(err instanceof RangeError, String(err));
    }
  },
  { numRuns: 2000 },
);

test(`containers nest at most ${MAX_DECODE_DEPTH} deep, arrays and maps alike; deeper is refused without recursion`, (t) => {
  const nestedArrays = (depth: number) => new Uint8Array([...new Array<number>(depth - 1).fill(0x91), 0x90]);
  const nestedMaps = (depth: number) => {
    const out: number[] = [];
    for (let i = 1; i < depth; i++) out.push(0x81, 0xa1, 0x61);
    out.push(0x80);
    return new Uint8Array(out);
  };
  for (const build of [nestedArrays, nestedMaps]) {
    t.is(decodeBudgetRefusal(build(MAX_DECODE_DEPTH)), undefined);
    t.notThrows(() => decodeBounded(build(MAX_DECODE_DEPTH)));
    t.is(
      decodeBudgetRefusal(build(MAX_DECODE_DEPTH + 1)),
      `containers nested deeper than ${MAX_DECODE_DEPTH}`,
    );
  }
  // 8 MiB of array headers: refused at depth 33, no stack involved.
  const deep = new Uint8Array(8 * MiB).fill(0x91);
  t.is(decodeBudgetRefusal(deep), `containers nested deeper than ${MAX_DECODE_DEPTH}`);
});

test('declared lengths beyond the bytes left are refused before anything is allocated', (t) => {
  const cases: [string, number[]][] = [
    ['array32 of 2^32-1', [0xdd, 0xff, 0xff, 0xff, 0xff]],
    ['map32 of 2^32-1', [0xdf, 0xff, 0xff, 0xff, 0xff]],
    ['map16 of 3 entries in 5 bytes', [0xde, 0, 3, 1, 2, 3, 4, 5]],
    ['str32 of 2^32-1', [0xdb, 0xff, 0xff, 0xff, 0xff, 0x61]],
    ['bin32 of 2^31', [0xc6, 0x80, 0, 0, 0, 1]],
    ['ext32 of 2^31', [0xc9, 0x80, 0, 0, 0, 5, 1]],
    ['fixext16 with 3 bytes', [0xd8, 5, 1, 2, 3]],
    ['fixstr of 5 with 2 bytes', [0xa5, 0x61, 0x62]],
  ];
  for (const [name, bytes] of cases) {
    const refusal = decodeBudgetRefusal(new Uint8Array(bytes));
    t.truthy(refusal, name);
    t.throws(() => decodeBounded(new Uint8Array(bytes)), { instanceOf: RangeError }, name);
  }
  t.is(decodeBudgetRefusal(new Uint8Array([0x90, 0x90])), 'trailing bytes');
  t.is(decodeBudgetRefusal(new Uint8Array([0xc1])), 'unused type byte 0xc1');
  t.is(decodeBudgetRefusal(new Uint8Array([0x81, 0x90, 0x01])), 'a map key that is a container or an ext');
  t.is(
    decodeBudgetRefusal(new Uint8Array([0x81, 0xd4, 0x05, 0x00, 0x01])),
    'a map key that is a container or an ext',
  );
  // Scalar keys of every type pass (section 8.1, rule 3): bin, nil, bool, float.
  for (const key of [[0xc4, 0x00], [0xc0], [0xc3], [0xca, 0, 0, 0, 0]])
    t.is(decodeBudgetRefusal(new Uint8Array([0x81, ...key, 0x01])), undefined);
});

test('the cost limit is exact: n empty arrays cost 40n + 56, allowed up to 32 x bytes + 1 MiB', (t) => {
  // An array32 of n empty arrays: 5 + n bytes; the outer array costs 8 + 32 + 16, each inner 8 + 32.
  const build = (n: number) => {
    const out = new Uint8Array(5 + n).fill(0x90);
    out.set([0xdd, (n >>> 24) & 0xff, (n >>> 16) & 0xff, (n >>> 8) & 0xff, n & 0xff]);
    return out;
  };
  const fits = Math.floor(
    (DECODE_COST_PER_BYTE * 5 + DECODE_COST_ALLOWANCE - 56) / (40 - DECODE_COST_PER_BYTE),
  );
  t.is(decodeBudgetRefusal(build(fits)), undefined);
  t.is(decodeBudgetRefusal(build(fits + 1)), 'over its decode budget');
  // The issue's message: 16 MiB of empty arrays, refused (it decoded into 640 MiB of heap).
  t.is(decodeBudgetRefusal(build(16 * MiB - 16)), 'over its decode budget');
});

test('an envelope over the budget is refused as SIPC_ERR_BAD_ENVELOPE, with its request id so it can be answered', (t) => {
  const p = new Array(31).fill(0).reduce((inner: unknown) => [inner], []); // 32 deep, + the envelope: 33
  // Built by plain msgpack: encodeEnvelope refuses to write it (test/values.test.ts).
  const request = encode({ v: 1, k: EnvelopeKind.Request, id: 77, m: '$ping', p });
  const refused = decodeEnvelope(request);
  t.false(refused.ok);
  if (!refused.ok) {
    t.is(refused.error.code, 'SIPC_ERR_BAD_ENVELOPE');
    t.is(refused.id, 77);
    t.is(refused.kind, EnvelopeKind.Request);
    t.regex(refused.error.message, /nested deeper than 32/);
  }
  // A method name the fast path does not read (non-ASCII) still leaves the id readable.
  const named = decodeEnvelope(encode({ v: 1, k: EnvelopeKind.Request, id: 79, m: 'svc.é', p }));
  t.false(named.ok);
  if (!named.ok) t.is(named.id, 79);
  const fits = encodeEnvelope({ k: EnvelopeKind.Request, id: 78, m: '$ping', p: (p as unknown[])[0] });
  t.true(decodeEnvelope(fits).ok, 'the envelope map and 31 levels of params: 32');
});

/** The probe child: one recipe in, its heap (or refusal) out. */
function startProbe(t: { teardown(fn: () => void): void }) {
  const probe = startLineChild(t, new URL('./fixtures/decode-heap-probe.js', import.meta.url));
  return async (recipe: Recipe, raw = false) => {
    probe.send(`${raw ? 'raw ' : ''}${JSON.stringify(recipe)}`);
    return JSON.parse((await probe.next(120_000))!) as { bytes: number; heap?: number; refused?: string };
  };
}

const recipe: fc.Arbitrary<Recipe> = fc
  .record({
    units: fc.array(fc.constantFrom(...UNIT_KINDS), { minLength: 1, maxLength: 6 }),
    nestDepth: fc.integer({ min: 1, max: 31 }),
    size: fc.integer({ min: 256 * 1024, max: MiB }),
    filler: fc.oneof(fc.constant(0), fc.double({ min: 0, max: 0.9, noNaN: true })),
    wrap: fc.integer({ min: 0, max: 30 }),
  })
  .map((r) => ({ ...r, wrap: Math.min(r.wrap, 31 - r.nestDepth) }));

test('property: whatever hostile shape the budget accepts holds at most 32 x its bytes + 1 MiB of heap (child process, full GC)', async (t) => {
  t.timeout(600_000);
  const probe = startProbe(t);
  let accepted = 0;
  let refused = 0;
  let worst = 0;
  await fc.assert(
    fc.asyncProperty(recipe, async (r) => {
      const result = await probe(r);
      if (result.refused !== undefined) {
        refused++;
        return true;
      }
      accepted++;
      worst = Math.max(worst, result.heap! / result.bytes);
      return result.heap! <= DECODE_COST_PER_BYTE * result.bytes + DECODE_COST_ALLOWANCE;
    }),
    { numRuns: 40 },
  );
  t.log(`${accepted} accepted (worst ${worst.toFixed(1)} bytes of heap per byte), ${refused} refused`);
  t.true(accepted >= 5, 'enough accepted shapes for the bound to mean something');
});

test('measured: heap per byte of each hostile shape (1 MiB), decoded without the budget and with it', async (t) => {
  t.timeout(300_000);
  const probe = startProbe(t);
  for (const unit of UNIT_KINDS) {
    const r: Recipe = { units: [unit], nestDepth: 4, size: MiB, filler: 0, wrap: 0 };
    const raw = await probe(r, true);
    const budgeted = await probe(r);
    const ratio = (raw.heap! / raw.bytes).toFixed(1);
    t.log(
      `${unit}: ${ratio} x bytes without the budget; with it ${
        budgeted.refused ?? `${(budgeted.heap! / budgeted.bytes).toFixed(1)} x bytes`
      }`,
    );
    // Refused by the budget or within its bound.
    if (budgeted.heap !== undefined)
      t.true(budgeted.heap <= DECODE_COST_PER_BYTE * budgeted.bytes + DECODE_COST_ALLOWANCE, unit);
  }
});
