/**
 * Secret key files: the marked text of docs/protocol.md "Files" (an armor block labelled
 * `SECRET KEY` around the 44-character base64 secret key), created 0600 and exclusively, refused
 * when group or others can access them. The mark is what tells a secret key from the bare
 * 44-character base64 that every public key also is: an unmarked text is refused unless the
 * caller opts in (the migration path for files of earlier versions and `wg genkey`). Opening,
 * checking and reading go through the one private-file helper.
 */
import { sodium } from '../crypto/sodium.js';
import { createError } from '../errors.js';
import { armor } from './armor.js';
import { type KeyPair, keyPairFromSecretKey } from './key-pair.js';
import { assertKeyBytes, decodeKey } from './key-text.js';
import { readSecretFile, writeSecretFile } from './private-file.js';

const LABEL = 'SECRET KEY';
const BEGIN = `-----BEGIN SECURE-IPC ${LABEL}-----`;
const END = `-----END SECURE-IPC ${LABEL}-----`;
// Three lines of 37 + 44 + 35 characters with CRLF endings are 122 bytes; room for stray spaces.
const MAX_KEY_FILE_SIZE = 256;
const UNMARKED = /^[A-Za-z0-9+/]{43}=$/;
const OTHER_LABEL = /^-----BEGIN SECURE-IPC ([A-Z ]{1,32})-----$/;

/** Options of `readSecretKeyFile` and `secretKeyFromText`. */
export interface ReadSecretKeyOptions {
  /**
   * Also accept an unmarked key: the bare 44-character base64 that secure-ipc wrote before the
   * marked format, and that `wg genkey` writes. Off by default, because every public key looks
   * exactly like that; meant for migrating old files (`secure-ipc keygen --import` converts them).
   */
  allowUnmarked?: boolean | undefined;
}

/** The marked text of a secret key file (three lines, see docs/protocol.md "Files"). */
export function secretKeyToText(secretKey: Uint8Array): string {
  assertKeyBytes(secretKey, 'secret key');
  // 44 characters fit one armor line, so this is BEGIN, the key's base64, END.
  return armor(LABEL, secretKey);
}

function badKey(message: string, reason: string): Error {
  return createError('SIPC_ERR_BAD_KEY', message, { details: { reason } });
}

/** Parse secret key text; `source` names it in errors (a path, or "the secret key text"). */
function parseSecretKeyText(text: string, options: ReadSecretKeyOptions, source: string): Uint8Array {
  const lines = text
    .trim()
    .split(/\r?\n/)
    .map((l) => l.trim());
  if (lines.length === 3 && lines[0] === BEGIN && lines[2] === END) {
    try {
      return decodeKey(lines[1]!);
    } catch (err) {
      throw createError(
        'SIPC_ERR_BAD_KEY',
        `${source}: the secret key line is not 44 characters of canonical base64`,
        {
          cause: err,
          details: { reason: 'malformed' },
        },
      );
    }
  }
  if (lines.length === 1 && UNMARKED.test(lines[0]!)) {
    if (options.allowUnmarked === true) return decodeKey(lines[0]!);
    throw badKey(
      `${source} holds a bare 44-character base64 key without the "${BEGIN}" line: it could be a public key ` +
        '(a .pub file, `secure-ipc pubkey` output), which must never be used as a secret. If it is a secret key ' +
        '(written by an older secure-ipc, or by `wg genkey`), convert it once: secure-ipc keygen --import FILE --out NEW ' +
        '(or read it as before with allowUnmarked / --allow-unmarked-key)',
      'unmarked',
    );
  }
  const other = OTHER_LABEL.exec(lines[0] ?? '')?.[1];
  if (other !== undefined && other !== LABEL)
    throw badKey(
      `${source} is a secure-ipc ${other.toLowerCase()} file, not a secret key file` +
        (other === 'ENCRYPTED KEY' ? ' (open it with readEncryptedKeyFile and its passphrase)' : ''),
      'other-label',
    );
  throw badKey(
    `${source} is not a secure-ipc secret key file (expected "${BEGIN}", a key line, "${END}")`,
    'malformed',
  );
}

/**
 * Parse the text of a secret key file (`secretKeyToText`); an unmarked key is refused unless
 * `allowUnmarked`. Throws `SIPC_ERR_BAD_KEY` with `details.reason` (`unmarked`, `other-label`,
 * `malformed`). The result is a copy: zero it when done.
 */
export function secretKeyFromText(text: string, options: ReadSecretKeyOptions = {}): Uint8Array {
  if (typeof text !== 'string') throw badKey('The secret key text must be a string', 'malformed');
  return parseSecretKeyText(text, options, 'The secret key text');
}

/**
 * Read a secret key file written by `writeSecretKeyFile`. Refuses, as ssh does, a file that group
 * or others can read or write, or that another user owns (`SIPC_ERR_INSECURE_KEY_FILE`); a path
 * that cannot be opened, is a link or is not a regular file is `SIPC_ERR_INVALID_ARGUMENT`; bad
 * content, an unmarked key included (unless `allowUnmarked`), is `SIPC_ERR_BAD_KEY`. Windows has
 * no POSIX mode bits (Node reports 0o666), so there the file's ACL is the caller's responsibility.
 */
export async function readSecretKeyFile(path: string, options: ReadSecretKeyOptions = {}): Promise<KeyPair> {
  const fileOptions = {
    maxBytes: MAX_KEY_FILE_SIZE,
    code: 'SIPC_ERR_BAD_KEY',
    pathCode: 'SIPC_ERR_INVALID_ARGUMENT',
  } as const;
  return readSecretFile(path, fileOptions, (raw) => {
    const secret = parseSecretKeyText(raw.toString('latin1'), options, path);
    try {
      return keyPairFromSecretKey(secret);
    } finally {
      sodium.sodium_memzero(secret);
    }
  });
}

/** Write a secret key file (marked text): created with mode 0600 and O_EXCL (never overwrites). */
export async function writeSecretKeyFile(path: string, secretKey: Uint8Array): Promise<void> {
  const text = Buffer.from(secretKeyToText(secretKey), 'latin1');
  try {
    await writeSecretFile(path, text);
  } finally {
    sodium.sodium_memzero(text);
  }
}
