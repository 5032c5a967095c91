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
 *     new key ──► peer over its detached quota ───────────────────────► refused (quota)
 *        ├──► peer at maxEntriesPerPeer: drop ITS oldest settled entry  (none settled: refused)
 *        ├──► cache at maxEntries: drop the oldest settled entry of the peer holding the most
 *        │                                                              (none settled: refused)
 *        └──► execute: pending ─► settled (the window starts) ─► expires windowMs later
 *                                 transient (cut short by cancel, deadline, lifetime): forgotten
 *
 * A refusal (`IdempotentRefusal`, SIPC_ERR_BUSY) says so in its `refused` field: nothing ran and
 * nothing is kept, so the dispatcher may certify it as not executed (SIPC_ERR_UNAVAILABLE on a
 * version-3 channel), which it must never do for an outcome, even an earlier handler's BUSY.
 *
 * A pending entry is never evicted or expired: dropping it would let a repeat run the request a
 * second time while the first still runs. An execution whose connection closed (detached) keeps
 * running for a retry to pick up, within its own quota (maxDetachedPerPeer, maxDetached) and for
 * at most maxDetachedMs; past the quota it is aborted like any other request, past its lifetime
 * its signal fires with SIPC_ERR_TIMEOUT and the entry is forgotten.
 *
 * With a store (`idempotency.store`, ./idempotency-store.ts) a key the cache does not know is
 * looked up there before it runs, and every settled (not transient) outcome is put there before
 * it is answered, so a restarted server replays it. Without one nothing below changes.
 */

import { createHash, timingSafeEqual } from 'node:crypto';
import { MAX_TIMER_MS } from '../constants.js';
import { encodeEnvelope } from '../envelope/encode.js';
import { EnvelopeKind, type WireError } from '../envelope/types.js';
import { createError, type SecureIpcError } from '../errors.js';
import { type IdempotencyStore, idempotencyRecordId } from './idempotency-store.js';

/** The settled outcome of a first execution. */
export type IdempotentOutcome =
  | { ok: true; value: unknown }
  | {
      ok: false;
      error: WireError;
      /** The execution was cut short (cancel, deadline, lifetime): forget it so a retry runs again. */
      transient?: boolean;
    };

/**
 * A request the cache refused without running it, keeping no entry: SIPC_ERR_BUSY, and why in
 * `refused` (`quota`: the peer's or the total quota is full of pending or detached executions;
 * `store`: the store could not be read). Never an execution's outcome, never replayed.
 */
export interface IdempotentRefusal {
  readonly ok: false;
  readonly error: WireError;
  /** Why nothing ran. */
  readonly refused: 'quota' | 'store';
}

/** What `IdempotencyCache.run` answers: an outcome (this execution's or a replay), or a refusal. */
export type IdempotentAnswer = IdempotentOutcome | IdempotentRefusal;

/** Whether the cache refused the request (nothing ran, nothing is kept). */
export const isRefusal = (answer: IdempotentAnswer): answer is IdempotentRefusal => 'refused' in answer;

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
  /** Clock, ms epoch (default Date.now); for tests. It is wall-clock time: a store's window outlives a restart. */
  now?: () => number;
  /**
   * Where settled outcomes are kept beyond this process (default none: memory only), e.g.
   * `fileIdempotencyStore` or the application's own database (docs/resilience.md).
   */
  store?: IdempotencyStore;
  /**
   * Called when the store fails to keep an outcome (the caller still gets it, and this process
   * still replays it; a restart would not). Default: a process warning naming the error code.
   */
  onStoreError?: (err: unknown) => void;
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
  /** The first request's; replaced by a stored record's when the store knew the key. */
  fingerprint: Uint8Array;
  /** A refusal when the store could not be asked (nothing ran): the entry is then forgotten. */
  outcome: Promise<IdempotentAnswer>;
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

function refused(reason: IdempotentRefusal['refused'], message: string): IdempotentRefusal {
  return { ok: false, error: { code: 'SIPC_ERR_BUSY', message }, refused: reason };
}

const conflict = (): IdempotentOutcome => ({
  ok: false,
  error: {
    code: 'SIPC_ERR_IDEMPOTENCY_CONFLICT',
    message: 'The idempotency key was already used for another request (other method or params)',
  },
});

// Constant time, though both sides are this peer's own requests: nothing else is compared.
const sameFingerprint = (a: Uint8Array, b: Uint8Array): boolean =>
  a.byteLength === b.byteLength && timingSafeEqual(a, b);

