/**
 * The encrypted durable outbox (issue 17; docs/outbox.md is the specification). One journal of
 * sealed records per directory, an index of the live entries in memory (no params: they are
 * read back when sent), an anchor outside the directory against rollback. Every write goes
 * through one serial queue:
 *
 *   add ──seal──► append ENQUEUE ──fdatasync──► index ──► resolve { id } ──► anchor (coalesced)
 *   finish(seq) ──► append DONE ──fdatasync──► index.remove ──► compact? ──► anchor
 *
 * Delivery (./delivery.ts) drives `head`, `read`, `beginSend` / `endSend` and `finish`.
 */
import { EventEmitter } from 'node:events';
import { constants, promises as nodeFs } from 'node:fs';
import { join, resolve } from 'node:path';
import { sodium } from '../crypto/sodium.js';
import { DIAGNOSTICS_VERSION, diagnostics, type OutboxMessage } from '../diagnostics/channels.js';
import { createError, isSecureIpcError, type SecureIpcError } from '../errors.js';
import { integerIn } from '../resilience/integer-option.js';
import { isLaneName, MAX_LANE_NAME_LENGTH } from '../resilience/lanes.js';
import type {
  ClientOutboxAttachment,
  EnqueuedEntry,
  EnqueueOptions,
  ReconnectingClient,
} from '../resilience/reconnect.js';
import { syncDirectory } from '../resilience/record-file.js';
import { Fifo } from '../rpc/fifo.js';
import { type OutboxAccessGuard, posixOwnerOnly } from './access.js';
import { OutboxDelivery } from './delivery.js';
import {
  checkJournalFile,
  checkOutboxDirectory,
  isAlive,
  NO_FOLLOW,
  openJournalFile,
  readLockPid,
} from './files.js';
import {
  type DoneResult,
  decodeAnchor,
  type EnqueueBody,
  encodeAnchor,
  journalHeader,
  MAX_SEQ,
  OUTBOX_ID_BYTES,
  type OutboxKeys,
  openRecord,
  RecordType,
  sealRecord,
  seqListHash,
  zeroKeys,
} from './format.js';
import { fileSource, type IndexedEntry, LiveIndex, type QuarantinedRecord, scanJournal } from './journal.js';
import { keystoreName, type OpenedKey, type OutboxKeySource, openOutboxKeys } from './key-source.js';

/** Default `maxEntries`. */
export const DEFAULT_OUTBOX_MAX_ENTRIES = 10_000;
/** Largest `maxEntries`. */
export const MAX_OUTBOX_MAX_ENTRIES = 1_000_000;
/** Default `maxBytes`. */
export const DEFAULT_OUTBOX_MAX_BYTES = 64 * 1024 * 1024;
/** Smallest `maxBytes`. */
export const MIN_OUTBOX_MAX_BYTES = 1024;
/** Largest `maxBytes`. */
export const MAX_OUTBOX_MAX_BYTES = 4 * 1024 * 1024 * 1024;
/** Dead bytes a journal may hold before it is compacted (and more than its live bytes). */
export const OUTBOX_COMPACT_SLACK_BYTES = 64 * 1024;
/** Most ms of a `ttlMs`. */
export const MAX_OUTBOX_TTL_MS = 2 ** 31 - 1;

/** The journal's file name in the outbox directory. */
export const JOURNAL_FILE = 'outbox.log';
/** The lock file's name. */
export const LOCK_FILE = 'lock';
/** The prefix of a compaction's temporary file. */
export const COMPACT_PREFIX = '.outbox.log.tmp-';

/** systemd-creds' words for what protects the queued entries. */
export type ProtectionLevel = 'secure' | 'weak' | 'insecure';
const LEVELS: readonly ProtectionLevel[] = ['insecure', 'weak', 'secure'];

/** What `outbox.protection()` reports (docs/outbox.md, "Protection per OS"). */
export interface OutboxProtection {
  /** 'secure', 'weak' or 'insecure' (the table in docs/outbox.md). */
  readonly level: ProtectionLevel;
  /** Where the master key is. */
  readonly key: 'keystore' | 'key-file';
  /** 'secret-service', 'keyutils', 'keychain', 'credential-manager' or 'encrypted-file'. */
  readonly store: string;
  /** What checks the files: the guard's name, or 'unchecked'. */
  readonly files: string;
  /** Whether other OS users are kept out. */
  readonly againstOtherUsers: boolean;
  /** Whether other processes of the same user are kept out (never, today). */
  readonly againstSameUser: boolean;
  /** What else to know, in words. */
  readonly notes: readonly string[];
}

