/**
 * The outbox journal's bytes (docs/outbox.md, "The journal format" and "Rollback: the anchor"):
 * the header, the framing of a record, its sealed body, the plaintexts of the three record types
 * and the anchor. Pure functions over bytes and keys: the journal reader, the outbox, the CLI's
 * verifier and the vector generator all use these and nothing else.
 */
import { crc32 } from 'node:zlib';
import { bytesEqual, sodium } from '../crypto/sodium.js';
import { createError } from '../errors.js';
import { decodeStoredMap, encodeValue } from '../msgpack/value-codec.js';

/** The journal's first bytes (then the 16-byte outbox id). */
export const JOURNAL_MAGIC = 'SIPC-OUTBOX 1\n';
/** Bytes of the outbox id. */
export const OUTBOX_ID_BYTES = 16;
/** Bytes of the header: magic line and id. */
export const HEADER_BYTES = JOURNAL_MAGIC.length + OUTBOX_ID_BYTES;
/** A record's magic. */
export const RECORD_MAGIC = Buffer.from('SOBX', 'ascii');
/** The record format version. */
export const RECORD_VERSION = 1;
/** Magic, L and ~L before the body. */
export const FRAME_HEAD_BYTES = 12;
/** The CRC after the body. */
export const FRAME_TAIL_BYTES = 4;
/** version, type, seq, nonce. */
export const BODY_HEAD_BYTES = 1 + 1 + 8 + 24;
const TAG_BYTES = 16;
/** Most bytes of one entry's plaintext (method, params, key, lane, times). */
export const MAX_OUTBOX_ENTRY_BYTES = 1024 * 1024;
/** Smallest and largest body length L. */
export const MIN_BODY_BYTES = BODY_HEAD_BYTES + TAG_BYTES;
export const MAX_BODY_BYTES = BODY_HEAD_BYTES + MAX_OUTBOX_ENTRY_BYTES + TAG_BYTES;
/** The largest sequence number. */
export const MAX_SEQ = Number.MAX_SAFE_INTEGER;

/** Record types. */
export const RecordType = Object.freeze({ CHECKPOINT: 1, ENQUEUE: 2, DONE: 3 } as const);
export type RecordTypeCode = (typeof RecordType)[keyof typeof RecordType];

const AD_LABEL = Buffer.from('sipc-outbox', 'ascii');
const KDF_CONTEXT = Buffer.from('sipcobx1', 'ascii');
/** Subkey ids of the master key (docs/outbox.md, "Keys"). */
export const SUBKEY_RECORDS = 1;
export const SUBKEY_ANCHOR = 2;

/** The three plaintexts. */
export interface CheckpointBody {
  readonly type: 1;
  /** Carried entries that follow. */
  readonly n: number;
  /** BLAKE2b-256 of their seqs (u64 BE each, in file order). */
  readonly h: Uint8Array;
}
export interface EnqueueBody {
  readonly type: 2;
  readonly method: string;
  /** Params (undefined: none). */
  readonly params: unknown;
  readonly idempotencyKey: string;
  readonly lane: string | undefined;
  /** Enqueued at, ms since 1970. */
  readonly enqueuedAt: number;
  /** Expires at, ms since 1970 (undefined: never). */
  readonly expiresAt: number | undefined;
}
/** How an entry ended (a DONE record's `r`): answered, refused for good, or expired. */
export type DoneResult = 'ok' | 'failed' | 'expired';
export interface DoneBody {
  readonly type: 3;
  /** The ENQUEUE's seq. */
  readonly seq: number;
  readonly result: DoneResult;
}
export type RecordBody = CheckpointBody | EnqueueBody | DoneBody;

/** The two subkeys of a master key, in sodium-guarded memory (zero them with `zeroKeys`). */
export interface OutboxKeys {
  readonly records: Uint8Array;
  readonly anchor: Uint8Array;
}

