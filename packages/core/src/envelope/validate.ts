/**
 * Validation of a decoded value as envelope v1 (docs/protocol.md): a closed format, every field
 * typed and size-checked before anything is dispatched. Never throws.
 */
import { createError } from '../errors.js';
import {
  DEFAULT_ENVELOPE_LIMITS,
  type DecodeResult,
  ENVELOPE_VERSION,
  type Envelope,
  EnvelopeKind,
  type EnvelopeLimits,
  maxKindOf,
} from './types.js';

const HEADER_KEYS = new Set(['timeout', 'idem', 'trace', 'stream', 'attempt', 'tracestate']);
/** The highest `h.attempt` (docs/protocol.md: uint 2-255). */
export const MAX_ATTEMPT = 255;
const ERROR_KEYS = new Set(['code', 'message', 'data']);
// W3C traceparent, version 00 only, lowercase hex (a fixed pattern, never built from input).
const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;
const ZERO_TRACE_ID = '0'.repeat(32);
const ZERO_PARENT_ID = '0'.repeat(16);
/** The characters an error code may use. */
export const ERROR_CODE = /^[A-Za-z0-9_.:-]+$/;

/**
 * True if `text` is longer than `max` UTF-8 bytes (every length limit of the protocol counts
 * UTF-8 bytes). A UTF-16 unit is at least one byte and at most three, so most strings are decided
 * without counting; a lone surrogate counts as the 3 bytes of U+FFFD it is encoded as.
 */
export function exceedsUtf8(text: string, max: number): boolean {
  if (text.length > max) return true;
  if (text.length * 3 <= max) return false;
  return Buffer.byteLength(text, 'utf8') > max;
}

/** True if `value` is a W3C traceparent as the protocol accepts it (version 00, lowercase, ids not all zero). */
export function isTraceparent(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    TRACEPARENT.test(value) &&
    value.slice(3, 35) !== ZERO_TRACE_ID &&
    value.slice(36, 52) !== ZERO_PARENT_ID
  );
}

/** The longest `h.tracestate`, in characters (all ASCII), commas and optional whitespace included. */
export const MAX_TRACESTATE_LENGTH = 512;
/** The most non-empty list-members of an `h.tracestate` (W3C Trace Context Level 1, 3.3.1.2). */
export const MAX_TRACESTATE_MEMBERS = 32;
// W3C Trace Context Level 1, 3.3.1.3: the longest simple-key, tenant-id, system-id and value.
const MAX_SIMPLE_KEY = 256;
const MAX_TENANT_ID = 241;
const MAX_SYSTEM_ID = 14;
const MAX_TRACESTATE_VALUE = 256;

const isLcalpha = (c: number) => c >= 0x61 && c <= 0x7a; // a-z
const isDigit = (c: number) => c >= 0x30 && c <= 0x39; // 0-9
// keychar = lcalpha / DIGIT / "_" / "-" / "*" / "/"
const isKeyChar = (c: number) =>
  isLcalpha(c) || isDigit(c) || c === 0x5f || c === 0x2d || c === 0x2a || c === 0x2f;
const isOws = (c: number) => c === 0x20 || c === 0x09; // space, horizontal tab

/**
 * The key of the list-member `text[start..end)` (trimmed, not empty), or undefined if the member
 * is not `key "=" value` by W3C Trace Context Level 1 (3.3.1.3). A character loop on purpose: a
 * pattern with these bounded repeats would need care to stay linear; this is linear by shape.
 */
