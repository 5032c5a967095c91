/**
 * The value model (docs/protocol.md, "Values"): the one JS <-> msgpack mapping every RPC value
 * (params, results, event payloads, stream items, error data) goes through.
 *
 *   encode: null, boolean, number (safe integer -> int, else float 64), bigint (int 64 / uint 64),
 *           string (well-formed UTF-16), Uint8Array (bin), Date (timestamp ext -1), Array (dense,
 *           no undefined), plain object (undefined properties omitted), Map (native map when a key
 *           is not a string, else ext 1), Set (ext 2), ExtData (as is); anything else is refused
 *           with the path of the field (`params.items[3].when: ...`).
 *   decode: the inverse; integers beyond +-(2^53 - 1) as bigint, float 32 as number, a map whose
 *           keys are all strings (none `__proto__`) as a plain object, any other map as a Map,
 *           an unknown ext type (or a timestamp a Date cannot hold exactly) as ExtData.
 *
 * The decoder reads only bytes `decodeBudgetRefusal` accepted (./decode-budget.ts): every length
 * is within the bytes, containers nest at most MAX_DECODE_DEPTH deep, ext 1 and 2 hold one array,
 * map keys are scalars. It recurses (at most that deep) and refuses, with a ValueDecodeError,
 * what the budget does not check: invalid UTF-8, a duplicate key, a malformed registered ext.
 */
import { ExtData } from '@msgpack/msgpack';
import { createError, type SecureIpcError } from '../errors.js';
import { decodeBudgetRefusal, MAX_DECODE_DEPTH } from './decode-budget.js';

/** The registered ext types (docs/protocol.md, "Values"). */
export const EXT_MAP = 1;
export const EXT_SET = 2;
export const EXT_TIMESTAMP = -1;

/**
 * Bytes that are already one msgpack value, written as they are (the `$ping` echo: the request's
 * own `p`, so every value, however encoded, comes back byte for byte). Internal: never decoded.
 */
export class RawMsgpack {
  constructor(readonly bytes: Uint8Array) {}
}

// ---------------------------------------------------------------------------------------------
// Encoding

/** A value refused at encode: the path is collected while the recursion unwinds. */
class Refusal extends Error {
  readonly segments: string[] = [];
}

let buf = new Uint8Array(2048);
let view = new DataView(buf.buffer);
let pos = 0;
let busy = false;
// The containers being encoded, outermost first (a cycle is one of them again).
const ancestors: unknown[] = new Array(MAX_DECODE_DEPTH + 1).fill(undefined);

function ensure(n: number): void {
  if (pos + n <= buf.length) return;
  let size = buf.length * 2;
  while (size < pos + n) size *= 2;
  const next = new Uint8Array(size);
  // All of it, not only up to pos: a header written last (strings, exts, objects) goes below
  // bytes already written beyond pos.
  next.set(buf);
  buf = next;
  view = new DataView(buf.buffer);
}

function writeHeader(n: number, fix: number, fixMax: number, m8: number, m16: number, m32: number): void {
  ensure(5);
  if (n < fixMax) buf[pos++] = fix | n;
  else if (n < 0x100 && m8 !== 0) {
    buf[pos++] = m8;
    buf[pos++] = n;
  } else if (n < 0x10000) {
    buf[pos++] = m16;
    view.setUint16(pos, n);
    pos += 2;
  } else {
    buf[pos++] = m32;
    view.setUint32(pos, n);
    pos += 4;
  }
}

function writeInt(n: number): void {
  ensure(9);
  if (n >= 0) {
    if (n < 0x80) buf[pos++] = n;
    else if (n < 0x100) {
      buf[pos++] = 0xcc;
      buf[pos++] = n;
    } else if (n < 0x10000) {
      buf[pos++] = 0xcd;
      view.setUint16(pos, n);
      pos += 2;
    } else if (n < 0x100000000) {
      buf[pos++] = 0xce;
      view.setUint32(pos, n);
      pos += 4;
    } else {
      buf[pos++] = 0xcf;
      view.setUint32(pos, Math.floor(n / 0x100000000));
      view.setUint32(pos + 4, n >>> 0);
      pos += 8;
    }
  } else if (n >= -0x20) buf[pos++] = n & 0xff;
  else if (n >= -0x80) {
    buf[pos++] = 0xd0;
    view.setInt8(pos++, n);
  } else if (n >= -0x8000) {
    buf[pos++] = 0xd1;
    view.setInt16(pos, n);
    pos += 2;
  } else if (n >= -0x80000000) {
    buf[pos++] = 0xd2;
    view.setInt32(pos, n);
    pos += 4;
  } else {
    buf[pos++] = 0xd3;
    view.setBigInt64(pos, BigInt(n));
    pos += 8;
  }
}