/** Options of `openOutbox`. */
export interface OutboxOptions {
  /** The outbox directory (created 0700 if absent; its parent must exist). */
  dir: string;
  /** Where the master key is (docs/outbox.md, "Keys"). */
  key: OutboxKeySource;
  /** Most entries queued at once (default 10,000; 1 to 1,000,000). */
  maxEntries?: number;
  /** Most bytes of queued entries' records (default 64 MiB; 1 KiB to 4 GiB). */
  maxBytes?: number;
  /** Refuse to open below this protection level (default 'weak'). */
  minimumProtection?: ProtectionLevel;
  /** The access guard (default `posixOwnerOnly` on POSIX, none on Windows: pass transport-win's). */
  guard?: OutboxAccessGuard;
  /** Open a journal holding entries although its anchor is missing (a backup restored on purpose). */
  adoptUnanchored?: boolean;
  /** The file system (default node:fs promises): for fault-injection tests. */
  fs?: typeof nodeFs;
}

/** What `entries()` shows of a queued entry (never its method, params or key). */
export interface OutboxEntryInfo {
  /** The entry's id (its seq in decimal). */
  readonly id: string;
  /** Its lane (undefined: the default lane). */
  readonly lane: string | undefined;
  /** Bytes of its record on disk. */
  readonly bytes: number;
  /** When it was enqueued, ms since 1970. */
  readonly enqueuedAt: number;
  /** When it expires, ms since 1970 (undefined: never). */
  readonly expiresAt: number | undefined;
  /** A request for it is running. */
  readonly inFlight: boolean;
}

/** A quarantined record, as the `quarantined` event gives it. */
export interface QuarantineEvent extends QuarantinedRecord {
  /** The entry's id, when the record was a known entry's. */
  readonly id: string | undefined;
  /** SIPC_ERR_OUTBOX_CORRUPT with the reason. */
  readonly error: SecureIpcError;
}

/** A `delivered` event. */
export interface OutboxDelivered {
  /** The entry's id. */
  readonly id: string;
  /** The server's answer. */
  readonly value: unknown;
}

/** A `failed` event. */
export interface OutboxFailed {
  /** The entry's id. */
  readonly id: string;
  /** The answer that refused it for good. */
  readonly error: SecureIpcError;
}

/** An `expired` event. */
export interface OutboxExpired {
  /** The entry's id. */
  readonly id: string;
  /** Whether a request for it had been started (it may have run: its idempotency key guards a later one). */
  readonly sent: boolean;
}

/** Events of an outbox. */
export interface OutboxEvents {
  /** The server answered: the entry is removed. */
  delivered: [event: OutboxDelivered];
  /** Refused for good (docs/outbox.md, "Delivery"): the entry is removed. */
  failed: [event: OutboxFailed];
  /** Its TTL passed: removed. */
  expired: [event: OutboxExpired];
  /** A record failed its integrity check: never delivered. */
  quarantined: [event: QuarantineEvent];
  /** A DONE record or the anchor could not be written: the outbox closed itself. */
  error: [error: unknown];
}

const invalid = (message: string, details?: Record<string, unknown>) =>
  createError('SIPC_ERR_INVALID_ARGUMENT', message, details === undefined ? {} : { details });

const openDirs = new Set<string>();

function levelOf(
  opened: Pick<OpenedKey, 'kind' | 'store'>,
  guard: OutboxAccessGuard | undefined,
): ProtectionLevel {
  if (guard === undefined) return 'insecure';
  return opened.kind === 'keystore' && opened.store !== 'keyutils' ? 'secure' : 'weak';
}

function protectionOf(
  opened: Pick<OpenedKey, 'kind' | 'store'>,
  guard: OutboxAccessGuard | undefined,
): OutboxProtection {
  const notes: string[] = [
    'any process running as this user can read the entries (the keystore answers it once unlocked; a key file once it has the passphrase)',
  ];
  if (opened.store === 'keyutils')
    notes.push(
      'the kernel keyring does not survive a reboot: the key, and the queued entries with it, are lost',
    );
  if (opened.kind === 'key-file')
    notes.push(
      'the key is on disk, sealed by the passphrase (Argon2id): as strong as the passphrase and where it is kept',
    );
  if (guard === undefined)
    notes.push('nothing checks who can access the files (Windows without windowsOwnerOnly)');
  return Object.freeze({
    level: levelOf(opened, guard),
    key: opened.kind,
    store: opened.store,
    files: guard?.name ?? 'unchecked',
    againstOtherUsers: guard !== undefined,
    againstSameUser: false,
    notes: Object.freeze(notes),
  });
}

/** The delivery side's view of one lane's queue. */
type LaneKey = string; // '' is the default lane (a lane name has at least one character)