/** Derive the subkeys of a 32-byte master key. */
export function deriveOutboxKeys(master: Uint8Array): OutboxKeys {
  if (!(master instanceof Uint8Array) || master.byteLength !== 32)
    throw createError('SIPC_ERR_BAD_KEY', 'An outbox master key must be 32 bytes');
  const derive = (id: number) => {
    const k = sodium.sodium_malloc(32);
    sodium.crypto_kdf_derive_from_key(k, id, KDF_CONTEXT, master);
    return k;
  };
  return { records: derive(SUBKEY_RECORDS), anchor: derive(SUBKEY_ANCHOR) };
}

/** Wipe both subkeys. */
export function zeroKeys(keys: OutboxKeys): void {
  sodium.sodium_memzero(keys.records);
  sodium.sodium_memzero(keys.anchor);
}

/** The journal header for `id`. */
export function journalHeader(id: Uint8Array): Buffer {
  return Buffer.concat([Buffer.from(JOURNAL_MAGIC, 'ascii'), id]);
}

/** The associated data of a record: label · outbox id · version · type · seq. */
export function recordAd(id: Uint8Array, version: number, type: number, seq: number): Buffer {
  const ad = Buffer.alloc(AD_LABEL.byteLength + OUTBOX_ID_BYTES + 10);
  AD_LABEL.copy(ad, 0);
  ad.set(id, AD_LABEL.byteLength);
  let o = AD_LABEL.byteLength + OUTBOX_ID_BYTES;
  ad[o++] = version;
  ad[o++] = type;
  ad.writeBigUInt64BE(BigInt(seq), o);
  return ad;
}

function plaintextOf(body: RecordBody): Uint8Array {
  switch (body.type) {
    case RecordType.CHECKPOINT:
      return encodeValue({ n: body.n, h: body.h }, 'checkpoint');
    case RecordType.DONE:
      return encodeValue({ s: body.seq, r: body.result }, 'done record');
    default: {
      const m: Record<string, unknown> = { m: body.method, k: body.idempotencyKey, t: body.enqueuedAt };
      if (body.params !== undefined) m.p = body.params;
      if (body.lane !== undefined) m.l = body.lane;
      if (body.expiresAt !== undefined) m.x = body.expiresAt;
      return encodeValue(m, 'params');
    }
  }
}

/**
 * Seal `body` as record `seq` of outbox `id` and frame it: the bytes to append. `nonce` is for
 * test vectors only (default: 24 random bytes). Throws SIPC_ERR_MESSAGE_TOO_LARGE for an entry
 * over MAX_OUTBOX_ENTRY_BYTES, SIPC_ERR_INVALID_ARGUMENT for params that are not values.
 */
export function sealRecord(
  keys: OutboxKeys,
  id: Uint8Array,
  seq: number,
  body: RecordBody,
  nonce?: Uint8Array,
): Buffer {
  const plain = plaintextOf(body);
  if (plain.byteLength > MAX_OUTBOX_ENTRY_BYTES)
    throw createError(
      'SIPC_ERR_MESSAGE_TOO_LARGE',
      `An outbox entry of ${plain.byteLength} bytes exceeds ${MAX_OUTBOX_ENTRY_BYTES} bytes`,
      { details: { bytes: plain.byteLength, max: MAX_OUTBOX_ENTRY_BYTES } },
    );
  const L = BODY_HEAD_BYTES + plain.byteLength + TAG_BYTES;
  const out = Buffer.alloc(FRAME_HEAD_BYTES + L + FRAME_TAIL_BYTES);
  RECORD_MAGIC.copy(out, 0);
  out.writeUInt32BE(L, 4);
  out.writeUInt32BE(~L >>> 0, 8);
  const b = FRAME_HEAD_BYTES;
  out[b] = RECORD_VERSION;
  out[b + 1] = body.type;
  out.writeBigUInt64BE(BigInt(seq), b + 2);
  const n = out.subarray(b + 10, b + BODY_HEAD_BYTES);
  if (nonce === undefined) sodium.randombytes_buf(n);
  else n.set(nonce);
  sodium.crypto_aead_xchacha20poly1305_ietf_encrypt(
    out.subarray(b + BODY_HEAD_BYTES, b + L),
    plain,
    recordAd(id, RECORD_VERSION, body.type, seq),
    null,
    n,
    keys.records,
  );
  out.writeUInt32BE(crc32(out.subarray(b, b + L)), b + L);
  return out;
}