function warnStoreError(err: unknown): void {
  const code = (err as { code?: unknown } | null)?.code;
  process.emitWarning(
    `An idempotency store could not keep an outcome (${typeof code === 'string' ? code : 'error'})`,
    'SecureIpcWarning',
  );
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
  readonly #store: IdempotencyStore | undefined;
  readonly #onStoreError: (err: unknown) => void;
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
    this.#store = options.store;
    this.#onStoreError = options.onStoreError ?? warnStoreError;
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
   * refused (`IdempotentRefusal`, reason `quota`; execute is not called), and so is a new key the
   * store could not be asked about (reason `store`).
   */
  run(
    peer: string,
    key: string,
    fingerprint: Uint8Array,
    execute: () => Promise<IdempotentOutcome>,
  ): Promise<IdempotentAnswer> {
    const now = this.#now();
    this.#expire(now);
    const id = idempotencyRecordId(peer, key);
    let hit = this.#entries.get(id);
    // A store's record keeps its own window, which may end before entries settled earlier here.
    if (hit !== undefined && this.#store !== undefined && hit.expiresAt <= now) {
      this.#delete(hit);
      hit = undefined;
    }
    if (hit !== undefined) {
      if (!sameFingerprint(hit.fingerprint, fingerprint)) return Promise.resolve(conflict());
      return this.#store === undefined ? hit.outcome : this.#checked(hit, fingerprint);
    }
    const bucket = this.#bucket(peer);
    const refusal = this.#makeRoom(bucket);
    if (refusal !== undefined) {
      this.#dropIfEmpty(bucket);
      return Promise.resolve(refusal);
    }
    const store = this.#store;
    const entry: Entry = {
      id,
      bucket,
      fingerprint,
      outcome: undefined as unknown as Promise<IdempotentOutcome>,
      expiresAt: Number.POSITIVE_INFINITY,
    };
    const outcome = store === undefined ? execute() : this.#throughStore(store, entry, peer, key, execute);
    entry.outcome = outcome;
    bucket.pending++;
    this.#entries.set(id, entry);
    outcome.then((o) => this.#settle(entry, o));
    return store === undefined ? outcome : this.#checked(entry, fingerprint);
  }

  /** The entry's outcome, or a conflict if the store's record turned out to be another request's. */
  #checked(entry: Entry, fingerprint: Uint8Array): Promise<IdempotentAnswer> {
    return entry.outcome.then((o) => (sameFingerprint(entry.fingerprint, fingerprint) ? o : conflict()));
  }

  /**
   * A key the cache does not know: the store's record if it has one (its fingerprint and window
   * become the entry's), otherwise run it and put the settled outcome before answering. A store
   * that cannot be asked fails closed: nothing runs, the caller gets a refusal (reason `store`),
   * the entry is forgotten.
   */
  async #throughStore(
    store: IdempotencyStore,
    entry: Entry,
    peer: string,
    key: string,
    execute: () => Promise<IdempotentOutcome>,
  ): Promise<IdempotentAnswer> {
    let record: Awaited<ReturnType<IdempotencyStore['get']>>;
    try {
      record = await store.get(peer, key);
    } catch {
      return refused('store', 'The idempotency store cannot be read');
    }
    if (record !== undefined && record.expiresAt > this.#now()) {
      entry.fingerprint = record.fingerprint;
      entry.expiresAt = record.expiresAt;
      // Rebuilt, not passed on: a store's object must not pass for a refusal (never replayed).
      const kept = record.outcome;
      return kept.ok ? { ok: true, value: kept.value } : { ok: false, error: kept.error };
    }
    const outcome = await execute();
    if (outcome.ok || outcome.transient !== true) {
      const expiresAt = this.#now() + this.#windowMs;
      entry.expiresAt = expiresAt;
      const kept = outcome.ok
        ? { ok: true as const, value: outcome.value }
        : { ok: false as const, error: outcome.error };
      try {
        await store.put({ peer, key, fingerprint: entry.fingerprint, outcome: kept, expiresAt });
      } catch (err) {
        this.#onStoreError(err);
      }
    }
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
  #makeRoom(bucket: Bucket): IdempotentRefusal | undefined {
    if (bucket.detached >= this.#maxDetachedPerPeer || this.#detached >= this.#maxDetached)
      return refused('quota', 'Too many idempotent requests still running after their connection closed');
    if (bucket.settled.size + bucket.pending >= this.#maxPerPeer && !this.#evictOldest(bucket))
      return refused('quota', 'Too many idempotent requests of this peer are running');
    if (this.#entries.size >= this.#maxEntries) {
      // The peer holding the most settled entries gives one up: a peer with few entries keeps
      // them however many keys others send.
      let largest: Bucket | undefined;
      for (const b of this.#buckets.values()) if (b.settled.size > (largest?.settled.size ?? 0)) largest = b;
      if (largest === undefined || !this.#evictOldest(largest))
        return refused('quota', 'Too many idempotent requests are running');
    }
    return undefined;
  }

  #evictOldest(bucket: Bucket): boolean {
    const oldest = bucket.settled.values().next().value;
    if (oldest === undefined) return false;
    this.#delete(oldest);
    return true;
  }

  #settle(entry: Entry, answer: IdempotentAnswer): void {
    if (this.#entries.get(entry.id) !== entry) return; // cleared meanwhile
    const { bucket } = entry;
    bucket.pending--;
    if (isRefusal(answer) || (!answer.ok && answer.transient === true)) {
      this.#entries.delete(entry.id);
      this.#dropIfEmpty(bucket);
      return;
    }
    // A store's record brought its own window; otherwise it starts now.
    if (this.#store === undefined || entry.expiresAt === Number.POSITIVE_INFINITY)
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