/** An open outbox (see the module comment); made by `openOutbox`. */
export class Outbox extends EventEmitter<OutboxEvents> {
  readonly #fs: typeof nodeFs;
  readonly #dir: string;
  readonly #path: string;
  readonly #id: Buffer;
  readonly #keys: OutboxKeys;
  readonly #key: OpenedKey;
  readonly #guard: OutboxAccessGuard | undefined;
  readonly #maxEntries: number;
  readonly #maxBytes: number;
  readonly #index: LiveIndex;
  readonly #lanes = new Map<LaneKey, Fifo<number>>();
  readonly #inFlight = new Set<number>();
  readonly #quarantined: QuarantineEvent[] = [];
  #handle: nodeFs.FileHandle | undefined;
  #size: number;
  #highest: number;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;
  #anchored: number;
  #anchoring: Promise<void> | undefined;
  #expiry: { at: number; timer: NodeJS.Timeout } | undefined;
  #failure: unknown;
  #attached = false;
  /** Called when an entry was added or a lane's head may have changed (the delivery's pump). @internal */
  onChange: (() => void) | undefined;

  /** Use `openOutbox`. */
  private constructor(init: {
    fs: typeof nodeFs;
    dir: string;
    id: Buffer;
    keys: OutboxKeys;
    key: OpenedKey;
    guard: OutboxAccessGuard | undefined;
    maxEntries: number;
    maxBytes: number;
    index: LiveIndex;
    handle: nodeFs.FileHandle;
    size: number;
    highest: number;
    anchored: number;
  }) {
    super();
    this.#fs = init.fs;
    this.#dir = init.dir;
    this.#path = join(init.dir, JOURNAL_FILE);
    this.#id = init.id;
    this.#keys = init.keys;
    this.#key = init.key;
    this.#guard = init.guard;
    this.#maxEntries = init.maxEntries;
    this.#maxBytes = init.maxBytes;
    this.#index = init.index;
    this.#handle = init.handle;
    this.#size = init.size;
    this.#highest = init.highest;
    this.#anchored = init.anchored;
    for (const e of init.index.entries.values()) this.#laneOf(e.lane).push(e.seq);
  }

  /** The outbox id (32 hex digits), as the journal header holds it. */
  get id(): string {
    return this.#id.toString('hex');
  }

  /**
   * Every event but `error` is also published on `secure-ipc:outbox` (docs/observability.md),
   * with the outbox's depth after it: one place for every path that ends an entry.
   */
  override emit<K extends keyof OutboxEvents>(event: K, ...args: OutboxEvents[K]): boolean {
    if (event !== 'error' && diagnostics.outbox.hasSubscribers) {
      const e = args[0] as { id?: string; error?: { code?: string; remoteCode?: string } };
      const code = e.error === undefined ? undefined : (e.error.remoteCode ?? e.error.code);
      this.#diagnose(event as OutboxMessage['event'], e.id, undefined, code);
    }
    return super.emit(event, ...(args as never));
  }