const INT64_MIN = -(2n ** 63n);
const UINT64_MAX = 2n ** 64n - 1n;

function writeBigInt(n: bigint): void {
  if (n >= -9007199254740991n && n <= 9007199254740991n) {
    writeInt(Number(n));
    return;
  }
  if (n < INT64_MIN || n > UINT64_MAX)
    throw new Refusal('a bigint outside the 64-bit range (-2^63 to 2^64 - 1) is not supported');
  ensure(9);
  if (n > 0n) {
    buf[pos++] = 0xcf;
    view.setBigUint64(pos, n);
  } else {
    buf[pos++] = 0xd3;
    view.setBigInt64(pos, n);
  }
  pos += 8;
}

function writeNumber(n: number): void {
  if (Number.isSafeInteger(n) && !(n === 0 && 1 / n < 0)) {
    writeInt(n);
    return;
  }
  ensure(9);
  buf[pos++] = 0xcb;
  view.setFloat64(pos, n);
  pos += 8;
}

const isWellFormed: ((this: string) => boolean) | undefined = (
  String.prototype as { isWellFormed?: (this: string) => boolean }
).isWellFormed;

function wellFormed(s: string): boolean {
  if (isWellFormed !== undefined) return isWellFormed.call(s);
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0xd800 && c <= 0xdfff) {
      const d = s.charCodeAt(i + 1);
      if (c > 0xdbff || !(d >= 0xdc00 && d <= 0xdfff)) return false;
      i++;
    }
  }
  return true;
}

const textEncoder = new TextEncoder();
const LONE_SURROGATE = 'a string with a lone surrogate (not well-formed UTF-16) is not supported';

/**
 * A string of fewer than 32 characters, all ASCII, as a msgpack fixstr at `at` in `target` (which
 * has room for 1 + its length): returns the position after it, or -1 (nothing usable written) for
 * any other string. Keys and names, the usual case, are written byte by byte this way.
 */
export function writeShortAscii(target: Uint8Array, at: number, s: string): number {
  const n = s.length;
  if (n >= 32) return -1;
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x80) return -1;
    target[at + 1 + i] = c;
  }
  target[at] = 0xa0 | n;
  return at + 1 + n;
}

function writeString(s: string): void {
  const n = s.length;
  if (n < 32) {
    ensure(1 + n);
    const end = writeShortAscii(buf, pos, s);
    if (end >= 0) {
      pos = end;
      return;
    }
  }
  if (!wellFormed(s)) throw new Refusal(LONE_SURROGATE);
  const max = 3 * n;
  const headerSize = max < 32 ? 1 : max < 0x100 ? 2 : max < 0x10000 ? 3 : 5;
  ensure(headerSize + max);
  const written = textEncoder.encodeInto(s, buf.subarray(pos + headerSize)).written;
  // The header was sized for the most bytes the string could take; a shorter string whose length
  // fits a smaller header moves down (canonical output: the smallest header for the length).
  const need = written < 32 ? 1 : written < 0x100 ? 2 : written < 0x10000 ? 3 : 5;
  if (need !== headerSize) buf.copyWithin(pos + need, pos + headerSize, pos + headerSize + written);
  writeHeader(written, 0xa0, 32, 0xd9, 0xda, 0xdb);
  pos += written;
}

function writeBinary(b: Uint8Array): void {
  writeHeader(b.byteLength, 0, 0, 0xc4, 0xc5, 0xc6);
  ensure(b.byteLength);
  buf.set(b, pos);
  pos += b.byteLength;
}

function writeExtHeader(type: number, size: number): void {
  ensure(6);
  const fix =
    size === 1 ? 0xd4 : size === 2 ? 0xd5 : size === 4 ? 0xd6 : size === 8 ? 0xd7 : size === 16 ? 0xd8 : 0;
  if (fix !== 0) buf[pos++] = fix;
  else writeHeader(size, 0, 0, 0xc7, 0xc8, 0xc9);
  view.setInt8(pos++, type);
}

