/**
 * How a command reads a secret key: from a file (`--key FILE`) or from stdin, in the marked format
 * of docs/protocol.md "Files". A bare 44-character base64 key — what every public key looks like,
 * and what secure-ipc wrote before the format was marked — is refused unless the command was given
 * `--allow-unmarked-key` (then a warning says how to convert the file), or is `keygen --import`,
 * whose job is that conversion.
 */
import {
  isSecureIpcError,
  type KeyPair,
  keyPairFromSecretKey,
  readSecretKeyFile,
  secretKeyFromText,
} from '@secure-ipc/core';
import { CliError, type CliIo, ExitCode, println } from './io.js';

/** The option of every command that reads a secret key. */
export const allowUnmarkedOption = { 'allow-unmarked-key': { type: 'boolean' } } as const;

/** A secret key as read, and whether it was in the old unmarked form. */
export interface LoadedKey {
  readonly keyPair: KeyPair;
  readonly unmarked: boolean;
}

// A marked key is three short lines (119 bytes); refuse anything much larger before buffering it.
const MAX_STDIN = 512;

async function readStdin(stdin: NodeJS.ReadableStream): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stdin) {
      const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk as string);
      size += b.length;
      if (size > MAX_STDIN) {
        b.fill(0);
        throw new CliError('stdin holds more than one secret key', ExitCode.KeyOrFile);
      }
      chunks.push(b);
    }
    return Buffer.concat(chunks);
  } finally {
    // Plain fill is enough here: JavaScript engines do not elide stores to a live buffer.
    for (const c of chunks) c.fill(0);
  }
}

function isUnmarked(err: unknown): boolean {
  return isSecureIpcError(err, 'SIPC_ERR_BAD_KEY') && err.details?.reason === 'unmarked';
}

/** Parse strictly first, then, if allowed and the key is unmarked, as an unmarked key. */
async function strictThenUnmarked<T>(
  allowUnmarked: boolean,
  read: (options: { allowUnmarked: boolean }) => T | Promise<T>,
): Promise<{ value: T; unmarked: boolean }> {
  try {
    return { value: await read({ allowUnmarked: false }), unmarked: false };
  } catch (err) {
    if (!allowUnmarked || !isUnmarked(err)) throw err;
  }
  return { value: await read({ allowUnmarked: true }), unmarked: true };
}

/** Read the secret key in `path`, or on stdin when `path` is undefined. */
export async function loadSecretKey(
  path: string | undefined,
  io: CliIo,
  allowUnmarked: boolean,
): Promise<LoadedKey> {
  if (path !== undefined) {
    const { value, unmarked } = await strictThenUnmarked(allowUnmarked, (o) => readSecretKeyFile(path, o));
    return { keyPair: value, unmarked };
  }
  const raw = await readStdin(io.stdin);
  try {
    const text = raw.toString('latin1');
    const { value: secret, unmarked } = await strictThenUnmarked(allowUnmarked, (o) =>
      secretKeyFromText(text, o),
    );
    try {
      return { keyPair: keyPairFromSecretKey(secret), unmarked };
    } finally {
      secret.fill(0);
    }
  } finally {
    raw.fill(0);
  }
}

/** Read the key for `--key FILE` of a command given `--allow-unmarked-key` or not; warns when it was unmarked. */
export async function loadKeyOption(
  path: string | undefined,
  io: CliIo,
  allowUnmarked: boolean,
): Promise<KeyPair> {
  const { keyPair, unmarked } = await loadSecretKey(path, io, allowUnmarked);
  if (unmarked) {
    const what = path ?? 'the key on stdin';
    println(
      io.stderr,
      `secure-ipc: warning: ${what} is an unmarked secret key (bare base64, as secure-ipc wrote before secret keys were marked, ` +
        `or wg genkey); read because of --allow-unmarked-key. Convert it once: secure-ipc keygen --import ${path ?? '-'} --out NEW`,
    );
  }
  return keyPair;
}
