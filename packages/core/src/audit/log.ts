/**
 * `openAuditLog`: the writer of docs/audit.md. One operation at a time (a promise chain):
 *
 *   open     directory 0700 → read + verify what is there (readAuditLog / verifyAuditState, against
 *            the log's own genesis key) → the current epoch's key file → torn tail cut → append
 *            handles; a new directory gets epoch 0's key and the genesis record
 *   append   joins the open batch: the appends of one event-loop turn, and those made while the
 *            write before them is in flight, are one operation (group commit) →
 *   batch    (rotate first if `epochPeriodMs` passed) each record {n, p, t, at, f} → its frame →
 *            the frames concatenated into one write (split only at a new segment, past
 *            maxSegmentBytes, or every MAX_BATCH_WRITE_BYTES) → leaf hashes into the tree
 *            (O(1) amortized) → a checkpoint when `checkpointEvery` records or
 *            `checkpointIntervalMs` passed → every append of the batch resolves (or, on a failed
 *            write, every one rejects with the log's SIPC_ERR_AUDIT_CORRUPT)
 *   rotate   new key file → checkpoint (old key) → epoch record signed by the old key over the
 *            handover text → fsync → old secret zeroed, its file overwritten and removed →
 *            checkpoint (new key)
 *   close    checkpoint (if records were added) → handles closed → secret zeroed
 *
 * A write that fails closes the log (later calls throw): the caller's operation must fail with it
 * (Vault's rule: what cannot be audited does not happen). Any other operation enqueued seals the
 * open batch, so an append made before `checkpoint()` or `close()` is in it.
 */
import type { promises as fs } from 'node:fs';
import { join } from 'node:path';
import { sodium } from '../crypto/sodium.js';
import { type AuditAppendMessage, DIAGNOSTICS_VERSION, diagnostics } from '../diagnostics/channels.js';
import { createError, type SecureIpcError } from '../errors.js';
import { type AccessGuard, posixOwnerOnly } from '../keys/access-guard.js';
import {
  appendAll,
  CHECKPOINTS_FILE,
  createEpochKey,
  type EpochKey,
  epochKeyName,
  eraseEpochKey,
  frame,
  MAX_FRAME_BYTES,
  openAppendFile,
  openAuditDirectory,
  readEpochKey,
  segmentName,
} from './files.js';
import { hashLeaf, MerkleTree } from './merkle.js';
import { signCheckpoint, verifierKey } from './note.js';
import {
  type AuditEntry,
  type AuditRecord,
  EPOCH_TYPE,
  encodeAuditRecord,
  epochRecordFields,
  handoverText,
  parseEpochRecord,
} from './record.js';
import { readAuditLog, verifyAuditState } from './verify.js';
import {
  type AcceptedCosignature,
  type AuditWitnessRequest,
  type AuditWitnessUpdate,
  checkCosignature,
  type EpochRecordRef,
  witnessUpdate,
} from './witness.js';

/** Options of `openAuditLog`. */
export interface AuditLogOptions {
  /** The log's directory (created 0700 if missing; must be private). */
  readonly dir: string;
  /** The log's origin, e.g. `example.com/app/audit` (no spaces or +); must match an existing log's. */
  readonly origin: string;
  /** Write a checkpoint after this many records (default 256). */
  readonly checkpointEvery?: number;
  /** Write a checkpoint when this many ms passed since the last one and records were added (default 60,000). */
  readonly checkpointIntervalMs?: number;
  /** Rotate the epoch key when the epoch is this many ms old (checked at each append; default: never). */
  readonly epochPeriodMs?: number;
  /** Start a new segment when one would grow past this many bytes (default 16 MiB). */
  readonly maxSegmentBytes?: number;
  /** Largest encoded record (default 65,536; at most 1,048,576). */
  readonly maxRecordBytes?: number;
  /** The clock of `at` and of the intervals (default `Date.now`). */
  readonly now?: () => number;
  /** The directory's and files' access guard (default POSIX owner-only). */
  readonly guard?: AccessGuard;
}