function tracestateMemberKey(text: string, start: number, end: number): string | undefined {
  let at = -1; // the "@" of a multi-tenant key
  let eq = start;
  for (; eq < end; eq++) {
    const c = text.charCodeAt(eq);
    if (c === 0x3d) break; // "="
    if (c === 0x40) {
      if (at >= 0) return undefined; // a second "@"
      at = eq;
    } else if (!isKeyChar(c)) return undefined;
  }
  if (eq === end) return undefined; // no "="
  const first = text.charCodeAt(start);
  if (at < 0) {
    // simple-key = lcalpha 0*255( keychar )
    if (!isLcalpha(first) || eq - start > MAX_SIMPLE_KEY) return undefined;
  } else {
    // multi-tenant-key = tenant-id "@" system-id; tenant-id = ( lcalpha / DIGIT ) 0*240( keychar );
    // system-id = lcalpha 0*13( keychar ). An empty tenant-id has "@" (or "=") as its first char.
    if (!(isLcalpha(first) || isDigit(first)) || at - start > MAX_TENANT_ID) return undefined;
    if (at + 1 === eq || !isLcalpha(text.charCodeAt(at + 1)) || eq - at - 1 > MAX_SYSTEM_ID) return undefined;
  }
  // value = 0*255( chr ) nblk-chr: 1 to 256 of %x20-7E but "," and "=", not ending in a space. The
  // member was trimmed, so its last char is not a space; "," cannot occur (it split the list).
  const valueLength = end - eq - 1;
  if (valueLength < 1 || valueLength > MAX_TRACESTATE_VALUE) return undefined;
  for (let i = eq + 1; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x3d) return undefined;
  }
  return text.slice(start, eq);
}

/**
 * True if `value` is a W3C tracestate as the protocol accepts it (docs/protocol.md, "Fields",
 * `h.tracestate`): at most 512 characters, list-members separated by `,` with optional spaces and
 * tabs around them, empty ones allowed and not counted, at most 32 others, each `key=value` by W3C
 * Trace Context Level 1's grammar, no key twice. Checked by hand, in one pass; never throws.
 */
export function isTracestate(value: unknown): value is string {
  if (typeof value !== 'string' || value.length > MAX_TRACESTATE_LENGTH) return false;
  const keys: string[] = [];
  const n = value.length;
  let pos = 0;
  for (;;) {
    let end = value.indexOf(',', pos);
    if (end < 0) end = n;
    let start = pos;
    let stop = end;
    while (start < stop && isOws(value.charCodeAt(start))) start++;
    while (stop > start && isOws(value.charCodeAt(stop - 1))) stop--;
    if (start < stop) {
      const key = tracestateMemberKey(value, start, stop);
      // At most 32 members, so the duplicate check is at most 32 x 31 / 2 string compares.
      if (key === undefined || keys.length === MAX_TRACESTATE_MEMBERS || keys.includes(key)) return false;
      keys.push(key);
    }
    if (end === n) return true;
    pos = end + 1;
  }
}

/**
 * Why the request headers `h` are invalid, or undefined if they are fine: the one check of both
 * the receiver (validateEnvelope) and the sender (encodeEnvelope refuses to send them).
 */
export function headersProblem(h: unknown, maxIdempotencyKeyLength: number): string | undefined {
  if (!isPlainMap(h)) return 'headers are not a map';
  for (const key of Object.keys(h)) if (!HEADER_KEYS.has(key)) return 'unknown header';
  if (h.timeout !== undefined && !(isId(h.timeout) && h.timeout > 0)) return 'invalid timeout header';
  if (
    h.idem !== undefined &&
    (typeof h.idem !== 'string' || h.idem.length === 0 || exceedsUtf8(h.idem, maxIdempotencyKeyLength))
  )
    return 'invalid idem header';
  if (h.trace !== undefined && !isTraceparent(h.trace)) return 'invalid trace header';
  if (h.attempt !== undefined && !(isId(h.attempt) && h.attempt >= 2 && h.attempt <= MAX_ATTEMPT))
    return 'invalid attempt header';
  if (h.tracestate !== undefined) {
    if (!isTracestate(h.tracestate)) return 'invalid tracestate header';
    // W3C: without a traceparent, a tracestate must not be read.
    if (h.trace === undefined) return 'a tracestate header without a trace header';
  }
  return undefined;
}

