/**
 * Decoding envelope v1: the decode budget over the whole message first (../msgpack/decode-budget.ts:
 * depth, lengths, cost), then a fast path for the canonical layout the encoder writes, the
 * generic msgpack decoder for anything else; both end in `validateEnvelope`. Never throws.
 */
import { decodeBudgetRefusal } from '../msgpack/decode-budget.js';
import {
  AsciiStringCache,
  decodeValue,
  RawMsgpack,
  topLevelValueSpan,
  ValueDecodeError,
} from '../msgpack/value-codec.js';
import {
  isIntegerAt,
  keyCount,
  mapAt,
  scanStringKeyedMap,
  skipValue,
  stringAt,
} from '../msgpack/wire-scan.js';
import { type DecodeResult, type Envelope, EnvelopeKind, type EnvelopeLimits } from './types.js';
import { bad, validateEnvelope } from './validate.js';

/**
 * Decode and validate one channel message; never throws. `protocolVersion` is the channel's
 * (kinds 9-12 and `h.stream` are valid from version 2, kind 13 and `h.attempt` from version 3,
 * `h.tracestate` from version 4).
 */
export function decodeEnvelope(
  bytes: Uint8Array,
  limits?: EnvelopeLimits,
  protocolVersion = 1,
): DecodeResult {
  const refusal = decodeBudgetRefusal(bytes);
  if (refusal !== undefined) return refused(bytes, refusal);
  let fast: Record<string, unknown> | undefined;
  let raw: unknown;
  try {
    fast = readCanonical(bytes);
    if (fast !== undefined) return validated(fast, limits, protocolVersion, bytes, fast.p);
    raw = decodeValue(bytes);
  } catch (err) {
    if (err instanceof ValueDecodeError) {
      const reason = `an invalid value (${err.message})`;
      // A key the envelope's own map repeats, or that is not a str, makes its id ambiguous: such
      // an envelope is never answered (the channel closes), as one without an id.
      if (scanStringKeyedMap(bytes, 0) !== undefined) return bad(reason, undefined, undefined);
      return refused(bytes, reason);
    }
    return bad('not a single msgpack value', undefined, undefined);
  }
  const result = validated(raw, limits, protocolVersion, bytes, undefined);
  if (!result.ok) return result;
  const { k, id } = result.envelope;
  const problem = encodingProblem(bytes, result.envelope);
  if (problem === undefined) return result;
  // An id or kind that is not a msgpack integer, or a key the map repeats, cannot be read: such an
  // envelope is not answered (the channel closes), as one without an id.
  const [reason, field] = problem;
  return bad(
    reason,
    field === undefined || field === 'id' ? undefined : id,
    field === undefined || field === 'k' ? undefined : k,
  );
}

/**
 * What the decoded value cannot show, read from the bytes of a valid envelope off the generic
 * path: the uint fields (`v`, `k`, `id`, `h.timeout`, a credit's `p`) are msgpack integers, never
 * floats such as 1.0; the envelope, `e` and `h` are maps of distinct str keys (the decoded map
 * has as many keys as the encoded one has entries). Returns the reason and the top-level field
 * at fault (undefined when the envelope's own map is). The fast path reads `v`, `k` and `id` as
 * integers only, and checks a credit's `p` and `e` itself.
 */
function encodingProblem(bytes: Uint8Array, env: Envelope): [string, string | undefined] | undefined {
  const map = mapAt(bytes, 0);
  if (map === undefined) return ['not a map', undefined];
  let [entries, at] = map;
  if (entries !== keyCount(env)) return ['a map key that appears twice', undefined];
  for (; entries > 0; entries--) {
    const entry = stringAt(bytes, at);
    if (entry === undefined) return ['a map key that is not a string', undefined];
    const [key, valueAt] = entry;
    if (
      key === 'v' ||
      key === 'k' ||
      key === 'id' ||
      (key === 'p' && (env.k === EnvelopeKind.Credit || env.k === EnvelopeKind.InputCredit))
    ) {
      if (!isIntegerAt(bytes, valueAt)) return [`"${key}" is not a msgpack integer`, key];
    } else if (key === 'e') {
      if (mapAt(bytes, valueAt)?.[0] !== keyCount(env.e!)) return ['a key that appears twice in e', key];
    } else if (key === 'h') {
      const reason = headerEncoding(bytes, valueAt, env.h!);
      if (reason !== undefined) return [reason, key];
    }
    at = skipValue(bytes, valueAt);
  }
  return undefined;
}

