/**
 * Envelope v1: the msgpack map every RPC message travels in (normative text in docs/protocol.md,
 * "Envelope v1 and RPC"). This module only encodes, decodes and validates; it never dispatches.
 * Validation is strict on purpose: v1 is a closed format (a future format bumps `v`), so an
 * unknown field is as suspicious as a wrong type.
 */
import { Decoder, Encoder } from '@msgpack/msgpack';
import {
  createError,
  ERROR_TABLE,
  type ErrorCode,
  isSecureIpcError,
  RemoteError,
  type SecureIpcError,
} from '../errors.js';

/** The envelope format version this module speaks. */
export const ENVELOPE_VERSION = 1;

/** Envelope kinds (field `k`). */
export const EnvelopeKind = {
  /** A call: `id`, `m` = method, `p` = params, optional `h`. */
  Request: 1,
  /** A successful unary answer to request `id`. */
  Response: 2,
  /** A failed answer to request `id` (also ends a stream): `e` = `{ code, message, data? }`. */
  Error: 3,
  /** A one-way message: `m` = topic, `p` = payload, no `id`. */
  Event: 4,
  /** The requester gives up on request `id`. */
  Cancel: 5,
  /** One item of the stream answering request `id`. */
  StreamItem: 6,
  /** The stream answering request `id` ended normally. */
  StreamEnd: 7,
  /** The requester grants `p` more stream items for request `id` (flow control). */
  Credit: 8,
} as const;

/** A kind number. */
export type EnvelopeKind = (typeof EnvelopeKind)[keyof typeof EnvelopeKind];

/** Validated headers (field `h`). */
export interface EnvelopeHeaders {
  /** Milliseconds the caller will wait for the answer. */
  timeout?: number;
  /** Idempotency key: the request runs at most once per key (per peer) within the server's window. */
  idem?: string;
  /** W3C traceparent of the caller's span. */
  trace?: string;
}

/** An error as it crosses the wire: code and message only (plus optional data the thrower chose). */
export interface WireError {
  /** A stable error code, e.g. `SIPC_ERR_FORBIDDEN` or an application's own. */
  code: string;
  /** A human-readable message; never a stack trace. */
  message: string;
  /** Optional machine-readable detail chosen by the handler. */
  data?: unknown;
}

/** A validated envelope. */
export interface Envelope {
  /** The envelope version: set by the encoder, always 1 after validation. */
  v?: number;
  /** Kind of message. */
  k: EnvelopeKind;
  /** Request id (absent only on events). */
  id?: number;
  /** Method (requests) or topic (events). */
  m?: string;
  /** Payload. */
  p?: unknown;
  /** Error (kind 3). */
  e?: WireError;
  /** Headers (requests). */
  h?: EnvelopeHeaders;
}

/** Size limits applied while validating. */
export interface EnvelopeLimits {
  /** Longest method or topic name in UTF-16 code units (default 256). */
  maxNameLength?: number;
  /** Longest error code (default 64) and error message (default 1024). */
  maxErrorCodeLength?: number;
  /** Longest error message (default 1024). */
  maxErrorMessageLength?: number;
  /** Longest idempotency key (default 128). */
  maxIdempotencyKeyLength?: number;
  /** Largest stream credit grant in one envelope (default 65536). */
  maxCredit?: number;
}

/** The limits used when none are given. */
export const DEFAULT_ENVELOPE_LIMITS: Readonly<Required<EnvelopeLimits>> = Object.freeze({
  maxNameLength: 256,
  maxErrorCodeLength: 64,
  maxErrorMessageLength: 1024,
  maxIdempotencyKeyLength: 128,
  maxCredit: 65536,
});

/** The result of decoding: either a valid envelope or why not, with the id if one could be read. */
export type DecodeResult =
  | { ok: true; envelope: Envelope }
  | { ok: false; error: SecureIpcError; id: number | undefined; kind: number | undefined };

const HEADER_KEYS = new Set(['timeout', 'idem', 'trace']);
const ERROR_KEYS = new Set(['code', 'message', 'data']);
const TRACEPARENT = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const ERROR_CODE = /^[A-Za-z0-9_.:-]+$/;