export function isPlainMap(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  if (value instanceof Uint8Array) return false;
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

export function isId(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

export function bad(reason: string, id: number | undefined, kind: number | undefined): DecodeResult {
  return {
    ok: false,
    error: createError('SIPC_ERR_BAD_ENVELOPE', `The envelope is invalid: ${reason}`),
    id,
    kind,
  };
}

/**
 * Validate a decoded value as an envelope v1; never throws. `protocolVersion` is the channel's
 * (kinds 9-12 and `h.stream` are valid from version 2, kind 13 and `h.attempt` from version 3,
 * `h.tracestate` from version 4).
 */
export function validateEnvelope(raw: unknown, limits?: EnvelopeLimits, protocolVersion = 1): DecodeResult {
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
  if (k === undefined || k < EnvelopeKind.Request || k > maxKindOf(protocolVersion))
    return bad('unknown kind', id, k);
  const kind = k as EnvelopeKind;
  if (kind === EnvelopeKind.Event) {
    // Never answered, even with an id (docs/protocol.md, "Validation"): the channel closes.
    if (raw.id !== undefined) return bad('an event carries an id', undefined, k);
  } else if (id === undefined) {
    return bad('missing or invalid id', undefined, k);
  }
  const max = limits === undefined ? DEFAULT_ENVELOPE_LIMITS : { ...DEFAULT_ENVELOPE_LIMITS, ...limits };
  const named = kind === EnvelopeKind.Request || kind === EnvelopeKind.Event;
  if (named) {
    const m = raw.m;
    if (typeof m !== 'string' || m.length === 0 || exceedsUtf8(m, max.maxNameLength))
      return bad('missing or invalid method or topic', id, k);
  } else if (raw.m !== undefined) return bad('unexpected method', id, k);
  if (kind === EnvelopeKind.Error) {
    const e = raw.e;
    if (!isPlainMap(e)) return bad('missing error', id, k);
    for (const key of Object.keys(e)) if (!ERROR_KEYS.has(key)) return bad('unknown error field', id, k);
    if (
      typeof e.code !== 'string' ||
      e.code.length === 0 ||
      exceedsUtf8(e.code, max.maxErrorCodeLength) ||
      !ERROR_CODE.test(e.code)
    )
      return bad('invalid error code', id, k);
    if (typeof e.message !== 'string' || exceedsUtf8(e.message, max.maxErrorMessageLength))
      return bad('invalid error message', id, k);
  } else if (raw.e !== undefined) return bad('unexpected error field', id, k);
  if (kind === EnvelopeKind.Credit || kind === EnvelopeKind.InputCredit) {
    const p = raw.p;
    if (typeof p !== 'number' || !Number.isSafeInteger(p) || p < 1 || p > max.maxCredit)
      return bad('invalid credit', id, k);
  } else if (
    raw.p !== undefined &&
    (kind === EnvelopeKind.Cancel ||
      kind === EnvelopeKind.StreamEnd ||
      kind === EnvelopeKind.Error ||
      kind === EnvelopeKind.InputEnd ||
      kind === EnvelopeKind.InputStop ||
      kind === EnvelopeKind.GoingAway)
  ) {
    return bad('unexpected payload', id, k);
  }
  if (raw.h !== undefined) {
    if (kind !== EnvelopeKind.Request) return bad('headers on a non-request', id, k);
    const problem = headersProblem(raw.h, max.maxIdempotencyKeyLength);
    if (problem !== undefined) return bad(problem, id, k);
    const headers = raw.h as Record<string, unknown>;
    if (headers.attempt !== undefined && protocolVersion < 3) return bad('unknown header', id, k);
    if (headers.tracestate !== undefined && protocolVersion < 4) return bad('unknown header', id, k);
    const stream = headers.stream;
    if (stream !== undefined) {
      if (protocolVersion < 2) return bad('unknown header', id, k);
      if (stream !== true) return bad('invalid stream header', id, k);
      if (raw.p !== undefined) return bad('a streamed input carries no payload', id, k);
    }
  }
  // `v` stays on the object: deleting it would drop V8 into slow dictionary mode for every read.
  return { ok: true, envelope: raw as unknown as Envelope };
}