function headerEncoding(bytes: Uint8Array, pos: number, h: object): string | undefined {
  const map = mapAt(bytes, pos);
  if (map === undefined) return 'headers are not a map';
  let [entries, at] = map;
  if (entries !== keyCount(h)) return 'a header that appears twice';
  for (; entries > 0; entries--) {
    const entry = stringAt(bytes, at);
    if (entry === undefined) return 'a header key that is not a string';
    const [key, valueAt] = entry;
    if ((key === 'timeout' || key === 'attempt') && !isIntegerAt(bytes, valueAt))
      return `the ${key} header is not a msgpack integer`;
    at = skipValue(bytes, valueAt);
  }
  return undefined;
}

// Answered to the request's id when the canonical head carries one (as any invalid envelope whose
// id can be read), without decoding anything else.
function refused(bytes: Uint8Array, reason: string): DecodeResult {
  const head: Record<string, unknown> = {};
  const read = readHead(bytes, head) >= 0;
  return bad(
    reason,
    read ? (head.id as number | undefined) : undefined,
    read ? (head.k as number) : undefined,
  );
}

/**
 * Validate; a valid `$ping` request's `p` then becomes the bytes it arrived as (RawMsgpack), so
 * the echo returns every value exactly as sent (float 32, non-canonical lengths, any key type).
 * `fastP` is the fast path's `p` (its bytes lie at fastPStart..fastPEnd).
 */
function validated(
  raw: unknown,
  limits: EnvelopeLimits | undefined,
  protocolVersion: number,
  bytes: Uint8Array,
  fastP: unknown,
): DecodeResult {
  const result = validateEnvelope(raw, limits, protocolVersion);
  if (!result.ok) return result;
  const env = result.envelope;
  // The reserved method's name (rpc/methods.ts PING), spelled here: envelope sits below rpc.
  if (env.k !== EnvelopeKind.Request || env.p === undefined || env.m !== '$ping') return result;
  if (fastP !== undefined) {
    env.p = new RawMsgpack(view(bytes, fastPStart, fastPEnd));
    return result;
  }
  const span = topLevelValueSpan(bytes, 'p');
  if (span !== undefined) env.p = new RawMsgpack(view(bytes, span[0], span[1]));
  return result;
}

// A plain Uint8Array view (Buffer#subarray builds a FastBuffer: slower).
function view(bytes: Uint8Array, start: number, end: number): Uint8Array {
  return new Uint8Array(bytes.buffer, bytes.byteOffset + start, end - start);
}

// Where the `p` readCanonical decoded lies in the message (for the `$ping` echo).
let fastPStart = 0;
let fastPEnd = 0;

// Method and topic names repeat: a small cache returns the same string without building it again.
const nameCache = new AsciiStringCache(256);

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
 * The fixed fields of an envelope laid out as encodeEnvelope writes them (fixmap; v, k, id, m in
 * that order), read by hand into `out`: the position after those read (other fields may follow),
 * or -1 if the layout differs before `id`.
 */
