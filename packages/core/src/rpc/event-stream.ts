/**
 * Subscriptions as async iterables: `for await (const e of client.events('files.*'))`. Like
 * Node's `events.on()`, the listener is attached when `events()` is called (so nothing published
 * after that call is missed) and detached, with the server told, when the loop ends (break,
 * return, throw, `await using`).
 *
 * Buffering is bounded: events the consumer has not taken yet wait in a queue of at most
 * `maxBuffered` (default 256) events. When one more arrives the `overflow` option decides:
 * `drop-oldest` (default) drops the oldest waiting event and counts it (`dropped`), `error` ends
 * the iteration with SIPC_ERR_BUSY once the events already waiting are taken. The queue holds
 * decoded payloads, so its memory is at most `maxBuffered` messages (each within the channel's
 * message size limit).
 */
import { createError, isSecureIpcError, type SecureIpcError } from '../errors.js';
import type { EventContext, Received, TopicsMatching } from './service-types.js';

/** Default bound of an event iterator's queue, in events. */
export const DEFAULT_MAX_BUFFERED_EVENTS = 256;

/** Options of `client.events()`. */
export interface EventIteratorOptions {
  /** Most events waiting for the consumer (default 256). */
  maxBuffered?: number;
  /** A full queue: `drop-oldest` (default, counted in `dropped`) or `error` (SIPC_ERR_BUSY). */
  overflow?: 'drop-oldest' | 'error';
  /** Ends the iteration (the pending `next()` resolves done) and unsubscribes. */
  signal?: AbortSignal;
}

/** One event as an iterator yields it. */
export interface ReceivedEvent<T extends string = string, P = unknown> {
  /** The topic it was published on. */
  readonly topic: T;
  /** Its payload. */
  readonly payload: P;
  /** Who sent it. */
  readonly context: EventContext;
}

/**
 * The events pattern `P` yields for event map `E`: a union discriminated by `topic`
 * (`files.*` → `{ topic: 'files.created'; payload: ... } | { topic: 'files.deleted'; ... }`).
 */
export type MatchedEvent<E, P extends string> = {
  [T in TopicsMatching<E, P>]: ReceivedEvent<T, Received<T extends keyof E ? E[T] : E[keyof E]>>;
}[TopicsMatching<E, P>];

/** An async iterator of the events matching a pattern; ending it unsubscribes. */
export interface EventIterator<T extends ReceivedEvent = ReceivedEvent>
  extends AsyncIterableIterator<T>,
    AsyncDisposable {
  /** Events dropped because the consumer was `maxBuffered` events behind (overflow `drop-oldest`). */
  readonly dropped: number;
}

/** How an iterator subscribes: resolves (or rejects, e.g. SIPC_ERR_FORBIDDEN) with the unsubscriber. */
export type Subscribe = (
  listener: (payload: unknown, context: EventContext) => void,
) => Promise<() => Promise<void>>;

/** The session closed cleanly: the iteration ends once the waiting events are taken. */
const END = Symbol('end');

type Waiter = { resolve: (r: IteratorResult<ReceivedEvent>) => void; reject: (err: unknown) => void };

/**
 * Build the iterator. `onClose` registers a callback for the end of the session (an error unless
 * it closed cleanly) and returns its remover.
 */