/** What the frame at an offset is. */
export type FrameCheck =
  | { readonly kind: 'whole'; readonly length: number; readonly crcOk: boolean }
  | { readonly kind: 'bad' }
  | { readonly kind: 'short' };

/**
 * Check the framing of the record starting at `frame[0]` (`available` bytes of the file from
 * there): 'whole' (magic, L in range, ~L, and L + CRC bytes present; `length` is the framed
 * length), 'short' (a good start cut by the end of the file), 'bad' otherwise.
 */
export function checkFrame(head: Uint8Array, available: number): FrameCheck {
  if (available < FRAME_HEAD_BYTES) {
    const n = Math.min(available, RECORD_MAGIC.byteLength);
    return Buffer.from(head.subarray(0, n)).equals(RECORD_MAGIC.subarray(0, n))
      ? { kind: 'short' }
      : { kind: 'bad' };
  }
  const h = Buffer.from(head.buffer, head.byteOffset, head.byteLength);
  if (!h.subarray(0, 4).equals(RECORD_MAGIC)) return { kind: 'bad' };
  const L = h.readUInt32BE(4);
  if (L < MIN_BODY_BYTES || L > MAX_BODY_BYTES || ~L >>> 0 !== h.readUInt32BE(8)) return { kind: 'bad' };
  const length = FRAME_HEAD_BYTES + L + FRAME_TAIL_BYTES;
  if (available < length) return { kind: 'short' };
  if (h.byteLength < length) return { kind: 'whole', length, crcOk: false };
  return {
    kind: 'whole',
    length,
    crcOk: crc32(h.subarray(FRAME_HEAD_BYTES, FRAME_HEAD_BYTES + L)) === h.readUInt32BE(FRAME_HEAD_BYTES + L),
  };
}

/** Why a whole record is not valid (docs/outbox.md, "Reading a journal"). */
export type InvalidReason = 'crc' | 'version' | 'type' | 'tag' | 'malformed';

/** A whole record opened: its claimed header, and its body or why it is not valid. */
export type OpenedRecord =
  | { readonly ok: true; readonly type: RecordTypeCode; readonly seq: number; readonly body: RecordBody }
  | { readonly ok: false; readonly seq: number | undefined; readonly reason: InvalidReason };

const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isText = (v: unknown, max: number): v is string =>
  typeof v === 'string' && v.length > 0 && Buffer.byteLength(v, 'utf8') <= max;

function decodePlain(type: RecordTypeCode, plain: Uint8Array): RecordBody | undefined {
  const v = decodeStoredMap(plain);
  if (v === undefined) return undefined;
  if (type === RecordType.CHECKPOINT)
    return isUint(v.n) && v.h instanceof Uint8Array && v.h.byteLength === 32
      ? { type, n: v.n, h: Buffer.from(v.h) }
      : undefined;
  if (type === RecordType.DONE)
    return isUint(v.s) && (v.r === 'ok' || v.r === 'failed' || v.r === 'expired')
      ? { type, seq: v.s, result: v.r }
      : undefined;
  if (!isText(v.m, 65_535) || !isText(v.k, 128) || !isUint(v.t)) return undefined;
  if (v.l !== undefined && !isText(v.l, 512)) return undefined;
  if (v.x !== undefined && !isUint(v.x)) return undefined;
  return {
    type,
    method: v.m,
    params: v.p,
    idempotencyKey: v.k,
    lane: v.l as string | undefined,
    enqueuedAt: v.t,
    expiresAt: v.x as number | undefined,
  };
}

/**
 * Open a whole framed record (`checkFrame` said 'whole'): its CRC, version, type, tag under the AD
 * of outbox `id`, and its plaintext. The seq is the claimed one when the header is readable.
 */
