/**
 * A durable idempotency store in one file (docs/resilience.md, "Durable idempotency"): the record
 * file of resilience/record-file.ts (the saga journal's framing, open checks, torn tails and
 * compaction) with the header "SIPC-IDEMPOTENCY 1\n" and one msgpack map per settled outcome:
 *
 *   { p: peer, k: key, f: fingerprint (bin, 64 bytes), x: expiresAt (wall-clock ms),
 *     o: true,  v: the handler's value }            or
 *     o: false, e: { code, message, data? } }
 *
 * A put is on disk (fdatasync) before it resolves, so before the caller gets its reply. The file
 * keeps at most `maxEntries` unexpired records (the oldest give way) and at most `maxBytes`;
 * opening it and every compaction drop expired and replaced records.
 */
import { createError } from '../errors.js';
import { decodeStoredMap, encodeValue, isPlainMap } from '../msgpack/value-codec.js';
import { DEFAULT_IDEMPOTENCY_MAX_ENTRIES } from '../rpc/idempotency.js';
import {
  type IdempotencyRecord,
  type IdempotencyStore,
  idempotencyRecordId,
  type StoredOutcome,
} from '../rpc/idempotency-store.js';
import { openRecordFile, type RecordFormat } from './record-file.js';

/** The file's first bytes: the format and its version. */
export const IDEMPOTENCY_FILE_HEADER = 'SIPC-IDEMPOTENCY 1\n';
/** Largest record (one settled outcome with its value), in bytes: 1 MiB. */
export const MAX_IDEMPOTENCY_RECORD_BYTES = 1024 * 1024;
/** Default and largest `maxBytes` of an idempotency file: 64 MiB. */
export const DEFAULT_IDEMPOTENCY_FILE_MAX_BYTES = 64 * 1024 * 1024;

/** Options of `fileIdempotencyStore`. */
export interface FileIdempotencyStoreOptions {
  /** Largest the file may grow, in bytes (default and maximum 64 MiB, at least 1 MiB). */
  maxBytes?: number;
  /** Most unexpired records kept; the oldest give way (default 10,000, the cache's `maxEntries`). */
  maxEntries?: number;
  /** Wall clock, ms since the epoch (default Date.now); for tests. */
  now?: () => number;
}

/** An idempotency store in a file (see `fileIdempotencyStore`). */
export interface FileIdempotencyStore extends IdempotencyStore {
  /** The file's path. */
  readonly path: string;
  /** Bytes of a torn last record that the open dropped (0 when the file ended cleanly). */
  readonly tornBytes: number;
  /** Unexpired records held now. */
  readonly size: number;
  /** Rewrite the file with only the unexpired records (atomically). */
  compact(): Promise<void>;
  /** Close the file (it may then be opened again); later puts reject with SIPC_ERR_INVALID_ARGUMENT. */
  close(): Promise<void>;
}

type WireError = Extract<StoredOutcome, { ok: false }>['error'];

function wireError(v: unknown): WireError | undefined {
  if (!isPlainMap(v) || typeof v.code !== 'string' || typeof v.message !== 'string') return undefined;
  return v.data === undefined
    ? { code: v.code, message: v.message }
    : { code: v.code, message: v.message, data: v.data };
}

/** The record a body holds, or undefined for a malformed one. */
function decodeRecord(body: Uint8Array): IdempotencyRecord | undefined {
  const r = decodeStoredMap(body);
  if (r === undefined || typeof r.p !== 'string' || typeof r.k !== 'string' || typeof r.o !== 'boolean')
    return undefined;
  if (!(r.f instanceof Uint8Array) || r.f.byteLength !== 64) return undefined;
  if (typeof r.x !== 'number' || !Number.isFinite(r.x)) return undefined;
  const base = { peer: r.p, key: r.k, fingerprint: r.f, expiresAt: r.x };
  if (r.o) return { ...base, outcome: { ok: true, value: r.v } };
  const error = wireError(r.e);
  return error === undefined ? undefined : { ...base, outcome: { ok: false, error } };
}

function encodeRecord(record: IdempotencyRecord): Uint8Array {
  const { peer, key, fingerprint, expiresAt, outcome } = record;
  const body = encodeValue(
    outcome.ok
      ? { p: peer, k: key, f: fingerprint, x: expiresAt, o: true, v: outcome.value }
      : { p: peer, k: key, f: fingerprint, x: expiresAt, o: false, e: outcome.error },
    'idempotency record',
  );
  if (body.byteLength > MAX_IDEMPOTENCY_RECORD_BYTES)
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `An idempotency record of ${body.byteLength} bytes exceeds ${MAX_IDEMPOTENCY_RECORD_BYTES} bytes`,
      { details: { bytes: body.byteLength, max: MAX_IDEMPOTENCY_RECORD_BYTES } },
    );
  if (decodeRecord(body) === undefined)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'The idempotency record is malformed');
  return body;
}

