/**
 * X25519 static key pairs: generation, the base64 text form (as WireGuard writes keys),
 * fingerprints, and secret key files that are refused when group or others can read them.
 */
import { open } from 'node:fs/promises';
import { KEY_LENGTH } from '../constants.js';
import { sodium } from '../crypto/sodium.js';
import { createError } from '../errors.js';

/** An X25519 key pair; both keys are 32 raw bytes. */
export interface KeyPair {
  /** The public key, safe to share. */
  readonly publicKey: Uint8Array;
  /** The secret key; zero it with `zeroKeyPair` when done. */
  readonly secretKey: Uint8Array;
}

// Secret keys live in sodium_malloc'd memory (mlocked, guard pages) because they are long-lived.
function secureKeyBuffer(): Buffer {
  return sodium.sodium_malloc(KEY_LENGTH);
}

/** Generate a new random X25519 key pair. */
export function generateKeyPair(): KeyPair {
  const publicKey = Buffer.alloc(KEY_LENGTH);
  const secretKey = secureKeyBuffer();
  sodium.crypto_kx_keypair(publicKey, secretKey);
  return { publicKey, secretKey };
}

/** Rebuild a key pair from its 32-byte secret key (the secret is copied). */
export function keyPairFromSecretKey(secretKey: Uint8Array): KeyPair {
  assertKeyBytes(secretKey, 'secret key');
  const sk = secureKeyBuffer();
  sk.set(secretKey);
  const publicKey = Buffer.alloc(KEY_LENGTH);
  sodium.crypto_scalarmult_base(publicKey, sk);
  return { publicKey, secretKey: sk };
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

/** A short printable identifier of a public key: `BLAKE2b:` + unpadded base64 of BLAKE2b-256. */
export function keyFingerprint(publicKey: Uint8Array): string {
  assertKeyBytes(publicKey, 'public key');
  const digest = Buffer.alloc(32);
  sodium.crypto_generichash(digest, publicKey);
  return `BLAKE2b:${digest.toString('base64').replace(/=+$/, '')}`;
}

/** Overwrite the secret (and public) key bytes with zeros. */
export function zeroKeyPair(kp: KeyPair): void {
  sodium.sodium_memzero(kp.secretKey);
  sodium.sodium_memzero(kp.publicKey);
}

// A key file holds the 44-character base64 secret key and an optional line ending.
const MAX_KEY_FILE_SIZE = 64;

/**
 * Read a secret key file written by `writeSecretKeyFile` (or `wg genkey`). Refuses, as ssh does,
 * a file that group or others can read or write (`SIPC_ERR_INSECURE_KEY_FILE`). Windows has no
 * POSIX mode bits (Node reports 0o666), so there the file's ACL is the caller's responsibility.
 */
export async function readSecretKeyFile(path: string): Promise<KeyPair> {
  const handle = await open(path, 'r').catch((err: unknown) => {
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'Cannot open the secret key file', { cause: err });
  });
  const raw = Buffer.alloc(MAX_KEY_FILE_SIZE + 1);
  try {
    // fstat on the opened handle: no window for the file to be swapped between check and read.
    const st = await handle.stat();
    if (!st.isFile()) throw createError('SIPC_ERR_INVALID_ARGUMENT', 'The secret key path is not a file');
    if (process.platform !== 'win32' && (st.mode & 0o077) !== 0)
      throw createError(
        'SIPC_ERR_INSECURE_KEY_FILE',
        `The secret key file is accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); chmod 600 it`,
      );
    if (st.size > MAX_KEY_FILE_SIZE)
      throw createError('SIPC_ERR_BAD_KEY', 'The secret key file is too large');
    const { bytesRead } = await handle.read(raw, 0, raw.length, 0);
    let end = bytesRead;
    while (end > 0 && (raw[end - 1] === 0x0a || raw[end - 1] === 0x0d)) end--;
    const secret = decodeKey(raw.toString('latin1', 0, end));
    try {
      return keyPairFromSecretKey(secret);
    } finally {
      sodium.sodium_memzero(secret);
    }
  } finally {
    sodium.sodium_memzero(raw);
    await handle.close();
  }
}

/** Write a secret key file: created with mode 0600 and O_EXCL (never overwrites an existing file). */
export async function writeSecretKeyFile(path: string, secretKey: Uint8Array): Promise<void> {
  assertKeyBytes(secretKey, 'secret key');
  const handle = await open(path, 'wx', 0o600).catch((err: unknown) => {
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'Cannot create the secret key file (does it exist?)', {
      cause: err,
    });
  });
  const text = Buffer.from(`${encodeKey(secretKey)}\n`, 'latin1');
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    sodium.sodium_memzero(text);
    await handle.close();
  }
}

function assertKeyBytes(key: Uint8Array, what: string): void {
  if (!(key instanceof Uint8Array) || key.byteLength !== KEY_LENGTH)
    throw createError('SIPC_ERR_BAD_KEY', `The ${what} must be ${KEY_LENGTH} bytes`);
}
