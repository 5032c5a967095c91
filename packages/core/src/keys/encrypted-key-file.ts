/**
 * Passphrase-encrypted secret key files: the key is sealed with crypto_secretbox under a key
 * derived by crypto_pwhash (Argon2id). Binary layout (armored as text, label ENCRYPTED KEY):
 *
 *   'SIPCEK' | version u8 (1) | alg u8 (2 = Argon2id13) | opslimit u32 BE | memlimit u32 BE
 *   | salt (16) | nonce (24) | secretbox(key 32 bytes) (48)
 *
 * The header is not MAC'd directly, but every header field is an input of the key derivation, so
 * changing any of them yields another key and the MAC check fails. The file is created 0600 and
 * refused when group or others can access it, like a plain key file.
 */

import { sodium } from '../crypto/sodium.js';
import { createError } from '../errors.js';
import { armor, dearmor } from './armor.js';
import { readSecretFile, writeSecretFile } from './private-file.js';

/** Encrypted key file format version. */
export const ENCRYPTED_KEY_FILE_VERSION = 1;
const MAGIC = Buffer.from('SIPCEK', 'ascii');
const LABEL = 'ENCRYPTED KEY';
const KEY_BYTES = 32;
// Refuse absurd parameters from a file before running Argon2 on them (a crafted file must not be
// able to make us allocate gigabytes or spin for minutes).
const MAX_OPSLIMIT = 16;
const MAX_MEMLIMIT = 1024 * 1024 * 1024;
// And parameters too cheap to protect a passphrase: libsodium's INTERACTIVE limits (opslimit 2,
// 64 MiB), its own floor for "interactive, online operations", are the minimum written or read.
// Below it (libsodium itself goes down to opslimit 1 / 8 KiB) a GPU tries passphrases by the
// billion. docs/identity.md "Encrypted key files" states the same numbers.
const MIN_OPSLIMIT = 2;
const MIN_MEMLIMIT = 64 * 1024 * 1024;

function limitsRange(): string {
  return `opslimit ${MIN_OPSLIMIT}..${MAX_OPSLIMIT}, memlimit ${MIN_MEMLIMIT / 1048576} MiB..${MAX_MEMLIMIT / 1048576} MiB`;
}

/** Why these Argon2id limits are out of range ('weak' below the minimum, 'excessive' above the maximum), or undefined. */
function limitsProblem(opslimit: number, memlimit: number): 'weak' | 'excessive' | undefined {
  if (opslimit > MAX_OPSLIMIT || memlimit > MAX_MEMLIMIT) return 'excessive';
  if (opslimit < MIN_OPSLIMIT || memlimit < MIN_MEMLIMIT) return 'weak';
  return undefined;
}

/** Argon2id cost parameters. */
export interface PasswordHashLimits {
  /** crypto_pwhash opslimit, 2..16 (default libsodium's MODERATE, 3). */
  opslimit?: number | undefined;
  /** crypto_pwhash memlimit in bytes, 64 MiB..1 GiB (default libsodium's MODERATE, 256 MiB). */
  memlimit?: number | undefined;
}

const HEADER_BYTES = MAGIC.byteLength + 2 + 8 + 16 + 24;
const FILE_BYTES = HEADER_BYTES + KEY_BYTES + 16;

function passphraseBytes(passphrase: string | Uint8Array): Buffer {
  const bytes = typeof passphrase === 'string' ? Buffer.from(passphrase, 'utf8') : Buffer.from(passphrase);
  if (bytes.byteLength === 0)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'The passphrase must not be empty');
  return bytes;
}

function deriveKey(pass: Buffer, salt: Uint8Array, opslimit: number, memlimit: number): Buffer {
  const key = sodium.sodium_malloc(sodium.crypto_secretbox_KEYBYTES);
  sodium.crypto_pwhash(key, pass, salt, opslimit, memlimit, sodium.crypto_pwhash_ALG_ARGON2ID13);
  return key;
}

/** Seal a 32-byte secret key under a passphrase; returns the armored file text. */
export function encryptSecretKey(
  secretKey: Uint8Array,
  passphrase: string | Uint8Array,
  limits: PasswordHashLimits = {},
): string {
  if (!(secretKey instanceof Uint8Array) || secretKey.byteLength !== KEY_BYTES)
    throw createError('SIPC_ERR_BAD_KEY', 'A secret key must be 32 bytes');
  const opslimit = limits.opslimit ?? sodium.crypto_pwhash_OPSLIMIT_MODERATE;
  const memlimit = limits.memlimit ?? sodium.crypto_pwhash_MEMLIMIT_MODERATE;
  if (
    !Number.isInteger(opslimit) ||
    !Number.isInteger(memlimit) ||
    limitsProblem(opslimit, memlimit) !== undefined
  )
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `pwhash limits out of range (opslimit ${opslimit}, memlimit ${memlimit}): allowed ${limitsRange()}`,
    );
  const out = Buffer.alloc(FILE_BYTES);
  MAGIC.copy(out, 0);
  let o = MAGIC.byteLength;
  out[o++] = ENCRYPTED_KEY_FILE_VERSION;
  out[o++] = sodium.crypto_pwhash_ALG_ARGON2ID13;
  out.writeUInt32BE(opslimit, o);
  out.writeUInt32BE(memlimit, o + 4);
  o += 8;
  const salt = out.subarray(o, o + 16);
  const nonce = out.subarray(o + 16, o + 40);
  sodium.randombytes_buf(salt);
  sodium.randombytes_buf(nonce);
  const pass = passphraseBytes(passphrase);
  const key = deriveKey(pass, salt, opslimit, memlimit);
  try {
    sodium.crypto_secretbox_easy(out.subarray(HEADER_BYTES), secretKey, nonce, key);
  } finally {
    sodium.sodium_memzero(key);
    sodium.sodium_memzero(pass);
  }
  return armor(LABEL, out);
}

