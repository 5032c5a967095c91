/**
 * The raw baselines' framings, no crypto at all (issue 14, item 1):
 * - `prefix`: a plain 4-byte big-endian length, then the message, no chunking: what a careful
 *   application on a plain `net` socket would write. This is the `raw-*` rows' framing, the
 *   physical limit every ratio is taken against.
 * - `v1`: the same outer format as secure-ipc's wire protocol v1 (2-byte big-endian length L in
 *   1..65535, then L bytes = 1 flag byte + a chunk, flag bit 0 = last chunk of a message): the
 *   extra `raw-v1-*` rows, Node doing secure-ipc's frame layout without the security.
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

/** Write `message` (any length >= 1) onto `out` behind a 4-byte length; returns what `write` returned. */
export function writePrefixedMessage(out: Writable, message: Uint8Array): boolean {
  if (message.length < COPY_BELOW) {
    const frame = Buffer.allocUnsafe(4 + message.length);
    frame.writeUInt32BE(message.length, 0);
    frame.set(message, 4);
    return out.write(frame);
  }
  const header = Buffer.allocUnsafe(4);
  header.writeUInt32BE(message.length, 0);
  out.cork();
  out.write(header);
  const ok = out.write(message);
  out.uncork();
  return ok;
}

/**
 * Unconsumed socket reads, oldest first: the two readers' shared buffer. `take` slices (no copy)
 * when the bytes sit in one read, else copies them into one buffer.
 */
export class ReadQueue {
  // Reads from #head on are unconsumed (an index, not shift(): a message that arrives in many
  // small reads would make shift() quadratic).
  #queue: Buffer[] = [];
  #head = 0;
  /** Total length of the reads held. */
  length = 0;

  push(data: Buffer): void {
    this.#queue.push(data);
    this.length += data.length;
  }

  /** Byte `i` from the front (`i` < length). */
  at(i: number): number {
    for (let j = this.#head; j < this.#queue.length; j++) {
      const b = this.#queue[j]!;
      if (i < b.length) return b[i]!;
      i -= b.length;
    }
    throw new RangeError('raw framing: read past the queue');
  }

  // Remove n bytes from the front; a slice (no copy) when they sit in one socket read.
  take(n: number): Buffer {
    this.length -= n;
    const first = this.#queue[this.#head]!;
    let out: Buffer;
    if (first.length >= n) {
      if (first.length === n) this.#head++;
      else this.#queue[this.#head] = first.subarray(n);
      out = first.subarray(0, n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const head = this.#queue[this.#head]!;
        const k = Math.min(head.length, n - filled);
        head.copy(out, filled, 0, k);
        filled += k;
        if (k === head.length) this.#head++;
        else this.#queue[this.#head] = head.subarray(k);
      }
    }
    if (this.#head === this.#queue.length) {
      this.#queue = [];
      this.#head = 0;
    } else if (this.#head >= 1024) {
      this.#queue = this.#queue.slice(this.#head);
      this.#head = 0;
    }
    return out;
  }
}

/** Incremental reader of the 4-byte prefix framing: socket reads in, whole messages out. */
export class PrefixReader {
  readonly #onMessage: (message: Buffer) => void;
  readonly #reads = new ReadQueue();

  constructor(onMessage: (message: Buffer) => void) {
    this.#onMessage = onMessage;
  }

  push(data: Buffer): void {
    const reads = this.#reads;
    reads.push(data);
    while (reads.length >= 4) {
      const length = ((reads.at(0) << 24) | (reads.at(1) << 16) | (reads.at(2) << 8) | reads.at(3)) >>> 0;
      if (length === 0) throw new Error('raw framing: zero-length message');
      if (reads.length < 4 + length) return;
      reads.take(4);
      this.#onMessage(reads.take(length));
    }
  }
}

/** Incremental reader of the v1 framing: push socket reads in, get whole messages out through `onMessage`. */
export class FrameReader {
  readonly #onMessage: (message: Buffer) => void;
  readonly #reads = new ReadQueue();
  // Chunks of a message whose last frame has not arrived yet.
  #parts: Buffer[] = [];

  constructor(onMessage: (message: Buffer) => void) {
    this.#onMessage = onMessage;
  }

  push(data: Buffer): void {
    const reads = this.#reads;
    reads.push(data);
    for (;;) {
      if (reads.length < 2) return;
      const length = (reads.at(0) << 8) | reads.at(1);
      if (length === 0) throw new Error('raw framing: zero-length frame');
      if (reads.length < 2 + length) return;
      const frame = reads.take(2 + length);
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
}