// The envelope's fixed fields are written by hand and only the values (payload, error, headers)
// go through msgpack: no object spread, no key strings encoded per message, and one pooled
// allocation for the result. Profiled: about half the cost of Encoder.encode on the whole map.
// encodeSharedRef returns a view into the encoder's buffer, copied into the result at once.
const encoder = new Encoder({ ignoreUndefined: true });
const KEY_ID = [0xa2, 0x69, 0x64]; // "id"
const KEY_M = [0xa1, 0x6d]; // "m"
const KEY_P = [0xa1, 0x70]; // "p"
const KEY_E = [0xa1, 0x65]; // "e"
const KEY_H = [0xa1, 0x68]; // "h"
const head = Buffer.allocUnsafe(16 + 3 * DEFAULT_ENVELOPE_LIMITS.maxNameLength + 16);

// A length or unsigned value below 2^32 with the 8/16/32-bit msgpack marker picked by size.
function writeSized(buf: Buffer, pos: number, n: number, m8: number, m16: number, m32: number): number {
  if (n < 0x100) {
    buf[pos++] = m8;
    buf[pos++] = n;
  } else if (n < 0x10000) {
    buf[pos++] = m16;
    buf.writeUInt16BE(n, pos);
    pos += 2;
  } else {
    buf[pos++] = m32;
    buf.writeUInt32BE(n, pos);
    pos += 4;
  }
  return pos;
}

function writeUint(buf: Buffer, pos: number, n: number): number {
  if (n < 0x80) buf[pos++] = n;
  else if (n < 0x100000000) pos = writeSized(buf, pos, n, 0xcc, 0xcd, 0xce);
  else {
    buf[pos++] = 0xcf;
    buf.writeUInt32BE(Math.floor(n / 0x100000000), pos);
    buf.writeUInt32BE(n >>> 0, pos + 4);
    pos += 8;
  }
  return pos;
}

/** A method or topic name as a msgpack str; short ASCII names (the usual case) byte by byte. */
function writeName(buf: Buffer, pos: number, name: string): number {
  const n = name.length;
  if (n < 32) {
    let ascii = true;
    for (let i = 0; i < n; i++) {
      const c = name.charCodeAt(i);
      if (c >= 0x80) {
        ascii = false;
        break;
      }
      buf[pos + 1 + i] = c;
    }
    if (ascii) {
      buf[pos] = 0xa0 | n;
      return pos + 1 + n;
    }
  }
  const len = Buffer.byteLength(name, 'utf8');
  if (len < 32) buf[pos++] = 0xa0 | len;
  else if (len < 0x100) {
    buf[pos++] = 0xd9;
    buf[pos++] = len;
  } else {
    buf[pos++] = 0xda;
    buf.writeUInt16BE(len, pos);
    pos += 2;
  }
  return pos + buf.write(name, pos, 'utf8');
}

function writeBytes(buf: Buffer, pos: number, bytes: readonly number[]): number {
  for (const b of bytes) buf[pos++] = b;
  return pos;
}

// A binary payload as msgpack bin 8/16/32, copied once, straight into the result: through
// encodeSharedRef it was copied into the encoder's buffer first, then into the result (two 64 KiB
// copies per bulk message on the sender; byte-identical output, see the envelope test).
function encodeBinaryPayload(pos: number, p: Uint8Array): Buffer {
  const n = p.byteLength;
  const binHeader = n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
  const out = Buffer.allocUnsafe(pos + KEY_P.length + binHeader + n);
  head.copy(out, 0, 0, pos);
  const at = writeSized(out, writeBytes(out, pos, KEY_P), n, 0xc4, 0xc5, 0xc6); // bin 8/16/32
  out.set(p, at);
  return out;
}