export function eventIterator(
  subscribe: Subscribe,
  onClose: (listener: (err: SecureIpcError | undefined) => void) => () => void,
  options: EventIteratorOptions = {},
): EventIterator {
  const max = options.maxBuffered ?? DEFAULT_MAX_BUFFERED_EVENTS;
  if (!(Number.isSafeInteger(max) && max > 0))
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'maxBuffered must be a positive integer');
  const overflow = options.overflow ?? 'drop-oldest';
  if (overflow !== 'drop-oldest' && overflow !== 'error')
    throw createError('SIPC_ERR_INVALID_ARGUMENT', "overflow must be 'drop-oldest' or 'error'");
  const { signal } = options;

  const queue: ReceivedEvent[] = [];
  let head = 0; // queue[head..] are waiting; compacted when half is consumed
  let waiter: Waiter | undefined;
  let failure: unknown;
  let done = false;
  let dropped = 0;

  const waiting = () => queue.length - head;
  const take = (): ReceivedEvent => {
    const e = queue[head]!;
    queue[head++] = undefined as never;
    if (head > 64 && head * 2 >= queue.length) {
      queue.splice(0, head);
      head = 0;
    }
    return e;
  };

  const onEvent = (payload: unknown, context: EventContext) => {
    if (done || failure !== undefined) return;
    const event: ReceivedEvent = { topic: context.topic, payload, context };
    if (waiter !== undefined) {
      const w = waiter;
      waiter = undefined;
      w.resolve({ value: event, done: false });
      return;
    }
    if (waiting() >= max) {
      if (overflow === 'error') {
        fail(createError('SIPC_ERR_BUSY', `The event consumer fell ${max} events behind (maxBuffered)`));
        return;
      }
      take();
      dropped++;
    }
    queue.push(event);
  };

  const subscribed = subscribe(onEvent);
  // Rejected subscriptions surface at next(); mark them handled here so none goes unhandled.
  subscribed.catch((err) => fail(err));
  let stopListening: (() => void) | undefined = onClose((err) => fail(err ?? END));

  /** Stop taking events; once the waiting ones are taken, next() rejects with `err` (END: is done). */
  function fail(err: unknown): void {
    if (done || failure !== undefined) return;
    failure = err;
    void unsubscribe().catch(() => {});
    if (waiter !== undefined) {
      // A waiter exists only while the queue is empty.
      const w = waiter;
      waiter = undefined;
      done = true;
      if (err === END) w.resolve({ value: undefined, done: true });
      else w.reject(err);
    }
  }

  let unsubscribing: Promise<void> | undefined;
  function unsubscribe(): Promise<void> {
    stopListening?.();
    stopListening = undefined;
    signal?.removeEventListener('abort', onAbort);
    unsubscribing ??= subscribed.then(
      (off) =>
        off().catch((err: unknown) => {
          // The session ended under us: nothing is left to unsubscribe from.
          if (!isSecureIpcError(err, 'SIPC_ERR_CONNECTION_CLOSED')) throw err;
        }),
      () => {}, // never subscribed
    );
    return unsubscribing;
  }

  async function finish(): Promise<IteratorResult<ReceivedEvent>> {
    if (!done) {
      done = true;
      queue.length = 0;
      head = 0;
      const w = waiter;
      waiter = undefined;
      w?.resolve({ value: undefined, done: true });
    }
    await unsubscribe();
    return { value: undefined, done: true };
  }

  const onAbort = () => void finish().catch(() => {});
  if (signal?.aborted) void finish().catch(() => {});
  else signal?.addEventListener('abort', onAbort, { once: true });

  const iterator: EventIterator = {
    get dropped() {
      return dropped;
    },
    async next(): Promise<IteratorResult<ReceivedEvent>> {
      if (done) return { value: undefined, done: true };
      if (waiting() > 0) return { value: take(), done: false };
      if (failure !== undefined) {
        done = true;
        if (failure === END) return { value: undefined, done: true };
        throw failure;
      }
      if (waiter !== undefined)
        throw createError('SIPC_ERR_INVALID_ARGUMENT', 'next() called again before the previous one settled');
      return new Promise((resolve, reject) => {
        waiter = { resolve, reject };
      });
    },
    return: finish,
    async throw(err?: unknown): Promise<IteratorResult<ReceivedEvent>> {
      await finish();
      throw err;
    },
    [Symbol.asyncIterator]() {
      return this;
    },
    async [Symbol.asyncDispose]() {
      await finish();
    },
  };
  return iterator;
}