function readHead(bytes: Uint8Array, out: Record<string, unknown>): number {
  const n = bytes.length;
  if (n < 7 || (bytes[0]! & 0xf0) !== 0x80) return -1;
  const fields = bytes[0]! & 0x0f;
  if (bytes[1] !== 0xa1 || bytes[2] !== 0x76 || bytes[3] !== 0x01) return -1; // "v": 1
  if (bytes[4] !== 0xa1 || bytes[5] !== 0x6b || bytes[6]! >= 0x80) return -1; // "k": fixint
  out.v = 1;
  out.k = bytes[6];
  let pos = 7;
  let seen = 2;
  if (seen < fields && bytes[pos] === 0xa2 && bytes[pos + 1] === 0x69 && bytes[pos + 2] === 0x64) {
    const r = pos + 3 < n ? readUint(bytes, pos + 3) : undefined;
    if (r === undefined) return -1;
    out.id = r[0];
    pos = r[1];
    seen++;
  }
  if (seen < fields && bytes[pos] === 0xa1 && bytes[pos + 1] === 0x6d) {
    const t = bytes[pos + 2];
    // A name that is not a short ASCII fixstr stops the head before `m` (the fast path then
    // declines, and the generic decoder reads it); the id read so far still counts.
    if (t === undefined || (t & 0xe0) !== 0xa0) return pos; // fixstr only: names are short
    const len = t & 0x1f;
    const start = pos + 3;
    if (start + len > n) return pos;
    const m = nameCache.read(bytes, start, len);
    if (m === undefined) return pos; // non-ASCII names take the generic path
    out.m = m;
    pos = start + len;
    seen++;
  }
  return pos;
}

/**
 * The fast path for canonical envelopes (readHead, then one of p / e / h, or p then h): only the
 * values go through msgpack. Anything else returns undefined and takes the generic decoder; both
 * paths end in the same validateEnvelope. Profiled: about half the cost of the generic decode.
 */
function readCanonical(bytes: Uint8Array): Record<string, unknown> | undefined {
  const n = bytes.length;
  const out: Record<string, unknown> = {};
  const pos = readHead(bytes, out);
  if (pos < 0) return undefined;
  const more = (bytes[0]! & 0x0f) - 2 - (out.id === undefined ? 0 : 1) - (out.m === undefined ? 0 : 1);
  if (more === 0) return pos === n ? out : undefined;
  if (bytes[pos] !== 0xa1) return undefined;
  const first = bytes[pos + 1];
  if (more === 2) {
    // A request with params and headers, as the encoder writes it: p, then h.
    if (first !== 0x70) return undefined;
    const end = skipValue(bytes, pos + 2);
    if (bytes[end] !== 0xa1 || bytes[end + 1] !== 0x68) return undefined;
    // Both at depth 2, inside the envelope's map; ValueDecodeError for a refused value.
    out.p = decodeValue(view(bytes, pos + 2, end), 2);
    out.h = decodeValue(view(bytes, end + 2, n), 2);
    fastPStart = pos + 2;
    fastPEnd = end;
    return typeof out.h === 'object' && out.h !== null && headerEncoding(bytes, end + 2, out.h) === undefined
      ? out
      : undefined;
  }
  if (more !== 1 || (first !== 0x70 && first !== 0x65 && first !== 0x68)) return undefined;
  const key = first === 0x70 ? 'p' : first === 0x65 ? 'e' : 'h';
  // What the decoded value cannot show (a credit's float 1.0, a key twice in `e` or `h`) is left
  // to the generic path, whose encodingProblem refuses it.
  if (
    key === 'p' &&
    (out.k === EnvelopeKind.Credit || out.k === EnvelopeKind.InputCredit) &&
    !isIntegerAt(bytes, pos + 2)
  )
    return undefined;
  // A plain Uint8Array view (Buffer#subarray costs a FastBuffer construction per message), so
  // binary values come out as Uint8Array views of the message.
  const rest = new Uint8Array(bytes.buffer, bytes.byteOffset + pos + 2, n - pos - 2);
  // The budget accepted the whole message, so this part (the rest of it: decodeValue refuses
  // trailing bytes) is within it; it sits at depth 2, inside the envelope's map. Throws
  // ValueDecodeError for a value the value model refuses (a key twice in `e` or `h` included).
  out[key] = decodeValue(rest, 2);
  fastPStart = pos + 2;
  fastPEnd = n;
  // What the decoded value cannot show (a header's float timeout) is left to the generic path,
  // whose encodingProblem refuses it.
  const h = out.h;
  if (key === 'h' && (typeof h !== 'object' || h === null || headerEncoding(bytes, pos + 2, h) !== undefined))
    return undefined;
  return out;
}
