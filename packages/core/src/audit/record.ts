/**
 * The audit record (docs/audit.md "Records"): a msgpack map `{ n, p, t, at, f }` encoded with
 * sorted keys (deterministic bytes, which are the Merkle leaf), and its bounded decoding; the
 * epoch records' fields and the handover text the previous epoch's key signs.
 */
import { Encoder } from '@msgpack/msgpack';
import { createError, type SecureIpcError } from '../errors.js';
import { decodeBounded } from '../msgpack/decode-budget.js';
import { HASH_BYTES } from './merkle.js';
import { checkpointText } from './note.js';

/** A value an audit record's fields may hold (msgpack nil, bool, int, str, bin, array, map). */
export type AuditValue = null | boolean | number | string | Uint8Array | readonly AuditValue[] | AuditFields;

/** An audit record's application fields: string keys. */
export interface AuditFields {
  /** A field (safe integers only for numbers; no undefined). */
  readonly [key: string]: AuditValue;
}

/** What an application appends: its record type and fields (`n`, `p` and `at` are the log's). */
export interface AuditEntry {
  /** The record type, e.g. `rpc.call` (1-128 characters; `epoch` is the log's own). */
  readonly type: string;
  /** The fields (no payloads or secrets: record their keyed hashes instead, as Vault does). */
  readonly fields?: AuditFields;
}

/** A record as stored: docs/audit.md "Records". */
export interface AuditRecord {
  /** Its index in the log. */
  readonly index: number;
  /** The leaf hash of the previous record (undefined for record 0). */
  readonly prev: Uint8Array | undefined;
  /** The record type. */
  readonly type: string;
  /** When it was written, ms since the Unix epoch. */
  readonly at: number;
  /** The application's fields (empty object when none). */
  readonly fields: AuditFields;
}

/** The record type of epoch records. */
export const EPOCH_TYPE = 'epoch';
/** Most nesting of field values. */
export const MAX_FIELD_DEPTH = 16;
/** Longest record type. */
export const MAX_TYPE_LENGTH = 128;

const corrupt = (message: string): SecureIpcError =>
  createError('SIPC_ERR_AUDIT_CORRUPT', message, { details: { reason: 'record' } });
const invalid = (message: string): SecureIpcError => createError('SIPC_ERR_INVALID_ARGUMENT', message);

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && Object.getPrototypeOf(v) === Object.prototype;

/** Why `v` is not an AuditValue (a path and a reason), or undefined. */
function valueProblem(v: unknown, path: string, depth: number): string | undefined {
  if (depth > MAX_FIELD_DEPTH) return `${path}: nested deeper than ${MAX_FIELD_DEPTH}`;
  if (v === null || typeof v === 'boolean' || typeof v === 'string' || v instanceof Uint8Array)
    return undefined;
  if (typeof v === 'number') return Number.isSafeInteger(v) ? undefined : `${path}: not a safe integer`;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const p = valueProblem(v[i], `${path}[${i}]`, depth + 1);
      if (p !== undefined) return p;
    }
    return undefined;
  }
  if (isPlainObject(v)) {
    for (const [k, x] of Object.entries(v)) {
      const p = valueProblem(x, `${path}.${k}`, depth + 1);
      if (p !== undefined) return p;
    }
    return undefined;
  }
  return `${path}: ${typeof v} is not an audit value (nil, bool, int, str, bytes, array, object)`;
}

/**
 * One encoder for every record (it returns a copy, and clones itself if re-entered): `encode()`
 * builds an encoder with a fresh 2 KiB buffer per call, a tenth of an append's time.
 */
const recordEncoder = new Encoder({ sortKeys: true, ignoreUndefined: false, forceIntegerToFloat: false });

/** Encode a record deterministically (keys sorted); SIPC_ERR_INVALID_ARGUMENT on a bad value. */
export function encodeAuditRecord(record: AuditRecord): Uint8Array {
  if (typeof record.type !== 'string' || record.type.length === 0 || record.type.length > MAX_TYPE_LENGTH)
    throw invalid(`An audit record type is a string of 1 to ${MAX_TYPE_LENGTH} characters`);
  if (!isPlainObject(record.fields)) throw invalid('Audit record fields are a plain object');
  const problem = valueProblem(record.fields, 'fields', 1);
  if (problem !== undefined) throw invalid(`Bad audit record field ${problem}`);
  const map: Record<string, unknown> = { n: record.index, t: record.type, at: record.at };
  if (record.prev !== undefined) map.p = record.prev;
  if (Object.keys(record.fields).length > 0) map.f = record.fields;
  return recordEncoder.encode(map);
}

