/**
 * The durable saga journal: an append-only file (the format is normative, docs/resilience.md,
 * "Compensating actions (sagas)"):
 *
 *   header   the 20 ASCII bytes "SIPC-SAGA-JOURNAL 1\n" (format version 1)
 *   record   u32 big-endian length L (1 ≤ L ≤ MAX_SAGA_RECORD_BYTES)
 *            L bytes: one msgpack map (a SagaRecord, core's value codec)
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
 * held a torn tail or finished sagas, so the file holds only what is still needed. An append that
 * would grow the file past `maxBytes` compacts it first the same way.
 */
import { constants, promises as fs } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { crc32 } from 'node:zlib';
import { createError, type SecureIpcError } from '../errors.js';
import { fileProblem, writeFileAtomic } from '../keys/private-file.js';
import {
  decodeSagaRecord,
  encodeSagaRecord,
  JournalIndex,
  MAX_SAGA_RECORD_BYTES,
  type SagaJournal,
} from './saga-journal.js';

/** The file's first bytes: the format and its version. */
export const SAGA_JOURNAL_HEADER = 'SIPC-SAGA-JOURNAL 1\n';
/** Default and largest `maxBytes` of a journal file: 64 MiB. */
export const DEFAULT_SAGA_JOURNAL_MAX_BYTES = 64 * 1024 * 1024;

const HEADER = Buffer.from(SAGA_JOURNAL_HEADER, 'ascii');
/** Length prefix and CRC around each record. */
const OVERHEAD = 8;

/** Options of `fileJournal`. */
export interface FileJournalOptions {
  /**
   * Largest the file may grow, in bytes (default and maximum 64 MiB, at least 1 MiB): a larger file
   * is refused at open, and an append past it first compacts the file, then is refused with
   * SIPC_ERR_BUSY if the unfinished sagas alone fill it.
   */
  maxBytes?: number;
}

/** A journal in a file (see `fileJournal`). */
export interface FileSagaJournal extends SagaJournal {
  /** The file's path. */
  readonly path: string;
  /** Bytes of a torn last record that the open dropped (0 when the file ended cleanly). */
  readonly tornBytes: number;
  /** Rewrite the file with only the unfinished sagas' records (atomically: rename over it). */
  compact(): Promise<void>;
  /** Close the file (it may then be opened again); later appends reject with SIPC_ERR_INVALID_ARGUMENT. */
  close(): Promise<void>;
}

const NO_FOLLOW = process.platform === 'win32' ? 0 : constants.O_NOFOLLOW;

/** The journal files open in this process (resolved paths): two objects on one file would interleave. */
const openPaths = new Set<string>();

function journalError(path: string, message: string, cause?: unknown, reason?: string): SecureIpcError {
  return createError('SIPC_ERR_INVALID_ARGUMENT', `Saga journal ${path}: ${message}`, {
    cause,
    details: { path, ...(reason === undefined ? {} : { reason }) },
  });
}

