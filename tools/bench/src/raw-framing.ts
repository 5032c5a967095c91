/**
 * The raw baseline's framing: the same outer format as secure-ipc's wire protocol v1 (2-byte
 * big-endian length L in 1..65535, then L bytes = 1 flag byte + a chunk, flag bit 0 = last chunk
 * of a message) with no crypto at all. That makes the raw row the physical limit of Node doing
 * the same message framing over the same socket, so the ratios isolate what the security costs.
 *
 * The code is written to be as cheap as a careful implementation would be, so the baseline is not
 * a strawman: small frames are built in one buffer (one copy beats a writev of two tiny buffers),
 * big chunks go out as header + body with cork/uncork (writev, no copy of the body), and the
 * reader slices complete frames out of a socket read without copying.
 */
import type { Writable } from 'node:stream';

/** Largest frame body (flag + chunk) that fits the 2-byte length. */
export const MAX_FRAME = 65535;
const MAX_CHUNK = MAX_FRAME - 1;
const FLAG_LAST = 1;
// Below this one copied buffer (one write) is used, above it header + body go out as a writev
// without copying the body. The threshold is a judgement call, not tuned on this benchmark.
const COPY_BELOW = 4096;

/** Frame `message` (any length >= 1) onto `out`; returns what the last `write` returned. */
export function writeFramedMessage(out: Writable, message: Uint8Array): boolean {
  let ok = true;
  let offset = 0;
  const big = message.length >= COPY_BELOW;
  if (big) out.cork();
  do {
    const n = Math.min(MAX_CHUNK, message.length - offset);
    const last = offset + n === message.length;
    if (n < COPY_BELOW) {
      const frame = Buffer.allocUnsafe(3 + n);
      frame.writeUInt16BE(n + 1, 0);
      frame[2] = last ? FLAG_LAST : 0;
      frame.set(message.subarray(offset, offset + n), 3);
      ok = out.write(frame);
    } else {
      const header = Buffer.allocUnsafe(3);
      header.writeUInt16BE(n + 1, 0);
      header[2] = last ? FLAG_LAST : 0;
      out.write(header);
      ok = out.write(message.subarray(offset, offset + n));
    }
    offset += n;
  } while (offset < message.length);
  if (big) out.uncork();
  return ok;
}

/** Incremental reader: push socket reads in, get whole messages out through `onMessage`. */
export class FrameReader {
  readonly #onMessage: (message: Buffer) => void;
  // Unconsumed socket reads, oldest first; #queued is their total length.
  #queue: Buffer[] = [];
  #queued = 0;
  // Chunks of a message whose last frame has not arrived yet.
  #parts: Buffer[] = [];

  constructor(onMessage: (message: Buffer) => void) {
    this.#onMessage = onMessage;
  }

  push(data: Buffer): void {
    this.#queue.push(data);
    this.#queued += data.length;
    for (;;) {
      if (this.#queued < 2) return;
      const length = this.#peekLength();
      if (length === 0) throw new Error('raw framing: zero-length frame');
      if (this.#queued < 2 + length) return;
      const frame = this.#take(2 + length);
      const chunk = frame.subarray(3);
      if ((frame[2]! & FLAG_LAST) === 0) {
        this.#parts.push(chunk);
      } else if (this.#parts.length === 0) {
        this.#onMessage(chunk);
      } else {
        this.#parts.push(chunk);
        const message = Buffer.concat(this.#parts);
        this.#parts = [];
        this.#onMessage(message);
      }
    }
  }

  #peekLength(): number {
    const first = this.#queue[0]!;
    if (first.length >= 2) return first.readUInt16BE(0);
    return (first[0]! << 8) | this.#queue[1]![0]!;
  }

  // Remove n bytes from the front; a slice (no copy) when they sit in one socket read.
  #take(n: number): Buffer {
    this.#queued -= n;
    const first = this.#queue[0]!;
    if (first.length >= n) {
      if (first.length === n) this.#queue.shift();
      else this.#queue[0] = first.subarray(n);
      return first.subarray(0, n);
    }
    const out = Buffer.allocUnsafe(n);
    let filled = 0;
    while (filled < n) {
      const head = this.#queue[0]!;
      const k = Math.min(head.length, n - filled);
      head.copy(out, filled, 0, k);
      filled += k;
      if (k === head.length) this.#queue.shift();
      else this.#queue[0] = head.subarray(k);
    }
    return out;
  }
}
