/**
 * Handshake payloads are msgpack maps with string keys. Message 1 (plaintext, hashed):
 * `{ versions: [1] }`. Message 2: `{ version: 1, ...credentials }`. Message 3: `{ ...credentials }`.
 * Unknown keys are ignored by this layer and handed to the trust function.
 */
import { encode } from '@msgpack/msgpack';
import { createError } from '../errors.js';
import { boundedDecoder, decodeBounded } from '../msgpack/decode-budget.js';
import { arrayAt, isIntegerAt, scanStringKeyedMap, skipValue } from '../msgpack/wire-scan.js';

/** Keys the protocol reserves in handshake payloads. */
export const RESERVED_PAYLOAD_KEYS: readonly string[] = ['versions', 'version'];

/** Most versions message 1 may offer. */
const MAX_OFFERED_VERSIONS = 16;

// Structural limits of this format; the decode budget (depth, cost) applies on top.
const decoder = boundedDecoder({
  maxStrLength: 65_535,
  maxBinLength: 65_535,
  maxArrayLength: 4096,
  maxMapLength: 4096,
  maxExtLength: 65_535,
});

/** Encode a payload map; refuses the reserved keys in `extra` (the protocol sets those). */
export function encodePayload(fixed: Record<string, unknown>, extra?: Record<string, unknown>): Uint8Array {
  if (extra !== undefined) {
    if (typeof extra !== 'object' || extra === null || Array.isArray(extra))
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'payload must be a plain object');
    for (const key of RESERVED_PAYLOAD_KEYS)
      if (Object.hasOwn(extra, key))
        throw createError('SIPC_ERR_INVALID_ARGUMENT', `payload key "${key}" is reserved by the protocol`);
  }
  try {
    return encode({ ...extra, ...fixed });
  } catch (err) {
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'payload is not msgpack-encodable', { cause: err });
  }
}

// The reserved keys' values must be msgpack integers as encoded (a float 1.0 decodes to 1 too).
function reservedEncoding(bytes: Uint8Array, key: string, at: number): string | undefined {
  if (key === 'version') return isIntegerAt(bytes, at) ? undefined : '"version" is not a msgpack integer';
  if (key !== 'versions') return undefined;
  const list = arrayAt(bytes, at);
  if (list === undefined) return undefined; // not a list: offeredVersions says so
  let [n, pos] = list;
  for (; n > 0; n--) {
    if (!isIntegerAt(bytes, pos)) return '"versions" holds an entry that is not a msgpack integer';
    pos = skipValue(bytes, pos);
  }
  return undefined;
}

/**
 * Decode and validate a payload: exactly one msgpack map, every key a str and none twice, the
 * reserved keys' numbers msgpack integers (docs/protocol.md, 3.3); throws `SIPC_ERR_PROTOCOL`.
 */
export function decodePayload(bytes: Uint8Array): Record<string, unknown> {
  let value: unknown;
  try {
    value = decodeBounded(bytes, decoder);
  } catch (err) {
    throw createError('SIPC_ERR_PROTOCOL', 'Handshake payload is not valid msgpack', { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array)
    throw createError('SIPC_ERR_PROTOCOL', 'Handshake payload is not a map');
  // The decoded object cannot tell an integer key 1 from the string "1", or a key that appeared
  // twice (the last one wins): the bytes can.
  const reason = scanStringKeyedMap(bytes, 0, (key, at) => reservedEncoding(bytes, key, at));
  if (reason !== undefined) throw createError('SIPC_ERR_PROTOCOL', `Handshake payload is invalid: ${reason}`);
  // @msgpack/msgpack builds plain objects (numeric keys become strings) and refuses a `__proto__`
  // key, so the map cannot reach a prototype and is safe to spread.
  return Object.freeze(value as Record<string, unknown>);
}

/**
 * The versions offered in message 1: 1..16 distinct integers in 1..65535 (msgpack integers:
 * decodePayload checked the encoding). A list with an entry twice is refused.
 */
export function offeredVersions(payload: Readonly<Record<string, unknown>>): number[] {
  const versions = payload.versions;
  if (
    !Array.isArray(versions) ||
    versions.length === 0 ||
    versions.length > MAX_OFFERED_VERSIONS ||
    !versions.every((v) => Number.isInteger(v) && v >= 1 && v <= 65_535)
  )
    throw createError('SIPC_ERR_PROTOCOL', 'Message 1 must offer "versions": a list of protocol versions');
  if (new Set(versions).size !== versions.length)
    throw createError('SIPC_ERR_PROTOCOL', 'Message 1 offers a version twice in "versions"');
  return versions as number[];
}

/** The highest version both sides speak, or undefined. */
export function selectVersion(offered: readonly number[], supported: readonly number[]): number | undefined {
  let best: number | undefined;
  for (const v of offered) if (supported.includes(v) && (best === undefined || v > best)) best = v;
  return best;
}

/** The version chosen in message 2; must be one the initiator offered. */
export function chosenVersion(
  payload: Readonly<Record<string, unknown>>,
  offered: readonly number[],
): number {
  const version = payload.version;
  if (typeof version !== 'number' || !offered.includes(version))
    throw createError('SIPC_ERR_VERSION_MISMATCH', 'Message 2 chose a version this side did not offer');
  return version;
}