const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/** Decode a stored record (decode budget first); SIPC_ERR_AUDIT_CORRUPT when it is not one. */
export function decodeAuditRecord(bytes: Uint8Array): AuditRecord {
  let m: unknown;
  try {
    m = decodeBounded(bytes);
  } catch (err) {
    throw createError('SIPC_ERR_AUDIT_CORRUPT', 'An audit record does not decode', {
      cause: err,
      details: { reason: 'record' },
    });
  }
  if (!isPlainObject(m)) throw corrupt('An audit record is not a map');
  const { n, p, t, at, f } = m;
  if (!isUint(n)) throw corrupt('An audit record has no index n');
  if (p !== undefined && !(p instanceof Uint8Array && p.byteLength === HASH_BYTES))
    throw corrupt('An audit record p is not a 32-byte hash');
  if (typeof t !== 'string' || t.length === 0) throw corrupt('An audit record has no type t');
  if (!isUint(at)) throw corrupt('An audit record has no time at');
  if (f !== undefined && !isPlainObject(f)) throw corrupt('An audit record f is not a map');
  for (const k of Object.keys(m))
    if (!['n', 'p', 't', 'at', 'f'].includes(k)) throw corrupt(`An audit record has an unknown key`);
  return { index: n, prev: p as Uint8Array | undefined, type: t, at, fields: (f ?? {}) as AuditFields };
}

/** The fields of an epoch record. */
export interface EpochFields {
  /** The epoch it starts. */
  readonly epoch: number;
  /** The epoch's Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** The log's origin (record 0 only). */
  readonly origin?: string;
  /** Epochs > 0: the root of the records before this one, as signed. */
  readonly root?: Uint8Array;
  /** Epochs > 0: the previous epoch's signature over the handover text. */
  readonly signature?: Uint8Array;
}

/** The `f` map of an epoch record. */
export function epochRecordFields(e: EpochFields): AuditFields {
  const f: Record<string, AuditValue> = { e: e.epoch, k: e.publicKey };
  if (e.origin !== undefined) f.o = e.origin;
  if (e.root !== undefined) f.r = e.root;
  if (e.signature !== undefined) f.s = e.signature;
  return f;
}

const isBytes = (v: unknown, n: number): v is Uint8Array => v instanceof Uint8Array && v.byteLength === n;

/** The epoch fields of an epoch record; SIPC_ERR_AUDIT_CORRUPT (reason `epoch`) when malformed. */
export function parseEpochRecord(record: AuditRecord): EpochFields {
  const bad = (why: string) =>
    createError('SIPC_ERR_AUDIT_CORRUPT', `Epoch record ${record.index}: ${why}`, {
      details: { reason: 'epoch' },
    });
  if (record.type !== EPOCH_TYPE) throw bad('not an epoch record');
  const { e, k, o, r, s } = record.fields as Record<string, unknown>;
  if (!isUint(e)) throw bad('no epoch number e');
  if (!isBytes(k, 32)) throw bad('k is not a 32-byte key');
  if (e === 0) {
    if (typeof o !== 'string' || o.length === 0) throw bad('the genesis record has no origin o');
    return { epoch: 0, publicKey: k, origin: o };
  }
  if (!isBytes(r, HASH_BYTES)) throw bad('r is not a 32-byte root');
  if (!isBytes(s, 64)) throw bad('s is not a 64-byte signature');
  return { epoch: e, publicKey: k, root: r, signature: s };
}

/** The text the previous epoch's key signs when epoch `epoch` starts at index `size` (docs/audit.md). */
export function handoverText(
  origin: string,
  size: number,
  root: Uint8Array,
  epoch: number,
  publicKey: Uint8Array,
): string {
  return checkpointText({ origin, size, root }, [
    `secure-ipc-epoch ${epoch} ${Buffer.from(publicKey).toString('base64')}`,
  ]);
}
