import test from 'ava';
import { isSecureIpcError } from '../src/errors.js';
import { encodeFrame, FrameDecoder } from '../src/framing.js';

function drain(decoder: FrameDecoder): Buffer[] {
  const frames: Buffer[] = [];
  for (let f = decoder.next(); f !== undefined; f = decoder.next()) frames.push(Buffer.from(f));
  return frames;
}

test('frames round-trip whole, byte at a time, and many per chunk', (t) => {
  const bodies = [Buffer.from('a'), Buffer.alloc(300, 7), Buffer.alloc(65_535, 9)];
  const wire = Buffer.concat(bodies.map((b) => encodeFrame(b)));
  t.deepEqual(wire.subarray(0, 3), Buffer.from([0, 1, 0x61]));

  const whole = new FrameDecoder();
  whole.push(wire);
  t.deepEqual(drain(whole), bodies);
  t.notThrows(() => whole.end());

  const bytewise = new FrameDecoder();
  const got: Buffer[] = [];
  for (let i = 0; i < wire.length; i++) {
    bytewise.push(wire.subarray(i, i + 1));
    got.push(...drain(bytewise));
  }
  t.deepEqual(got, bodies);
});

test('a zero-length frame is SIPC_ERR_FRAME_EMPTY', (t) => {
  const d = new FrameDecoder();
  d.push(Buffer.from([0, 0, 1, 2]));
  t.true(
    isSecureIpcError(
      t.throws(() => d.next()),
      'SIPC_ERR_FRAME_EMPTY',
    ),
  );
  t.true(
    isSecureIpcError(
      t.throws(() => encodeFrame(new Uint8Array(0))),
      'SIPC_ERR_FRAME_EMPTY',
    ),
  );
});

test('an oversized frame is refused from its header alone, before its body is buffered', (t) => {
  const d = new FrameDecoder(1024);
  d.push(Buffer.from([0x04, 0x01])); // 1025, and no body bytes at all
  const err = t.throws(() => d.next());
  t.true(isSecureIpcError(err, 'SIPC_ERR_FRAME_TOO_LARGE'));
  t.true(
    isSecureIpcError(
      t.throws(() => encodeFrame(new Uint8Array(65_536))),
      'SIPC_ERR_FRAME_TOO_LARGE',
    ),
  );
});

test('a stream ending inside a header or a body is SIPC_ERR_TRUNCATED', (t) => {
  const frame = encodeFrame(Buffer.from('hello'));
  for (const cut of [1, 2, 4]) {
    const d = new FrameDecoder();
    d.push(frame.subarray(0, cut));
    t.is(d.next(), undefined);
    t.true(
      isSecureIpcError(
        t.throws(() => d.end()),
        'SIPC_ERR_TRUNCATED',
      ),
      `cut at ${cut}`,
    );
  }
});