function writeDate(d: Date): void {
  const ms = d.getTime();
  if (Number.isNaN(ms)) throw new Refusal('an invalid Date is not supported');
  const sec = Math.floor(ms / 1000);
  const nsec = (ms - sec * 1000) * 1e6;
  // The msgpack timestamp formats: 32-bit seconds, 34-bit seconds + 30-bit nanoseconds, 96-bit.
  if (sec >= 0 && sec < 0x400000000) {
    if (nsec === 0 && sec < 0x100000000) {
      writeExtHeader(EXT_TIMESTAMP, 4);
      view.setUint32(pos, sec);
      pos += 4;
    } else {
      writeExtHeader(EXT_TIMESTAMP, 8);
      view.setUint32(pos, nsec * 4 + Math.floor(sec / 0x100000000));
      view.setUint32(pos + 4, sec >>> 0);
      pos += 8;
    }
  } else {
    writeExtHeader(EXT_TIMESTAMP, 12);
    view.setUint32(pos, nsec);
    view.setBigInt64(pos + 4, BigInt(sec));
    pos += 12;
  }
}

/** Reserve room for an ext 8/16/32 header and return where it starts (filled in by endExt). */
function beginExt(): number {
  ensure(6);
  const at = pos;
  pos += 6;
  return at;
}

function endExt(at: number, type: number): void {
  const size = pos - at - 6;
  // The smallest header for the size (canonical, as writeExtHeader): the payload moves down
  // into the room reserved beyond it.
  const end = pos;
  pos = at;
  writeExtHeader(type, size);
  if (pos !== at + 6) buf.copyWithin(pos, at + 6, end);
  pos += size;
}

function a(name: string): string {
  return `${/^[AEIOU]/.test(name) ? 'an' : 'a'} ${name}`;
}

function describe(value: unknown): string {
  if (typeof value === 'function') return 'a function';
  if (typeof value === 'symbol') return 'a symbol';
  if (value instanceof Error) return `an ${value.name === 'Error' ? 'Error' : `Error (${value.name})`}`;
  if (ArrayBuffer.isView(value)) return a(value.constructor?.name ?? 'typed array');
  if (value instanceof ArrayBuffer) return 'an ArrayBuffer';
  if (value instanceof WeakMap || value instanceof WeakSet) return a(value.constructor.name);
  if (value instanceof Promise) return 'a Promise';
  const name = (value as { constructor?: { name?: unknown } }).constructor?.name;
  return typeof name === 'string' && name !== ''
    ? `${a(name)} instance`
    : 'an object with a custom prototype';
}

