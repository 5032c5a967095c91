/**
 * The idempotency window: a request carrying an idempotency key runs at most once per
 * (peer static key, key). A repeat while the first runs waits for it; a repeat after it finished
 * gets the same outcome, also over a new connection, because the cache lives in the server, not
 * in a channel. The cache is shared by every peer, so each peer has a quota of its own and no
 * peer can push another's entries out (docs/limits.md, "Idempotency"):
 *
 *   run(peer, key, fingerprint of method + params)
 *     known key ──► same fingerprint? ── yes ──► its outcome (waits while it is pending)
 *        │                             └─ no ───► SIPC_ERR_IDEMPOTENCY_CONFLICT
 *     new key ──► peer over its detached quota ───────────────────────► SIPC_ERR_BUSY
 *        ├──► peer at maxEntriesPerPeer: drop ITS oldest settled entry  (none settled: SIPC_ERR_BUSY)
 *        ├──► cache at maxEntries: drop the oldest settled entry of the peer holding the most
 *        │                                                              (none settled: SIPC_ERR_BUSY)
 *        └──► execute: pending ─► settled (the window starts) ─► expires windowMs later
 *                                 transient (cut short by cancel, deadline, lifetime): forgotten
 *
 * A pending entry is never evicted or expired: dropping it would let a repeat run the request a
 * second time while the first still runs. An execution whose connection closed (detached) keeps
 * running for a retry to pick up, within its own quota (maxDetachedPerPeer, maxDetached) and for
 * at most maxDetachedMs; past the quota it is aborted like any other request, past its lifetime
 * its signal fires with SIPC_ERR_TIMEOUT and the entry is forgotten.
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import { MAX_TIMER_MS } from '../constants.js';
import { encodeEnvelope } from '../envelope/encode.js';
import { EnvelopeKind, type WireError } from '../envelope/types.js';
import { createError, type ErrorCode, type SecureIpcError } from '../errors.js';

/** The settled outcome of a first execution. */
export type IdempotentOutcome =
  | { ok: true; value: unknown }
  | {
      ok: false;
      error: WireError;
      /** The execution was cut short (cancel, deadline, lifetime): forget it so a retry runs again. */
      transient?: boolean;
    };

/** Options of the idempotency cache (`serve({ idempotency })`, `createServer({ idempotency })`). */
export interface IdempotencyOptions {
  /** How long a settled outcome is replayed, in ms, counted from when it settled (default 10 minutes). */
  windowMs?: number;
  /** Most entries kept at once over all peers, pending or settled (default 10,000). */
  maxEntries?: number;
  /** Most entries one peer (static key) holds at once, pending or settled (default 1,000). */
  maxEntriesPerPeer?: number;
  /** Most executions still running after their connection closed, over all peers (default 1,024). */
  maxDetached?: number;
  /** Most executions of one peer still running after their connection closed (default 64). */
  maxDetachedPerPeer?: number;
  /** Longest a detached execution runs before its signal fires (SIPC_ERR_TIMEOUT), in ms (default 60 s). */
  maxDetachedMs?: number;
  /** Clock, ms epoch (default Date.now); for tests. */
  now?: () => number;
}

/** Default window: 10 minutes. */
export const DEFAULT_IDEMPOTENCY_WINDOW_MS = 10 * 60 * 1000;
/** Default bound on entries over all peers. */
export const DEFAULT_IDEMPOTENCY_MAX_ENTRIES = 10_000;
/** Default bound on one peer's entries. */
export const DEFAULT_IDEMPOTENCY_MAX_ENTRIES_PER_PEER = 1_000;
/** Default bound on detached executions over all peers. */
export const DEFAULT_IDEMPOTENCY_MAX_DETACHED = 1_024;
/** Default bound on one peer's detached executions (one connection's worth of requests). */
export const DEFAULT_IDEMPOTENCY_MAX_DETACHED_PER_PEER = 64;
/** Default lifetime of a detached execution: 60 s. */
export const DEFAULT_IDEMPOTENCY_MAX_DETACHED_MS = 60_000;

interface Bucket {
  readonly peer: string;
  /** The peer's settled entries, oldest first (settlement order). */
  readonly settled: Map<string, Entry>;
  pending: number;
  detached: number;
}

interface Entry {
  readonly id: string;
  readonly bucket: Bucket;
  readonly fingerprint: Uint8Array;
  readonly outcome: Promise<IdempotentOutcome>;
  expiresAt: number;
}