/**
 * Open an encrypted key file's text with the passphrase. A wrong passphrase or any tampering is
 * SIPC_ERR_BAD_KEY. The result is sodium-guarded memory: zero it when done.
 */
export function decryptSecretKey(text: string, passphrase: string | Uint8Array): Uint8Array {
  const data = Buffer.from(dearmor(text, LABEL, FILE_BYTES, 'SIPC_ERR_BAD_KEY'));
  if (data.byteLength !== FILE_BYTES || !data.subarray(0, MAGIC.byteLength).equals(MAGIC))
    throw createError('SIPC_ERR_BAD_KEY', 'Not a secure-ipc encrypted key');
  let o = MAGIC.byteLength;
  const version = data[o++];
  const alg = data[o++];
  if (version !== ENCRYPTED_KEY_FILE_VERSION || alg !== sodium.crypto_pwhash_ALG_ARGON2ID13)
    throw createError('SIPC_ERR_BAD_KEY', `Unsupported encrypted key version ${version} / algorithm ${alg}`);
  const opslimit = data.readUInt32BE(o);
  const memlimit = data.readUInt32BE(o + 4);
  o += 8;
  // Checked before any key derivation: neither a greedy nor a cheap file costs an Argon2 run.
  const problem = limitsProblem(opslimit, memlimit);
  if (problem !== undefined)
    throw createError(
      'SIPC_ERR_BAD_KEY',
      problem === 'weak'
        ? `The encrypted key has out-of-range pwhash limits (opslimit ${opslimit}, memlimit ${memlimit}): below the minimum, ` +
            `they give the passphrase almost no protection (allowed ${limitsRange()}); re-encrypt the key with stronger limits`
        : `The encrypted key has out-of-range pwhash limits (opslimit ${opslimit}, memlimit ${memlimit}): allowed ${limitsRange()}`,
      { details: { opslimit, memlimit, reason: problem } },
    );
  const salt = data.subarray(o, o + 16);
  const nonce = data.subarray(o + 16, o + 40);
  const pass = passphraseBytes(passphrase);
  const key = deriveKey(pass, salt, opslimit, memlimit);
  const secretKey = sodium.sodium_malloc(KEY_BYTES);
  try {
    if (!sodium.crypto_secretbox_open_easy(secretKey, data.subarray(HEADER_BYTES), nonce, key)) {
      sodium.sodium_memzero(secretKey);
      throw createError('SIPC_ERR_BAD_KEY', 'Wrong passphrase, or the encrypted key file was modified');
    }
    return secretKey;
  } finally {
    sodium.sodium_memzero(key);
    sodium.sodium_memzero(pass);
  }
}

/** Write a passphrase-encrypted key file (0600, O_EXCL). */
export async function writeEncryptedKeyFile(
  path: string,
  secretKey: Uint8Array,
  passphrase: string | Uint8Array,
  limits: PasswordHashLimits = {},
): Promise<void> {
  await writeSecretFile(path, encryptSecretKey(secretKey, passphrase, limits));
}

/** Read a passphrase-encrypted key file; refused (SIPC_ERR_INSECURE_KEY_FILE) when owned by another user or accessible by group/others. */
export async function readEncryptedKeyFile(
  path: string,
  passphrase: string | Uint8Array,
): Promise<Uint8Array> {
  return readSecretFile(path, { maxBytes: 1024, code: 'SIPC_ERR_BAD_KEY' }, (raw) =>
    decryptSecretKey(raw.toString('utf8'), passphrase),
  );
}

/** The most bytes a passphrase file may hold (`readPassphraseFile`). */
export const MAX_PASSPHRASE_FILE_BYTES = 4096;

/**
 * Read a passphrase file: its bytes without one trailing newline (`\n` or `\r\n`, as an editor or
 * `echo` leaves it). The file is checked as a secret key file is, on the descriptor before any
 * read: a regular file, not a link, owned by this process's user or root, no group or other
 * access (`SIPC_ERR_INSECURE_KEY_FILE`; not checked on Windows, where the file's ACL is the
 * guard), at most `MAX_PASSPHRASE_FILE_BYTES` (`SIPC_ERR_BAD_KEY`); an empty passphrase is
 * `SIPC_ERR_BAD_KEY`. The caller wipes the returned bytes once used (`buffer.fill(0)`).
 */
export async function readPassphraseFile(path: string): Promise<Buffer> {
  const passphrase = await readSecretFile(
    path,
    { maxBytes: MAX_PASSPHRASE_FILE_BYTES, code: 'SIPC_ERR_BAD_KEY' },
    (raw) => {
      let end = raw.byteLength;
      if (end > 0 && raw[end - 1] === 0x0a) {
        end--;
        if (end > 0 && raw[end - 1] === 0x0d) end--;
      }
      return Buffer.from(raw.subarray(0, end));
    },
  );
  if (passphrase.byteLength === 0)
    throw createError('SIPC_ERR_BAD_KEY', `${path} holds no passphrase (it is empty)`, {
      details: { path, reason: 'empty' },
    });
  return passphrase;
}