function isPlainObject(value: object): boolean {
  const proto = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

function propertySegment(key: string): string {
  return IDENTIFIER.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`;
}

function keySegment(key: unknown): string {
  if (typeof key === 'string') return `[${JSON.stringify(key)}]`;
  if (typeof key === 'bigint') return `[${key}n]`;
  if (typeof key === 'number' || typeof key === 'boolean' || key === null) return `[${String(key)}]`;
  if (key instanceof Uint8Array) return '[<binary key>]';
  return '[<key>]';
}

/** A map key: a scalar (str, int, float, bin, nil, bool), never a container or an ext. */
function writeKey(key: unknown): void {
  switch (typeof key) {
    case 'string':
      writeString(key);
      return;
    case 'number':
      writeNumber(key);
      return;
    case 'bigint':
      writeBigInt(key);
      return;
    case 'boolean':
      ensure(1);
      buf[pos++] = key ? 0xc3 : 0xc2;
      return;
    default:
      if (key === null) {
        ensure(1);
        buf[pos++] = 0xc0;
        return;
      }
      if (key instanceof Uint8Array) {
        writeBinary(key);
        return;
      }
      throw new Refusal(
        `a Map key must be a string, number, bigint, boolean, null or Uint8Array; ${key === undefined ? 'undefined' : describe(key)} is not supported`,
      );
  }
}

function enter(value: object, depth: number): void {
  for (let i = 0; i < depth - 1; i++)
    if (ancestors[i] === value) throw new Refusal('a cycle (the value contains itself) is not supported');
  if (depth > MAX_DECODE_DEPTH)
    throw new Refusal(
      `containers nested deeper than ${MAX_DECODE_DEPTH} (the envelope included) are not supported`,
    );
  ancestors[depth - 1] = value;
}

function writeValue(value: unknown, depth: number): void {
  switch (typeof value) {
    case 'string':
      writeString(value);
      return;
    case 'number':
      writeNumber(value);
      return;
    case 'boolean':
      ensure(1);
      buf[pos++] = value ? 0xc3 : 0xc2;
      return;
    case 'bigint':
      writeBigInt(value);
      return;
    case 'object':
      if (value === null) {
        ensure(1);
        buf[pos++] = 0xc0;
        return;
      }
      if (Array.isArray(value)) {
        writeArray(value, depth);
        return;
      }
      if (value instanceof Uint8Array) {
        writeBinary(value);
        return;
      }
      if (isPlainObject(value)) {
        writeObject(value as Record<string, unknown>, depth);
        return;
      }
      if (value instanceof Map) {
        writeMap(value, depth);
        return;
      }
      if (value instanceof Set) {
        writeSet(value, depth);
        return;
      }
      if (value instanceof Date) {
        writeDate(value);
        return;
      }
      if (value instanceof ExtData) {
        writeExtData(value);
        return;
      }
      if (value instanceof RawMsgpack) {
        ensure(value.bytes.length);
        buf.set(value.bytes, pos);
        pos += value.bytes.length;
        return;
      }
      throw new Refusal(`${describe(value)} is not supported`);
    case 'undefined':
      throw new Refusal('undefined is not supported here (only as an object property, which is omitted)');
    default:
      throw new Refusal(`${describe(value)} is not supported`);
  }
}

function writeArray(a: unknown[], depth: number): void {
  if (Object.getPrototypeOf(a) !== Array.prototype) throw new Refusal(`${describe(a)} is not supported`);
  enter(a, depth);
  const n = a.length;
  writeHeader(n, 0x90, 16, 0, 0xdc, 0xdd);
  let i = 0;
  try {
    for (; i < n; i++) {
      const item = a[i];
      if (item === undefined && !(i in a)) throw new Refusal('a sparse array (a hole) is not supported');
      writeValue(item, depth + 1);
    }
  } catch (err) {
    if (err instanceof Refusal) err.segments.push(`[${i}]`);
    throw err;
  }
}

function writeObject(o: Record<string, unknown>, depth: number): void {
  enter(o, depth);
  const keys = Object.keys(o);
  const n = keys.length;
  const start = pos;
  writeHeader(n, 0x80, 16, 0, 0xde, 0xdf);
  const headerEnd = pos;
  let key = '';
  let written = 0;
  try {
    for (let i = 0; i < n; i++) {
      key = keys[i]!;
      const v = o[key];
      if (v === undefined) continue; // an undefined property is an absent one
      if (key === '__proto__')
        throw new Refusal('a property named __proto__ is not supported (a Map can carry that key)');
      writeString(key);
      writeValue(v, depth + 1);
      written++;
    }
  } catch (err) {
    if (err instanceof Refusal) err.segments.push(propertySegment(key));
    throw err;
  }
  if (written !== n) {
    // Some were undefined: the header says how many were written, in the smallest form.
    const size = written < 16 ? 1 : written < 0x10000 ? 3 : 5;
    const old = headerEnd - start;
    if (size !== old) buf.copyWithin(start + size, headerEnd, pos);
    const end = pos - (old - size);
    pos = start;
    writeHeader(written, 0x80, 16, 0, 0xde, 0xdf);
    pos = end;
  }
}

function writeMap(m: Map<unknown, unknown>, depth: number): void {
  enter(m, depth);
  let stringKeys = true;
  for (const k of m.keys())
    if (typeof k !== 'string' || k === '__proto__') {
      stringKeys = false;
      break;
    }
  let key: unknown;
  let at = -1;
  try {
    // Only string keys (or none): ext 1 holding an array of keys and values, so that it is not
    // taken for a plain object on arrival. Otherwise a native map.
    if (stringKeys) {
      at = beginExt();
      writeHeader(2 * m.size, 0x90, 16, 0, 0xdc, 0xdd);
    } else writeHeader(m.size, 0x80, 16, 0, 0xde, 0xdf);
    let count = 0;
    for (const [k, v] of m) {
      key = k;
      if (v === undefined) throw new Refusal('undefined as a Map value is not supported');
      writeKey(k);
      writeValue(v, depth + 1);
      count++;
    }
    if (count !== m.size) throw new Refusal('a Map that changed while it was encoded is not supported');
    if (at >= 0) endExt(at, EXT_MAP);
  } catch (err) {
    if (err instanceof Refusal) err.segments.push(keySegment(key));
    throw err;
  }
}

function writeSet(s: Set<unknown>, depth: number): void {
  enter(s, depth);
  const at = beginExt();
  writeHeader(s.size, 0x90, 16, 0, 0xdc, 0xdd);
  let i = 0;
  try {
    for (const item of s) {
      if (item === undefined) throw new Refusal('undefined as a Set item is not supported');
      writeValue(item, depth + 1);
      i++;
    }
    if (i !== s.size) throw new Refusal('a Set that changed while it was encoded is not supported');
  } catch (err) {
    if (err instanceof Refusal) err.segments.push(`[${i}]`);
    throw err;
  }
  endExt(at, EXT_SET);
}

function writeExtData(e: ExtData): void {
  const { type, data } = e;
  if (!Number.isInteger(type) || type < -128 || type > 127 || !(data instanceof Uint8Array))
    throw new Refusal('an ExtData needs an integer type in -128..127 and Uint8Array data');
  // Registered types: a Map, Set or Date says it; only a timestamp a Date cannot hold (which
  // the decoder gives as ExtData) may be an ExtData, and then a well-formed one.
  if (type === EXT_MAP || type === EXT_SET)
    throw new Refusal(
      `an ExtData of the registered type ${type} is not supported (send a ${type === EXT_MAP ? 'Map' : 'Set'})`,
    );
  if (type === EXT_TIMESTAMP && !validTimestamp(data))
    throw new Refusal('an ExtData of type -1 that is not a valid msgpack timestamp is not supported');
  writeExtHeader(type, data.byteLength);
  ensure(data.byteLength);
  buf.set(data, pos);
  pos += data.byteLength;
}

function validTimestamp(data: Uint8Array): boolean {
  try {
    readTimestamp(EXT_TIMESTAMP, data);
    return true;
  } catch {
    return false;
  }
}

/**
 * Encode `value` (never undefined) as one msgpack value at nesting `depth` (1 for a value that is
 * the whole message; an envelope field is at 2). Returns a view of a shared buffer, valid until the
 * next call: copy it before encoding anything else. Throws SIPC_ERR_INVALID_ARGUMENT naming the
 * path of a value that cannot cross, `root` first (`params.items[3].when: ...`).
 */
export function encodeValueShared(value: unknown, root: string, depth = 1): Uint8Array {
  if (busy) return encodeNested(value, root, depth);
  busy = true;
  try {
    return write(value, root, depth);
  } finally {
    busy = false;
    ancestors.fill(undefined);
  }
}

function write(value: unknown, root: string, depth: number): Uint8Array {
  pos = 0;
  try {
    writeValue(value, depth);
    return buf.subarray(0, pos);
  } catch (err) {
    throw encodeError(err, root);
  }
}

/**
 * An encode while one is under way (a getter or a Proxy trap that encodes, say by sending a
 * request): its own buffer and ancestors, then the outer encode's state back as it was.
 */
function encodeNested(value: unknown, root: string, depth: number): Uint8Array {
  const saved = { buf, view, pos, ancestors: ancestors.slice() };
  buf = new Uint8Array(256);
  view = new DataView(buf.buffer);
  ancestors.fill(undefined);
  try {
    return write(value, root, depth).slice();
  } finally {
    ({ buf, view, pos } = saved);
    for (let i = 0; i < ancestors.length; i++) ancestors[i] = saved.ancestors[i];
  }
}

/** Encode `value` into a new Uint8Array (see encodeValueShared). */
export function encodeValue(value: unknown, root = 'value', depth = 1): Uint8Array {
  return encodeValueShared(value, root, depth).slice();
}

function encodeError(err: unknown, root: string): SecureIpcError {
  if (err instanceof Refusal) {
    const path = root + err.segments.reverse().join('');
    return createError('SIPC_ERR_INVALID_ARGUMENT', `${path}: ${err.message}`);
  }
  // A getter or a Proxy trap threw: its error is the cause.
  return createError('SIPC_ERR_INVALID_ARGUMENT', `${root}: the value cannot be encoded (reading it threw)`, {
    cause: err,
  });
}

// ---------------------------------------------------------------------------------------------
// Decoding

/** A value the decode budget accepted but the value model refuses (invalid UTF-8, a duplicate key...). */
export class ValueDecodeError extends Error {}

const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

const EMPTY = new Uint8Array(0);
let bytes: Uint8Array = EMPTY;
let at = 0;

// Big-endian reads by hand: a DataView per message cost more than the reads.
function u16(p: number): number {
  return (bytes[p]! << 8) | bytes[p + 1]!;
}
function u32(p: number): number {
  return bytes[p]! * 0x1000000 + ((bytes[p + 1]! << 16) | (bytes[p + 2]! << 8) | bytes[p + 3]!);
}
function i32(p: number): number {
  return (bytes[p]! << 24) | (bytes[p + 1]! << 16) | (bytes[p + 2]! << 8) | bytes[p + 3]!;
}
const f32 = new Float32Array(1);
const f32b = new Uint8Array(f32.buffer);
const f64 = new Float64Array(1);
const f64b = new Uint8Array(f64.buffer);
const littleEndian = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
function float32(p: number): number {
  for (let i = 0; i < 4; i++) f32b[littleEndian ? 3 - i : i] = bytes[p + i]!;
  return f32[0]!;
}
function float64(p: number): number {
  for (let i = 0; i < 8; i++) f64b[littleEndian ? 7 - i : i] = bytes[p + i]!;
  return f64[0]!;
}

/**
 * A direct-mapped cache of short ASCII strings (map keys, method and topic names repeat): `read`
 * returns the same string without building it again, checked byte for byte, so a collision only
 * costs a rebuild. `size` is a power of two.
 */
export class AsciiStringCache {
  readonly #slots: (string | undefined)[];
  readonly #mask: number;

  constructor(size: number) {
    this.#slots = new Array(size).fill(undefined);
    this.#mask = size - 1;
  }

  /**
   * The string of `bytes[start, start + len)` if every byte is ASCII, else undefined; from the
   * cache when `remember` (the cache is neither read nor written otherwise).
   */
  read(bytes: Uint8Array, start: number, len: number, remember = true): string | undefined {
    const mask = this.#mask;
    let hash = len;
    for (let i = start; i < start + len; i++) {
      const c = bytes[i]!;
      if (c >= 0x80) return undefined;
      hash = (hash * 31 + c) & mask;
    }
    if (remember) {
      const cached = this.#slots[hash];
      if (cached !== undefined && cached.length === len) {
        let same = true;
        for (let j = 0; j < len; j++)
          if (cached.charCodeAt(j) !== bytes[start + j]) {
            same = false;
            break;
          }
        if (same) return cached;
      }
    }
    let s = '';
    for (let i = start; i < start + len; i++) s += String.fromCharCode(bytes[i]!);
    if (remember) this.#slots[hash] = s;
    return s;
  }
}

const keyCache = new AsciiStringCache(1024);

function readString(n: number, key: boolean): string {
  const start = at;
  at += n;
  if (n === 0) return '';
  if (n <= 24) return keyCache.read(bytes, start, n, key) ?? decodeUtf8(start, n);
  return decodeUtf8(start, n);
}

function decodeUtf8(start: number, n: number): string {
  try {
    return utf8.decode(bytes.subarray(start, start + n));
  } catch {
    throw new ValueDecodeError('a string that is not valid UTF-8');
  }
}

function readBinary(n: number): Uint8Array {
  // A view of the message (as before): no copy.
  const b = new Uint8Array(bytes.buffer, bytes.byteOffset + at, n);
  at += n;
  return b;
}

function readUint64(): number | bigint {
  const hi = u32(at);
  const lo = u32(at + 4);
  at += 8;
  if (hi < 0x200000) return hi * 0x100000000 + lo;
  return (BigInt(hi) << 32n) | BigInt(lo);
}

function readInt64(): number | bigint {
  const hi = i32(at);
  const lo = u32(at + 4);
  at += 8;
  // Within +-(2^53 - 1): hi in [-2^21, 2^21), except -2^53 itself.
  if (hi >= -0x200000 && hi < 0x200000) {
    const n = hi * 0x100000000 + lo;
    if (n >= -9007199254740991) return n;
  }
  return (BigInt(hi) << 32n) | BigInt(lo);
}

function readExt(n: number, depth: number): unknown {
  const type = (bytes[at]! << 24) >> 24;
  const data = new Uint8Array(bytes.buffer, bytes.byteOffset + at + 1, n);
  if (type === EXT_MAP || type === EXT_SET) {
    // The budget checked that the payload is one array (of an even length for ext 1) and walked
    // it as part of the value: read in place.
    at += 1;
    return type === EXT_MAP ? readMapExt(depth) : readSetExt(depth);
  }
  at += 1 + n;
  return decodeExtension(type, data);
}

function decodeExtension(type: number, data: Uint8Array): unknown {
  if (type === EXT_TIMESTAMP) return readTimestamp(type, data);
  // A view of the message, as binaries are (a copy per ext would cost a backing store each).
  return new ExtData(type, data);
}

function withInput<T>(input: Uint8Array, read: () => T): T {
  // Not re-entrant, and need not be: decoding runs no user code.
  bytes = input;
  at = 0;
  try {
    const value = read();
    if (at !== input.length) throw new ValueDecodeError('trailing bytes');
    return value;
  } finally {
    bytes = EMPTY; // the message is not kept alive by the decoder
  }
}

function readArrayLength(): number {
  const b = bytes[at++]!;
  if ((b & 0xf0) === 0x90) return b & 0x0f;
  if (b === 0xdc) {
    at += 2;
    return u16(at - 2);
  }
  at += 4;
  return u32(at - 4);
}

function readMapExt(depth: number): Map<unknown, unknown> {
  if (depth > MAX_DECODE_DEPTH) throw new ValueDecodeError('nested too deep');
  const n = readArrayLength();
  if ((n & 1) !== 0) throw new ValueDecodeError('an ext 1 (Map) with an odd number of items');
  const m = new Map<unknown, unknown>();
  for (let i = 0; i < n; i += 2) {
    const k = readItem(depth, true);
    if (m.has(k)) throw new ValueDecodeError('a map with a duplicate key');
    m.set(k, readItem(depth, false));
  }
  return m;
}

function readSetExt(depth: number): Set<unknown> {
  if (depth > MAX_DECODE_DEPTH) throw new ValueDecodeError('nested too deep');
  const n = readArrayLength();
  const s = new Set<unknown>();
  for (let i = 0; i < n; i++) {
    const item = readItem(depth, false);
    if (s.has(item)) throw new ValueDecodeError('a Set with a duplicate item');
    s.add(item);
  }
  return s;
}

const MAX_DATE_MS = 8.64e15;

function readTimestamp(type: number, data: Uint8Array): unknown {
  const d = new DataView(data.buffer, data.byteOffset, data.byteLength);
  let sec: number;
  let nsec: number;
  if (data.length === 4) {
    sec = d.getUint32(0);
    nsec = 0;
  } else if (data.length === 8) {
    const hi = d.getUint32(0);
    nsec = hi >>> 2;
    sec = (hi & 3) * 0x100000000 + d.getUint32(4);
  } else if (data.length === 12) {
    nsec = d.getUint32(0);
    const s = d.getBigInt64(4);
    // Beyond what a Date holds: kept as the ext it is (below).
    sec = s > 9007199254740991n || s < -9007199254740991n ? Number.NaN : Number(s);
  } else throw new ValueDecodeError('a timestamp (ext -1) of a length other than 4, 8 or 12');
  if (nsec > 999_999_999)
    throw new ValueDecodeError('a timestamp (ext -1) with nanoseconds over 999,999,999');
  const ms = sec * 1000 + nsec / 1e6;
  // A Date holds whole milliseconds within +-8.64e15: any other instant stays an ExtData (so it
  // re-encodes to the same bytes) rather than being rounded.
  if (nsec % 1e6 !== 0 || !(Math.abs(ms) <= MAX_DATE_MS)) return new ExtData(type, data.slice());
  return new Date(ms);
}

function readItem(depth: number, key: boolean): unknown {
  const b = bytes[at++]!;
  if (b < 0x80) return b;
  if (b >= 0xe0) return b - 0x100;
  if (b < 0x90) return readMap(b & 0x0f, depth + 1);
  if (b < 0xa0) return readArray(b & 0x0f, depth + 1);
  if (b < 0xc0) return readString(b & 0x1f, key);
  let v: unknown;
  switch (b) {
    case 0xc0:
      return null;
    case 0xc2:
      return false;
    case 0xc3:
      return true;
    case 0xc4:
      return readBinary(bytes[at++]!);
    case 0xc5:
      at += 2;
      return readBinary(u16(at - 2));
    case 0xc6:
      at += 4;
      return readBinary(u32(at - 4));
    case 0xc7:
      at += 1;
      return readExt(bytes[at - 1]!, depth + 1);
    case 0xc8:
      at += 2;
      return readExt(u16(at - 2), depth + 1);
    case 0xc9:
      at += 4;
      return readExt(u32(at - 4), depth + 1);
    case 0xca:
      v = float32(at);
      at += 4;
      return v;
    case 0xcb:
      v = float64(at);
      at += 8;
      return v;
    case 0xcc:
      return bytes[at++]!;
    case 0xcd:
      at += 2;
      return u16(at - 2);
    case 0xce:
      at += 4;
      return u32(at - 4);
    case 0xcf:
      return readUint64();
    case 0xd0:
      return (bytes[at++]! << 24) >> 24;
    case 0xd1:
      at += 2;
      return (u16(at - 2) << 16) >> 16;
    case 0xd2:
      at += 4;
      return i32(at - 4);
    case 0xd3:
      return readInt64();
    case 0xd4:
      return readExt(1, depth + 1);
    case 0xd5:
      return readExt(2, depth + 1);
    case 0xd6:
      return readExt(4, depth + 1);
    case 0xd7:
      return readExt(8, depth + 1);
    case 0xd8:
      return readExt(16, depth + 1);
    case 0xd9:
      return readString(bytes[at++]!, key);
    case 0xda:
      at += 2;
      return readString(u16(at - 2), key);
    case 0xdb:
      at += 4;
      return readString(u32(at - 4), key);
    case 0xdc:
      at += 2;
      return readArray(u16(at - 2), depth + 1);
    case 0xdd:
      at += 4;
      return readArray(u32(at - 4), depth + 1);
    case 0xde:
      at += 2;
      return readMap(u16(at - 2), depth + 1);
    case 0xdf:
      at += 4;
      return readMap(u32(at - 4), depth + 1);
    default: // 0xc1: refused by the budget
      throw new ValueDecodeError('the unused type byte 0xc1');
  }
}

function readArray(n: number, depth: number): unknown[] {
  if (depth > MAX_DECODE_DEPTH) throw new ValueDecodeError('nested too deep');
  const a: unknown[] = new Array(n);
  for (let i = 0; i < n; i++) a[i] = readItem(depth, false);
  return a;
}

function readMap(n: number, depth: number): unknown {
  if (depth > MAX_DECODE_DEPTH) throw new ValueDecodeError('nested too deep');
  const o: Record<string, unknown> = {};
  const start = at;
  for (let i = 0; i < n; i++) {
    const b = bytes[at]!;
    // A string key: fixstr or str 8/16/32.
    if ((b & 0xe0) === 0xa0 || (b >= 0xd9 && b <= 0xdb)) {
      const k = readItem(depth, true) as string;
      if (k === '__proto__') return readMapAsMap(start, n, depth);
      // Own properties only ever hold decoded values (never undefined): undefined is "not yet
      // seen" unless an inherited property answers (toString...), which hasOwn settles.
      if (o[k] !== undefined && Object.hasOwn(o, k)) throw new ValueDecodeError('a map with a duplicate key');
      o[k] = readItem(depth, false);
    } else return readMapAsMap(start, n, depth);
  }
  return o;
}

/**
 * A map that turned out not to be all strings (or to have `__proto__`), read again from its first
 * key at `start` into a Map: the Map keeps the wire's order, which the object read so far may not
 * (an object lists integer-like keys such as "0" first). Rare, so reading those entries twice is
 * cheaper than keeping the order on the common path.
 */
function readMapAsMap(start: number, n: number, depth: number): Map<unknown, unknown> {
  at = start;
  const m = new Map<unknown, unknown>();
  for (let i = 0; i < n; i++) {
    const k = readItem(depth, true);
    if (m.has(k)) throw new ValueDecodeError('a map with a duplicate key');
    m.set(k, readItem(depth, false));
  }
  return m;
}

/**
 * Decode one msgpack value that `decodeBudgetRefusal` accepted (the whole of `input`) at nesting
 * `depth` (1 for a whole message). Throws ValueDecodeError for what the value model refuses.
 */
export function decodeValue(input: Uint8Array, depth = 1): unknown {
  return withInput(input, () => readItem(depth - 1, false));
}

/**
 * Where the value of key "p" of the top-level map in `input` (accepted by the budget) lies, or
 * undefined without one: the span a `$ping` echoes.
 */
export function topLevelValueSpan(input: Uint8Array, name: string): [start: number, end: number] | undefined {
  return withInput(input, () => {
    const b = bytes[at++]!;
    let n: number;
    if ((b & 0xf0) === 0x80) n = b & 0x0f;
    else if (b === 0xde) {
      n = u16(at);
      at += 2;
    } else if (b === 0xdf) {
      n = u32(at);
      at += 4;
    } else {
      at = bytes.length;
      return undefined;
    }
    let found: [number, number] | undefined;
    for (let i = 0; i < n; i++) {
      const k = readItem(1, true);
      const start = at;
      readItem(1, false);
      if (k === name) found = [start, at];
    }
    return found;
  });
}

/** A decoded value that is a plain string-keyed map (not an array, a Map, a Set or bytes). */
export const isPlainMap = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  !(v instanceof Map) &&
  !(v instanceof Set) &&
  !(v instanceof Uint8Array);

/**
 * Decode one record of our own files (journals, stores) under the decode budget: the plain map
 * it holds, or undefined for bytes that are not one (the caller decides torn or corrupt).
 */
export function decodeStoredMap(bytes: Uint8Array): Record<string, unknown> | undefined {
  if (decodeBudgetRefusal(bytes) !== undefined) return undefined;
  let value: unknown;
  try {
    value = decodeValue(bytes);
  } catch {
    return undefined;
  }
  return isPlainMap(value) ? value : undefined;
}