/**
 * The fingerprint of a request: BLAKE2b-512 over its envelope as this end encodes it with id 0
 * (so over the method and the params' msgpack bytes). Computed from the decoded params, it is the
 * same for every request that carries the same value.
 */
export function requestFingerprint(method: string, params: unknown): Uint8Array {
  const bytes = encodeEnvelope({ k: EnvelopeKind.Request, id: 0, m: method, p: params });
  return createHash('blake2b512').update(bytes).digest();
}

function refused(code: ErrorCode, message: string): IdempotentOutcome {
  return { ok: false, error: { code, message } };
}

function positive(value: number | undefined, fallback: number, name: string): number {
  const v = value ?? fallback;
  if (!(v >= 1) || !Number.isFinite(v))
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `idempotency.${name} must be a positive number`);
  return v;
}

/** Outcome cache keyed by the authenticated peer and the idempotency key. */
export class IdempotencyCache {
  readonly #windowMs: number;
  readonly #maxEntries: number;
  readonly #maxPerPeer: number;
  readonly #maxDetached: number;
  readonly #maxDetachedPerPeer: number;
  readonly #maxDetachedMs: number;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  // Every settled entry lives windowMs from its settlement: in settlement order the first is
  // always the next to expire, so expiry takes from the front without a timer.
  readonly #settled = new Map<string, Entry>();
  readonly #buckets = new Map<string, Bucket>();
  #detached = 0;

  /** Create a cache. */
  constructor(options: IdempotencyOptions = {}) {
    this.#windowMs = positive(options.windowMs, DEFAULT_IDEMPOTENCY_WINDOW_MS, 'windowMs');
    this.#maxEntries = positive(options.maxEntries, DEFAULT_IDEMPOTENCY_MAX_ENTRIES, 'maxEntries');
    this.#maxPerPeer = positive(
      options.maxEntriesPerPeer,
      Math.min(DEFAULT_IDEMPOTENCY_MAX_ENTRIES_PER_PEER, this.#maxEntries),
      'maxEntriesPerPeer',
    );
    this.#maxDetached = positive(options.maxDetached, DEFAULT_IDEMPOTENCY_MAX_DETACHED, 'maxDetached');
    this.#maxDetachedPerPeer = positive(
      options.maxDetachedPerPeer,
      Math.min(DEFAULT_IDEMPOTENCY_MAX_DETACHED_PER_PEER, this.#maxDetached),
      'maxDetachedPerPeer',
    );
    this.#maxDetachedMs = positive(
      options.maxDetachedMs,
      DEFAULT_IDEMPOTENCY_MAX_DETACHED_MS,
      'maxDetachedMs',
    );
    if (this.#maxDetachedMs > MAX_TIMER_MS)
      throw createError(
        'SIPC_ERR_INVALID_ARGUMENT',
        `idempotency.maxDetachedMs must be at most ${MAX_TIMER_MS}`,
      );
    this.#now = options.now ?? Date.now;
  }

  /** Entries held now (pending and settled). */
  get size(): number {
    return this.#entries.size;
  }

  /** Executions running now after their connection closed. */
  get detached(): number {
    return this.#detached;
  }

