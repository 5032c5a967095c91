/**
 * Secret key files: the 44-character base64 secret key and an optional line ending (the form
 * `wg genkey` writes), created 0600 and exclusively, refused when group or others can access
 * them. Opening, checking and reading go through the one private-file helper.
 */
import { sodium } from '../crypto/sodium.js';
import { type KeyPair, keyPairFromSecretKey } from './key-pair.js';
import { assertKeyBytes, decodeKey, encodeKey } from './key-text.js';
import { readSecretFile, writeSecretFile } from './private-file.js';

// A key file holds the 44-character base64 secret key and an optional line ending.
const MAX_KEY_FILE_SIZE = 64;

/**
 * Read a secret key file written by `writeSecretKeyFile` (or `wg genkey`). Refuses, as ssh does,
 * a file that group or others can read or write (`SIPC_ERR_INSECURE_KEY_FILE`); a path that
 * cannot be opened or is not a regular file is `SIPC_ERR_INVALID_ARGUMENT`, bad content
 * `SIPC_ERR_BAD_KEY`. Windows has no POSIX mode bits (Node reports 0o666), so there the file's
 * ACL is the caller's responsibility.
 */
export async function readSecretKeyFile(path: string): Promise<KeyPair> {
  const options = {
    maxBytes: MAX_KEY_FILE_SIZE,
    code: 'SIPC_ERR_BAD_KEY',
    pathCode: 'SIPC_ERR_INVALID_ARGUMENT',
  } as const;
  return readSecretFile(path, options, (raw) => {
    let end = raw.length;
    while (end > 0 && (raw[end - 1] === 0x0a || raw[end - 1] === 0x0d)) end--;
    const secret = decodeKey(raw.toString('latin1', 0, end));
    try {
      return keyPairFromSecretKey(secret);
    } finally {
      sodium.sodium_memzero(secret);
    }
  });
}

/** Write a secret key file: created with mode 0600 and O_EXCL (never overwrites an existing file). */
export async function writeSecretKeyFile(path: string, secretKey: Uint8Array): Promise<void> {
  assertKeyBytes(secretKey, 'secret key');
  const text = Buffer.from(`${encodeKey(secretKey)}\n`, 'latin1');
  try {
    await writeSecretFile(path, text);
  } finally {
    sodium.sodium_memzero(text);
  }
}