/** Encode an envelope (adds `v`); throws SIPC_ERR_INVALID_ARGUMENT for values msgpack cannot carry. */
export function encodeEnvelope(envelope: Envelope): Uint8Array {
  const { k, id, m, p, e, h } = envelope;
  if (typeof m === 'string' && m.length > DEFAULT_ENVELOPE_LIMITS.maxNameLength)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'The method or topic name is too long');
  if (id !== undefined && !isId(id)) throw createError('SIPC_ERR_INVALID_ARGUMENT', 'Invalid envelope id');
  let fields = 2;
  if (id !== undefined) fields++;
  if (m !== undefined) fields++;
  if (p !== undefined) fields++;
  if (e !== undefined) fields++;
  if (h !== undefined) fields++;
  // fixmap header, "v": 1, "k": kind
  head[0] = 0x80 | fields;
  head[1] = 0xa1;
  head[2] = 0x76;
  head[3] = 0x01;
  head[4] = 0xa1;
  head[5] = 0x6b;
  head[6] = k;
  let pos = 7;
  if (id !== undefined) {
    pos = writeBytes(head, pos, KEY_ID);
    pos = writeUint(head, pos, id);
  }
  if (m !== undefined) {
    pos = writeBytes(head, pos, KEY_M);
    pos = writeName(head, pos, m);
  }
  try {
    if (e === undefined && h === undefined) {
      // The common case (requests without headers, responses, events, stream items): at most
      // the payload, copied straight from the encoder's buffer into the result.
      if (p === undefined) return Uint8Array.prototype.slice.call(head, 0, pos);
      if (p instanceof Uint8Array) return encodeBinaryPayload(pos, p);
      const bytes = encoder.encodeSharedRef(p);
      const out = Buffer.allocUnsafe(pos + KEY_P.length + bytes.length);
      head.copy(out, 0, 0, pos);
      out.set(bytes, writeBytes(out, pos, KEY_P));
      return out;
    }
    const parts: Uint8Array[] = [head.subarray(0, pos)];
    let length = pos;
    const add = (key: readonly number[], value: unknown) => {
      if (value === undefined) return;
      // slice(): the next encodeSharedRef reuses the encoder's buffer.
      const bytes = encoder.encodeSharedRef(value).slice();
      parts.push(Uint8Array.from(key), bytes);
      length += key.length + bytes.length;
    };
    add(KEY_P, p);
    add(KEY_E, e);
    add(KEY_H, h);
    return Buffer.concat(parts, length);
  } catch (err) {
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'The payload cannot be encoded as msgpack', {
      cause: err,
    });
  }
}

// One decoder per power-of-two size class (at most 33): a declared length can never exceed the
// bytes that carry it, so capping every length at twice the message size stops a 5-byte array
// header from making the decoder allocate for 4 billion elements.
const decoders: Decoder[] = [];

function decoderFor(byteLength: number): Decoder {
  const cls = Math.max(0, 32 - Math.clz32(byteLength));
  let d = decoders[cls];
  if (d === undefined) {
    const max = 2 ** cls;
    d = new Decoder({
      maxStrLength: max,
      maxBinLength: max,
      maxArrayLength: max,
      maxMapLength: max,
      maxExtLength: max,
    });
    decoders[cls] = d;
  }
  return d;
}

