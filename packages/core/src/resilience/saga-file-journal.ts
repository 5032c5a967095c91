/**
 * The durable saga journal: an append-only file (the format is normative, docs/resilience.md,
 * "Compensating actions (sagas)"):
 *
 *   header   the 20 ASCII bytes "SIPC-SAGA-JOURNAL 1\n" (format version 1)
 *   record   u32 big-endian length L (1 ≤ L ≤ MAX_SAGA_RECORD_BYTES)
 *            L bytes: one msgpack map (a SagaRecord, core's value codec)
 *            u32 big-endian CRC-32 (ISO-HDLC, zlib's) of those L bytes
 *
 * The framing, the open checks, torn tails and compaction are record-file.ts's.
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
import { createError } from '../errors.js';
import { openRecordFile, type RecordFormat, recordFileError } from './record-file.js';
import {
  decodeSagaRecord,
  encodeSagaRecord,
  JournalIndex,
  MAX_SAGA_RECORD_BYTES,
  type SagaJournal,
  type SagaRecord,
} from './saga-journal.js';

/** The file's first bytes: the format and its version. */
export const SAGA_JOURNAL_HEADER = 'SIPC-SAGA-JOURNAL 1\n';
/** Default and largest `maxBytes` of a journal file: 64 MiB. */
export const DEFAULT_SAGA_JOURNAL_MAX_BYTES = 64 * 1024 * 1024;

const FORMAT: RecordFormat<SagaRecord> = {
  header: SAGA_JOURNAL_HEADER,
  title: 'Saga journal',
  kind: 'a saga journal (format version 1)',
  live: 'unfinished sagas',
  maxRecordBytes: MAX_SAGA_RECORD_BYTES,
  decode: decodeSagaRecord,
};

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
  const index = new JournalIndex();
  // A finished saga's records are stale: the open rewrites the file without them.
  const file = await openRecordFile(path, FORMAT, maxBytes, {
    add: (record, body) => {
      index.add(record, body);
      return record.type === 'end';
    },
    live: () => index.encodedRecords(),
  });
  return {
    path,
    tornBytes: file.tornBytes,
    append: (record) => {
      let stored: SagaRecord | undefined;
      let body: Uint8Array | undefined;
      return file.append(
        () => {
          body = encodeSagaRecord(record);
          index.check(record);
          stored = decodeSagaRecord(body);
          if (stored === undefined)
            throw recordFileError(FORMAT.title, path, `record (${record.type}) is malformed`);
          return body;
        },
        () => index.add(stored as SagaRecord, body as Uint8Array),
      );
    },
    unfinished: async () => index.logs(),
    compact: () => file.compact(),
    close: () => file.close(),
  };
}
