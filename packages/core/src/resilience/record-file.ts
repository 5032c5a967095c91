/**
 * An append-only file of checksummed records, shared by the durable saga journal and the durable
 * idempotency store (each names its own header and record shape; the framing is the same):
 *
 *   header   a fixed ASCII line naming the format and its version
 *   record   u32 big-endian length L (1 ≤ L ≤ the format's largest record)
 *            L bytes: one msgpack value (core's value codec)
 *            u32 big-endian CRC-32 (ISO-HDLC, zlib's) of those L bytes
 *
 * Each record is one write() on a descriptor opened O_APPEND, then fdatasync: `append` resolves
 * only once the record is on disk. Opening reads the whole file through one descriptor (never
 * following a link; owner and mode checked as for a secret file, created 0600):
 *
 *   records until the end ──► a bad record that reaches the end of the file (cut short, a CRC
 *                             mismatch in the last record, zeros) is a torn write: dropped
 *                         └─► a bad record followed by more bytes is corruption: refused
 *
 * then rewrites the file (temporary file 0600, fsync, rename, fsync of the directory) when it
 * held a torn tail or stale records, so the file holds only what is still needed. An append that
 * would grow the file past `maxBytes` compacts it first the same way.
 */
import { constants, promises as fs } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import { createError, type SecureIpcError } from '../errors.js';
import { fileProblem, writeFileAtomic } from '../keys/private-file.js';

/** One record format: its header line, its largest record and how a record body decodes. */
export interface RecordFormat<T> {
  /** The file's first bytes, e.g. "SIPC-SAGA-JOURNAL 1\n". */
  readonly header: string;
  /** What errors call the file, e.g. "Saga journal". */
  readonly title: string;
  /** What a file of another format is not, e.g. "a saga journal (format version 1)". */
  readonly kind: string;
  /** What fills a full file, e.g. "unfinished sagas". */
  readonly live: string;
  /** Largest record body, in bytes. */
  readonly maxRecordBytes: number;
  /** The record a body holds, or undefined for a malformed one. */
  decode(body: Uint8Array): T | undefined;
}

/** What the owner of a record file keeps of it: it sees every record read and names the live ones. */
export interface RecordSink<T> {
  /** A record read at open or appended; true when it makes the file stale (worth a rewrite). */
  add(record: T, body: Uint8Array): boolean;
  /** The bodies still needed, in order: what a rewrite keeps. */
  live(): readonly Uint8Array[];
}

/** An open record file (see `openRecordFile`). */
export interface RecordFile {
  /** The file's path. */
  readonly path: string;
  /** Bytes of a torn last record that the open dropped (0 when the file ended cleanly). */
  readonly tornBytes: number;
  /**
   * Append one record: `make` (run in turn with other appends) returns the body or throws to
   * refuse it; `done` runs once it is on disk. Rejects with SIPC_ERR_BUSY when the live records
   * alone fill the file, SIPC_ERR_INVALID_ARGUMENT when the file is closed or cannot be written.
   */
  append(make: () => Uint8Array, done: () => void): Promise<void>;
  /** Rewrite the file with only the live records (atomically: rename over it). */
  compact(): Promise<void>;
  /** Close the file (it may then be opened again). */
  close(): Promise<void>;
}

/** Length prefix and CRC around each record. */
const OVERHEAD = 8;

const NO_FOLLOW = process.platform === 'win32' ? 0 : constants.O_NOFOLLOW;

/** The record files open in this process (resolved paths): two objects on one file would interleave. */
const openPaths = new Set<string>();

/** The typed error of a record file: SIPC_ERR_INVALID_ARGUMENT with the path and a reason. */
export function recordFileError(
  title: string,
  path: string,
  message: string,
  cause?: unknown,
  reason?: string,
): SecureIpcError {
  return createError('SIPC_ERR_INVALID_ARGUMENT', `${title} ${path}: ${message}`, {
    cause,
    details: { path, ...(reason === undefined ? {} : { reason }) },
  });
}