function isPlainMap(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  if (value instanceof Uint8Array) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function isId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function bad(reason: string, id: number | undefined, kind: number | undefined): DecodeResult {
  return {
    ok: false,
    error: createError('SIPC_ERR_BAD_ENVELOPE', `The envelope is invalid: ${reason}`),
    id,
    kind,
  };
}

/** Decode and validate one channel message; never throws. */
export function decodeEnvelope(bytes: Uint8Array, limits?: EnvelopeLimits): DecodeResult {
  const fast = readCanonical(bytes);
  if (fast !== undefined) return validateEnvelope(fast, limits);
  let raw: unknown;
  try {
    raw = decoderFor(bytes.byteLength).decode(bytes);
  } catch {
    return bad('not a single msgpack value', undefined, undefined);
  }
  return validateEnvelope(raw, limits);
}

// Method and topic names repeat: a small direct-mapped cache returns the same string without
// building it again (checked byte for byte, so a collision only costs a rebuild).
const nameCache: (string | undefined)[] = new Array(256).fill(undefined);

function readAsciiName(bytes: Uint8Array, start: number, len: number): string | undefined {
  let hash = len;
  for (let i = start; i < start + len; i++) {
    const c = bytes[i]!;
    if (c >= 0x80) return undefined;
    hash = (hash * 31 + c) & 0xff;
  }
  const cached = nameCache[hash];
  if (cached !== undefined && cached.length === len) {
    let same = true;
    for (let j = 0; j < len; j++)
      if (cached.charCodeAt(j) !== bytes[start + j]) {
        same = false;
        break;
      }
    if (same) return cached;
  }
  let name = '';
  for (let i = start; i < start + len; i++) name += String.fromCharCode(bytes[i]!);
  nameCache[hash] = name;
  return name;
}

function readUint(bytes: Uint8Array, pos: number): [value: number, next: number] | undefined {
  const t = bytes[pos]!;
  if (t < 0x80) return [t, pos + 1];
  if (t === 0xcc) return pos + 1 < bytes.length ? [bytes[pos + 1]!, pos + 2] : undefined;
  if (t === 0xcd)
    return pos + 2 < bytes.length ? [(bytes[pos + 1]! << 8) | bytes[pos + 2]!, pos + 3] : undefined;
  if (t === 0xce && pos + 4 < bytes.length)
    return [
      ((bytes[pos + 1]! << 24) >>> 0) + ((bytes[pos + 2]! << 16) | (bytes[pos + 3]! << 8) | bytes[pos + 4]!),
      pos + 5,
    ];
  return undefined;
}

/**
 * The fast path for envelopes laid out as encodeEnvelope writes them (fixmap; v, k, id, m in that
 * order; at most one of p / e after them): the fixed fields are read by hand and only the last
 * value goes through msgpack. Anything else returns undefined and takes the generic decoder; both
 * paths end in the same validateEnvelope. Profiled: about half the cost of the generic decode.
 */
function readCanonical(bytes: Uint8Array): Record<string, unknown> | undefined {
  const n = bytes.length;
  if (n < 7 || (bytes[0]! & 0xf0) !== 0x80) return undefined;
  const fields = bytes[0]! & 0x0f;
  if (bytes[1] !== 0xa1 || bytes[2] !== 0x76 || bytes[3] !== 0x01) return undefined; // "v": 1
  if (bytes[4] !== 0xa1 || bytes[5] !== 0x6b || bytes[6]! >= 0x80) return undefined; // "k": fixint
  const out: Record<string, unknown> = { v: 1, k: bytes[6] };
  let pos = 7;
  let seen = 2;
  if (seen < fields && bytes[pos] === 0xa2 && bytes[pos + 1] === 0x69 && bytes[pos + 2] === 0x64) {
    const r = pos + 3 < n ? readUint(bytes, pos + 3) : undefined;
    if (r === undefined) return undefined;
    out.id = r[0];
    pos = r[1];
    seen++;
  }
  if (seen < fields && bytes[pos] === 0xa1 && bytes[pos + 1] === 0x6d) {
    const t = bytes[pos + 2];
    if (t === undefined || (t & 0xe0) !== 0xa0) return undefined; // fixstr only: names are short
    const len = t & 0x1f;
    const start = pos + 3;
    if (start + len > n) return undefined;
    const m = readAsciiName(bytes, start, len);
    if (m === undefined) return undefined; // non-ASCII names take the generic path
    out.m = m;
    pos = start + len;
    seen++;
  }
  if (seen === fields) return pos === n ? out : undefined;
  if (seen + 1 !== fields || bytes[pos] !== 0xa1 || (bytes[pos + 1] !== 0x70 && bytes[pos + 1] !== 0x65))
    return undefined;
  const key = bytes[pos + 1] === 0x70 ? 'p' : 'e';
  // A plain Uint8Array view (Buffer#subarray costs a FastBuffer construction per message), so
  // binary values come out as Uint8Array views of the message.
  const rest = new Uint8Array(bytes.buffer, bytes.byteOffset + pos + 2, n - pos - 2);
  try {
    // decode() refuses trailing bytes, so the value is exactly the rest of the message.
    out[key] = decoderFor(rest.byteLength).decode(rest);
  } catch {
    return undefined;
  }
  return out;
}

/** Validate a decoded value as an envelope v1; never throws. */
export function validateEnvelope(raw: unknown, limits?: EnvelopeLimits): DecodeResult {
  if (!isPlainMap(raw)) return bad('not a map', undefined, undefined);
  const id = isId(raw.id) ? raw.id : undefined;
  const k = typeof raw.k === 'number' && Number.isInteger(raw.k) ? raw.k : undefined;
  // for-in with a switch: about twice as fast as Object.keys + Set on this hot path (profiled).
  for (const key in raw) {
    switch (key) {
      case 'v':
      case 'k':
      case 'id':
      case 'm':
      case 'p':
      case 'e':
      case 'h':
        continue;
      default:
        return bad('unknown field', id, k);
    }
  }
  if (raw.v !== ENVELOPE_VERSION) return bad('unsupported version', id, k);
  if (k === undefined || k < EnvelopeKind.Request || k > EnvelopeKind.Credit)
    return bad('unknown kind', id, k);
  const kind = k as EnvelopeKind;
  if (kind === EnvelopeKind.Event) {
    if (raw.id !== undefined) return bad('an event carries an id', id, k);
  } else if (id === undefined) {
    return bad('missing or invalid id', undefined, k);
  }
  const max = limits === undefined ? DEFAULT_ENVELOPE_LIMITS : { ...DEFAULT_ENVELOPE_LIMITS, ...limits };
  const named = kind === EnvelopeKind.Request || kind === EnvelopeKind.Event;
  if (named) {
    const m = raw.m;
    if (typeof m !== 'string' || m.length === 0 || m.length > max.maxNameLength)
      return bad('missing or invalid method or topic', id, k);
  } else if (raw.m !== undefined) return bad('unexpected method', id, k);
  if (kind === EnvelopeKind.Error) {
    const e = raw.e;
    if (!isPlainMap(e)) return bad('missing error', id, k);
    for (const key of Object.keys(e)) if (!ERROR_KEYS.has(key)) return bad('unknown error field', id, k);
    if (
      typeof e.code !== 'string' ||
      e.code.length === 0 ||
      e.code.length > max.maxErrorCodeLength ||
      !ERROR_CODE.test(e.code)
    )
      return bad('invalid error code', id, k);
    if (typeof e.message !== 'string' || e.message.length > max.maxErrorMessageLength)
      return bad('invalid error message', id, k);
  } else if (raw.e !== undefined) return bad('unexpected error field', id, k);
  if (kind === EnvelopeKind.Credit) {
    const p = raw.p;
    if (typeof p !== 'number' || !Number.isSafeInteger(p) || p < 1 || p > max.maxCredit)
      return bad('invalid credit', id, k);
  } else if (
    raw.p !== undefined &&
    (kind === EnvelopeKind.Cancel || kind === EnvelopeKind.StreamEnd || kind === EnvelopeKind.Error)
  ) {
    return bad('unexpected payload', id, k);
  }
  if (raw.h !== undefined) {
    if (kind !== EnvelopeKind.Request) return bad('headers on a non-request', id, k);
    const h = raw.h;
    if (!isPlainMap(h)) return bad('headers are not a map', id, k);
    for (const key of Object.keys(h)) if (!HEADER_KEYS.has(key)) return bad('unknown header', id, k);
    if (h.timeout !== undefined && !(isId(h.timeout) && h.timeout > 0))
      return bad('invalid timeout header', id, k);
    if (
      h.idem !== undefined &&
      (typeof h.idem !== 'string' || h.idem.length === 0 || h.idem.length > max.maxIdempotencyKeyLength)
    )
      return bad('invalid idem header', id, k);
    if (h.trace !== undefined && (typeof h.trace !== 'string' || !TRACEPARENT.test(h.trace)))
      return bad('invalid trace header', id, k);
  }
  // `v` stays on the object: deleting it would drop V8 into slow dictionary mode for every read.
  return { ok: true, envelope: raw as unknown as Envelope };
}

/**
 * The wire form of any thrown value: typed errors keep code and message, anything else is generic.
 * A `RemoteError` crosses with the peer's code it carries (`remoteCode`), so a proxy passes it on.
 */
export function toWireError(err: unknown): WireError {
  if (typeof err === 'object' && err !== null) {
    const { message, data } = err as { message?: unknown; data?: unknown };
    const code = isSecureIpcError(err, 'SIPC_ERR_REMOTE') ? err.remoteCode : (err as { code?: unknown }).code;
    if (typeof code === 'string' && ERROR_CODE.test(code) && code.length <= 64) {
      const wire: WireError = { code, message: typeof message === 'string' ? message.slice(0, 1024) : '' };
      if (data !== undefined) wire.data = data;
      return wire;
    }
    if (err instanceof Error) return { code: 'SIPC_ERR_HANDLER', message: err.message.slice(0, 1024) };
  }
  // Only code and message ever cross: never the stack, the cause or a thrown non-Error value.
  return { code: 'SIPC_ERR_HANDLER', message: 'The handler failed' };
}

/**
 * Turn a wire error into a local error, `details.remote` set: a code of the error table gives its
 * typed class; any other code (an application's own) a `RemoteError` (SIPC_ERR_REMOTE) carrying it
 * as `remoteCode`, with the peer's `data`.
 */
export function fromWireError(wire: WireError): SecureIpcError {
  if (wire.code !== 'SIPC_ERR_REMOTE' && Object.hasOwn(ERROR_TABLE, wire.code)) {
    const err = createError(wire.code as ErrorCode, wire.message, { details: { remote: true } });
    if (wire.data !== undefined) (err.details as Record<string, unknown>).data = wire.data;
    return err;
  }
  return new RemoteError(wire.message, { remoteCode: wire.code, data: wire.data, details: { remote: true } });
}
