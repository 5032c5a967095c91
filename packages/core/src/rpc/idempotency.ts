/**
 * The idempotency window: a request carrying an idempotency key runs at most once per
 * (peer static key, key) within the window. A repeat while the first runs waits for it; a repeat
 * after it finished gets the same outcome, also over a new connection, because the cache lives in
 * the server, not in a channel. Memory is bounded by `maxEntries`: when full, the oldest entries
 * go first, and a key that has been evicted runs again (documented: the window is best effort
 * under an entry flood, which only a peer with many keys of its own can cause).
 */

import type { WireError } from '../envelope/types.js';
import { createError } from '../errors.js';

/** The settled outcome of a first execution. */
export type IdempotentOutcome =
  | { ok: true; value: unknown }
  | {
      ok: false;
      error: WireError;
      /** The execution was cut short (cancel, deadline): forget it so a retry runs again. */
      transient?: boolean;
    };

/** Options of the idempotency cache. */
export interface IdempotencyOptions {
  /** How long an outcome is replayed, in ms (default 10 minutes). */
  windowMs?: number;
  /** Most entries kept at once, pending or settled (default 10,000). */
  maxEntries?: number;
  /** Clock, ms epoch (default Date.now); for tests. */
  now?: () => number;
}

interface Entry {
  method: string;
  outcome: Promise<IdempotentOutcome>;
  expiresAt: number;
}

/** Default window: 10 minutes. */
export const DEFAULT_IDEMPOTENCY_WINDOW_MS = 10 * 60 * 1000;
/** Default bound on entries. */
export const DEFAULT_IDEMPOTENCY_MAX_ENTRIES = 10_000;

/** Outcome cache keyed by the authenticated peer and the idempotency key. */
export class IdempotencyCache {
  readonly #windowMs: number;
  readonly #maxEntries: number;
  readonly #now: () => number;
  // Map keeps insertion order, and every entry lives exactly windowMs: the first entry is always
  // the oldest, so expiry and eviction both take from the front without a timer.
  readonly #entries = new Map<string, Entry>();

  /** Create a cache. */
  constructor(options: IdempotencyOptions = {}) {
    this.#windowMs = options.windowMs ?? DEFAULT_IDEMPOTENCY_WINDOW_MS;
    this.#maxEntries = options.maxEntries ?? DEFAULT_IDEMPOTENCY_MAX_ENTRIES;
    this.#now = options.now ?? Date.now;
    if (!(this.#windowMs > 0) || !(this.#maxEntries >= 1))
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'windowMs and maxEntries must be positive');
  }

  /** Entries held now (pending and settled). */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * Run `execute` once for (peer, key): the first caller runs it; later callers within the window
   * get the same outcome. A reuse of the key for another method is refused with
   * SIPC_ERR_INVALID_ARGUMENT rather than answered with another method's result.
   */
  run(
    peer: string,
    key: string,
    method: string,
    execute: () => Promise<IdempotentOutcome>,
  ): Promise<IdempotentOutcome> {
    const now = this.#now();
    this.#expire(now);
    // \0 cannot occur in a fingerprint, so (peer, key) pairs never collide.
    const id = `${peer}\0${key}`;
    const hit = this.#entries.get(id);
    if (hit !== undefined) {
      if (hit.method !== method)
        return Promise.resolve({
          ok: false,
          error: {
            code: 'SIPC_ERR_INVALID_ARGUMENT',
            message: 'The idempotency key was already used for another method',
          },
        });
      return hit.outcome;
    }
    while (this.#entries.size >= this.#maxEntries) {
      const oldest = this.#entries.keys().next().value as string;
      this.#entries.delete(oldest);
    }
    const outcome = execute();
    const entry: Entry = { method, outcome, expiresAt: now + this.#windowMs };
    this.#entries.set(id, entry);
    outcome.then((o) => {
      if (!o.ok && o.transient === true && this.#entries.get(id) === entry) this.#entries.delete(id);
    });
    return outcome;
  }

  /** Drop everything. */
  clear(): void {
    this.#entries.clear();
  }

  #expire(now: number): void {
    for (const [id, entry] of this.#entries) {
      if (entry.expiresAt > now) break;
      this.#entries.delete(id);
    }
  }
}
