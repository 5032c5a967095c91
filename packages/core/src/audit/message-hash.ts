/**
 * The keyed hash an audit record carries instead of a request's params (docs/audit.md, "Message
 * hashes"; HashiCorp Vault's audit devices record HMACs of values the same way): whoever holds the
 * key can check whether a given call was the one recorded; whoever reads the log cannot learn the
 * params. `secure-ipc audit hash` computes the same value from a method and JSON params.
 */
import { sodium } from '../crypto/sodium.js';
import { createError } from '../errors.js';
import { readSecretFile } from '../keys/private-file.js';
import { encodeValue } from '../msgpack/value-codec.js';

/** Bytes of a message-hash key (a BLAKE2b key: 32 bytes). */
export const AUDIT_HASH_KEY_BYTES = 32;

/** `value` with every plain object's keys in sorted order (arrays, Maps, Sets and bytes as they are). */
function canonical(value: unknown, depth: number): unknown {
  if (depth > 64) throw createError('SIPC_ERR_INVALID_ARGUMENT', 'The params are nested too deeply to hash');
  if (Array.isArray(value)) return value.map((v) => canonical(v, depth + 1));
  if (value === null || typeof value !== 'object' || ArrayBuffer.isView(value) || value instanceof Date)
    return value;
  if (value instanceof Map || value instanceof Set) return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort())
    out[key] = canonical((value as Record<string, unknown>)[key], depth + 1);
  return out;
}

/**
 * The keyed BLAKE2b-256 of a call: `BLAKE2b-256(key, UTF-8(method) || 0x00 || msgpack(params))`,
 * the params encoded as secure-ipc encodes values with every plain object's keys sorted (so the
 * sender's key order does not matter). Throws SIPC_ERR_INVALID_ARGUMENT for a key that is not 32
 * bytes or params msgpack cannot carry.
 */
export function auditMessageHash(key: Uint8Array, method: string, params: unknown): Uint8Array {
  if (!(key instanceof Uint8Array) || key.byteLength !== AUDIT_HASH_KEY_BYTES)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `An audit hash key is ${AUDIT_HASH_KEY_BYTES} bytes`);
  const name = Buffer.from(method, 'utf8');
  const body = encodeValue(canonical(params, 1), 'params');
  const input = new Uint8Array(name.byteLength + 1 + body.byteLength);
  input.set(name, 0);
  input.set(body, name.byteLength + 1);
  const out = new Uint8Array(32);
  sodium.crypto_generichash(out, input, key);
  return out;
}

/**
 * Read a message-hash key file: the 32-byte key as base64 (44 characters) or hex (64), surrounding
 * whitespace allowed; a secret file (owner-only, no link: SIPC_ERR_INSECURE_KEY_FILE otherwise),
 * wiped after parsing. SIPC_ERR_BAD_KEY for anything else.
 */
export function readAuditHashKey(path: string): Promise<Uint8Array> {
  return readSecretFile(path, { maxBytes: 256, code: 'SIPC_ERR_BAD_KEY' }, (raw) => {
    const text = raw.toString('latin1').trim();
    const key = /^[0-9a-fA-F]{64}$/.test(text)
      ? Buffer.from(text, 'hex')
      : /^[A-Za-z0-9+/]{43}=?$/.test(text)
        ? Buffer.from(text, 'base64')
        : undefined;
    if (key === undefined || key.byteLength !== AUDIT_HASH_KEY_BYTES)
      throw createError(
        'SIPC_ERR_BAD_KEY',
        `${path}: an audit hash key file holds 32 bytes as base64 or hex`,
      );
    const out = new Uint8Array(key);
    key.fill(0);
    return out;
  });
}