export function openRecord(keys: OutboxKeys, id: Uint8Array, framed: Uint8Array): OpenedRecord {
  const f = Buffer.from(framed.buffer, framed.byteOffset, framed.byteLength);
  const L = f.readUInt32BE(4);
  const body = f.subarray(FRAME_HEAD_BYTES, FRAME_HEAD_BYTES + L);
  const claimed = body.readBigUInt64BE(2);
  const seq = claimed >= 1n && claimed <= BigInt(MAX_SEQ) ? Number(claimed) : undefined;
  const fail = (reason: InvalidReason): OpenedRecord => ({ ok: false, seq, reason });
  if (crc32(body) !== f.readUInt32BE(FRAME_HEAD_BYTES + L)) return fail('crc');
  if (body[0] !== RECORD_VERSION) return fail('version');
  const type = body[1]!;
  if (type !== RecordType.CHECKPOINT && type !== RecordType.ENQUEUE && type !== RecordType.DONE)
    return fail('type');
  if (seq === undefined) return fail('malformed');
  const plain = Buffer.alloc(L - BODY_HEAD_BYTES - TAG_BYTES);
  try {
    sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
      plain,
      null,
      body.subarray(BODY_HEAD_BYTES),
      recordAd(id, RECORD_VERSION, type, seq),
      body.subarray(10, BODY_HEAD_BYTES),
      keys.records,
    );
  } catch {
    return fail('tag');
  }
  const decoded = decodePlain(type as RecordTypeCode, plain);
  plain.fill(0);
  return decoded === undefined
    ? fail('malformed')
    : { ok: true, type: type as RecordTypeCode, seq, body: decoded };
}

/** BLAKE2b-256 of a list of seqs (u64 BE each): a CHECKPOINT's `h`. */
export function seqListHash(seqs: readonly number[]): Buffer {
  const bytes = Buffer.alloc(seqs.length * 8);
  for (let i = 0; i < seqs.length; i++) bytes.writeBigUInt64BE(BigInt(seqs[i]!), i * 8);
  const out = Buffer.alloc(32);
  sodium.crypto_generichash(out, bytes);
  return out;
}

/** The anchor file's first line. */
export const ANCHOR_FILE_MAGIC = 'SIPC-OUTBOX-ANCHOR 1\n';
/** Bytes of an anchor: id · seq · tag. */
export const ANCHOR_BYTES = 32;
const ANCHOR_LABEL = Buffer.from('sipc-outbox-anchor', 'ascii');

function anchorTag(keys: OutboxKeys, id: Uint8Array, seq: number): Buffer {
  const input = Buffer.alloc(ANCHOR_LABEL.byteLength + OUTBOX_ID_BYTES + 8);
  ANCHOR_LABEL.copy(input, 0);
  input.set(id, ANCHOR_LABEL.byteLength);
  input.writeBigUInt64BE(BigInt(seq), ANCHOR_LABEL.byteLength + OUTBOX_ID_BYTES);
  const out = Buffer.alloc(32);
  sodium.crypto_generichash(out, input, keys.anchor);
  return out.subarray(0, 8);
}

/** The 32 anchor bytes for outbox `id` at `seq`. */
export function encodeAnchor(keys: OutboxKeys, id: Uint8Array, seq: number): Buffer {
  const out = Buffer.alloc(ANCHOR_BYTES);
  out.set(id, 0);
  out.writeBigUInt64BE(BigInt(seq), OUTBOX_ID_BYTES);
  anchorTag(keys, id, seq).copy(out, OUTBOX_ID_BYTES + 8);
  return out;
}

/** An anchor read: its id and seq, or undefined when its tag is wrong (constant-time compare). */
export function decodeAnchor(keys: OutboxKeys, bytes: Uint8Array): { id: Buffer; seq: number } | undefined {
  if (bytes.byteLength !== ANCHOR_BYTES) return undefined;
  const b = Buffer.from(bytes);
  const id = b.subarray(0, OUTBOX_ID_BYTES);
  const big = b.readBigUInt64BE(OUTBOX_ID_BYTES);
  if (big > BigInt(MAX_SEQ)) return undefined;
  const seq = Number(big);
  return bytesEqual(anchorTag(keys, id, seq), b.subarray(OUTBOX_ID_BYTES + 8))
    ? { id: Buffer.from(id), seq }
    : undefined;
}
