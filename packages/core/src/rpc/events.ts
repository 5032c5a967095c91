/**
 * Topic routing for events: listeners registered under a topic or a wildcard pattern
 * (`files.*`, `*`), called synchronously in registration order so that events keep the order
 * in which the sender sent them.
 */
import { compilePatterns, type NameMatcher } from './patterns.js';
import type { EventContext } from './service-types.js';

/** An event listener. */
export type EventListener<T = unknown> = (payload: T, context: EventContext) => void;

interface Route {
  pattern: string;
  match: NameMatcher;
  listener: EventListener;
}

/** Pattern → listeners. */
export class EventRouter {
  #routes: Route[] = [];

  /** Register `listener` for topics matching `pattern`; returns the function that removes it. */
  add(pattern: string, listener: EventListener): () => void {
    const route: Route = { pattern, match: compilePatterns([pattern]), listener };
    // Copy on write: a listener that removes itself during dispatch does not skip its neighbour.
    this.#routes = [...this.#routes, route];
    return () => {
      this.#routes = this.#routes.filter((r) => r !== route);
    };
  }

  /** How many listeners are registered under exactly `pattern`. */
  count(pattern: string): number {
    let n = 0;
    for (const r of this.#routes) if (r.pattern === pattern) n++;
    return n;
  }

  /** Call every matching listener; a throwing listener is reported to `onError` and the rest still run. */
  dispatch(topic: string, payload: unknown, context: EventContext, onError: (err: unknown) => void): void {
    for (const r of this.#routes) {
      if (!r.match(topic)) continue;
      try {
        r.listener(payload, context);
      } catch (err) {
        onError(err);
      }
    }
  }
}

/** The part of an EventEmitter that `reportListenerError` uses. */
interface ErrorEmitter {
  listenerCount(event: 'error'): number;
  emit(event: 'error', error: unknown): boolean;
}

/**
 * An exception thrown by an application's listener (an event listener, a `decision` or
 * `handlerError` listener) is never dropped: it is emitted as `error` on `emitter` when someone
 * listens for that, else rethrown on the next tick, so it reaches `uncaughtException` as a
 * throwing listener of a plain EventEmitter would (Node's `captureRejections` does the same).
 * An `error` listener that throws is rethrown the same way.
 */
export function reportListenerError(emitter: ErrorEmitter, error: unknown): void {
  if (emitter.listenerCount('error') > 0) {
    try {
      emitter.emit('error', error);
      return;
    } catch (err) {
      error = err;
    }
  }
  process.nextTick(() => {
    throw error;
  });
}

/** `listener`, with its exceptions given to `onThrow` (so the rest of the dispatch still runs). */
export function guardListener<T>(
  listener: EventListener<T>,
  onThrow: (error: unknown) => void,
): EventListener<T> {
  return (payload, context) => {
    try {
      listener(payload, context);
    } catch (err) {
      onThrow(err);
    }
  };
}