  #diagnose(
    event: OutboxMessage['event'],
    id: string | undefined,
    method: string | undefined,
    code: string | undefined,
  ): void {
    const message: OutboxMessage = {
      v: DIAGNOSTICS_VERSION,
      dir: this.#dir,
      event,
      id: event === 'quarantined' ? undefined : id,
      method,
      code,
      depth: this.size,
      at: Date.now(),
    };
    diagnostics.outbox.publish(message);
  }

  /** The directory. */
  get dir(): string {
    return this.#dir;
  }

  /** Entries queued. */
  get size(): number {
    return this.#index.entries.size;
  }

  /** Bytes of the queued entries' records. */
  get bytes(): number {
    return this.#index.liveBytes;
  }

  /** The records quarantined since the open (the open's first). */
  get quarantined(): readonly QuarantineEvent[] {
    return this.#quarantined;
  }

  /** What protects the queued entries here (docs/outbox.md, "Protection per OS"). */
  protection(): OutboxProtection {
    return protectionOf(this.#key, this.#guard);
  }

  /** The queued entries in order (metadata only). */
  entries(): OutboxEntryInfo[] {
    return [...this.#index.entries.values()].map((e) => ({
      id: String(e.seq),
      lane: e.lane,
      bytes: e.length,
      enqueuedAt: e.enqueuedAt,
      expiresAt: e.expiresAt,
      inFlight: this.#inFlight.has(e.seq),
    }));
  }

  /**
   * Make an entry durable: resolves once its ENQUEUE record is on disk (before any network I/O).
   * SIPC_ERR_OUTBOX_FULL beyond maxEntries / maxBytes; SIPC_ERR_INVALID_ARGUMENT for a bad
   * option, a stream, a closed outbox; SIPC_ERR_MESSAGE_TOO_LARGE over 1 MiB.
   */
  async add(method: string, params: unknown, options: EnqueueOptions = {}): Promise<EnqueuedEntry> {
    if (this.#failure !== undefined) throw this.#failure;
    if (this.#closed) throw invalid(`The outbox ${this.#dir} is closed`, { reason: 'closed' });
    if (typeof method !== 'string' || method.length === 0 || method.length > 65_535)
      throw invalid('An outbox entry needs a method name (1 to 65,535 characters)');
    if (typeof options !== 'object' || options === null) throw invalid('enqueue options must be an object');
    const { lane, ttlMs, idempotencyKey } = options;
    if (lane !== undefined && !isLaneName(lane))
      throw invalid(`lane must be 1 to ${MAX_LANE_NAME_LENGTH} characters`);
    const ttl = ttlMs === undefined ? 0 : integerIn('ttlMs', ttlMs, 1, MAX_OUTBOX_TTL_MS);
    if (
      idempotencyKey !== undefined &&
      (typeof idempotencyKey !== 'string' ||
        idempotencyKey.length === 0 ||
        Buffer.byteLength(idempotencyKey, 'utf8') > 128)
    )
      throw invalid('idempotencyKey must be 1 to 128 UTF-8 bytes');
    if (typeof params === 'object' && params !== null && Symbol.asyncIterator in params)
      throw invalid('An outbox entry cannot have a streamed input (it is stored and may be sent twice)');
    const now = Date.now();
    return this.#serial(async () => {
      if (this.#closed) throw invalid(`The outbox ${this.#dir} is closed`, { reason: 'closed' });
      const seq = this.#highest + 1;
      if (seq > MAX_SEQ) throw invalid('The outbox has used every sequence number');
      const key = idempotencyKey ?? `obx-${this.id}-${seq}`;
      const body: EnqueueBody = {
        type: RecordType.ENQUEUE,
        method,
        params,
        idempotencyKey: key,
        lane,
        enqueuedAt: now,
        expiresAt: ttl === 0 ? undefined : now + ttl,
      };
      const framed = sealRecord(this.#keys, this.#id, seq, body);
      const entries = this.#index.entries.size;
      if (entries + 1 > this.#maxEntries || this.#index.liveBytes + framed.byteLength > this.#maxBytes)
        throw createError(
          'SIPC_ERR_OUTBOX_FULL',
          `The outbox ${this.#dir} is full (${entries} of ${this.#maxEntries} entries, ${this.#index.liveBytes} of ${this.#maxBytes} bytes; this entry is ${framed.byteLength} bytes)`,
          {
            details: {
              entries,
              maxEntries: this.#maxEntries,
              bytes: this.#index.liveBytes,
              maxBytes: this.#maxBytes,
              entryBytes: framed.byteLength,
            },
          },
        );
      const offset = await this.#append(framed);
      this.#highest = seq;
      this.#index.add({ offset, length: framed.byteLength, seq, body });
      this.#laneOf(lane).push(seq);
      this.#anchor();
      if (body.expiresAt !== undefined) this.#scheduleExpiry(body.expiresAt);
      queueMicrotask(() => this.onChange?.());
      if (diagnostics.outbox.hasSubscribers) this.#diagnose('enqueued', String(seq), method, undefined);
      return { id: String(seq), idempotencyKey: key };
    });
  }

  /** Lanes with entries (the default lane is ''). @internal */
  lanes(): IterableIterator<LaneKey> {
    return this.#lanes.keys();
  }

  /** A lane's first live entry (undefined for an empty lane). @internal */
  head(lane: LaneKey): IndexedEntry | undefined {
    const q = this.#lanes.get(lane);
    if (q === undefined) return undefined;
    for (;;) {
      const seq = q.peek();
      if (seq === undefined) {
        this.#lanes.delete(lane);
        return undefined;
      }
      const e = this.#index.entries.get(seq);
      if (e !== undefined) return e;
      q.shift();
    }
  }

  /** Mark an entry as sent (its TTL then ends with the request, not by the sweep). @internal */
  beginSend(seq: number): void {
    this.#inFlight.add(seq);
  }

  /** The entry's request ended (answered, failed or to be sent again). @internal */
  endSend(seq: number): void {
    this.#inFlight.delete(seq);
    const e = this.#index.entries.get(seq);
    if (e?.expiresAt !== undefined) this.#scheduleExpiry(e.expiresAt);
  }

  /**
   * Read an entry back from disk, checked again; undefined (and a `quarantined` event) when its
   * record no longer opens or is not the entry it was.
   * @internal
   */
  read(entry: IndexedEntry): Promise<EnqueueBody | undefined> {
    // In turn with the appends and a compaction (which moves records and swaps the descriptor),
    // and by seq: the entry's offset is the one the index holds now.
    return this.#serial(async () => {
      const e = this.#index.entries.get(entry.seq);
      const handle = this.#handle;
      if (e === undefined || handle === undefined) return undefined;
      const framed = await fileSource(handle, this.#size).read(e.offset, e.length);
      const opened = framed.byteLength === e.length ? openRecord(this.#keys, this.#id, framed) : undefined;
      if (opened?.ok === true && opened.seq === e.seq && opened.body.type === RecordType.ENQUEUE)
        return opened.body;
      const reason = opened === undefined ? 'framing' : opened.ok ? 'order' : opened.reason;
      this.#index.remove(e.seq);
      this.#report({ offset: e.offset, length: e.length, seq: e.seq, reason });
      return undefined;
    });
  }

  /** Remove an entry with a DONE record (answered, refused for good or expired). @internal */
  finish(seq: number, result: DoneResult): Promise<boolean> {
    return this.#serial(async () => {
      if (!this.#index.entries.has(seq) || this.#closed) return false;
      const framed = sealRecord(this.#keys, this.#id, this.#highest + 1, {
        type: RecordType.DONE,
        seq,
        result,
      });
      const offset = await this.#append(framed);
      this.#highest++;
      this.#index.add({
        offset,
        length: framed.byteLength,
        seq: this.#highest,
        body: { type: RecordType.DONE, seq, result },
      });
      this.#anchor();
      if (this.#index.deadBytes > Math.max(OUTBOX_COMPACT_SLACK_BYTES, this.#index.liveBytes))
        await this.#compact();
      return true;
    });
  }

  /** Rewrite the journal with only the live entries (docs/outbox.md, "Compaction"). */
  compact(): Promise<void> {
    return this.#serial(() => this.#compact());
  }

  /** Write what is pending (the anchor), close the journal, release the lock, wipe the keys. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.#serial(async () => {});
    this.#closed = true;
    if (this.#expiry !== undefined) clearTimeout(this.#expiry.timer);
    this.#expiry = undefined;
    await this.#anchoring?.catch(() => {});
    if (this.#anchored < this.#highest) await this.#writeAnchor().catch((err) => this.fail(err));
    await this.#handle?.close().catch(() => {});
    this.#handle = undefined;
    await this.#fs.rm(join(this.#dir, LOCK_FILE), { force: true }).catch(() => {});
    openDirs.delete(resolve(this.#dir));
    zeroKeys(this.#keys);
  }

  /** Whether the outbox is closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** The write failure that closed the outbox, if one did. */
  get failure(): unknown {
    return this.#failure;
  }

  /**
   * A write the outbox depends on failed (a DONE record, a compaction, the anchor): keep the
   * first failure (a later `enqueue` rejects with it), report it on `error` if anyone listens
   * (an `error` event without a listener would throw), and close.
   * @internal
   */
  fail(err: unknown): void {
    if (this.#failure === undefined) this.#failure = err;
    if (this.listenerCount('error') > 0) this.emit('error', err);
    if (!this.#closed) void this.close();
  }

  /** Deliver through a reconnecting client (its `outbox` option calls this; one client at a time). */
  attach(client: ReconnectingClient<any, any>): ClientOutboxAttachment {
    if (this.#attached) throw invalid(`The outbox ${this.#dir} is attached to a client already`);
    this.#attached = true;
    const delivery = new OutboxDelivery(this, client);
    return {
      enqueue: (method, params, options) => this.add(method, params, options),
      detach: () => {
        delivery.stop();
        this.#attached = false;
      },
    };
  }

  #laneOf(lane: string | undefined): Fifo<number> {
    const k = lane ?? '';
    let q = this.#lanes.get(k);
    if (q === undefined) {
      q = new Fifo<number>();
      this.#lanes.set(k, q);
    }
    return q;
  }

  #serial<R>(fn: () => Promise<R>): Promise<R> {
    const next = this.#queue.then(fn);
    this.#queue = next.catch(() => {});
    return next;
  }

  /** Append one framed record and fdatasync it; on failure the outbox closes (unknown disk state). */
  async #append(framed: Buffer): Promise<number> {
    const handle = this.#handle;
    if (handle === undefined) throw invalid(`The outbox ${this.#dir} is closed`, { reason: 'closed' });
    const offset = this.#size;
    try {
      let written = 0;
      while (written < framed.byteLength) {
        const { bytesWritten } = await handle.write(framed, written, framed.byteLength - written);
        written += bytesWritten;
      }
      await handle.datasync();
    } catch (err) {
      this.#closed = true;
      await handle.close().catch(() => {});
      this.#handle = undefined;
      openDirs.delete(resolve(this.#dir));
      throw invalid(`The outbox journal ${this.#path} cannot be written (open the outbox again to go on)`, {
        reason: 'write',
        cause: (err as Error).message,
      });
    }
    this.#size += framed.byteLength;
    return offset;
  }

  #report(q: QuarantinedRecord): void {
    const id = q.seq !== undefined && q.reason !== 'missing' ? String(q.seq) : undefined;
    const event: QuarantineEvent = {
      ...q,
      id,
      error: createError(
        'SIPC_ERR_OUTBOX_CORRUPT',
        `A record of the outbox journal ${this.#path} at byte ${q.offset} failed its check (${q.reason}): quarantined, never delivered`,
        {
          details: {
            path: this.#path,
            offset: q.offset,
            reason: q.reason,
            ...(id === undefined ? {} : { id }),
          },
        },
      ),
    };
    this.#quarantined.push(event);
    this.emit('quarantined', event);
  }

  /** Bring the anchor up to the highest seq on disk: one write at a time, coalesced. */
  #anchor(): void {
    if (this.#anchoring !== undefined) return;
    this.#anchoring = (async () => {
      try {
        while (this.#anchored < this.#highest && !this.#closed) await this.#writeAnchor();
      } catch (err) {
        this.fail(err);
      } finally {
        this.#anchoring = undefined;
      }
    })();
  }

  async #writeAnchor(): Promise<void> {
    const seq = this.#highest;
    await this.#key.anchor.write(encodeAnchor(this.#keys, this.#id, seq));
    if (seq > this.#anchored) this.#anchored = seq;
  }

  #scheduleExpiry(at: number): void {
    if (this.#closed || (this.#expiry !== undefined && this.#expiry.at <= at)) return;
    if (this.#expiry !== undefined) clearTimeout(this.#expiry.timer);
    const timer = setTimeout(() => this.#sweep(), Math.min(Math.max(0, at - Date.now()), MAX_OUTBOX_TTL_MS));
    timer.unref();
    this.#expiry = { at, timer };
  }

  /** Remove the entries whose TTL passed (not those in flight: their request ends them). */
  #sweep(): void {
    this.#expiry = undefined;
    const now = Date.now();
    let next: number | undefined;
    for (const e of this.#index.entries.values()) {
      if (e.expiresAt === undefined || this.#inFlight.has(e.seq)) continue;
      if (e.expiresAt <= now)
        this.finish(e.seq, 'expired').then(
          (removed) => {
            if (removed) this.emit('expired', { id: String(e.seq), sent: false });
          },
          (err) => this.fail(err),
        );
      else if (next === undefined || e.expiresAt < next) next = e.expiresAt;
    }
    if (next !== undefined) this.#scheduleExpiry(next);
    queueMicrotask(() => this.onChange?.());
  }

  async #compact(): Promise<void> {
    const fs = this.#fs;
    const old = this.#handle;
    if (old === undefined) return;
    const tmp = join(this.#dir, `${COMPACT_PREFIX}${Buffer.from(sodium_random(8)).toString('hex')}`);
    const live = [...this.#index.entries.values()];
    const seq = this.#highest + 1;
    const checkpoint = sealRecord(this.#keys, this.#id, seq, {
      type: RecordType.CHECKPOINT,
      n: live.length,
      h: seqListHash(live.map((e) => e.seq)),
    });
    const source = fileSource(old, this.#size);
    const moved: IndexedEntry[] = [];
    const out = await createOwnerOnly(fs, tmp, this.#guard);
    try {
      let pos = 0;
      const put = async (bytes: Uint8Array) => {
        let w = 0;
        while (w < bytes.byteLength)
          w += (await out.write(bytes, w, bytes.byteLength - w, pos + w)).bytesWritten;
        pos += bytes.byteLength;
      };
      await put(journalHeader(this.#id));
      await put(checkpoint);
      for (const e of live) {
        moved.push({ ...e, offset: pos });
        await put(await source.read(e.offset, e.length));
      }
      await out.sync();
      await out.close();
      this.#handle = undefined;
      await old.close();
      await fs.rename(tmp, this.#path);
      await syncDirectory(this.#dir);
      this.#size = pos;
    } catch (err) {
      await out.close().catch(() => {});
      await fs.rm(tmp, { force: true }).catch(() => {});
      if (this.#handle === undefined) {
        this.#closed = true;
        openDirs.delete(resolve(this.#dir));
      }
      throw invalid(`The outbox journal ${this.#path} cannot be compacted`, {
        reason: 'write',
        cause: (err as Error).message,
      });
    }
    this.#handle = await fs.open(this.#path, constants.O_RDWR | constants.O_APPEND | NO_FOLLOW);
    this.#highest = seq;
    this.#index.entries.clear();
    this.#index.liveBytes = 0;
    for (const e of moved) {
      this.#index.entries.set(e.seq, e);
      this.#index.liveBytes += e.length;
    }
    this.#index.deadBytes = checkpoint.byteLength;
    this.#anchor();
  }

  /** See `openOutbox`. */
  static async open(options: OutboxOptions): Promise<Outbox> {
    if (typeof options !== 'object' || options === null) throw invalid('openOutbox needs an options object');
    const { dir, key, minimumProtection = 'weak', adoptUnanchored = false } = options;
    if (typeof dir !== 'string' || dir.length === 0) throw invalid('outbox dir must be a path');
    // undefined takes the default; anything else (null included) must be in range.
    const maxEntries =
      options.maxEntries === undefined
        ? DEFAULT_OUTBOX_MAX_ENTRIES
        : integerIn('maxEntries', options.maxEntries, 1, MAX_OUTBOX_MAX_ENTRIES);
    const maxBytes =
      options.maxBytes === undefined
        ? DEFAULT_OUTBOX_MAX_BYTES
        : integerIn('maxBytes', options.maxBytes, MIN_OUTBOX_MAX_BYTES, MAX_OUTBOX_MAX_BYTES);
    if (!LEVELS.includes(minimumProtection))
      throw invalid("minimumProtection must be 'secure', 'weak' or 'insecure'");
    const guard =
      'guard' in options ? options.guard : process.platform === 'win32' ? undefined : posixOwnerOnly;
    if (guard !== undefined && (typeof guard?.secure !== 'function' || typeof guard.name !== 'string'))
      throw invalid('guard must be an OutboxAccessGuard');
    const fs = options.fs ?? nodeFs;
    // The level is known from the key's kind and the guard: refuse before creating anything.
    const keystore = typeof key === 'object' && key !== null && 'keystore' in key;
    const level = levelOf(
      keystore
        ? { kind: 'keystore', store: keystoreName((key as { linuxStore?: string }).linuxStore) }
        : { kind: 'key-file', store: 'encrypted-file' },
      guard,
    );
    if (LEVELS.indexOf(level) < LEVELS.indexOf(minimumProtection))
      throw createError(
        'SIPC_ERR_INSUFFICIENT_PROTECTION',
        `The outbox ${dir} would be protected at level '${level}', below minimumProtection '${minimumProtection}'` +
          (guard === undefined
            ? ' (no access guard: on Windows pass windowsOwnerOnly from @secure-ipc/transport-win)'
            : ''),
        { details: { level, minimumProtection } },
      );
    const resolved = resolve(dir);
    if (openDirs.has(resolved))
      throw invalid(`The outbox ${dir} is open already in this process`, { reason: 'locked' });
    let created = false;
    try {
      await fs.mkdir(dir, { mode: 0o700 });
      created = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
        throw invalid(`Cannot create the outbox directory ${dir}`, {
          reason: 'mkdir',
          cause: (err as Error).message,
        });
    }
    checkOutboxDirectory(dir, await fs.lstat(dir));
    await guard?.secure(dir, 'directory', created);
    const { key: opened, keys } = await openOutboxKeys(key, dir);
    openDirs.add(resolved);
    try {
      await takeLock(fs, dir, guard);
      try {
        return await Outbox.#load({
          fs,
          dir,
          keys,
          key: opened,
          guard,
          maxEntries,
          maxBytes,
          adoptUnanchored,
        });
      } catch (err) {
        await fs.rm(join(dir, LOCK_FILE), { force: true }).catch(() => {});
        throw err;
      }
    } catch (err) {
      openDirs.delete(resolved);
      zeroKeys(keys);
      throw err;
    }
  }

  static async #load(o: {
    fs: typeof nodeFs;
    dir: string;
    keys: OutboxKeys;
    key: OpenedKey;
    guard: OutboxAccessGuard | undefined;
    maxEntries: number;
    maxBytes: number;
    adoptUnanchored: boolean;
  }): Promise<Outbox> {
    const { fs, dir, keys, key, guard } = o;
    const path = join(dir, JOURNAL_FILE);
    for (const name of await fs.readdir(dir))
      if (name.startsWith(COMPACT_PREFIX)) await fs.rm(join(dir, name), { force: true });
    const rawAnchor = await key.anchor.read();
    const anchor = rawAnchor === undefined ? undefined : decodeAnchor(keys, rawAnchor);
    const rollback = (reason: string, message: string, details: Record<string, unknown> = {}) =>
      createError('SIPC_ERR_OUTBOX_ROLLBACK', `The outbox ${dir}: ${message}`, {
        details: { path, reason, anchor: key.anchor.where, ...details },
      });
    if (rawAnchor !== undefined && anchor === undefined)
      throw rollback('anchor', `its anchor (${key.anchor.where}) does not verify under this key`);
    let handle = await openJournalFile(fs, path, constants.O_RDWR | constants.O_APPEND);
    if (handle === undefined) {
      if (anchor !== undefined)
        throw rollback('rollback', `its journal is missing but the anchor is at seq ${anchor.seq}`, {
          journalSeq: 0,
          anchorSeq: anchor.seq,
        });
      handle = await createJournal(fs, dir, keys, guard);
    }
    try {
      const st = await checkJournalFile(handle, path, guard);
      const index = new LiveIndex();
      const scan = await scanJournal(fileSource(handle, st.size), keys, path, index.add);
      if (anchor !== undefined && !anchor.id.equals(scan.id))
        throw rollback('anchor', `its anchor (${key.anchor.where}) belongs to another outbox`);
      if (anchor === undefined && scan.records + scan.quarantined.length > 1 && !o.adoptUnanchored)
        throw rollback(
          'no-anchor',
          `its journal holds records but its anchor (${key.anchor.where}) is missing (adoptUnanchored opens it)`,
        );
      if (anchor !== undefined && scan.highestSeq < anchor.seq)
        throw rollback(
          'rollback',
          `its journal ends at seq ${scan.highestSeq} but the anchor is at seq ${anchor.seq}: an older copy was restored, or records were cut`,
          {
            journalSeq: scan.highestSeq,
            anchorSeq: anchor.seq,
          },
        );
      if (scan.tornBytes > 0) {
        await handle.truncate(scan.end);
        await handle.datasync();
      }
      const outbox = new Outbox({
        fs,
        dir,
        id: scan.id,
        keys,
        key,
        guard,
        maxEntries: o.maxEntries,
        maxBytes: o.maxBytes,
        index,
        handle,
        size: scan.end,
        highest: scan.highestSeq,
        anchored: anchor?.seq ?? 0,
      });
      for (const q of scan.quarantined) outbox.#report(q);
      if (
        scan.quarantined.length > 0 ||
        index.deadBytes > Math.max(OUTBOX_COMPACT_SLACK_BYTES, index.liveBytes)
      )
        await outbox.compact();
      else if (outbox.#anchored < outbox.#highest) await outbox.#writeAnchor();
      for (const e of index.entries.values())
        if (e.expiresAt !== undefined) outbox.#scheduleExpiry(e.expiresAt);
      await outbox.#anchoring;
      return outbox;
    } catch (err) {
      await handle.close().catch(() => {});
      throw err;
    }
  }
}

function sodium_random(n: number): Buffer {
  const b = Buffer.alloc(n);
  sodium.randombytes_buf(b);
  return b;
}

/**
 * Create a file of the outbox directory: O_EXCL (never an existing file), no link followed, 0600,
 * then the guard; the descriptor is closed again when the guard refuses.
 */
async function createOwnerOnly(
  fs: typeof nodeFs,
  path: string,
  guard: OutboxAccessGuard | undefined,
): Promise<nodeFs.FileHandle> {
  const handle = await fs.open(
    path,
    constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | NO_FOLLOW,
    0o600,
  );
  try {
    await guard?.secure(path, 'file', true);
  } catch (err) {
    await handle.close().catch(() => {});
    throw err;
  }
  return handle;
}

/** Create a new journal (header and its first CHECKPOINT) atomically: temporary file, fsync, rename. */
async function createJournal(
  fs: typeof nodeFs,
  dir: string,
  keys: OutboxKeys,
  guard: OutboxAccessGuard | undefined,
): Promise<nodeFs.FileHandle> {
  const id = sodium_random(OUTBOX_ID_BYTES);
  const data = Buffer.concat([
    journalHeader(id),
    sealRecord(keys, id, 1, { type: RecordType.CHECKPOINT, n: 0, h: seqListHash([]) }),
  ]);
  const tmp = join(dir, `${COMPACT_PREFIX}${sodium_random(8).toString('hex')}`);
  const out = await createOwnerOnly(fs, tmp, guard);
  try {
    await out.writeFile(data);
    await out.sync();
  } finally {
    await out.close();
  }
  await fs.rename(tmp, join(dir, JOURNAL_FILE));
  await syncDirectory(dir);
  return fs.open(join(dir, JOURNAL_FILE), constants.O_RDWR | constants.O_APPEND | NO_FOLLOW);
}

/** Take the directory's lock file (pid inside); a lock of a dead process is taken over. */
async function takeLock(fs: typeof nodeFs, dir: string, guard: OutboxAccessGuard | undefined): Promise<void> {
  const path = join(dir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const h = await createOwnerOnly(fs, path, guard);
      try {
        await h.writeFile(`${process.pid}\n`);
      } finally {
        await h.close();
      }
      return;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
        if (isSecureIpcError(err)) throw err;
        throw invalid(`Cannot create the outbox lock ${path}`, {
          reason: 'lock',
          cause: (err as Error).message,
        });
      }
    }
    // A lock that cannot be read is someone's: refused (fail closed). One that names no pid (a
    // crash between its creation and its write) or is a link is taken over, the link unfollowed.
    let pid: number | undefined;
    try {
      pid = await readLockPid(fs, path);
    } catch (err) {
      throw invalid(`The outbox ${dir} lock ${path} cannot be read`, {
        reason: 'locked',
        cause: (err as Error).message,
      });
    }
    if (pid !== undefined && pid !== process.pid && isAlive(pid))
      throw invalid(`The outbox ${dir} is in use by process ${pid}`, { reason: 'locked', pid });
    await fs.rm(path, { force: true });
  }
  throw invalid(`The outbox ${dir} lock could not be taken`, { reason: 'locked' });
}

/**
 * Open (creating it on first use) the encrypted outbox in `options.dir` (docs/outbox.md). Rejects
 * with SIPC_ERR_INSUFFICIENT_PROTECTION below `minimumProtection`, SIPC_ERR_INSECURE_DIRECTORY /
 * SIPC_ERR_INSECURE_FILE when others can access it, SIPC_ERR_OUTBOX_ROLLBACK for an older copy
 * or a missing anchor, SIPC_ERR_OUTBOX_CORRUPT for a journal that is not one,
 * SIPC_ERR_INVALID_ARGUMENT for bad options or an outbox another live process holds.
 */
export function openOutbox(options: OutboxOptions): Promise<Outbox> {
  return Outbox.open(options);
}
