/**
 * Length-prefixed framing: every message on the stream is a 2-byte big-endian length L
 * (1..limit) and L bytes. The decoder checks each length as soon as its header arrives, so
 * nothing bigger than one frame is buffered before it is checked. The reader attaches a decoder
 * to a connection, once, for the handshake and then the channel.
 */
import { FRAME_HEADER_SIZE, MAX_FRAME_SIZE } from './constants.js';
import { createError, type SecureIpcError } from './errors.js';
import type { Connection } from './transport/contract.js';

const EMPTY = Buffer.alloc(0);

/** Prefix `body` with its 2-byte length (one buffer, so it goes out in one write). */
export function encodeFrame(body: Uint8Array): Buffer {
  if (body.byteLength === 0)
    throw createError('SIPC_ERR_FRAME_EMPTY', 'Refusing to send a zero-length frame');
  if (body.byteLength > MAX_FRAME_SIZE)
    throw createError(
      'SIPC_ERR_FRAME_TOO_LARGE',
      `Frame of ${body.byteLength} bytes exceeds ${MAX_FRAME_SIZE}`,
    );
  const out = Buffer.allocUnsafe(FRAME_HEADER_SIZE + body.byteLength);
  out.writeUInt16BE(body.byteLength, 0);
  out.set(body, FRAME_HEADER_SIZE);
  return out;
}

/** Incremental frame parser: `push` stream chunks, then call `next` until it returns undefined. */
export class FrameDecoder {
  /** The largest frame length accepted in the current phase. */
  limit: number;
  private readonly chunks: Buffer[] = [];
  private head = 0; // index of the first unread chunk
  private offset = 0; // read position inside chunks[head]
  private total = 0; // unread bytes across chunks
  private frameLength = -1; // length of the frame being collected, -1 while waiting for a header

  /** Create a decoder accepting frames up to `limit` bytes. */
  constructor(limit: number = MAX_FRAME_SIZE) {
    this.limit = limit;
  }

  /** True if any unread byte is held (a partial frame, or frames not yet taken). */
  get partial(): boolean {
    return this.frameLength >= 0 || this.total > 0;
  }

  /** Unread bytes held (frames not yet taken and a partial one). */
  get buffered(): number {
    return this.total;
  }

  /** Append a chunk read from the stream. */
  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    this.chunks.push(chunk);
    this.total += chunk.length;
  }

  /**
   * The next complete frame body, or undefined if more bytes are needed. Throws
   * `SIPC_ERR_FRAME_EMPTY` / `SIPC_ERR_FRAME_TOO_LARGE` as soon as a bad header arrives.
   * The returned buffer may be a view into a pushed chunk: the caller owns it from then on.
   */
  next(): Buffer | undefined {
    if (this.frameLength < 0) {
      if (this.total < FRAME_HEADER_SIZE) return undefined;
      // Read the two length bytes in place when they sit in one chunk (the common case): a
      // 2-byte subarray per frame was part of the Buffer#subarray churn in the profiles.
      let length: number;
      const first = this.chunks[this.head]!;
      if (first.length - this.offset >= FRAME_HEADER_SIZE) {
        length = (first[this.offset]! << 8) | first[this.offset + 1]!;
        this.advance(FRAME_HEADER_SIZE);
        this.total -= FRAME_HEADER_SIZE;
      } else {
        const header = this.take(FRAME_HEADER_SIZE);
        length = (header[0]! << 8) | header[1]!;
      }
      if (length === 0) throw createError('SIPC_ERR_FRAME_EMPTY');
      if (length > this.limit)
        throw createError(
          'SIPC_ERR_FRAME_TOO_LARGE',
          `Frame of ${length} bytes exceeds the limit of ${this.limit}`,
          {
            details: { length, limit: this.limit },
          },
        );
      this.frameLength = length;
    }
    if (this.total < this.frameLength) return undefined;
    const frame = this.take(this.frameLength);
    this.frameLength = -1;
    return frame;
  }

  /** Call when the stream ended: throws `SIPC_ERR_TRUNCATED` if it ended inside a frame. */
  end(): void {
    if (this.partial) throw createError('SIPC_ERR_TRUNCATED');
  }

  /** Drop everything buffered. */
  clear(): void {
    this.chunks.length = 0;
    this.head = 0;
    this.offset = 0;
    this.total = 0;
    this.frameLength = -1;
  }

  // Zero-copy when the bytes sit in one chunk (the common case); one copy when they straddle chunks.
  // Consumed chunks are dropped by advancing `head` (Array#shift would make a byte-at-a-time
  // stream quadratic) and compacted once half the array is dead.
  private take(n: number): Buffer {
    const first = this.chunks[this.head]!;
    let out: Buffer;
    if (first.length - this.offset >= n) {
      out = first.subarray(this.offset, this.offset + n);
      this.advance(n);
    } else {
      out = Buffer.allocUnsafe(n);
      let filled = 0;
      while (filled < n) {
        const chunk = this.chunks[this.head]!;
        const count = Math.min(chunk.length - this.offset, n - filled);
        chunk.copy(out, filled, this.offset, this.offset + count);
        filled += count;
        this.advance(count);
      }
    }
    this.total -= n;
    return out;
  }

  private advance(count: number): void {
    this.offset += count;
    if (this.offset < this.chunks[this.head]!.length) return;
    this.chunks[this.head++] = EMPTY;
    this.offset = 0;
    if (this.head === this.chunks.length) {
      this.chunks.length = 0;
      this.head = 0;
    } else if (this.head > 1024 && this.head * 2 > this.chunks.length) {
      this.chunks.splice(0, this.head);
      this.head = 0;
    }
  }
}