  /**
   * Run `execute` once for (peer, key): the first caller runs it; later callers within the window
   * get the same outcome, or SIPC_ERR_IDEMPOTENCY_CONFLICT if `fingerprint` (see
   * `requestFingerprint`) differs from the first one's. A new key over the peer's quota is
   * refused with SIPC_ERR_BUSY (execute is not called).
   */
  run(
    peer: string,
    key: string,
    fingerprint: Uint8Array,
    execute: () => Promise<IdempotentOutcome>,
  ): Promise<IdempotentOutcome> {
    this.#expire(this.#now());
    // \0 cannot occur in a fingerprint, so (peer, key) pairs never collide.
    const id = `${peer}\0${key}`;
    const hit = this.#entries.get(id);
    if (hit !== undefined) {
      // Constant time, though both sides are this peer's own requests: nothing else is compared.
      if (
        hit.fingerprint.byteLength !== fingerprint.byteLength ||
        !timingSafeEqual(hit.fingerprint, fingerprint)
      )
        return Promise.resolve(
          refused(
            'SIPC_ERR_IDEMPOTENCY_CONFLICT',
            'The idempotency key was already used for another request (other method or params)',
          ),
        );
      return hit.outcome;
    }
    const bucket = this.#bucket(peer);
    const refusal = this.#makeRoom(bucket);
    if (refusal !== undefined) {
      this.#dropIfEmpty(bucket);
      return Promise.resolve(refusal);
    }
    const outcome = execute();
    const entry: Entry = { id, bucket, fingerprint, outcome, expiresAt: Number.POSITIVE_INFINITY };
    bucket.pending++;
    this.#entries.set(id, entry);
    outcome.then((o) => this.#settle(entry, o));
    return outcome;
  }

  /**
   * The connection of `peer`'s running execution closed: keep it running, if the peer's and the
   * total detached quotas have room, for at most maxDetachedMs (then `abort` is called with
   * SIPC_ERR_TIMEOUT). Returns the function to call when the execution ends, or undefined when
   * there is no room (abort the execution like any other).
   */
  detach(peer: string, abort: (reason: SecureIpcError) => void): (() => void) | undefined {
    const bucket = this.#bucket(peer);
    if (bucket.detached >= this.#maxDetachedPerPeer || this.#detached >= this.#maxDetached) {
      this.#dropIfEmpty(bucket);
      return undefined;
    }
    bucket.detached++;
    this.#detached++;
    const ms = this.#maxDetachedMs;
    const timer = setTimeout(
      () => abort(createError('SIPC_ERR_TIMEOUT', `The request ran ${ms} ms after its connection closed`)),
      ms,
    );
    timer.unref?.();
    let ended = false;
    return () => {
      if (ended) return;
      ended = true;
      clearTimeout(timer);
      bucket.detached--;
      this.#detached--;
      this.#dropIfEmpty(bucket);
    };
  }

  /** Drop every entry (running executions keep running; their outcomes are no longer kept). */
  clear(): void {
    this.#entries.clear();
    this.#settled.clear();
    for (const bucket of this.#buckets.values()) {
      bucket.settled.clear();
      bucket.pending = 0;
      this.#dropIfEmpty(bucket);
    }
  }

  /** Room for one more entry of `bucket`'s peer, or the refusal. */
  #makeRoom(bucket: Bucket): IdempotentOutcome | undefined {
    if (bucket.detached >= this.#maxDetachedPerPeer || this.#detached >= this.#maxDetached)
      return refused(
        'SIPC_ERR_BUSY',
        'Too many idempotent requests still running after their connection closed',
      );
    if (bucket.settled.size + bucket.pending >= this.#maxPerPeer && !this.#evictOldest(bucket))
      return refused('SIPC_ERR_BUSY', 'Too many idempotent requests of this peer are running');
    if (this.#entries.size >= this.#maxEntries) {
      // The peer holding the most settled entries gives one up: a peer with few entries keeps
      // them however many keys others send.
      let largest: Bucket | undefined;
      for (const b of this.#buckets.values()) if (b.settled.size > (largest?.settled.size ?? 0)) largest = b;
      if (largest === undefined || !this.#evictOldest(largest))
        return refused('SIPC_ERR_BUSY', 'Too many idempotent requests are running');
    }
    return undefined;
  }

  #evictOldest(bucket: Bucket): boolean {
    const oldest = bucket.settled.values().next().value;
    if (oldest === undefined) return false;
    this.#delete(oldest);
    return true;
  }

  #settle(entry: Entry, outcome: IdempotentOutcome): void {
    if (this.#entries.get(entry.id) !== entry) return; // cleared meanwhile
    const { bucket } = entry;
    bucket.pending--;
    if (!outcome.ok && outcome.transient === true) {
      this.#entries.delete(entry.id);
      this.#dropIfEmpty(bucket);
      return;
    }
    entry.expiresAt = this.#now() + this.#windowMs;
    bucket.settled.set(entry.id, entry);
    this.#settled.set(entry.id, entry);
  }

  #expire(now: number): void {
    for (const entry of this.#settled.values()) {
      if (entry.expiresAt > now) break;
      this.#delete(entry);
    }
  }

  #delete(entry: Entry): void {
    this.#entries.delete(entry.id);
    this.#settled.delete(entry.id);
    entry.bucket.settled.delete(entry.id);
    this.#dropIfEmpty(entry.bucket);
  }

  #bucket(peer: string): Bucket {
    let bucket = this.#buckets.get(peer);
    if (bucket === undefined) {
      bucket = { peer, settled: new Map(), pending: 0, detached: 0 };
      this.#buckets.set(peer, bucket);
    }
    return bucket;
  }

  #dropIfEmpty(bucket: Bucket): void {
    if (bucket.settled.size === 0 && bucket.pending === 0 && bucket.detached === 0)
      if (this.#buckets.get(bucket.peer) === bucket) this.#buckets.delete(bucket.peer);
  }
}