/** Open (creating it 0600 if missing) and check the file, on one descriptor. */
async function openChecked(title: string, path: string): Promise<fs.FileHandle> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, constants.O_RDWR | constants.O_CREAT | NO_FOLLOW, 0o600);
  } catch (err) {
    const os = (err as NodeJS.ErrnoException).code;
    const link = os === 'ELOOP' || os === 'EMLINK';
    throw recordFileError(
      title,
      path,
      link ? 'is a symbolic link' : 'cannot be opened',
      err,
      link ? 'symlink' : 'open',
    );
  }
  try {
    const problem = fileProblem(path, await handle.stat(), {
      code: 'SIPC_ERR_INVALID_ARGUMENT',
      kind: 'secret',
    });
    if (problem !== undefined) throw problem;
  } catch (err) {
    await handle.close();
    throw err;
  }
  return handle;
}

async function readAll(
  title: string,
  handle: fs.FileHandle,
  path: string,
  maxBytes: number,
): Promise<Buffer> {
  const { size } = await handle.stat();
  if (size > maxBytes)
    throw recordFileError(title, path, `is larger than ${maxBytes} bytes`, undefined, 'size');
  const buf = Buffer.alloc(size);
  let total = 0;
  while (total < size) {
    const { bytesRead } = await handle.read(buf, total, size - total, total);
    if (bytesRead === 0) break;
    total += bytesRead;
  }
  return buf.subarray(0, total);
}

const allZero = (bytes: Uint8Array): boolean => bytes.every((b) => b === 0);

/** What reading a file found besides its records. */
interface Parsed {
  readonly tornBytes: number;
  readonly stale: boolean;
  /** The file's size as read. */
  readonly size: number;
}

/** Parse a whole file into `sink` (see the opening comment for torn versus corrupt). */
function parse<T>(bytes: Buffer, path: string, format: RecordFormat<T>, sink: RecordSink<T>): Parsed {
  const header = Buffer.from(format.header, 'ascii');
  const fail = (message: string, reason: string) =>
    recordFileError(format.title, path, message, undefined, reason);
  if (bytes.byteLength < header.byteLength && header.subarray(0, bytes.byteLength).equals(bytes))
    return { tornBytes: bytes.byteLength, stale: false, size: bytes.byteLength }; // header cut short
  if (!bytes.subarray(0, header.byteLength).equals(header)) throw fail(`is not ${format.kind}`, 'header');
  let pos = header.byteLength;
  let stale = false;
  while (pos < bytes.byteLength) {
    const rest = bytes.byteLength - pos;
    const length = rest >= 4 ? bytes.readUInt32BE(pos) : 0;
    const end = pos + OVERHEAD + length;
    const torn = () => ({ tornBytes: rest, stale, size: bytes.byteLength });
    if (rest < 4 || (length === 0 && allZero(bytes.subarray(pos)))) return torn();
    if (length === 0 || length > format.maxRecordBytes)
      throw fail(`has a record of invalid length at byte ${pos}`, 'corrupt');
    if (end > bytes.byteLength) return torn();
    const body = bytes.subarray(pos + 4, pos + 4 + length);
    const record = crc32(body) === bytes.readUInt32BE(pos + 4 + length) ? format.decode(body) : undefined;
    if (record === undefined) {
      if (end === bytes.byteLength) return torn();
      throw fail(`has a damaged record at byte ${pos}`, 'corrupt');
    }
    if (sink.add(record, Buffer.from(body))) stale = true;
    pos = end;
  }
  return { tornBytes: 0, stale, size: bytes.byteLength };
}

function frame(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(OVERHEAD + body.byteLength);
  out.writeUInt32BE(body.byteLength, 0);
  out.set(body, 4);
  out.writeUInt32BE(crc32(body), 4 + body.byteLength);
  return out;
}