/**
 * Bytes of one write of a batch at most (a batch of big records is several writes): bounds the
 * buffer a batch concatenates into.
 */
const MAX_BATCH_WRITE_BYTES = 4 * 1024 * 1024;

/** One append waiting in a batch. */
interface PendingAppend {
  readonly entry: AuditEntry;
  readonly resolve: (r: AuditAppendResult) => void;
  readonly reject: (err: unknown) => void;
}

/** What `append` returns. */
export interface AuditAppendResult {
  /** The record's index. */
  readonly index: number;
  /** Its RFC 9162 leaf hash. */
  readonly leafHash: Uint8Array;
}

/** An open audit log (docs/audit.md). */
export interface AuditLog {
  /** The log's origin. */
  readonly origin: string;
  /** Records in the log. */
  readonly size: number;
  /** The RFC 9162 root of all records. */
  readonly root: Uint8Array;
  /** The current epoch. */
  readonly epoch: number;
  /** Epoch 0's Ed25519 public key: the trust anchor verifiers need, given out of band. */
  readonly anchorKey: Uint8Array;
  /** Epoch 0's key as C2SP verifier key text (`origin+keyid+base64`). */
  readonly anchorVerifierKey: string;
  /** The current epoch's Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** The last checkpoint written (a signed note), if any. */
  readonly lastCheckpoint: string | undefined;
  /**
   * Append one record. The appends of one event-loop turn (and those made while the previous
   * write is in flight) are written together in one write, in call order; each resolves once its
   * batch is written (not necessarily fsynced: `checkpoint()` does), and all of them reject when
   * that write fails.
   */
  append(entry: AuditEntry): Promise<AuditAppendResult>;
  /** Write (and fsync) a checkpoint of the current tree now; its signed note. */
  checkpoint(): Promise<string>;
  /** Start a new epoch: record its key, signed by the current one, then erase the current secret. */
  rotateEpoch(): Promise<number>;
  /** The leaf hash of record `index`. */
  leafHash(index: number): Uint8Array;
  /** The inclusion proof of record `index` in the tree of `size` records (default all). */
  inclusionProof(index: number, size?: number): Uint8Array[];
  /** The consistency proof from the tree of `size1` records to that of `size2` (default all). */
  consistencyProof(size1: number, size2?: number): Uint8Array[];
  /**
   * The update a witness holding `from` needs (docs/audit.md, "Witnesses"): the last checkpoint,
   * the consistency proof to it, the epoch records it lacks with their proofs.
   */
  witnessUpdate(from: AuditWitnessRequest): AuditWitnessUpdate;
  /**
   * Check a checkpoint of this log cosigned by the witness key `key`; its size, root and the
   * cosignature (SIPC_ERR_INVALID_ARGUMENT when it is not one). Records nothing.
   */
  checkCosignature(note: string, key: Uint8Array): AcceptedCosignature;
  /** Write a final checkpoint, close the files and zero the secret key. */
  close(): Promise<void>;
}

function positive(
  value: number | undefined,
  fallback: number,
  name: string,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1 || value > max)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `${name} must be an integer from 1 to ${max}`);
  return value;
}

/** Open (or create) an audit log. */
export async function openAuditLog(options: AuditLogOptions): Promise<AuditLog> {
  const log = new FileAuditLog(options);
  await log.open();
  return log;
}

class FileAuditLog implements AuditLog {
  readonly origin: string;
  readonly #dir: string;
  readonly #every: number;
  readonly #intervalMs: number;
  readonly #epochPeriodMs: number | undefined;
  readonly #maxSegment: number;
  readonly #maxRecord: number;
  readonly #now: () => number;
  readonly #guard: AccessGuard;
  readonly #tree = new MerkleTree();
  readonly #epochRecords: EpochRecordRef[] = [];
  #key: EpochKey | undefined;
  #anchor: Uint8Array | undefined;
  #epochStartedAt = 0;
  #segment: fs.FileHandle | undefined;
  #segmentBytes = 0;
  #checkpoints: fs.FileHandle | undefined;
  #lastCheckpoint: string | undefined;
  #lastCheckpointSize = -1;
  #lastCheckpointAt = 0;
  #queue: Promise<unknown> = Promise.resolve();
  /** The batch new appends join, until it starts writing or another operation is enqueued. */
  #batch: PendingAppend[] | undefined;
  #failed: SecureIpcError | undefined;
  #closed = false;
  #timer: NodeJS.Timeout | undefined;

