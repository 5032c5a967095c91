/**
 * Where settled idempotent outcomes are kept beyond the server's memory (docs/resilience.md,
 * "Durable idempotency"). The server's IdempotencyCache stays the first layer: it holds pending
 * executions (their waiters cannot be persisted) and the settled outcomes it has seen; a store
 * behind it is asked for a key the cache does not know, and is given each outcome once it settles.
 *
 * A store decides nothing: the cache compares fingerprints and applies the window. The window
 * of a stored record is wall-clock time (`expiresAt`, ms since the epoch), so it means the same
 * after a restart; a store drops what has expired and bounds what it keeps.
 */
import type { WireError } from '../envelope/types.js';

/** A settled outcome as a store keeps it: a handler's value, or the error the caller saw. */
export type StoredOutcome =
  | {
      /** The execution answered. */
      ok: true;
      /** The answer, as the handler returned it. */
      value: unknown;
    }
  | {
      /** The execution failed. */
      ok: false;
      /** The error, as it crossed the wire. */
      error: WireError;
    };

/** One settled execution of (peer, key). */
export interface IdempotencyRecord {
  /** Fingerprint of the peer's static key (`HandlerContext.peerId`). */
  readonly peer: string;
  /** The idempotency key (`HandlerContext.headers.idempotencyKey`). */
  readonly key: string;
  /** BLAKE2b-512 of the request (`requestFingerprint(method, params)`), 64 bytes. */
  readonly fingerprint: Uint8Array;
  /** What the first execution answered. */
  readonly outcome: StoredOutcome;
  /** When the record stops being replayed, in wall-clock ms since the epoch. */
  readonly expiresAt: number;
}

/**
 * A durable home for settled outcomes (`idempotency: { store }`). Both methods may be async. `put`
 * of a (peer, key) the store holds already keeps the first record: an application that committed
 * the record with its effect (exactly-once, see docs) sees its own record kept.
 */
export interface IdempotencyStore {
  /** The unexpired record of (peer, key), if any. */
  get(peer: string, key: string): IdempotencyRecord | undefined | Promise<IdempotencyRecord | undefined>;
  /** Keep `record` (if (peer, key) is not held already). */
  put(record: IdempotencyRecord): void | Promise<void>;
}

/** The store's key of (peer, key): \0 occurs in neither, so pairs never collide. */
export function idempotencyRecordId(peer: string, key: string): string {
  return `${peer}\0${key}`;
}

/** Options of `memoryIdempotencyStore`. */
export interface MemoryIdempotencyStoreOptions {
  /** Wall clock, ms since the epoch (default Date.now); for tests. */
  now?: () => number;
}

/**
 * A store in this process's memory: what the cache alone already gives, behind the same
 * interface (a reference for custom stores and a way to test them; it does not survive a restart).
 * Unbounded apart from expiry: bound it by the cache's quotas, or use `fileIdempotencyStore`.
 */
export function memoryIdempotencyStore(options: MemoryIdempotencyStoreOptions = {}): IdempotencyStore {
  const now = options.now ?? Date.now;
  const records = new Map<string, IdempotencyRecord>();
  return {
    get(peer, key) {
      const id = idempotencyRecordId(peer, key);
      const record = records.get(id);
      if (record === undefined || record.expiresAt > now()) return record;
      records.delete(id);
      return undefined;
    },
    put(record) {
      const id = idempotencyRecordId(record.peer, record.key);
      const held = records.get(id);
      if (held === undefined || held.expiresAt <= now()) records.set(id, record);
    },
  };
}
