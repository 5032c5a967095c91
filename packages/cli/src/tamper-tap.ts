/**
 * A pass-through Connection that can flip one bit of the next chunk written to the wire. The demo
 * puts it between the client's secure channel and the real socket to show that the server detects
 * a tampered frame (authentication fails, the channel closes, nothing is delivered).
 */
import { Duplex } from 'node:stream';
import type { Connection, PeerInfo } from '@secure-ipc/core';

/** A Duplex wrapper around a real connection with a one-shot bit flipper. */
export class TamperTap extends Duplex implements Connection {
  readonly peer: PeerInfo;
  readonly #inner: Connection;
  #armed = false;

  constructor(inner: Connection) {
    super();
    this.#inner = inner;
    this.peer = inner.peer;
    inner.on('data', (chunk: Buffer) => {
      if (!this.push(chunk)) inner.pause();
    });
    inner.on('end', () => this.push(null));
    inner.on('error', (err) => this.destroy(err));
    inner.on('close', () => this.destroy());
  }

  /** Flip the last bit of the next written chunk (the end of a frame: its Poly1305 tag). */
  armTamper(): void {
    this.#armed = true;
  }

  override _read(): void {
    this.#inner.resume();
  }

  override _write(chunk: Buffer, _enc: BufferEncoding, cb: (err?: Error | null) => void): void {
    if (this.#armed && chunk.length > 2) {
      this.#armed = false;
      const copy = Buffer.from(chunk);
      copy[copy.length - 1]! ^= 0x01;
      chunk = copy;
    }
    this.#inner.write(chunk, cb);
  }

  override _final(cb: (err?: Error | null) => void): void {
    this.#inner.end(cb);
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    this.#inner.destroy();
    cb(err);
  }
}