  constructor(o: AuditLogOptions) {
    if (typeof o.dir !== 'string' || o.dir.length === 0)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'openAuditLog needs a dir');
    if (typeof o.origin !== 'string' || o.origin.length === 0 || /[\s+]/u.test(o.origin))
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'An audit log origin is non-empty, without spaces or +');
    this.origin = o.origin;
    this.#dir = o.dir;
    this.#every = positive(o.checkpointEvery, 256, 'checkpointEvery');
    this.#intervalMs = positive(o.checkpointIntervalMs, 60_000, 'checkpointIntervalMs', 2 ** 31 - 1);
    this.#epochPeriodMs =
      o.epochPeriodMs === undefined ? undefined : positive(o.epochPeriodMs, 0, 'epochPeriodMs');
    this.#maxSegment = positive(o.maxSegmentBytes, 16 * 1024 * 1024, 'maxSegmentBytes', 2 ** 31 - 1);
    this.#maxRecord = positive(o.maxRecordBytes, 65_536, 'maxRecordBytes', MAX_FRAME_BYTES);
    this.#now = o.now ?? Date.now;
    this.#guard = o.guard ?? posixOwnerOnly;
  }

  get size(): number {
    return this.#tree.size;
  }
  get root(): Uint8Array {
    return this.#tree.root();
  }
  get epoch(): number {
    return this.#key!.epoch;
  }
  get anchorKey(): Uint8Array {
    return new Uint8Array(this.#anchor!);
  }
  get anchorVerifierKey(): string {
    return verifierKey(this.origin, this.#anchor!);
  }
  get publicKey(): Uint8Array {
    return new Uint8Array(this.#key!.publicKey);
  }
  get lastCheckpoint(): string | undefined {
    return this.#lastCheckpoint;
  }

  #live(): EpochKey {
    if (this.#failed !== undefined) throw this.#failed;
    if (this.#closed || this.#key === undefined)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'The audit log is closed');
    return this.#key;
  }

  /**
   * Run `op` after every earlier operation (sealing the open batch: later appends go after it); a
   * failure of a write closes the log and `op` rejects with the log's SIPC_ERR_AUDIT_CORRUPT.
   */
  #run<T>(op: () => Promise<T>): Promise<T> {
    this.#batch = undefined;
    const next = this.#queue.then(async () => {
      this.#live();
      try {
        return await op();
      } catch (err) {
        if ((err as SecureIpcError).code === 'SIPC_ERR_INVALID_ARGUMENT') throw err;
        throw await this.#fail(err);
      }
    });
    this.#queue = next.catch(() => {});
    return next;
  }

  async #fail(err: unknown): Promise<SecureIpcError> {
    this.#failed ??= createError('SIPC_ERR_AUDIT_CORRUPT', 'The audit log failed to write and is closed', {
      cause: err,
      details: { reason: 'write' },
    });
    await this.#release();
    return this.#failed;
  }

  async open(): Promise<void> {
    const listing = await openAuditDirectory(this.#dir, true, this.#guard);
    if (listing.segments.length === 0) {
      // New log (or one that crashed before its genesis record): epoch 0's key, then record 0.
      const key = listing.epochKeys.includes(0)
        ? await readEpochKey(this.#dir, 0)
        : await createEpochKey(this.#dir, 0);
      this.#key = key;
      this.#anchor = new Uint8Array(key.publicKey);
      await this.#openSegment(0, undefined);
      await this.#openCheckpoints();
      this.#epochStartedAt = this.#now();
      await this.#writeOwn({
        type: EPOCH_TYPE,
        fields: epochRecordFields({ epoch: 0, publicKey: key.publicKey, origin: this.origin }),
      });
      await this.#checkpoint();
    } else {
      await this.#resume();
    }
    this.#timer = setInterval(() => {
      if (this.#closed || this.#failed !== undefined) return;
      if (this.size > this.#lastCheckpointSize && this.#now() - this.#lastCheckpointAt >= this.#intervalMs)
        this.#run(() => this.#checkpoint()).catch(() => {});
    }, this.#intervalMs);
    this.#timer.unref();
  }

  async #resume(): Promise<void> {
    const state = await readAuditLog(this.#dir, this.#guard);
    const genesis = state.records[0];
    const g =
      genesis === undefined
        ? undefined
        : (() => {
            try {
              return parseEpochRecord(genesis);
            } catch {
              return undefined;
            }
          })();
    if (g === undefined || g.epoch !== 0)
      throw createError('SIPC_ERR_AUDIT_CORRUPT', `${this.#dir}: record 0 is not the genesis epoch record`, {
        details: { reason: 'epoch' },
      });
    if (g.origin !== this.origin)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', `${this.#dir} is the audit log of another origin`);
    const report = verifyAuditState(state, g.publicKey, []);
    const serious = report.problems.filter(
      (p) => p.kind !== 'unsigned' && !(p.kind === 'torn' && p.index === state.frames.length),
    );
    if (serious.length > 0)
      throw createError(
        'SIPC_ERR_AUDIT_CORRUPT',
        `${this.#dir}: ${serious[0]!.message} (run verifyAuditLog for the report)`,
        {
          details: { reason: 'verify', problems: serious.map((p) => ({ kind: p.kind, index: p.index })) },
        },
      );
    this.#anchor = g.publicKey;
    for (const h of state.leafHashes) this.#tree.push(h);
    for (const e of report.epochs)
      this.#epochRecords.push({
        epoch: e.epoch,
        index: e.startIndex,
        bytes: state.frames[e.startIndex]!,
        fields: parseEpochRecord(state.records[e.startIndex]!),
      });
    const current = report.epochs[report.epochs.length - 1]!;
    const key = await readEpochKey(this.#dir, current.epoch);
    if (!sodium.sodium_memcmp(key.publicKey, current.publicKey)) {
      sodium.sodium_memzero(key.secretKey);
      throw createError(
        'SIPC_ERR_BAD_KEY',
        `${epochKeyName(current.epoch)} is not the key epoch ${current.epoch} announced`,
      );
    }
    this.#key = key;
    this.#epochStartedAt = state.records[current.startIndex]!.at;
    // A crash mid-rotation leaves the old key (announced successor) or an unannounced new one.
    for (const e of state.epochKeys) if (e !== current.epoch) await eraseEpochKey(this.#dir, e);
    const last = state.lastSegment!;
    await this.#openSegment(Number(last.name.slice(6, 26)), last.tornAt);
    await this.#openCheckpoints();
    this.#lastCheckpointSize = report.signedSize;
    this.#lastCheckpointAt = this.#now();
    this.#lastCheckpoint = state.checkpointNotes[state.checkpointNotes.length - 1];
    if (report.signedSize < this.size) await this.#checkpoint();
  }

  async #openSegment(first: number, truncateTo: number | undefined): Promise<void> {
    const { handle, bytes } = await openAppendFile(
      join(this.#dir, segmentName(first)),
      this.#guard,
      truncateTo,
    );
    this.#segment = handle;
    this.#segmentBytes = bytes;
  }

  async #openCheckpoints(): Promise<void> {
    this.#checkpoints = (await openAppendFile(join(this.#dir, CHECKPOINTS_FILE), this.#guard)).handle;
  }

  append(entry: AuditEntry): Promise<AuditAppendResult> {
    if (entry?.type === EPOCH_TYPE)
      return Promise.reject(
        createError('SIPC_ERR_INVALID_ARGUMENT', 'The record type epoch is the log’s own'),
      );
    return new Promise((resolve, reject) => {
      if (this.#batch === undefined) {
        const batch: PendingAppend[] = [];
        // Enqueued now, so it keeps its place before any later checkpoint(), rotation or close.
        this.#run(() => this.#appendBatch(batch)).catch((err: unknown) => {
          for (const p of batch) p.reject(err);
        });
        this.#batch = batch;
      }
      this.#batch.push({ entry, resolve, reject });
    });
  }

  /** Write one batch of appends (the file comment's "batch"); its appends resolve or reject here. */
  async #appendBatch(batch: PendingAppend[]): Promise<void> {
    // The rest of this turn's appends (and, under load, the ones made while the previous batch
    // was written) join first: one write carries them all.
    await new Promise<void>((r) => setImmediate(r));
    if (this.#batch === batch) this.#batch = undefined;
    if (this.#epochPeriodMs !== undefined && this.#now() - this.#epochStartedAt >= this.#epochPeriodMs)
      await this.#rotate();
    const results = await this.#write(batch.map((p) => p.entry));
    if (
      this.size - this.#lastCheckpointSize >= this.#every ||
      this.#now() - this.#lastCheckpointAt >= this.#intervalMs
    )
      await this.#checkpoint();
    for (const [i, p] of batch.entries()) {
      const r = results[i]!;
      if ('index' in r) p.resolve(r);
      else p.reject(r);
    }
  }

  /**
   * Encode and write records in order (no checkpoint): as one write unless a new segment starts
   * or MAX_BATCH_WRITE_BYTES is reached. Per entry its result, or its own SIPC_ERR_INVALID_ARGUMENT
   * (a bad or oversized record, which gets no index); a failed write throws.
   */
  async #write(entries: readonly AuditEntry[]): Promise<(AuditAppendResult | SecureIpcError)[]> {
    const results: (AuditAppendResult | SecureIpcError)[] = [];
    const written: { record: AuditRecord; bytes: Uint8Array; leafHash: Uint8Array }[] = [];
    let frames: Uint8Array[] = [];
    let pendingBytes = 0;
    const flush = async () => {
      if (frames.length === 0) return;
      await appendAll(this.#segment!, frames.length === 1 ? frames[0]! : Buffer.concat(frames, pendingBytes));
      this.#segmentBytes += pendingBytes;
      frames = [];
      pendingBytes = 0;
    };
    for (const entry of entries) {
      const index = this.size + written.length;
      const record: AuditRecord = {
        index,
        prev:
          index === 0 ? undefined : (written[written.length - 1]?.leafHash ?? this.#tree.leafHash(index - 1)),
        type: entry.type,
        at: this.#now(),
        fields: entry.fields ?? {},
      };
      let bytes: Uint8Array;
      try {
        bytes = encodeAuditRecord(record);
      } catch (err) {
        if ((err as SecureIpcError).code !== 'SIPC_ERR_INVALID_ARGUMENT') throw err;
        results.push(err as SecureIpcError);
        continue;
      }
      if (bytes.byteLength > this.#maxRecord) {
        results.push(
          createError(
            'SIPC_ERR_INVALID_ARGUMENT',
            `The audit record is ${bytes.byteLength} bytes, over ${this.#maxRecord}`,
          ),
        );
        continue;
      }
      const framed = frame(bytes);
      const segmentBytes = this.#segmentBytes + pendingBytes;
      if (segmentBytes > 0 && segmentBytes + framed.byteLength > this.#maxSegment) {
        await flush();
        await this.#segment!.sync();
        await this.#segment!.close();
        this.#segment = undefined;
        await this.#openSegment(index, undefined);
      } else if (pendingBytes + framed.byteLength > MAX_BATCH_WRITE_BYTES) await flush();
      frames.push(framed);
      pendingBytes += framed.byteLength;
      const leafHash = hashLeaf(bytes);
      written.push({ record, bytes, leafHash });
      results.push({ index, leafHash: new Uint8Array(leafHash) });
    }
    await flush();
    // In the tree (and announced) only once in the segment.
    for (const { record, bytes, leafHash } of written) {
      this.#tree.push(leafHash);
      if (record.type === EPOCH_TYPE) {
        const fields = parseEpochRecord(record);
        this.#epochRecords.push({ epoch: fields.epoch, index: record.index, bytes, fields });
      }
      if (diagnostics.auditAppend.hasSubscribers) {
        const message: AuditAppendMessage = {
          v: DIAGNOSTICS_VERSION,
          origin: this.origin,
          index: record.index,
          type: record.type,
          at: record.at,
          fields: record.fields,
          leafHash: new Uint8Array(leafHash),
        };
        diagnostics.auditAppend.publish(message);
      }
    }
    return results;
  }

  /** Write one record of the log's own (genesis, epoch): it cannot be refused. */
  async #writeOwn(entry: AuditEntry): Promise<void> {
    const [r] = await this.#write([entry]);
    if (r instanceof Error) throw r;
  }

  checkpoint(): Promise<string> {
    return this.#run(() => this.#checkpoint());
  }

  async #checkpoint(): Promise<string> {
    const key = this.#live();
    await this.#segment!.sync();
    const note = signCheckpoint({ origin: this.origin, size: this.size, root: this.root }, key.secretKey);
    await appendAll(this.#checkpoints!, frame(Buffer.from(note, 'utf8')));
    await this.#checkpoints!.sync();
    this.#lastCheckpoint = note;
    this.#lastCheckpointSize = this.size;
    this.#lastCheckpointAt = this.#now();
    return note;
  }

  rotateEpoch(): Promise<number> {
    return this.#run(() => this.#rotate());
  }

  async #rotate(): Promise<number> {
    const old = this.#live();
    const next = await createEpochKey(this.#dir, old.epoch + 1);
    await this.#checkpoint();
    const size = this.size;
    const root = this.root;
    // The old key signs the handover (the tree so far and the new key) as a note text.
    const text = handoverText(this.origin, size, root, next.epoch, next.publicKey);
    const signature = new Uint8Array(sodium.crypto_sign_BYTES);
    sodium.crypto_sign_detached(signature, Buffer.from(text, 'utf8'), old.secretKey);
    await this.#writeOwn({
      type: EPOCH_TYPE,
      fields: epochRecordFields({ epoch: next.epoch, publicKey: next.publicKey, root, signature }),
    });
    await this.#segment!.sync();
    this.#key = next;
    this.#epochStartedAt = this.#now();
    await eraseEpochKey(this.#dir, old);
    await this.#checkpoint();
    return next.epoch;
  }

  leafHash(index: number): Uint8Array {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.size)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', `No record ${index} (the log has ${this.size})`);
    return this.#tree.leafHash(index);
  }

  inclusionProof(index: number, size: number = this.size): Uint8Array[] {
    return this.#tree.inclusionProof(index, size);
  }

  consistencyProof(size1: number, size2: number = this.size): Uint8Array[] {
    return this.#tree.consistencyProof(size1, size2);
  }

  witnessUpdate(from: AuditWitnessRequest): AuditWitnessUpdate {
    return witnessUpdate(this.#witnessSource(), from);
  }

  checkCosignature(note: string, key: Uint8Array): AcceptedCosignature {
    return checkCosignature(this.#witnessSource(), note, key);
  }

  #witnessSource() {
    return {
      origin: this.origin,
      lastCheckpoint: this.#lastCheckpoint,
      epochRecords: this.#epochRecords,
      inclusionProof: (i: number, n: number) => this.inclusionProof(i, n),
      consistencyProof: (a: number, b: number) => this.consistencyProof(a, b),
    };
  }

  close(): Promise<void> {
    if (this.#closed) return Promise.resolve();
    this.#batch = undefined;
    const done = this.#queue.then(async () => {
      if (this.#closed) return;
      try {
        if (this.#failed === undefined && this.size > this.#lastCheckpointSize) await this.#checkpoint();
      } finally {
        await this.#release();
      }
    });
    this.#queue = done.catch(() => {});
    return done;
  }

  async #release(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    if (this.#key !== undefined) sodium.sodium_memzero(this.#key.secretKey);
    await this.#segment?.close().catch(() => {});
    await this.#checkpoints?.close().catch(() => {});
    this.#segment = undefined;
    this.#checkpoints = undefined;
  }
}
