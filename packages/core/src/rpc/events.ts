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
