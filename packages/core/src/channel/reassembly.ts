/**
 * The receiving half of the transport phase: each frame is decrypted in place, its flag byte
 * checked (reserved bits, rekey), and chunks are joined until the last one of a message, with
 * the message size limit checked before a chunk is kept. Wire format: docs/protocol.md.
 */
import { FLAG_LAST, FLAG_REKEY, FLAG_SIZE, MIN_TRANSPORT_FRAME_SIZE } from '../constants.js';
import { createError } from '../errors.js';
import type { NoiseCipherState } from '../handshake/cipher-state.js';

/** Decrypts transport frames and reassembles whole messages. */
export class Reassembly {
  private parts: Buffer[] = [];
  private partsSize = 0;

  /** Read with `rx`; refuse messages over `maxMessageSize` bytes. */
  constructor(
    /** The receiving cipher state (the channel wipes it on close). */
    readonly rx: NoiseCipherState,
    private readonly maxMessageSize: number,
  ) {}

  /** True while a message is half received. */
  get partial(): boolean {
    return this.parts.length > 0;
  }

  /**
   * Decrypt one frame (in place); returns the message it completes, or undefined. Throws
   * `SIPC_ERR_DECRYPT_FAILED`, `SIPC_ERR_PROTOCOL` or `SIPC_ERR_MESSAGE_TOO_LARGE`: the channel
   * must close then.
   */
  open(frame: Buffer): Uint8Array | undefined {
    if (frame.length < MIN_TRANSPORT_FRAME_SIZE)
      throw createError('SIPC_ERR_PROTOCOL', 'Transport frame shorter than a flag byte and a tag');
    const n = this.rx.decrypt(frame, frame);
    const flags = frame[0]!;
    if ((flags & ~(FLAG_LAST | FLAG_REKEY)) !== 0)
      throw createError('SIPC_ERR_PROTOCOL', 'Transport frame has reserved flag bits set');
    if (flags & FLAG_REKEY) this.rx.rekey();
    const chunk = frame.subarray(FLAG_SIZE, n);
    if (this.partsSize + chunk.length > this.maxMessageSize)
      throw createError(
        'SIPC_ERR_MESSAGE_TOO_LARGE',
        `Incoming message exceeds ${this.maxMessageSize} bytes`,
      );
    if ((flags & FLAG_LAST) === 0) {
      if (chunk.length === 0) throw createError('SIPC_ERR_PROTOCOL', 'Empty non-final chunk');
      this.parts.push(chunk);
      this.partsSize += chunk.length;
      return undefined;
    }
    if (this.parts.length === 0) return chunk;
    this.parts.push(chunk);
    const message = Buffer.concat(this.parts, this.partsSize + chunk.length);
    this.clear();
    return message;
  }

  /** Drop a half-received message. */
  clear(): void {
    this.parts = [];
    this.partsSize = 0;
  }
}
