import { PassThrough } from 'node:stream';
import test from 'ava';
import { FrameReader, PrefixReader, writeFramedMessage, writePrefixedMessage } from '../src/raw-framing.js';

const FRAMINGS = [
  { name: 'v1', write: writeFramedMessage, Reader: FrameReader },
  { name: '4-byte prefix', write: writePrefixedMessage, Reader: PrefixReader },
] as const;

function roundTrip(messages: Buffer[], readSize: number, framing: (typeof FRAMINGS)[number]): Buffer[] {
  const out = new PassThrough({ highWaterMark: 1 << 30 });
  for (const m of messages) framing.write(out, m);
  out.end();
  const wire: Buffer[] = [];
  for (let chunk = out.read() as Buffer | null; chunk !== null; chunk = out.read() as Buffer | null)
    wire.push(chunk);
  const all = Buffer.concat(wire);
  const got: Buffer[] = [];
  const reader = new framing.Reader((m) => got.push(Buffer.from(m)));
  for (let i = 0; i < all.length; i += readSize) reader.push(all.subarray(i, i + readSize));
  return got;
}

for (const framing of FRAMINGS) {
  test(`${framing.name}: messages of every size class survive any read split`, (t) => {
    const sizes = [1, 64, 4095, 4096, 65534, 65535, 65536, 200_000];
    const messages = sizes.map((n, i) => Buffer.alloc(n, i + 1));
    for (const readSize of [1, 7, 1000, 65536, 1 << 20]) {
      const got = roundTrip(messages, readSize, framing);
      t.is(got.length, messages.length, `read size ${readSize}`);
      got.forEach((m, i) => {
        t.true(m.equals(messages[i]!), `message ${i} at read size ${readSize}`);
      });
    }
  });
}

test('the prefix framing is a 4-byte big-endian length, then the message, unchunked', (t) => {
  const out = new PassThrough({ highWaterMark: 1 << 20 });
  writePrefixedMessage(out, Buffer.from([9, 8, 7]));
  t.deepEqual([...(out.read() as Buffer)], [0, 0, 0, 3, 9, 8, 7]);
  const big = Buffer.alloc(70_000, 5);
  writePrefixedMessage(out, big);
  const wire = out.read() as Buffer;
  t.is(wire.length, 4 + 70_000);
  t.is(wire.readUInt32BE(0), 70_000);
  t.throws(() => new PrefixReader(() => {}).push(Buffer.from([0, 0, 0, 0])));
});

test('frames use the 2-byte length + flag layout', (t) => {
  const out = new PassThrough();
  writeFramedMessage(out, Buffer.from([9, 8, 7]));
  t.deepEqual([...(out.read() as Buffer)], [0, 4, 1, 9, 8, 7]);
});

test('a zero-length frame is refused', (t) => {
  const reader = new FrameReader(() => {});
  t.throws(() => reader.push(Buffer.from([0, 0])));
});
