/**
 * Stream flow control by credits. The consumer starts by granting `window` items (implicitly:
 * both ends know the window from the protocol default or the request); each item sent uses one
 * credit; the consumer grants more (kind 8) as its reader takes items, in batches of half the
 * window. So at most `window` items are ever buffered on the consumer's side or in flight, and the
 * producer, which awaits credit before each item, never runs ahead of a slow reader.
 */
import { createError } from '../errors.js';
import { Fifo } from './fifo.js';

/** Items a consumer accepts before the first credit grant (protocol default). */
export const DEFAULT_STREAM_WINDOW = 16;

interface Waiter {
  resolve: (r: IteratorResult<unknown>) => void;
  reject: (err: unknown) => void;
}

/** Consumer side of a stream: an AsyncIterable fed by the RPC peer. */
export class RemoteStream<T> implements AsyncIterable<T> {
  readonly #window: number;
  /** Items the producer may still send: the window plus what was granted, minus what arrived. */
  #credit: number;
  readonly #grant: (n: number) => void;
  readonly #cancel: () => void;
  #buffer = new Fifo<{ value: unknown }>();
  #waiter: Waiter | undefined;
  #consumed = 0;
  #done = false;
  #error: unknown;
  #iterating = false;

  /** `grant(n)` sends n more credits; `cancel()` tells the producer to stop. */
  constructor(window: number, grant: (n: number) => void, cancel: () => void) {
    this.#window = window;
    this.#credit = window;
    this.#grant = grant;
    this.#cancel = cancel;
  }

  /** True once the stream ended, failed or was cancelled. */
  get done(): boolean {
    return this.#done;
  }

  /** Items received and not yet read. */
  get buffered(): number {
    return this.#buffer.size;
  }

  /** Called by the peer for each item; false if the producer overran its credit (a protocol violation). */
  push(item: unknown): boolean {
    if (this.#done) return true;
    // Exact accounting, so an overrun is caught even while the reader is waiting for an item.
    if (this.#credit <= 0) return false;
    this.#credit--;
    if (this.#waiter !== undefined) {
      const w = this.#waiter;
      this.#waiter = undefined;
      this.#taken();
      w.resolve({ value: item, done: false });
      return true;
    }
    // Boxed, so an item that is itself undefined is not mistaken for an empty queue.
    this.#buffer.push({ value: item });
    return true;
  }

  /** Called by the peer at the normal end. */
  end(): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#waiter !== undefined && this.buffered === 0) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w.resolve({ value: undefined, done: true });
    }
  }

  /**
   * Called by the peer on an error: the reader gets the items already received, then `err`;
   * with `dropBuffered` (the caller gave up: timeout, abort) it gets `err` at once.
   */
  fail(err: unknown, dropBuffered = false): void {
    if (this.#done) return;
    this.#done = true;
    this.#error = err;
    if (dropBuffered) this.#buffer.drain();
    if (this.#waiter !== undefined) {
      const w = this.#waiter;
      this.#waiter = undefined;
      w.reject(err);
    }
  }

  #taken(): void {
    // Grant in batches of half the window: one credit envelope per window/2 items, not per item.
    if (++this.#consumed >= Math.max(1, this.#window >> 1)) {
      const n = this.#consumed;
      this.#consumed = 0;
      if (!this.#done) {
        this.#credit += n;
        this.#grant(n);
      }
    }
  }