/** fsync a directory, so a rename in it is durable (a no-op on Windows, where NTFS journals it). */
export async function syncDirectory(dir: string): Promise<void> {
  // Windows cannot open a directory to fsync it; NTFS journals the rename itself.
  if (process.platform === 'win32') return;
  const handle = await fs.open(dir, constants.O_RDONLY);
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/**
 * Write `records` as a whole file in place of `path`: core's atomic replace (a temporary file
 * beside it, fsync, rename), then an fsync of the directory so the rename is durable too.
 */
async function rewrite(path: string, header: string, records: readonly Uint8Array[]): Promise<number> {
  const data = Buffer.concat([Buffer.from(header, 'ascii'), ...records.map(frame)]);
  await writeFileAtomic(path, data, 0o600);
  await syncDirectory(dirname(path));
  return data.byteLength;
}

/** Open and read the file, or release its path and rethrow. */
async function load<T>(
  path: string,
  format: RecordFormat<T>,
  maxBytes: number,
  sink: RecordSink<T>,
): Promise<{ handle: fs.FileHandle; parsed: Parsed }> {
  let handle: fs.FileHandle | undefined;
  try {
    handle = await openChecked(format.title, path);
    return { handle, parsed: parse(await readAll(format.title, handle, path, maxBytes), path, format, sink) };
  } catch (err) {
    await handle?.close();
    throw err;
  }
}

/**
 * Open the record file at `path` in `format`, creating it (mode 0600) if it does not exist, and
 * read its records into `sink`. Rejects with SIPC_ERR_INVALID_ARGUMENT for a link, a non-regular
 * file, a file of another format or damaged before its last record, one over `maxBytes` or open
 * already in this process; SIPC_ERR_INSECURE_KEY_FILE for a file owned by another user or open to
 * group or others. A torn last record (a crash mid-write) is dropped (`tornBytes`).
 */
export async function openRecordFile<T>(
  path: string,
  format: RecordFormat<T>,
  maxBytes: number,
  sink: RecordSink<T>,
): Promise<RecordFile> {
  const { title } = format;
  const resolved = resolve(path);
  if (openPaths.has(resolved))
    throw recordFileError(
      title,
      path,
      `is open already in this process (one object per file)`,
      undefined,
      'open',
    );
  openPaths.add(resolved);
  let opened: { handle: fs.FileHandle; parsed: Parsed };
  try {
    opened = await load(path, format, maxBytes, sink);
  } catch (err) {
    openPaths.delete(resolved);
    throw err;
  }
  const { parsed } = opened;
  let handle: fs.FileHandle | undefined = opened.handle;
  let size = 0;
  const reopen = async (written: number) => {
    await handle?.close();
    handle = await fs.open(path, constants.O_WRONLY | constants.O_APPEND | NO_FOLLOW);
    size = written;
  };
  try {
    await handle.close();
    handle = undefined;
    const keep = parsed.size >= format.header.length && parsed.tornBytes === 0 && !parsed.stale;
    await reopen(keep ? parsed.size : await rewrite(path, format.header, sink.live()));
  } catch (err) {
    await handle?.close();
    openPaths.delete(resolved);
    throw recordFileError(title, path, 'cannot be rewritten', err, 'write');
  }
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <R>(fn: () => Promise<R>): Promise<R> => {
    const next = queue.then(fn);
    queue = next.catch(() => {});
    return next;
  };
  // The descriptor is closed before the rename over its file (Windows refuses to replace a file
  // that is open); a rewrite that fails leaves the file closed, as a failed append does.
  const compact = async () => {
    await handle?.close();
    handle = undefined;
    await reopen(await rewrite(path, format.header, sink.live()));
  };
  const shut = async () => {
    const h = handle;
    handle = undefined;
    openPaths.delete(resolved);
    await h?.close().catch(() => {});
  };
  const closed = () => recordFileError(title, path, 'is closed', undefined, 'closed');
  return {
    path,
    tornBytes: parsed.tornBytes,
    append: (make, done) =>
      serial(async () => {
        const body = make();
        if (handle === undefined) throw closed();
        const framed = frame(body);
        try {
          if (size + framed.byteLength > maxBytes) await compact();
          if (size + framed.byteLength <= maxBytes) {
            await handle.write(framed);
            await handle.datasync();
          }
        } catch (err) {
          // What reached the disk is unknown (a partial record, an fsync that failed): stop
          // appending; opening the file again drops a torn tail.
          await shut();
          throw recordFileError(title, path, 'cannot be written (reopen it to go on)', err, 'write');
        }
        if (size + framed.byteLength > maxBytes)
          throw createError(
            'SIPC_ERR_BUSY',
            `${title} ${path} is full (${maxBytes} bytes of ${format.live})`,
            {
              details: { path, maxBytes },
            },
          );
        size += framed.byteLength;
        done();
      }),
    compact: () =>
      serial(async () => {
        if (handle === undefined) throw closed();
        try {
          await compact();
        } catch (err) {
          await shut();
          throw recordFileError(title, path, 'cannot be rewritten (reopen it to go on)', err, 'write');
        }
      }),
    close: () => serial(shut),
  };
}
