/**
 * RPC values (docs/protocol.md, "Values") as JSON and back, for `call` and `--json` output
 * (package README, "Values as JSON"). JSON holds null, booleans, finite numbers, strings, arrays
 * and objects with string keys; every other value a peer can send gets a stated form:
 *
 *   Uint8Array (bin)          {"$base64": "<standard base64>"}
 *   bigint (int 64 beyond 2^53) its decimal digits as a string ("18446744073709551615")
 *   NaN, Infinity, -Infinity  the strings "NaN", "Infinity", "-Infinity"
 *   undefined                 null
 *   Date (timestamp ext)      {"$date": "<ISO 8601>"}
 *   Map                       {"$map": [[key, value], ...]}
 *   Set                       {"$set": [item, ...]}
 *   any other ext             {"$ext": {"type": n, "base64": "..."}}
 *
 * Params go the other way: plain JSON, where an object that is exactly {"$base64": "..."} is
 * sent as bytes (the one wrapper a caller needs to send what JSON cannot hold).
 */
import { createError } from '@secure-ipc/core';

/** An ext value of a type core does not map (`@msgpack/msgpack`'s ExtData), told apart by shape. */
function isExtData(value: object): value is { type: number; data: Uint8Array } {
  const v = value as { type?: unknown; data?: unknown };
  return (
    Object.getPrototypeOf(value) !== Object.prototype &&
    typeof v.type === 'number' &&
    v.data instanceof Uint8Array
  );
}

// An own property even for the key `__proto__` (which JSON.parse gives as one): never a prototype.
function setOwn(target: Record<string, unknown>, key: string, value: unknown): void {
  Object.defineProperty(target, key, { value, enumerable: true, writable: true, configurable: true });
}

function base64(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64');
}

function numberToJSON(n: number): number | string {
  return Number.isFinite(n) ? n : String(n);
}

function objectToJSON(value: object): unknown {
  if (value instanceof Uint8Array) return { $base64: base64(value) };
  if (value instanceof Date) return { $date: value.toISOString() };
  if (Array.isArray(value)) return value.map(toJSONValue);
  if (value instanceof Map) return { $map: [...value].map(([k, v]) => [toJSONValue(k), toJSONValue(v)]) };
  if (value instanceof Set) return { $set: [...value].map(toJSONValue) };
  if (isExtData(value)) return { $ext: { type: value.type, base64: base64(value.data) } };
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(value)) setOwn(out, k, toJSONValue(v));
  return out;
}

/**
 * A decoded RPC value as a JSON value (the table above). Decoded values nest at most as deep as
 * the decoder allows (docs/limits.md), so the recursion is bounded.
 */
export function toJSONValue(value: unknown): unknown {
  switch (typeof value) {
    case 'undefined':
      return null;
    case 'bigint':
      return value.toString();
    case 'number':
      return numberToJSON(value);
    case 'boolean':
    case 'string':
      return value;
    case 'object':
      return value === null ? null : objectToJSON(value);
    default:
      return String(value);
  }
}

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

function fromJSON(value: unknown, path: string): unknown {
  if (Array.isArray(value)) return value.map((v, i) => fromJSON(v, `${path}[${i}]`));
  if (typeof value !== 'object' || value === null) return value;
  const keys = Object.keys(value);
  const wrapped = (value as { $base64?: unknown }).$base64;
  if (keys.length === 1 && keys[0] === '$base64') {
    if (typeof wrapped !== 'string' || !BASE64.test(wrapped))
      throw createError(
        'SIPC_ERR_INVALID_ARGUMENT',
        `JSON-PARAMS${path}: {"$base64": ...} must hold standard base64 (with padding)`,
      );
    return new Uint8Array(Buffer.from(wrapped, 'base64'));
  }
  const out: Record<string, unknown> = {};
  for (const k of keys) setOwn(out, k, fromJSON((value as Record<string, unknown>)[k], `${path}.${k}`));
  return out;
}

/**
 * The params of `call`: `text` parsed as JSON, `{"$base64": ...}` as bytes; SIPC_ERR_INVALID_ARGUMENT
 * (a usage error, exit 2) when it is not valid JSON or a wrapper holds no valid base64.
 */
export function parseJSONParams(text: string): unknown {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `JSON-PARAMS is not valid JSON: ${(err as Error).message}`,
    );
  }
  return fromJSON(parsed, '');
}
