/**
 * The receiving half of the transport phase: each frame is decrypted in place, its flag byte
 * checked (reserved bits, rekey), and chunks are joined until the last one of a message, with
 * the message size limit checked before a chunk is kept. Wire format: docs/protocol.md.
 *
 * Memory held for a message in progress is at most twice the bytes counted against
 * `maxMessageSize`, plus one small tail buffer (docs/limits.md, "Channel"): a chunk is kept as a
 * view of its socket read only when it is large and makes up at least half of that read;
 * anything else is copied into a tail buffer that grows by doubling and is never less than half
 * full when it is set aside. Keeping every chunk as a view let a peer make the receiver hold
 * ~128 bytes per byte counted with one-byte chunks (each a Buffer object pinning its read).
 */
import { FLAG_CONTROL, FLAG_LAST, FLAG_REKEY, FLAG_SIZE, MIN_TRANSPORT_FRAME_SIZE } from '../constants.js';
import { createError } from '../errors.js';
import type { NoiseCipherState } from '../handshake/cipher-state.js';

/** Smallest chunk kept as a view of its socket read (below it, a Buffer object costs too much). */
const MIN_VIEW_BYTES = 4096;
/** First capacity of the tail buffer that collects small chunks. */
const TAIL_MIN_BYTES = 1024;
/** Largest tail buffer; a fuller one is set aside and a new one started. */
const TAIL_MAX_BYTES = 64 * 1024;

/** What `open` returns for a control frame (protocol version 2); its chunk is in `control`. */
export const CONTROL_FRAME: unique symbol = Symbol('control frame');

/** Decrypts transport frames and reassembles whole messages. */
export class Reassembly {
  /** The chunk of the control frame `open` just returned CONTROL_FRAME for (a view, valid until the next frame). */
  control: Uint8Array | undefined;
  private parts: Buffer[] = [];
  private partsSize = 0;
  private tail: Buffer | undefined;
  private tailLength = 0;

  /** Flag bits a frame may carry: LAST and REKEY, and CONTROL on version-2 channels. */
  private readonly allowedFlags: number;

  /** Read with `rx`; refuse messages over `maxMessageSize` bytes; `version` is the channel's protocol version. */
  constructor(
    /** The receiving cipher state (the channel wipes it on close). */
    readonly rx: NoiseCipherState,
    private readonly maxMessageSize: number,
    version = 1,
  ) {
    this.allowedFlags = FLAG_LAST | FLAG_REKEY | (version >= 2 ? FLAG_CONTROL : 0);
  }

  /** True while a message is half received. */
  get partial(): boolean {
    return this.partsSize > 0;
  }

  /** Bytes of the message in progress (what counts against `maxMessageSize`). */
  get countedBytes(): number {
    return this.partsSize;
  }

  /** Bytes of memory the message in progress holds (buffers kept or pinned), for the budget's tests. */
  get heldBytes(): number {
    let held = this.tail?.byteLength ?? 0;
    const seen = new Set<ArrayBufferLike>();
    for (const part of this.parts)
      if (!seen.has(part.buffer)) {
        seen.add(part.buffer);
        held += part.buffer.byteLength;
      }
    return held;
  }

  /**
   * Decrypt one frame (in place); returns the message it completes, undefined, or CONTROL_FRAME
   * for a control frame (version 2; its chunk is then in `control`). Throws
   * `SIPC_ERR_DECRYPT_FAILED`, `SIPC_ERR_PROTOCOL` or `SIPC_ERR_MESSAGE_TOO_LARGE`: the channel
   * must close then.
   */
  open(frame: Buffer): Uint8Array | typeof CONTROL_FRAME | undefined {
    if (frame.length < MIN_TRANSPORT_FRAME_SIZE)
      throw createError('SIPC_ERR_PROTOCOL', 'Transport frame shorter than a flag byte and a tag');
    const n = this.rx.decrypt(frame, frame);
    const flags = frame[0]!;
    if ((flags & ~this.allowedFlags) !== 0)
      throw createError('SIPC_ERR_PROTOCOL', 'Transport frame has reserved flag bits set');
    if (flags & FLAG_REKEY) this.rx.rekey();
    const chunk = frame.subarray(FLAG_SIZE, n);
    if (flags & FLAG_CONTROL) {
      // A control frame stands alone: never inside an application message, never continued.
      if ((flags & FLAG_LAST) === 0 || this.partsSize > 0)
        throw createError(
          'SIPC_ERR_PROTOCOL',
          'A control frame must have LAST set and must not interrupt a message',
        );
      this.control = chunk;
      return CONTROL_FRAME;
    }
    if (this.partsSize + chunk.length > this.maxMessageSize)
      throw createError(
        'SIPC_ERR_MESSAGE_TOO_LARGE',
        `Incoming message exceeds ${this.maxMessageSize} bytes`,
      );
    if ((flags & FLAG_LAST) === 0) {
      if (chunk.length === 0) throw createError('SIPC_ERR_PROTOCOL', 'Empty non-final chunk');
      this.keep(chunk);
      return undefined;
    }
    // A one-frame message is delivered as a view (zero-copy): nothing is held for it here.
    if (this.partsSize === 0) return chunk;
    this.keep(chunk);
    this.setTailAside();
    const message = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.partsSize);
    this.clear();
    return message;
  }

  /** Drop a half-received message. */
  clear(): void {
    this.parts = [];
    this.partsSize = 0;
    this.tail = undefined;
    this.tailLength = 0;
  }

  private keep(chunk: Buffer): void {
    this.partsSize += chunk.length;
    if (chunk.length >= MIN_VIEW_BYTES && chunk.length * 2 >= chunk.buffer.byteLength) {
      this.setTailAside();
      this.parts.push(chunk);
      return;
    }
    const need = this.tailLength + chunk.length;
    if (this.tail === undefined || need > this.tail.length) {
      if (this.tail !== undefined && this.tailLength * 2 >= this.tail.length && need > TAIL_MAX_BYTES)
        this.setTailAside();
      const size = Math.max(
        TAIL_MIN_BYTES,
        chunk.length,
        Math.min(TAIL_MAX_BYTES, 2 * (this.tail?.length ?? 0)),
      );
      const grown = Buffer.allocUnsafeSlow(Math.max(size, this.tailLength + chunk.length));
      if (this.tail !== undefined) this.tail.copy(grown, 0, 0, this.tailLength);
      this.tail = grown;
    }
    chunk.copy(this.tail, this.tailLength);
    this.tailLength += chunk.length;
  }

  // The tail joins the parts (as a view of what it holds); the next small chunk starts a new one.
  private setTailAside(): void {
    if (this.tail === undefined) return;
    this.parts.push(this.tail.subarray(0, this.tailLength));
    this.tail = undefined;
    this.tailLength = 0;
  }
}
