/**
 * Reading and writing the files that hold identity secrets (authority keys, encrypted key files)
 * and public identity files (certificates, revocation lists), with the checks ssh applies: a
 * secret file is created 0600 and exclusively, and refused when group or others have any access
 * to it. Sizes are checked on the open descriptor before anything is read, so a huge or growing
 * file is never loaded.
 */
import { constants, promises as fs } from 'node:fs';
import { dirname, join } from 'node:path';
import { sodium } from '../crypto/sodium.js';
import { createError, type ErrorCode } from '../errors.js';

/** Options of `readBoundedFile`. */
export interface ReadBoundedFileOptions {
  /** Refuse a file larger than this many bytes. */
  maxBytes: number;
  /** Error code for a too-large or unreadable file. */
  code: ErrorCode;
  /** Error code for a path that cannot be opened or is not a regular file (default: `code`). */
  pathCode?: ErrorCode;
  /** Refuse (SIPC_ERR_INSECURE_KEY_FILE) when group or others have any permission (POSIX only). */
  secret?: boolean;
}

/** Read a whole file through one descriptor, checking its mode and size before reading. */
export async function readBoundedFile(path: string, options: ReadBoundedFileOptions): Promise<Buffer> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, constants.O_RDONLY);
  } catch (err) {
    throw createError(options.pathCode ?? options.code, `Cannot open ${path}`, { cause: err });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile()) throw createError(options.pathCode ?? options.code, `${path} is not a regular file`);
    // Windows has no POSIX mode bits (its ACLs are the owner-only mechanism there), so the check
    // would refuse every file; it is skipped on win32 only.
    if (options.secret === true && process.platform !== 'win32' && (st.mode & 0o077) !== 0) {
      throw createError(
        'SIPC_ERR_INSECURE_KEY_FILE',
        `${path} is accessible by group or others (mode ${(st.mode & 0o777).toString(8)}); run chmod 600 ${path}`,
      );
    }
    if (st.size > options.maxBytes)
      throw createError(options.code, `${path} is larger than ${options.maxBytes} bytes`);
    // Read one byte more than allowed: a file that grew after fstat is caught too.
    const buf = Buffer.alloc(options.maxBytes + 1);
    let total = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buf, total, buf.byteLength - total, null);
      if (bytesRead === 0) break;
      total += bytesRead;
      if (total > options.maxBytes) {
        if (options.secret === true) sodium.sodium_memzero(buf);
        throw createError(options.code, `${path} is larger than ${options.maxBytes} bytes`);
      }
    }
    const out = Buffer.from(buf.subarray(0, total));
    if (options.secret === true) sodium.sodium_memzero(buf);
    return out;
  } finally {
    await handle.close();
  }
}

/**
 * Read a secret file (`readBoundedFile` with `secret: true`) and hand its bytes to `parse`; the
 * bytes are wiped when `parse` returns or throws, so no copy of the secret outlives the call.
 */
export async function readSecretFile<T>(
  path: string,
  options: Omit<ReadBoundedFileOptions, 'secret'>,
  parse: (bytes: Buffer) => T,
): Promise<T> {
  const raw = await readBoundedFile(path, { ...options, secret: true });
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