  #next(): Promise<IteratorResult<T>> {
    const next = this.#buffer.shift();
    if (next !== undefined) {
      this.#taken();
      return Promise.resolve({ value: next.value as T, done: false });
    }
    if (this.#error !== undefined) {
      const err = this.#error;
      this.#error = undefined;
      return Promise.reject(err);
    }
    if (this.#done) return Promise.resolve({ value: undefined, done: true });
    if (this.#waiter !== undefined)
      return Promise.reject(createError('SIPC_ERR_STREAM', 'Concurrent next() calls on one stream'));
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve: resolve as Waiter['resolve'], reject };
    });
  }

  #return(): Promise<IteratorResult<T>> {
    if (!this.#done) {
      this.#done = true;
      this.#cancel();
    }
    this.#buffer.drain();
    this.#error = undefined;
    return Promise.resolve({ value: undefined, done: true });
  }

  /** Iterate once; breaking out of the loop cancels the stream at the producer. */
  [Symbol.asyncIterator](): AsyncIterator<T> {
    if (this.#iterating) throw createError('SIPC_ERR_STREAM', 'A stream can be iterated only once');
    this.#iterating = true;
    return { next: () => this.#next(), return: () => this.#return() };
  }
}

/** Producer side of a stream: credit accounting that a sender awaits before each item. */
export class CreditGate {
  #credit: number;
  #wake: (() => void) | undefined;
  #closed = false;

  /** Start with `initial` credits. */
  constructor(initial: number) {
    this.#credit = initial;
  }

  /** Credits left. */
  get credit(): number {
    return this.#credit;
  }

  /** Add credits from a kind 8 envelope. */
  grant(n: number): void {
    this.#credit += n;
    this.#release();
  }

  /** True once closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Stop waiting for good (cancel, disconnect). */
  close(): void {
    this.#closed = true;
    this.#release();
  }

  /** Take one credit, waiting for it if none is left; resolves false once closed. */
  take(): Promise<boolean> | boolean {
    if (this.#closed) return false;
    if (this.#credit > 0) {
      this.#credit--;
      return true;
    }
    return new Promise<void>((resolve) => {
      this.#wake = resolve;
    }).then(() => this.take());
  }

  #release(): void {
    const wake = this.#wake;
    this.#wake = undefined;
    wake?.();
  }
}

/** True for anything `for await` can iterate (a stream result, or a streamed input). */
export function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Record<symbol, unknown>)[Symbol.asyncIterator] === 'function'
  );
}

/**
 * A turn of the event loop once per window of items sent (undefined in between): a producer whose
 * consumer reads as fast as it is sent, over a transport that delivers without an I/O turn (the
 * memory transport: nextTick all the way), would otherwise keep timers, aborts and every other
 * task of the process waiting. Over a socket the turn is there anyway; this costs one per window.
 */
export function windowTurn(sent: number): Promise<void> | undefined {
  if (sent === 0 || sent % DEFAULT_STREAM_WINDOW !== 0) return undefined;
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Producer side of a streamed input (docs/protocol.md, "Streamed input"): pulls the caller's
 * iterable one item per credit (never ahead of the window), hands each to `send` and ends with
 * `end`. `stop()` (the responder stopped reading, answered, or the caller gave up) stops pulling
 * and calls the iterable's `return()`; an error from the iterable (or from `send`, such as an
 * item that cannot be encoded) goes to `fail`, and the iterable is not pulled again.
 */
export class InputSender {
  readonly gate = new CreditGate(DEFAULT_STREAM_WINDOW);
  #iterator: AsyncIterator<unknown> | undefined;
  #returned = false;
  #pulling = false;

  /** Start pulling `source` at once (the request envelope must already be sent). */
  constructor(
    source: AsyncIterable<unknown>,
    send: (item: unknown) => Promise<void> | undefined,
    end: () => void,
    fail: (err: unknown) => void,
  ) {
    void this.#run(source, send, end, fail);
  }

  /** Stop for good: no more pulls; the iterable's `return()` is called (once). */
  stop(): void {
    if (this.gate.closed) return;
    this.gate.close();
    this.#return();
  }

  async #run(
    source: AsyncIterable<unknown>,
    send: (item: unknown) => Promise<void> | undefined,
    end: () => void,
    fail: (err: unknown) => void,
  ): Promise<void> {
    try {
      this.#iterator = source[Symbol.asyncIterator]();
      if (this.gate.closed) return this.#return();
      for (let sent = 0; ; sent++) {
        const turn = windowTurn(sent);
        if (turn !== undefined) await turn;
        if (this.gate.closed) return this.#return();
        // Credit first, then pull: the caller's iterable never runs more than the window ahead.
        if (!(await this.gate.take())) return;
        this.#pulling = true;
        const next = await this.#iterator.next();
        this.#pulling = false;
        if (this.gate.closed) return;
        if (next.done === true) {
          this.gate.close();
          end();
          return;
        }
        const sending = send(next.value);
        if (sending !== undefined) await sending;
      }
    } catch (err) {
      if (this.gate.closed) return;
      this.gate.close();
      // A failing iterable is finished already; one whose item failed to send is still open.
      if (this.#pulling) this.#returned = true;
      else this.#return();
      fail(err);
    }
  }

  #return(): void {
    if (this.#returned || this.#iterator === undefined) return;
    this.#returned = true;
    try {
      const r = this.#iterator.return?.();
      if (r !== undefined) Promise.resolve(r).catch(() => {});
    } catch {
      // the iterable's own cleanup failed: nothing left to tell anyone (the call is over)
    }
  }
}
