// `$ping` returns every msgpack value unchanged (issue 13): a hand-built client envelope, raw
// msgpack bytes for `p`, over a real unix-socket channel to serve(); the echo is compared byte
// for byte. Also: no `p` answers without `p`, `h.idem` is honoured, an invalid value is refused
// to its request id (the channel stays up).
import test from 'ava';
import type { SecureChannel } from '../src/channel/options.js';
import { decodeEnvelope } from '../src/envelope/decode.js';
import { EnvelopeKind } from '../src/envelope/types.js';
import { rawChannelToServer } from './fixtures/raw-rpc-peer.js';

const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ''), 'hex'));

async function pingServer(t: import('ava').ExecutionContext): Promise<SecureChannel> {
  return (await rawChannelToServer(t)).channel;
}

/** Each answer by id, as raw bytes. */
function answers(ch: SecureChannel): (id: number) => Promise<Uint8Array> {
  const got = new Map<number, Uint8Array>();
  const waiting = new Map<number, (b: Uint8Array) => void>();
  ch.on('message', (m: Uint8Array) => {
    const r = decodeEnvelope(m);
    const id = r.ok ? r.envelope.id : r.id;
    if (id === undefined) return;
    const w = waiting.get(id);
    if (w !== undefined) w(m);
    else got.set(id, m);
  });
  return (id) => {
    const have = got.get(id);
    if (have !== undefined) return Promise.resolve(have);
    return new Promise((resolve) => waiting.set(id, resolve));
  };
}

// A request envelope written by hand: fixmap of v, k, id (positive fixint), m = "$ping", then the
// optional h (raw bytes) and p (raw bytes), in the order given.
function request(id: number, p?: Uint8Array, h?: Uint8Array, pFirst = false): Uint8Array {
  const fields = 4 + (p ? 1 : 0) + (h ? 1 : 0);
  const parts: Uint8Array[] = [
    Uint8Array.from([0x80 | fields, 0xa1, 0x76, 0x01, 0xa1, 0x6b, 0x01, 0xa2, 0x69, 0x64, id]),
    hex('a16d a5 2470696e67'), // "m": "$ping"
  ];
  const pPart = p ? [hex('a170'), p] : [];
  const hPart = h ? [hex('a168'), h] : [];
  parts.push(...(pFirst ? [...pPart, ...hPart] : [...hPart, ...pPart]));
  return Buffer.concat(parts);
}

// The response the echo must be: fixmap of v, k = 2, id, and p with exactly the bytes sent.
function response(id: number, p?: Uint8Array): Uint8Array {
  const head = Uint8Array.from([p ? 0x84 : 0x83, 0xa1, 0x76, 0x01, 0xa1, 0x6b, 0x02, 0xa2, 0x69, 0x64, id]);
  return p ? Buffer.concat([head, hex('a170'), p]) : head;
}

const CASES: [name: string, p: string][] = [
  ['uint 64 beyond 2^53 (2^64 - 1)', 'cf ffffffffffffffff'],
  ['int 64 beyond -2^53 (-2^63)', 'd3 8000000000000000'],
  ['2^53 + 1 as uint 64', 'cf 0020000000000001'],
  ['a map with integer keys', '82 01 a1 61 ff a1 62'],
  ['a map with a binary key', '81 c4 02 0102 a1 78'],
  ['a map with nil, bool and float keys', '83 c0 01 c3 02 cb 3ff8000000000000 03'],
  ['float 32', 'ca 3fc00000'],
  ['float 32 NaN with a payload', 'ca 7fc00001'],
  ['a non-canonical uint (1 as uint 32)', 'ce 00000001'],
  ['a non-canonical str (str 16 of 1 byte)', 'da 0001 61'],
  ['a non-canonical array (array 32 of 1)', 'dd 00000001 c0'],
  ['an unknown ext type', 'd5 05 abcd'],
  ['a timestamp with nanoseconds (ext -1, 64-bit)', 'd7 ff 00000004 00000001'],
  ['a UTF-8 BOM and multi-byte text', 'a9 efbbbf c3a9 f09f9880'],
  ['ext 1 (Map) and ext 2 (Set)', '92 d6 01 92 a161 01 d5 02 91 c3'],
  ['a __proto__ key', '81 a9 5f5f70726f746f5f5f 01'],
];

