/**
 * Reading and writing the files that hold identity secrets (secret key files, authority keys,
 * encrypted key files), trust material (revocation lists) and public identity files
 * (certificates). Every reader goes through `readBoundedFile`:
 *
 *   open(O_RDONLY | O_NOFOLLOW | O_NONBLOCK | O_NOCTTY)   a symlink fails (ELOOP), a FIFO or device
 *                                                         cannot block the open
 *   fstat(descriptor)                                     what was opened, not what the path names now:
 *     regular file?                                       else refused before any read (a FIFO would
 *                                                         block the first read forever)
 *     owner = effective uid or root?                      secret and trust files only
 *     mode                                                secret: no group/other access at all;
 *                                                         trust: not writable by group/others
 *     size <= cap?                                        then read at most cap + 1 bytes
 *
 * Windows has neither O_NOFOLLOW, O_NONBLOCK nor POSIX owners and modes (Node reports uid 0 and a
 * synthetic mode): there links are followed, owner and mode are not checked (the file's ACL is the
 * guard), and the regular-file check and the size cap apply as everywhere.
 */
import { constants, promises as fs, type Stats } from 'node:fs';
import { dirname, join } from 'node:path';
import { sodium } from '../crypto/sodium.js';
import { createError, type ErrorCode, type SecureIpcError } from '../errors.js';

/**
 * What a file holds, which decides the owner and mode checks: `secret` (keys: owner is the
 * effective uid or root, no group/other access), `trust` (revocation lists: owner is the
 * effective uid or root, not writable by group/others) or `public` (certificates: no owner or
 * mode check, a certificate proves itself by its signature).
 */
export type FileKind = 'secret' | 'trust' | 'public';

/** Options of `readBoundedFile`. */
export interface ReadBoundedFileOptions {
  /** Refuse a file larger than this many bytes. */
  maxBytes: number;
  /** Error code for a too-large or unreadable file. */
  code: ErrorCode;
  /** Error code for a path that cannot be opened, is a link or is not a regular file (default: `code`). */
  pathCode?: ErrorCode;
  /** The owner and mode checks to apply (default `public`: none). */
  kind?: FileKind;
}

// O_NOFOLLOW and O_NONBLOCK do not exist on Windows (undefined there): only POSIX gets them.
const OPEN_FLAGS =
  process.platform === 'win32'
    ? constants.O_RDONLY
    : constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK | constants.O_NOCTTY;

function fileType(st: Stats): string {
  if (st.isDirectory()) return 'a directory';
  if (st.isFIFO()) return 'a FIFO';
  if (st.isSocket()) return 'a socket';
  if (st.isCharacterDevice()) return 'a character device';
  if (st.isBlockDevice()) return 'a block device';
  return 'not a regular file';
}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8)}`;
}

/**
 * Why the opened file `st` must not be read as a `kind` file, as the error to throw, or undefined.
 * `platform` and `euid` are parameters so the Windows rules can be tested anywhere.
 */
export function fileProblem(
  path: string,
  st: Pick<
    Stats,
    'isFile' | 'isDirectory' | 'isFIFO' | 'isSocket' | 'isCharacterDevice' | 'isBlockDevice' | 'uid' | 'mode'
  >,
  options: Pick<ReadBoundedFileOptions, 'code' | 'pathCode' | 'kind'>,
  platform: NodeJS.Platform = process.platform,
  euid: number | undefined = process.geteuid?.(),
): SecureIpcError | undefined {
  if (!st.isFile())
    return createError(
      options.pathCode ?? options.code,
      `${path} is ${fileType(st as Stats)}, not a regular file`,
      {
        details: { path, reason: 'not-regular' },
      },
    );
  const kind = options.kind ?? 'public';
  if (kind === 'public' || platform === 'win32' || euid === undefined) return undefined;
  const code: ErrorCode = kind === 'secret' ? 'SIPC_ERR_INSECURE_KEY_FILE' : 'SIPC_ERR_INSECURE_FILE';
  const details = { path, uid: st.uid, mode: st.mode & 0o7777 };
  if (st.uid !== euid && st.uid !== 0)
    return createError(
      code,
      `${path} is owned by uid ${st.uid}, not by this process's user (uid ${euid}) or root: that user can ` +
        `${kind === 'secret' ? 'read or replace' : 'rewrite'} it; ${kind === 'secret' ? 'a secret' : 'trust material'} ` +
        'must belong to the user who relies on it',
      { details: { ...details, reason: 'owner' } },
    );
  if (kind === 'secret' && (st.mode & 0o077) !== 0)
    return createError(
      code,
      `${path} is accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 ${path}`,
      { details: { ...details, reason: 'mode' } },
    );
  if (kind === 'trust' && (st.mode & 0o022) !== 0)
    return createError(
      code,
      `${path} is writable by group or others (mode ${octal(st.mode)}), so they could rewrite it; run chmod go-w ${path}`,
      { details: { ...details, reason: 'mode' } },
    );
  return undefined;
}

