import { randomBytes } from 'node:crypto';
import { PassThrough } from 'node:stream';
import test from 'ava';
import { SealedReader, SealState, writeSealed } from '../src/sealed-framing.js';

function wireOf(key: Buffer, messages: Buffer[]): Buffer {
  const out = new PassThrough({ highWaterMark: 1 << 30 });
  const state = new SealState(key);
  for (const m of messages) writeSealed(out, state, m);
  out.end();
  const parts: Buffer[] = [];
  for (let chunk = out.read() as Buffer | null; chunk !== null; chunk = out.read() as Buffer | null)
    parts.push(chunk);
  return Buffer.concat(parts);
}

function readAll(key: Buffer, wire: Buffer, readSize: number, maxMessage?: number): Buffer[] {
  const got: Buffer[] = [];
  const reader = new SealedReader(new SealState(key), (m) => got.push(Buffer.from(m)), maxMessage);
  // Copies, as socket reads are: the reader decrypts in place.
  for (let i = 0; i < wire.length; i += readSize) reader.push(Buffer.from(wire.subarray(i, i + readSize)));
  return got;
}

test('sealed framing: messages of every size class survive any read split, encrypted on the wire', (t) => {
  const key = randomBytes(32);
  const messages = [1, 64, 4096, 65535, 65536, 200_000].map((n, i) => Buffer.alloc(n, i + 1));
  const wire = wireOf(key, messages);
  t.is(wire.indexOf(Buffer.alloc(64, 2)), -1, 'no plaintext run on the wire');
  for (const readSize of [1, 7, 65536, 1 << 20]) t.deepEqual(readAll(key, wire, readSize), messages);
});

test('sealed framing: a flipped bit in the flag byte or the ciphertext is refused, in the length delivers nothing', (t) => {
  const key = randomBytes(32);
  const wire = wireOf(key, [Buffer.alloc(100, 9)]);
  for (const at of [4, 5, 60, wire.length - 1]) {
    const bad = Buffer.from(wire);
    bad[at]! ^= 1;
    t.throws(() => readAll(key, bad, 1 << 20), undefined, `byte ${at}`);
  }
  // A longer length waits for bytes that never come (the stream ends truncated); a shorter one fails its tag.
  const longer = Buffer.from(wire);
  longer[3]! ^= 1;
  t.deepEqual(readAll(key, longer, 1 << 20), []);
  const shorter = Buffer.from(wire);
  shorter[3]! ^= 4; // 116 -> 112 bytes
  t.throws(() => readAll(key, shorter, 1 << 20));
  t.throws(() => readAll(randomBytes(32), wire, 1 << 20), undefined, 'another key');
});

test('sealed framing: a record longer than the limit is refused from its header alone', (t) => {
  const key = randomBytes(32);
  const wire = wireOf(key, [Buffer.alloc(1000, 1)]);
  t.throws(() => readAll(key, wire.subarray(0, 5), 5, 999), { message: /bad record length/ });
});
