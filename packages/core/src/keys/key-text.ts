/**
 * The text form of 32-byte keys (X25519 static keys, Ed25519 authority public keys): standard
 * base64, 44 characters, as WireGuard writes keys. `toKey` is the one decoder every API that
 * takes "raw bytes or base64" uses (pinned keys, policy peers, certificates, revocation lists).
 */
import { KEY_LENGTH } from '../constants.js';
import { createError, type ErrorCode } from '../errors.js';

/** Throw `SIPC_ERR_BAD_KEY` unless `key` is 32 bytes. */
export function assertKeyBytes(key: Uint8Array, what: string): void {
  if (!(key instanceof Uint8Array) || key.byteLength !== KEY_LENGTH)
    throw createError('SIPC_ERR_BAD_KEY', `The ${what} must be ${KEY_LENGTH} bytes`);
}

/** Standard base64 of the 32 raw key bytes (44 characters). */
export function encodeKey(key: Uint8Array): string {
  assertKeyBytes(key, 'key');
  return Buffer.from(key.buffer, key.byteOffset, key.byteLength).toString('base64');
}

const KEY_TEXT = /^[A-Za-z0-9+/]{43}=$/;

/** Parse the 44-character base64 form of a key; throws `SIPC_ERR_BAD_KEY` on anything else. */
export function decodeKey(text: string): Uint8Array {
  if (typeof text !== 'string' || !KEY_TEXT.test(text))
    throw createError('SIPC_ERR_BAD_KEY', 'A key must be 44 characters of standard base64 (32 bytes)');
  const key = Buffer.from(text, 'base64');
  // Node's decoder ignores non-zero padding bits; reject them so each key has one text form.
  if (key.length !== KEY_LENGTH || key.toString('base64') !== text)
    throw createError('SIPC_ERR_BAD_KEY', 'The key is not canonical base64 of 32 bytes');
  return key;
}

/**
 * A 32-byte key given as raw bytes or as its base64 text (surrounding white space ignored, as in
 * files and command lines); anything else throws `code` (default `SIPC_ERR_BAD_KEY`) naming
 * `what`, with the parse error as `cause`. Raw bytes are returned as given, not copied.
 */
export function toKey(
  value: Uint8Array | string,
  what: string,
  code: ErrorCode = 'SIPC_ERR_BAD_KEY',
): Uint8Array {
  if (typeof value === 'string') {
    try {
      return decodeKey(value.trim());
    } catch (err) {
      throw createError(code, `${what} must be 44 characters of standard base64 (32 bytes)`, { cause: err });
    }
  }
  if (!(value instanceof Uint8Array) || value.byteLength !== KEY_LENGTH)
    throw createError(code, `${what} must be ${KEY_LENGTH} bytes or its 44-character base64`);
  return value;
}