function openError(path: string, options: ReadBoundedFileOptions, err: unknown): SecureIpcError {
  const os = (err as NodeJS.ErrnoException | null)?.code;
  // O_NOFOLLOW on a symlink: ELOOP (Linux, macOS), EMLINK (FreeBSD).
  if (os === 'ELOOP' || os === 'EMLINK')
    return createError(
      options.pathCode ?? options.code,
      `${path} is a symbolic link: key, certificate and revocation files are opened without following links; give the file's own path`,
      { cause: err, details: { path, reason: 'symlink' } },
    );
  return createError(options.pathCode ?? options.code, `Cannot open ${path}`, { cause: err });
}

/**
 * Read a whole file through one descriptor opened without following links and without blocking,
 * checking its type, owner, mode and size on that descriptor before reading (see the file's
 * opening comment).
 */
export async function readBoundedFile(path: string, options: ReadBoundedFileOptions): Promise<Buffer> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, OPEN_FLAGS);
  } catch (err) {
    throw openError(path, options, err);
  }
  const secret = options.kind === 'secret';
  try {
    const st = await handle.stat();
    const problem = fileProblem(path, st, options);
    if (problem !== undefined) throw problem;
    if (st.size > options.maxBytes)
      throw createError(options.code, `${path} is larger than ${options.maxBytes} bytes`);
    // Room for the size fstat reported plus one byte, so a file that grew since is noticed; the
    // buffer grows (at most to the cap + 1) only if it did.
    let buf = Buffer.alloc(st.size + 1);
    let total = 0;
    for (;;) {
      if (total === buf.byteLength) {
        if (total > options.maxBytes) {
          if (secret) sodium.sodium_memzero(buf);
          throw createError(options.code, `${path} is larger than ${options.maxBytes} bytes`);
        }
        const bigger = Buffer.alloc(Math.min(buf.byteLength * 2, options.maxBytes + 1));
        buf.copy(bigger);
        if (secret) sodium.sodium_memzero(buf);
        buf = bigger;
      }
      const { bytesRead } = await handle.read(buf, total, buf.byteLength - total, null);
      if (bytesRead === 0) break;
      total += bytesRead;
    }
    const out = Buffer.from(buf.subarray(0, total));
    if (secret) sodium.sodium_memzero(buf);
    return out;
  } finally {
    await handle.close();
  }
}

/**
 * Read a secret file (`readBoundedFile` with `kind: 'secret'`) and hand its bytes to `parse`; the
 * bytes are wiped when `parse` returns or throws, so no copy of the secret outlives the call.
 */
export async function readSecretFile<T>(
  path: string,
  options: Omit<ReadBoundedFileOptions, 'kind'>,
  parse: (bytes: Buffer) => T,
): Promise<T> {
  const raw = await readBoundedFile(path, { ...options, kind: 'secret' });
  try {
    return parse(raw);
  } finally {
    sodium.sodium_memzero(raw);
  }
}

/**
 * Create a secret file 0600 with O_EXCL (never overwrites, never follows a planted file) and
 * write `data`. On a failed write the partial file is removed.
 */
export async function writeSecretFile(path: string, data: Uint8Array | string): Promise<void> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
  } catch (err) {
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `Cannot create ${path} (it must not exist yet)`, {
      cause: err,
    });
  }
  try {
    // The umask cannot widen 0600, but chmod makes the mode explicit even under an odd umask.
    await handle.chmod(0o600);
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => {});
    await fs.rm(path, { force: true });
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `Cannot write ${path}`, { cause: err });
  }
  await handle.close();
}

/**
 * Replace a public file atomically: write a temporary file beside it, fsync, rename over the
 * target. A reader (or a watcher) sees either the old or the new content, never a partial one.
 */
export async function writeFileAtomic(path: string, data: Uint8Array | string, mode = 0o644): Promise<void> {
  const tmp = join(dirname(path), `.${Date.now()}-${process.pid}-${Math.random().toString(36).slice(2)}.tmp`);
  const handle = await fs.open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, mode);
  try {
    await handle.writeFile(data);
    await handle.sync();
  } catch (err) {
    await handle.close().catch(() => {});
    await fs.rm(tmp, { force: true });
    throw err;
  }
  await handle.close();
  try {
    await fs.rename(tmp, path);
  } catch (err) {
    await fs.rm(tmp, { force: true });
    throw err;
  }
}

/**
 * Read a JSON file held as trust material (`readBoundedFile` with `kind: 'trust'`, errors
 * SIPC_ERR_INVALID_ARGUMENT): its parsed value, or undefined when it does not exist; text that is
 * not JSON is `notJson()`, the caller's error naming its format.
 */
export async function readTrustJson(path: string, maxBytes: number, notJson: () => Error): Promise<unknown> {
  let raw: Buffer;
  try {
    raw = await readBoundedFile(path, { maxBytes, code: 'SIPC_ERR_INVALID_ARGUMENT', kind: 'trust' });
  } catch (err) {
    if ((err as { cause?: { code?: unknown } }).cause?.code === 'ENOENT') return undefined;
    throw err;
  }
  try {
    return JSON.parse(raw.toString('utf8')) as unknown;
  } catch {
    throw notJson();
  }
}