const FORMAT: RecordFormat<IdempotencyRecord> = {
  header: IDEMPOTENCY_FILE_HEADER,
  title: 'Idempotency store',
  kind: 'an idempotency store (format version 1)',
  live: 'unexpired outcomes',
  maxRecordBytes: MAX_IDEMPOTENCY_RECORD_BYTES,
  decode: decodeRecord,
};

function bounded(
  value: number | undefined,
  fallback: number,
  min: number,
  max: number,
  name: string,
): number {
  const v = value ?? fallback;
  if (!Number.isInteger(v) || v < min || v > max)
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `fileIdempotencyStore: ${name} must be an integer from ${min} to ${max}`,
    );
  return v;
}

/** The unexpired records, oldest first, each with its encoded body. */
class Held {
  readonly #records = new Map<string, { record: IdempotencyRecord; body: Uint8Array }>();
  constructor(
    readonly maxEntries: number,
    readonly now: () => number,
  ) {}

  get size(): number {
    return this.#records.size;
  }

  get(id: string): IdempotencyRecord | undefined {
    const held = this.#records.get(id);
    if (held === undefined) return undefined;
    if (held.record.expiresAt > this.now()) return held.record;
    this.#records.delete(id);
    return undefined;
  }

  /** Keep `record` (replacing one of the same id); true when that made older records stale. */
  add(record: IdempotencyRecord, body: Uint8Array): boolean {
    if (record.expiresAt <= this.now()) return true;
    const id = idempotencyRecordId(record.peer, record.key);
    const replaced = this.#records.delete(id);
    this.#records.set(id, { record, body });
    let dropped = false;
    while (this.#records.size > this.maxEntries) {
      const oldest = this.#records.keys().next().value as string;
      this.#records.delete(oldest);
      dropped = true;
    }
    return replaced || dropped;
  }

  live(): Uint8Array[] {
    const now = this.now();
    const out: Uint8Array[] = [];
    for (const [id, held] of this.#records)
      if (held.record.expiresAt > now) out.push(held.body);
      else this.#records.delete(id);
    return out;
  }
}

/**
 * Open the idempotency store at `path`, creating it (mode 0600) if it does not exist, and pass it
 * as `idempotency: { store }`. Rejects with SIPC_ERR_INVALID_ARGUMENT for a link, a non-regular
 * file, a file of another format or damaged before its last record, or one over `maxBytes`;
 * SIPC_ERR_INSECURE_KEY_FILE for a file owned by another user or open to group or others (it
 * holds handlers' results: a secret file). A torn last record (a crash mid-write) is dropped.
 * One process uses a store file at a time.
 */
export async function fileIdempotencyStore(
  path: string,
  options: FileIdempotencyStoreOptions = {},
): Promise<FileIdempotencyStore> {
  if (typeof path !== 'string' || path.length === 0)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'fileIdempotencyStore needs a file path');
  const max = DEFAULT_IDEMPOTENCY_FILE_MAX_BYTES;
  const maxBytes = bounded(options.maxBytes, max, 1024 * 1024, max, 'maxBytes');
  const maxEntries = bounded(options.maxEntries, DEFAULT_IDEMPOTENCY_MAX_ENTRIES, 1, 1_000_000, 'maxEntries');
  const held = new Held(maxEntries, options.now ?? Date.now);
  const file = await openRecordFile(path, FORMAT, maxBytes, {
    add: (record, body) => held.add(record, body),
    live: () => held.live(),
  });
  return {
    path,
    tornBytes: file.tornBytes,
    get size() {
      return held.size;
    },
    get: (peer, key) => held.get(idempotencyRecordId(peer, key)),
    put: async (record) => {
      if (held.get(idempotencyRecordId(record.peer, record.key)) !== undefined) return;
      let body: Uint8Array | undefined;
      return file.append(
        () => {
          body = encodeRecord(record);
          return body;
        },
        () => {
          // A record already held (the application's own, or a repeat's) is kept: the first wins.
          if (held.get(idempotencyRecordId(record.peer, record.key)) === undefined)
            held.add(record, body as Uint8Array);
        },
      );
    },
    compact: () => file.compact(),
    close: () => file.close(),
  };
}