/** Open (creating it 0600 if missing) and check the file, on one descriptor. */
async function openChecked(path: string): Promise<fs.FileHandle> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, constants.O_RDWR | constants.O_CREAT | NO_FOLLOW, 0o600);
  } catch (err) {
    const os = (err as NodeJS.ErrnoException).code;
    const link = os === 'ELOOP' || os === 'EMLINK';
    throw journalError(
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

async function readAll(handle: fs.FileHandle, path: string, maxBytes: number): Promise<Buffer> {
  const { size } = await handle.stat();
  if (size > maxBytes) throw journalError(path, `is larger than ${maxBytes} bytes`, undefined, 'size');
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

/** What reading a journal file found: its records (in an index) and the bytes of a torn tail. */
interface Parsed {
  readonly index: JournalIndex;
  readonly tornBytes: number;
  readonly finished: boolean;
  /** The file's size as read. */
  readonly size: number;
}

/** Parse a whole file (see the opening comment for torn versus corrupt). */
function parseJournal(bytes: Buffer, path: string): Parsed {
  const index = new JournalIndex();
  if (bytes.byteLength < HEADER.byteLength && HEADER.subarray(0, bytes.byteLength).equals(bytes))
    return { index, tornBytes: bytes.byteLength, finished: false, size: bytes.byteLength }; // header cut short
  if (!bytes.subarray(0, HEADER.byteLength).equals(HEADER))
    throw journalError(path, 'is not a saga journal (format version 1)', undefined, 'header');
  let pos = HEADER.byteLength;
  let finished = false;
  while (pos < bytes.byteLength) {
    const rest = bytes.byteLength - pos;
    const length = rest >= 4 ? bytes.readUInt32BE(pos) : 0;
    const end = pos + OVERHEAD + length;
    const torn = () => ({ index, tornBytes: rest, finished, size: bytes.byteLength });
    if (rest < 4 || (length === 0 && allZero(bytes.subarray(pos)))) return torn();
    if (length === 0 || length > MAX_SAGA_RECORD_BYTES)
      throw journalError(path, `has a record of invalid length at byte ${pos}`, undefined, 'corrupt');
    if (end > bytes.byteLength) return torn();
    const body = bytes.subarray(pos + 4, pos + 4 + length);
    const record = crc32(body) === bytes.readUInt32BE(pos + 4 + length) ? decodeSagaRecord(body) : undefined;
    if (record === undefined) {
      if (end === bytes.byteLength) return torn();
      throw journalError(path, `has a damaged record at byte ${pos}`, undefined, 'corrupt');
    }
    if (record.type === 'end') finished = true;
    index.add(record, Buffer.from(body));
    pos = end;
  }
  return { index, tornBytes: 0, finished, size: bytes.byteLength };
}

function frame(body: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(OVERHEAD + body.byteLength);
  out.writeUInt32BE(body.byteLength, 0);
  out.set(body, 4);
  out.writeUInt32BE(crc32(body), 4 + body.byteLength);
  return out;
}

async function syncDirectory(dir: string): Promise<void> {
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
 * Write `records` as a whole journal file in place of `path`: core's atomic replace (a temporary
 * file beside it, fsync, rename), then an fsync of the directory so the rename is durable too.
 */
async function rewrite(path: string, records: readonly Uint8Array[]): Promise<number> {
  const data = Buffer.concat([HEADER, ...records.map(frame)]);
  await writeFileAtomic(path, data, 0o600);
  await syncDirectory(dirname(path));
  return data.byteLength;
}

function checkMaxBytes(value: number | undefined): number {
  const max = value ?? DEFAULT_SAGA_JOURNAL_MAX_BYTES;
  if (!Number.isInteger(max) || max < 1024 * 1024 || max > DEFAULT_SAGA_JOURNAL_MAX_BYTES)
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `fileJournal: maxBytes must be an integer from 1 MiB to ${DEFAULT_SAGA_JOURNAL_MAX_BYTES} bytes`,
    );
  return max;
}

/**
 * Open the saga journal at `path`, creating it (mode 0600) if it does not exist. Rejects with
 * SIPC_ERR_INVALID_ARGUMENT for a link, a non-regular file, a file that is not a journal or is
 * damaged before its last record, or one over `maxBytes`; SIPC_ERR_INSECURE_KEY_FILE for a file
 * owned by another user or open to group or others (it holds step results: a secret file). A
 * torn last record (a crash mid-write) is dropped (`tornBytes`). One process uses a journal file
 * at a time.
 */
export async function fileJournal(path: string, options: FileJournalOptions = {}): Promise<FileSagaJournal> {
  if (typeof path !== 'string' || path.length === 0)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'fileJournal needs a file path');
  const maxBytes = checkMaxBytes(options.maxBytes);
  const resolved = resolve(path);
  if (openPaths.has(resolved))
    throw journalError(
      path,
      'is open already in this process (one journal object per file)',
      undefined,
      'open',
    );
  openPaths.add(resolved);
  let handle: fs.FileHandle | undefined;
  let parsed: Parsed;
  try {
    handle = await openChecked(path);
    parsed = parseJournal(await readAll(handle, path, maxBytes), path);
  } catch (err) {
    await handle?.close();
    openPaths.delete(resolved);
    throw err;
  }
  const { index, tornBytes } = parsed;
  let size: number;
  const reopen = async (written: number) => {
    await handle?.close();
    handle = await fs.open(path, constants.O_WRONLY | constants.O_APPEND | NO_FOLLOW);
    size = written;
  };
  try {
    await handle.close();
    handle = undefined;
    await reopen(await rewriteIfNeeded(path, parsed));
  } catch (err) {
    await handle?.close();
    openPaths.delete(resolved);
    throw journalError(path, 'cannot be rewritten', err, 'write');
  }
  let queue: Promise<unknown> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const next = queue.then(fn);
    queue = next.catch(() => {});
    return next;
  };
  // The descriptor is closed before the rename over its file (Windows refuses to replace a file
  // that is open); a rewrite that fails leaves the journal closed, as a failed append does.
  const compact = async () => {
    await handle?.close();
    handle = undefined;
    await reopen(await rewrite(path, index.encodedRecords()));
  };
  const shut = async () => {
    const h = handle;
    handle = undefined;
    openPaths.delete(resolved);
    await h?.close().catch(() => {});
  };
  return {
    path,
    tornBytes,
    append: (record) =>
      serial(async () => {
        const body = encodeSagaRecord(record);
        index.check(record);
        const stored = decodeSagaRecord(body);
        if (stored === undefined) throw journalError(path, `record (${record.type}) is malformed`);
        if (handle === undefined) throw journalError(path, 'is closed', undefined, 'closed');
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
          throw journalError(path, 'cannot be written (reopen it to go on)', err, 'write');
        }
        if (size + framed.byteLength > maxBytes)
          throw createError(
            'SIPC_ERR_BUSY',
            `Saga journal ${path} is full (${maxBytes} bytes of unfinished sagas)`,
            {
              details: { path, maxBytes },
            },
          );
        size += framed.byteLength;
        index.add(stored, body);
      }),
    unfinished: async () => index.logs(),
    compact: () =>
      serial(async () => {
        if (handle === undefined) throw journalError(path, 'is closed', undefined, 'closed');
        try {
          await compact();
        } catch (err) {
          await shut();
          throw journalError(path, 'cannot be rewritten (reopen it to go on)', err, 'write');
        }
      }),
    close: () => serial(shut),
  };
}

/** The file's size after the open: rewritten when it was new, torn or held finished sagas. */
async function rewriteIfNeeded(path: string, parsed: Parsed): Promise<number> {
  if (parsed.size >= HEADER.byteLength && parsed.tornBytes === 0 && !parsed.finished) return parsed.size;
  return rewrite(path, parsed.index.encodedRecords());
}