test('$ping echoes every msgpack value byte for byte, whatever the encoding (issue 13)', async (t) => {
  const ch = await pingServer(t);
  const answer = answers(ch);
  let id = 1;
  for (const [name, p] of CASES) {
    const bytes = hex(p);
    await ch.send(request(id, bytes));
    t.deepEqual(Buffer.from(await answer(id)), Buffer.from(response(id, bytes)), name);
    id++;
  }
  // p after h, and p before h: both layouts (fast and generic decode paths) echo the same bytes.
  const p = hex('cf ffffffffffffffff');
  await ch.send(request(id, p, hex('81 a7 74696d656f7574 cd 2710'), true)); // h: { timeout: 10000 }
  t.deepEqual(Buffer.from(await answer(id)), Buffer.from(response(id, p)), 'p before h');
  id++;
  await ch.send(request(id, p, hex('81 a7 74696d656f7574 cd 2710')));
  t.deepEqual(Buffer.from(await answer(id)), Buffer.from(response(id, p)), 'h before p');
});

test('$ping without p answers without p', async (t) => {
  const ch = await pingServer(t);
  const answer = answers(ch);
  await ch.send(request(9));
  t.deepEqual(Buffer.from(await answer(9)), Buffer.from(response(9)));
});

test('$ping honours h.idem: a repeat returns the first payload, another payload under the key conflicts', async (t) => {
  const ch = await pingServer(t);
  const answer = answers(ch);
  const idem = hex('81 a4 6964656d a3 6b6579'); // { idem: "key" }
  const first = hex('ca 3fc00000');
  await ch.send(request(1, first, idem));
  t.deepEqual(Buffer.from(await answer(1)), Buffer.from(response(1, first)));
  await ch.send(request(2, first, idem));
  t.deepEqual(Buffer.from(await answer(2)), Buffer.from(response(2, first)), 'the repeat: the first payload');
  await ch.send(request(3, hex('ca 40000000'), idem));
  const conflict = decodeEnvelope(await answer(3));
  t.true(conflict.ok);
  if (conflict.ok) {
    t.is(conflict.envelope.k, EnvelopeKind.Error);
    t.is(conflict.envelope.e?.code, 'SIPC_ERR_IDEMPOTENCY_CONFLICT');
  }
  // Without the key, each ping is its own.
  await ch.send(request(4, hex('ca 40000000')));
  t.deepEqual(Buffer.from(await answer(4)), Buffer.from(response(4, hex('ca 40000000'))));
});

test('$ping with a value the value model refuses is answered SIPC_ERR_BAD_ENVELOPE to its id; the channel stays up', async (t) => {
  const ch = await pingServer(t);
  const answer = answers(ch);
  const refused: [string, string][] = [
    ['invalid UTF-8', 'a2 c328'],
    ['an encoded surrogate (CESU)', 'a3 eda080'],
    ['an overlong encoding', 'a2 c0af'],
    ['a duplicate key', '82 a161 01 a161 02'],
    ['a duplicate integer key', '82 01 01 01 02'],
    ['a timestamp of 5 bytes', 'c7 05 ff 0000000000'],
    ['a timestamp with 10^9 nanoseconds', 'd7 ff ee6b2800 00000000'],
    ['ext 1 whose payload is not an array', 'd4 01 01'],
    ['ext 1 with an odd number of items', 'd5 01 91 01'],
    ['a map key that is an array', '81 90 01'],
  ];
  let id = 1;
  for (const [name, p] of refused) {
    await ch.send(request(id, hex(p)));
    const r = decodeEnvelope(await answer(id));
    t.true(r.ok, name);
    if (r.ok) {
      t.is(r.envelope.k, EnvelopeKind.Error, name);
      t.is(r.envelope.e?.code, 'SIPC_ERR_BAD_ENVELOPE', name);
    }
    id++;
  }
  await ch.send(request(id, hex('01')));
  t.deepEqual(Buffer.from(await answer(id)), Buffer.from(response(id, hex('01'))), 'still serving');
});
