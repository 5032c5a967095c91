/**
 * Byte budgets on what one RPC session queues for its peer (docs/limits.md, "RPC, events and
 * streams"). A message is charged from the moment it is handed to the channel until the transport
 * accepted it; one written at once is never charged. Each charge is the message's bytes plus
 * QUEUED_MESSAGE_OVERHEAD, so many tiny messages cannot hide their real cost behind a byte count.
 *
 *   turn (producers of stream items) ─► room? ─► encode ─► take ─► over the limit? ─► pause reads
 *   release ─► next waiting producer's turn while there is room ─► at or below half: resume reads
 */
import { Fifo } from './fifo.js';

/**
 * What one queued message costs besides its bytes: the channel's pending-send entry, its promise
 * and the reactions on it. Measured: ~590 bytes of heap per queued 20-byte reply (100,000 replies
 * queued on a channel whose peer does not read, after a full GC), 512 counted.
 */
export const QUEUED_MESSAGE_OVERHEAD = 512;

/** Default budget of replies and stream items queued for one peer (8 MiB). */
export const DEFAULT_MAX_QUEUED_REPLY_BYTES = 8 * 1024 * 1024;

/** Default budget of events queued for one subscriber (4 MiB). */
export const DEFAULT_MAX_QUEUED_EVENT_BYTES = 4 * 1024 * 1024;

/** What a budget pauses while it is over its limit: the peer's reads (its channel). */
export interface PausableReads {
  pause(): void;
  resume(): void;
}

/** Bytes queued for one peer against a limit. */
export class ByteBudget {
  readonly limit: number;
  #used = 0;
  #over = false;
  #closed = false;
  /** A producer was given its turn and has not charged (or released) yet. */
  #turnHeld = false;
  // Created on the first wait: most sessions never wait (an empty Fifo per connection is not free).
  #waiting: Fifo<() => void> | undefined;
  readonly #reads: PausableReads | undefined;

  /**
   * `reads` is paused when a charge takes the total over `limit` and resumed when it is back at
   * half (an object, not two closures: one budget per connection, and closures cost heap).
   */
  constructor(limit: number, reads?: PausableReads) {
    this.limit = limit;
    this.#reads = reads;
  }

  /** Bytes charged now. */
  get used(): number {
    return this.#used;
  }

  /**
   * Wait for room before producing a message: undefined when there is room now, else a promise
   * that resolves at this producer's turn (in order of asking). The producer then encodes its
   * message and calls take() (or pass() if it sends nothing), which passes the turn on; so
   * waiting producers hold no encoded bytes, and at most one message goes over the limit.
   * After close() every producer gets its turn at once (its send fails on its own).
   */
  turn(): Promise<void> | undefined {
    if (this.#closed || (!this.#turnHeld && this.#used < this.limit && !this.#waiting?.size)) {
      this.#turnHeld = !this.#closed;
      return undefined;
    }
    this.#waiting ??= new Fifo();
    const waiting = this.#waiting;
    return new Promise<void>((resolve) => waiting.push(resolve));
  }

  /** Charge `cost`, over the limit or not (what is already produced must be sent or dropped by the caller). */
  charge(cost: number): void {
    this.#used += cost;
    if (!this.#over && !this.#closed && this.#used > this.limit) {
      this.#over = true;
      this.#reads?.pause();
    }
  }

  /** The producer whose turn it is charges its message's `cost` and passes the turn on. */
  take(cost: number): void {
    this.charge(cost);
    this.pass();
  }

  /** The producer whose turn it is sends nothing: the next one gets its turn. */
  pass(): void {
    this.#turnHeld = false;
    this.#serve();
  }

  /** The transport accepted (or the channel dropped) `cost` charged bytes. */
  release(cost: number): void {
    this.#used -= cost;
    this.#serve();
    if (this.#over && !this.#closed && this.#used <= this.limit / 2) {
      this.#over = false;
      this.#reads?.resume();
    }
  }

  /** The session ended: every waiting producer gets its turn. */
  close(): void {
    this.#closed = true;
    this.#turnHeld = false;
    for (const resolve of this.#waiting?.drain() ?? []) resolve();
  }

  #serve(): void {
    const waiting = this.#waiting;
    if (waiting === undefined || waiting.size === 0 || this.#turnHeld || this.#used >= this.limit) return;
    this.#turnHeld = true;
    waiting.shift()!();
  }
}
