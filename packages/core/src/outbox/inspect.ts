/**
 * Inspecting an outbox without opening it (docs/outbox.md, "The CLI"): what `secure-ipc outbox
 * inspect` and `verify` read. Strictly read-only, unlike `openOutbox`: no lock is taken, no key
 * or anchor is created or updated, the journal is opened O_RDONLY (never through a link) and is
 * neither cut at a torn tail nor compacted, and compaction's leftover temporary files stay.
 *
 *   access guard (dir) ──► key (must exist) ──► journal O_RDONLY ──► guard (file)
 *     ──► scanJournal + LiveIndex ──► anchor read + decodeAnchor ──► report (metadata only)
 *
 * The report holds counts, sizes, times and lane names, never a method, params or idempotency key.
 */
import { constants, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { sodium } from '../crypto/sodium.js';
import { createError } from '../errors.js';
import { loadSecretKey } from '../keys/keystore.js';
import { type OutboxAccessGuard, posixOwnerOnly } from './access.js';
import { checkJournalFile, checkOutboxDirectory, isAlive, openJournalFile, readLockPid } from './files.js';
import { type DoneResult, decodeAnchor, type OutboxKeys, RecordType, zeroKeys } from './format.js';
import { fileSource, LiveIndex, type QuarantinedRecord, scanJournal } from './journal.js';
import { type OpenedKey, type OutboxKeySource, openOutboxKeys } from './key-source.js';
import { JOURNAL_FILE, LOCK_FILE } from './outbox.js';

/** Options of `inspectOutbox`. */
export interface InspectOutboxOptions {
  /** The outbox directory (it must exist: nothing is created). */
  dir: string;
  /** Where the master key is, as for `openOutbox` (the key must exist: none is created). */
  key: OutboxKeySource;
  /** The access guard (default `posixOwnerOnly` on POSIX, none on Windows), asked only to check. */
  guard?: OutboxAccessGuard;
}

/**
 * The journal compared with its anchor: `ok` (equal), `ahead` (the journal has records the anchor
 * does not cover yet: normal after a crash), `behind` (the anchor is past the journal: an older
 * copy was restored, or records were cut), `missing` (no anchor), `invalid` (its tag does not
 * verify under this key), `other-outbox` (it verifies but names another outbox id).
 */
export type AnchorStatus = 'ok' | 'ahead' | 'behind' | 'missing' | 'invalid' | 'other-outbox';

/** One lane's queued entries. */
export interface OutboxLaneReport {
  /** The lane's name (undefined: the default lane). */
  readonly lane: string | undefined;
  /** Entries queued in it. */
  readonly count: number;
  /** Bytes of their records. */
  readonly bytes: number;
}

/** What `inspectOutbox` found (metadata only: never a method, params or idempotency key). */
export interface OutboxReport {
  /** The outbox id (32 hex digits) of the journal header. */
  readonly id: string;
  /** The journal's size in bytes. */
  readonly journalBytes: number;
  /** Records accepted. */
  readonly records: number;
  /** Highest seq of an accepted or quarantined whole record. */
  readonly highestSeq: number;
  /** The queued (live) entries. */
  readonly entries: {
    /** How many. */
    readonly count: number;
    /** Bytes of their records. */
    readonly bytes: number;
    /** The oldest entry's enqueue time, ms since 1970 (undefined: no entry). */
    readonly oldestEnqueuedAt: number | undefined;
    /** The newest entry's enqueue time, ms since 1970 (undefined: no entry). */
    readonly newestEnqueuedAt: number | undefined;
    /** The first deadline of an entry, ms since 1970 (undefined: none expires). */
    readonly earliestExpiresAt: number | undefined;
  };
  /** Queued entries per lane, in the order of each lane's first entry. */
  readonly lanes: readonly OutboxLaneReport[];
  /** DONE records in the journal by result (since its last compaction, which drops them). */
  readonly done: Readonly<Record<DoneResult, number>>;
  /** Bytes of a torn tail (a write cut by a crash; the next open cuts it). */
  readonly tornBytes: number;
  /** Records that failed their check (never delivered). */
  readonly quarantined: readonly QuarantinedRecord[];
  /** The anchor. */
  readonly anchor: {
    /** Where it is kept (the keystore account or the file path). */
    readonly where: string;
    /** Its seq, when it verifies. */
    readonly seq: number | undefined;
    /** The journal compared with it (see AnchorStatus). */
    readonly status: AnchorStatus;
  };
  /** The pid in the lock file when that process is alive (undefined: nobody holds the outbox). */
  readonly lockedBy: number | undefined;
  /**
   * No record quarantined, and the anchor `ok`, `ahead`, or `missing` on a journal that holds
   * only its first CHECKPOINT (a new outbox); `openOutbox` would open it without refusing. A torn
   * tail leaves it true.
   */
  readonly ok: boolean;
}

const invalid = (message: string, details: Record<string, unknown>) =>
  createError('SIPC_ERR_INVALID_ARGUMENT', message, { details });

/** Fail unless the key exists: openKeySource would create a missing one, and inspecting writes nothing. */
async function requireExistingKey(key: OutboxKeySource): Promise<void> {
  if (typeof key !== 'object' || key === null) return; // openKeySource says what is wrong
  if ('file' in key && typeof key.file === 'string' && key.file.length > 0) {
    try {
      await fs.lstat(key.file);
    } catch (err) {
      throw invalid(`The outbox key file ${key.file} cannot be read`, {
        path: key.file,
        reason: 'key',
        cause: (err as Error).message,
      });
    }
    return;
  }
  if ('keystore' in key && typeof key.keystore === 'string') {
    const options = {
      ...(key.service === undefined ? {} : { service: key.service }),
      ...(key.linuxStore === undefined ? {} : { linuxStore: key.linuxStore }),
    };
    const master = await loadSecretKey(key.keystore, options);
    if (master === undefined)
      throw createError(
        'SIPC_ERR_KEYSTORE',
        `The keystore holds no outbox key under account ${key.keystore} (inspecting creates none)`,
        { details: { account: key.keystore, reason: 'missing' } },
      );
    sodium.sodium_memzero(master);
  }
}

/** The journal opened read-only, never through a link, checked like the outbox checks it. */
async function openJournal(
  path: string,
  guard: OutboxAccessGuard | undefined,
): Promise<{ handle: fs.FileHandle; size: number }> {
  const handle = await openJournalFile(fs, path, constants.O_RDONLY);
  if (handle === undefined)
    throw invalid(`Cannot open the outbox journal ${path}`, { path, reason: 'missing' });
  try {
    return { handle, size: (await checkJournalFile(handle, path, guard)).size };
  } catch (err) {
    await handle.close().catch(() => {});
    throw err;
  }
}

/** The live pid in the lock file, if any (read without following a link; never removed). */
async function lockHolder(dir: string): Promise<number | undefined> {
  const pid = await readLockPid(fs, join(dir, LOCK_FILE)).catch(() => undefined);
  return pid !== undefined && isAlive(pid) ? pid : undefined;
}

/** Scan the journal into the report's entry, lane and DONE counts. */
async function scan(handle: fs.FileHandle, size: number, keys: OutboxKeys, path: string) {
  const index = new LiveIndex();
  const done: Record<DoneResult, number> = { ok: 0, failed: 0, expired: 0 };
  const result = await scanJournal(fileSource(handle, size), keys, path, (r) => {
    if (r.body.type === RecordType.DONE) done[r.body.result]++;
    index.add(r);
  });
  return { size, index, done, result };
}

function entriesOf(index: LiveIndex): { entries: OutboxReport['entries']; lanes: OutboxLaneReport[] } {
  const lanes = new Map<string | undefined, { count: number; bytes: number }>();
  let oldest: number | undefined;
  let newest: number | undefined;
  let expires: number | undefined;
  for (const e of index.entries.values()) {
    const lane = lanes.get(e.lane) ?? { count: 0, bytes: 0 };
    lane.count++;
    lane.bytes += e.length;
    lanes.set(e.lane, lane);
    if (oldest === undefined || e.enqueuedAt < oldest) oldest = e.enqueuedAt;
    if (newest === undefined || e.enqueuedAt > newest) newest = e.enqueuedAt;
    if (e.expiresAt !== undefined && (expires === undefined || e.expiresAt < expires)) expires = e.expiresAt;
  }
  return {
    entries: {
      count: index.entries.size,
      bytes: index.liveBytes,
      oldestEnqueuedAt: oldest,
      newestEnqueuedAt: newest,
      earliestExpiresAt: expires,
    },
    lanes: [...lanes].map(([lane, l]) => ({ lane, count: l.count, bytes: l.bytes })),
  };
}

async function anchorOf(
  key: OpenedKey,
  keys: OutboxKeys,
  id: Buffer,
  highestSeq: number,
): Promise<OutboxReport['anchor']> {
  const raw = await key.anchor.read();
  const where = key.anchor.where;
  if (raw === undefined) return { where, seq: undefined, status: 'missing' };
  const anchor = decodeAnchor(keys, raw);
  if (anchor === undefined) return { where, seq: undefined, status: 'invalid' };
  if (!anchor.id.equals(id)) return { where, seq: anchor.seq, status: 'other-outbox' };
  const status = highestSeq < anchor.seq ? 'behind' : highestSeq > anchor.seq ? 'ahead' : 'ok';
  return { where, seq: anchor.seq, status };
}

/**
 * Read an outbox without opening it (see the module comment). Rejects with the errors of
 * `openOutbox` for what it checks: SIPC_ERR_INSECURE_DIRECTORY / SIPC_ERR_INSECURE_FILE when
 * others can access it or a path is a link, SIPC_ERR_OUTBOX_CORRUPT for a journal that is not
 * one, the key's errors (SIPC_ERR_BAD_KEY for a wrong passphrase), and SIPC_ERR_INVALID_ARGUMENT
 * for bad options, a missing key file or journal (`details.path`). A rollback or a quarantined
 * record is not an error here: the report says so (`anchor.status`, `quarantined`, `ok`).
 */
export async function inspectOutbox(options: InspectOutboxOptions): Promise<OutboxReport> {
  if (typeof options !== 'object' || options === null)
    throw invalid('inspectOutbox needs an options object', {});
  const { dir, key } = options;
  if (typeof dir !== 'string' || dir.length === 0) throw invalid('outbox dir must be a path', {});
  const guard =
    'guard' in options ? options.guard : process.platform === 'win32' ? undefined : posixOwnerOnly;
  let st: Awaited<ReturnType<typeof fs.lstat>>;
  try {
    st = await fs.lstat(dir);
  } catch (err) {
    throw invalid(`There is no outbox directory ${dir}`, {
      path: dir,
      reason: 'missing',
      cause: (err as Error).message,
    });
  }
  checkOutboxDirectory(dir, st);
  await guard?.secure(dir, 'directory', false);
  await requireExistingKey(key);
  const { key: opened, keys } = await openOutboxKeys(key, dir);
  try {
    const path = join(dir, JOURNAL_FILE);
    const { handle, size: journalSize } = await openJournal(path, guard);
    let scanned: Awaited<ReturnType<typeof scan>>;
    try {
      scanned = await scan(handle, journalSize, keys, path);
    } finally {
      await handle.close().catch(() => {});
    }
    const { size, index, done, result } = scanned;
    const anchor = await anchorOf(opened, keys, result.id, result.highestSeq);
    const onlyFirstCheckpoint = result.records + result.quarantined.length <= 1;
    const anchorOk =
      anchor.status === 'ok' ||
      anchor.status === 'ahead' ||
      (anchor.status === 'missing' && onlyFirstCheckpoint);
    return {
      id: result.id.toString('hex'),
      journalBytes: size,
      records: result.records,
      highestSeq: result.highestSeq,
      ...entriesOf(index),
      done,
      tornBytes: result.tornBytes,
      quarantined: result.quarantined,
      anchor,
      lockedBy: await lockHolder(dir),
      ok: result.quarantined.length === 0 && anchorOk,
    };
  } finally {
    zeroKeys(keys);
  }
}
