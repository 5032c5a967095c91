import { PassThrough } from 'node:stream';
import test from 'ava';
import { FrameReader, writeFramedMessage } from '../src/raw-framing.js';

function roundTrip(messages: Buffer[], readSize: number): Buffer[] {
  const out = new PassThrough({ highWaterMark: 1 << 30 });
  for (const m of messages) writeFramedMessage(out, m);
  out.end();
  const wire: Buffer[] = [];
  for (let chunk = out.read() as Buffer | null; chunk !== null; chunk = out.read() as Buffer | null)
    wire.push(chunk);
  const all = Buffer.concat(wire);
  const got: Buffer[] = [];
  const reader = new FrameReader((m) => got.push(Buffer.from(m)));
  for (let i = 0; i < all.length; i += readSize) reader.push(all.subarray(i, i + readSize));
  return got;
}

test('messages of every size class survive any read split', (t) => {
  const sizes = [1, 64, 4095, 4096, 65534, 65535, 65536, 200_000];
  const messages = sizes.map((n, i) => Buffer.alloc(n, i + 1));
  for (const readSize of [1, 7, 1000, 65536, 1 << 20]) {
    const got = roundTrip(messages, readSize);
    t.is(got.length, messages.length, `read size ${readSize}`);
    got.forEach((m, i) => {
      t.true(m.equals(messages[i]!), `message ${i} at read size ${readSize}`);
    });
  }
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
