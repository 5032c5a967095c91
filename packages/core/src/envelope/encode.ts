/**
 * Encoding envelope v1 (docs/protocol.md, "Envelope v1 and RPC"): the fixed fields by hand,
 * the values by msgpack.
 */
import { createError, isSecureIpcError } from '../errors.js';
import { encodeValueShared, RawMsgpack, writeShortAscii } from '../msgpack/value-codec.js';
import { DEFAULT_ENVELOPE_LIMITS, type Envelope, EnvelopeKind } from './types.js';
import { exceedsUtf8, headersProblem, isId } from './validate.js';

// The envelope's fixed fields are written by hand and only the values (payload, error, headers)
// go through msgpack: no object spread, no key strings encoded per message, and one pooled
// allocation for the result. Profiled: about half the cost of Encoder.encode on the whole map.
// encodeValueShared returns a view into the codec's buffer, copied into the result at once.
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
  const end = writeShortAscii(buf, pos, name);
  if (end >= 0) return end;
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
  const out = Buffer.allocUnsafe(pos + KEY_P.length + binHeaderLength(n) + n);
  out.set(p, writeBinaryPrefix(out, pos, n));
  return out;
}

function binHeaderLength(n: number): number {
  return n < 0x100 ? 2 : n < 0x10000 ? 3 : 5;
}

// The envelope's bytes before a binary payload's own: the fixed fields in `head`, "p", bin header.
function writeBinaryPrefix(out: Buffer, pos: number, n: number): number {
  head.copy(out, 0, 0, pos);
  return writeSized(out, writeBytes(out, pos, KEY_P), n, 0xc4, 0xc5, 0xc6); // bin 8/16/32
}

/**
 * An envelope whose binary payload is not copied: the bytes before it (`head`), then the payload
 * itself (`body`, the caller's buffer). What `encodeEnvelopeSplit` returns for a large one.
 */
export interface SplitEnvelope {
  readonly head: Uint8Array;
  readonly body: Uint8Array;
  /** head + body. */
  readonly byteLength: number;
}

/** An encoded envelope: its bytes, or a split one (see `SplitEnvelope`). */
export type EncodedEnvelope = Uint8Array | SplitEnvelope;

/**
 * Binary payloads from this size on are left uncopied by `encodeEnvelopeSplit`: below it one
 * copy is cheaper than the frame writer's second part (judgement, not tuned on a benchmark).
 */
export const SPLIT_MIN_BYTES = 4096;

/** The envelope's bytes in one buffer (a split one is joined, which copies its payload). */
export function joinEnvelope(encoded: EncodedEnvelope): Uint8Array {
  if (encoded instanceof Uint8Array) return encoded;
  const out = Buffer.allocUnsafe(encoded.byteLength);
  out.set(encoded.head, 0);
  out.set(encoded.body, encoded.head.byteLength);
  return out;
}

// A `$ping` echo: the request's own `p` bytes, copied once, straight into the result.
function encodeRawPayload(pos: number, p: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(pos + KEY_P.length + p.byteLength);
  head.copy(out, 0, 0, pos);
  out.set(p, writeBytes(out, pos, KEY_P));
  return out;
}

// What `p` is called in an encode error's path, by kind (`params.items[3]: ...`).
const P_NAMES: Record<number, string> = {
  [EnvelopeKind.Request]: 'params',
  [EnvelopeKind.Response]: 'result',
  [EnvelopeKind.Event]: 'payload',
  [EnvelopeKind.StreamItem]: 'item',
  [EnvelopeKind.Credit]: 'credit',
  [EnvelopeKind.InputItem]: 'item',
  [EnvelopeKind.InputCredit]: 'credit',
};

/**
 * Encode an envelope (adds `v`); throws SIPC_ERR_INVALID_ARGUMENT naming the path of a value the
 * value model cannot carry (docs/protocol.md, "Values"), e.g. `params.items[3].when: ...`.
 */
export function encodeEnvelope(envelope: Envelope): Uint8Array {
  return encode(envelope, false) as Uint8Array;
}

/**
 * `encodeEnvelope`, but a binary payload of SPLIT_MIN_BYTES or more is not copied: the result is
 * then a `SplitEnvelope` whose `body` is the payload itself, for the channel to copy once, straight
 * into its frames (profiled: the envelope's copy was 7% of a bulk sender's CPU). The caller must
 * hand it to the channel before the payload can change, or join it (`joinEnvelope`).
 */
export function encodeEnvelopeSplit(envelope: Envelope): EncodedEnvelope {
  return encode(envelope, true);
}

function encode(envelope: Envelope, split: boolean): EncodedEnvelope {
  const { k, id, m, p, e, h } = envelope;
  if (typeof m === 'string' && exceedsUtf8(m, DEFAULT_ENVELOPE_LIMITS.maxNameLength))
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `The method or topic name is longer than ${DEFAULT_ENVELOPE_LIMITS.maxNameLength} UTF-8 bytes`,
    );
  if (h !== undefined) {
    // Never sent when the peer would refuse it: the caller learns here, with the reason.
    const problem = headersProblem(h, DEFAULT_ENVELOPE_LIMITS.maxIdempotencyKeyLength);
    if (problem !== undefined)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', `The request headers are invalid: ${problem}`);
  }
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
      if (p instanceof Uint8Array) {
        if (!split || p.byteLength < SPLIT_MIN_BYTES) return encodeBinaryPayload(pos, p);
        const prefix = Buffer.allocUnsafe(pos + KEY_P.length + binHeaderLength(p.byteLength));
        writeBinaryPrefix(prefix, pos, p.byteLength);
        return { head: prefix, body: p, byteLength: prefix.byteLength + p.byteLength };
      }
      if (p instanceof RawMsgpack) return encodeRawPayload(pos, p.bytes);
      const bytes = encodeValueShared(p, P_NAMES[k] ?? 'p', 2);
      const out = Buffer.allocUnsafe(pos + KEY_P.length + bytes.length);
      head.copy(out, 0, 0, pos);
      out.set(bytes, writeBytes(out, pos, KEY_P));
      return out;
    }
    const parts: Uint8Array[] = [head.subarray(0, pos)];
    let length = pos;
    const add = (key: readonly number[], value: unknown, name: string) => {
      if (value === undefined) return;
      // slice(): the next encodeValueShared reuses the codec's buffer.
      const bytes = encodeValueShared(value, name, 2).slice();
      parts.push(Uint8Array.from(key), bytes);
      length += key.length + bytes.length;
    };
    add(KEY_P, p, P_NAMES[k] ?? 'p');
    add(KEY_E, e, 'error');
    add(KEY_H, h, 'headers');
    return Buffer.concat(parts, length);
  } catch (err) {
    if (isSecureIpcError(err)) throw err; // the value codec's own, with the path
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'The payload cannot be encoded as msgpack', {
      cause: err,
    });
  }
}