/** What a `FrameReader` tells the layer that currently reads frames (the handshake, then the channel). */
export interface FrameReaderOwner {
  /** Bytes arrived or the peer ended its side: take frames with `next()`; `ended` says which. */
  onReadable(): void;
  /** The connection closed; `ended` says whether the peer ended its side cleanly first. */
  onClose(): void;
  /** The connection failed (`SIPC_ERR_CONNECTION_CLOSED`, the transport's error as `cause`). */
  onFailure(error: SecureIpcError): void;
}

const NO_OWNER: FrameReaderOwner = { onReadable() {}, onClose() {}, onFailure() {} };

/**
 * The one reader of frames from a connection, for the handshake and then the channel: it listens
 * to the connection once, feeds a `FrameDecoder` and tells its current owner. The handshake hands
 * the same reader to the channel (`handTo`), so no byte, end or close that arrives between the
 * last handshake message and the first transport frame can fall between two sets of listeners.
 */
export class FrameReader {
  /** The peer ended its side of the stream. */
  ended = false;
  /** The connection closed. */
  closed: boolean;
  readonly #decoder: FrameDecoder;
  #owner: FrameReaderOwner;
  #attached = true;
  readonly #onData = (chunk: Buffer) => {
    this.#decoder.push(chunk);
    this.#owner.onReadable();
  };
  readonly #onEnd = () => {
    this.ended = true;
    this.#owner.onReadable();
  };
  readonly #onClose = () => {
    this.closed = true;
    this.#owner.onClose();
  };
  readonly #onError = (err: Error) =>
    this.#owner.onFailure(createError('SIPC_ERR_CONNECTION_CLOSED', 'The connection failed', { cause: err }));

  /** Start reading frames of at most `limit` bytes from `connection` for `owner`. */
  constructor(
    private readonly connection: Connection,
    limit: number,
    owner: FrameReaderOwner,
  ) {
    this.#decoder = new FrameDecoder(limit);
    this.#owner = owner;
    this.closed = connection.destroyed;
    connection.on('data', this.#onData);
    connection.on('end', this.#onEnd);
    connection.on('close', this.#onClose);
    connection.on('error', this.#onError);
  }

  /** The largest frame accepted from now on. */
  set limit(limit: number) {
    this.#decoder.limit = limit;
  }

  /** True if any unread byte is held (a partial frame, or frames not yet taken). */
  get partial(): boolean {
    return this.#decoder.partial;
  }

  /** Unread bytes held by the decoder. */
  get buffered(): number {
    return this.#decoder.buffered;
  }

  /** The next complete frame, or undefined (see `FrameDecoder.next`). */
  next(): Buffer | undefined {
    return this.#decoder.next();
  }

  /** Throws `SIPC_ERR_TRUNCATED` if the stream ended inside a frame. */
  end(): void {
    this.#decoder.end();
  }

  /** Give the reader to another owner; until it calls `resume`, the connection stays paused. */
  handTo(owner: FrameReaderOwner | undefined): void {
    this.#owner = owner ?? NO_OWNER;
  }

  /** Stop reading from the connection. */
  pause(): void {
    this.connection.pause();
  }

  /** Read from the connection again. */
  resume(): void {
    this.connection.resume();
  }

  /** Stop listening and drop what is buffered; a late transport error is swallowed from now on. */
  detach(): void {
    this.#decoder.clear();
    this.#owner = NO_OWNER;
    if (!this.#attached) return;
    this.#attached = false;
    this.connection.off('data', this.#onData);
    this.connection.off('end', this.#onEnd);
    this.connection.off('close', this.#onClose);
    this.connection.off('error', this.#onError);
    // A late socket error after we let go must not become an uncaught exception.
    if (this.connection.listenerCount('error') === 0) this.connection.on('error', () => {});
  }
}
