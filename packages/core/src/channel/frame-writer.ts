/**
 * The sending half of the transport phase: a message becomes frames of 1 flag byte + chunk,
 * encrypted in place, batched into few writes, with the sending key rekeyed on the thresholds.
 * Wire format: docs/protocol.md, "Transport phase".
 */
import {
  FLAG_LAST,
  FLAG_REKEY,
  FLAG_SIZE,
  FRAME_HEADER_SIZE,
  MAX_CHUNK_SIZE,
  TAG_LENGTH,
} from '../constants.js';
import type { NoiseCipherState } from '../handshake/cipher-state.js';
import type { Connection } from '../transport/contract.js';
import type { RekeyOptions } from './options.js';

/** Frames per write: about 1 MiB, few syscalls for bulk without holding huge buffers. */
const BATCH_FRAMES = 16;
/** Bytes on the wire per frame besides its chunk. */
const FRAME_OVERHEAD = FRAME_HEADER_SIZE + FLAG_SIZE + TAG_LENGTH;
/** The same ~1 MiB per write for smaller chunks (only `sendChunked` picks them). */
const BATCH_BYTES = BATCH_FRAMES * (MAX_CHUNK_SIZE + FRAME_OVERHEAD);

/** Encrypts and writes whole messages as transport frames on one connection. */
export class FrameWriter {
  private frames = 0;
  private bytes = 0;
  private keySince = Date.now();
  private corked = false;

  /** Write with `tx` on `connection`; `waitDrain` resolves on the connection's next 'drain'. */
  constructor(
    private readonly connection: Connection,
    /** The sending cipher state (the channel wipes it on close). */
    readonly tx: NoiseCipherState,
    private readonly rekey: Readonly<Required<RekeyOptions>>,
    private readonly waitDrain: () => Promise<void>,
  ) {}

  // Writes made in one tick leave in one writev: the transport is corked on the first write of a
  // tick and uncorked on the next process tick. Pipelining (64 requests sent in one tick, and the
  // server's 64 synchronous replies while pump() delivers one socket read) otherwise made one
  // write syscall per message, the largest single item (24-27% of busy time) in the profiles.
  /** Hand what this tick wrote to the transport now. */
  readonly uncork = (): void => {
    if (!this.corked) return;
    this.corked = false;
    this.connection.uncork();
  };

  private corkForTick(): void {
    if (this.corked) return;
    this.corked = true;
    this.connection.cork();
    process.nextTick(this.uncork);
  }

  /**
   * Encrypt and write the message's frames, batched so each write carries up to BATCH_FRAMES
   * frames: header, flag, chunk and tag sit in one buffer (encrypted in place, no concatenation).
   * Returns undefined when everything was accepted without backpressure, else a promise that
   * waits for 'drain' between batches (the rest of the message must follow in order).
   *
   * `chunkSize` and `final` are for `sendChunked` (tests of a receiver's limits): chunks of at
   * most `chunkSize` bytes, and the last frame marked last only if `final`. `lastFlags` are
   * set on the last frame besides LAST (FLAG_CONTROL for a control message, sent as one frame).
   *
   * With `tail`, the message is `message` followed by `tail` (an RPC envelope and its binary
   * payload, not joined: each is copied once, straight into the frames). A message that needs
   * more than one batch is joined first, so nothing is read from `tail` after this call returns.
   */
  write(
    message: Uint8Array,
    chunkSize = MAX_CHUNK_SIZE,
    final = true,
    lastFlags = 0,
    tail?: Uint8Array,
  ): Promise<void> | undefined {
    const perBatch =
      chunkSize === MAX_CHUNK_SIZE ? BATCH_FRAMES : Math.floor(BATCH_BYTES / (chunkSize + FRAME_OVERHEAD));
    if (tail !== undefined && message.byteLength + tail.byteLength > perBatch * chunkSize) {
      message = Buffer.concat([message, tail]);
      tail = undefined;
    }
    const total = message.byteLength + (tail?.byteLength ?? 0);
    let offset = 0;
    const writeBatch = (): boolean => {
      const now = Date.now();
      const frames = Math.min(perBatch, Math.max(1, Math.ceil((total - offset) / chunkSize)));
      const chunkBytes = Math.min(total - offset, frames * chunkSize);
      const batch = Buffer.allocUnsafe(chunkBytes + frames * FRAME_OVERHEAD);
      let at = 0;
      for (let i = 0; i < frames; i++) {
        const size = Math.min(chunkSize, total - offset);
        const bodyLength = FLAG_SIZE + size + TAG_LENGTH;
        batch[at] = bodyLength >>> 8;
        batch[at + 1] = bodyLength & 0xff;
        const body = batch.subarray(at + FRAME_HEADER_SIZE, at + FRAME_HEADER_SIZE + bodyLength);
        offset += size;
        let flags = offset === total && final ? FLAG_LAST | lastFlags : 0;
        this.frames++;
        this.bytes += size;
        if (
          this.frames >= this.rekey.messages ||
          this.bytes >= this.rekey.bytes ||
          now - this.keySince >= this.rekey.intervalMs
        )
          flags |= FLAG_REKEY;
        body[0] = flags;
        // A one-frame message is copied as is (a subarray per message showed in the profiles).
        if (tail !== undefined) copySpan(message, tail, offset - size, offset, body, FLAG_SIZE);
        else body.set(size === total ? message : message.subarray(offset - size, offset), FLAG_SIZE);
        this.tx.encrypt(body, body.subarray(0, FLAG_SIZE + size));
        if (flags & FLAG_REKEY) {
          this.tx.rekey();
          this.frames = 0;
          this.bytes = 0;
          this.keySince = now;
        }
        at += FRAME_HEADER_SIZE + bodyLength;
      }
      return this.connection.write(batch);
    };
    this.corkForTick();
    let accepted = writeBatch();
    while (accepted && offset < total) accepted = writeBatch();
    if (accepted) return undefined;
    return (async () => {
      await this.waitDrain();
      while (offset < total) if (!writeBatch()) await this.waitDrain();
    })();
  }
}

// Copy bytes [from, to) of `first` followed by `second` into `out` at `at`.
function copySpan(
  first: Uint8Array,
  second: Uint8Array,
  from: number,
  to: number,
  out: Uint8Array,
  at: number,
): void {
  const split = first.byteLength;
  if (from < split) {
    const end = Math.min(to, split);
    out.set(from === 0 && end === split ? first : first.subarray(from, end), at);
    at += end - from;
    from = end;
  }
  if (from < to)
    out.set(
      from === split && to - split === second.byteLength ? second : second.subarray(from - split, to - split),
      at,
    );
}
