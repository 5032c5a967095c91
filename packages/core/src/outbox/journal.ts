/**
 * Reading an outbox journal (docs/outbox.md, "Reading a journal: integrity"): walk the records
 * from the header on, accept each valid record in its place, quarantine the rest one by one
 * (resynchronising on the next whole record), and stop at a torn tail. Reads through a
 * `ByteSource` a record at a time, so memory stays one record however long the journal.
 */
import { createError } from '../errors.js';
import {
  checkFrame,
  type EnqueueBody,
  FRAME_HEAD_BYTES,
  HEADER_BYTES,
  JOURNAL_MAGIC,
  OUTBOX_ID_BYTES,
  type OutboxKeys,
  openRecord,
  RECORD_MAGIC,
  type RecordBody,
  RecordType,
  seqListHash,
} from './format.js';

/** Random access to a journal's bytes. */
export interface ByteSource {
  readonly size: number;
  /** Up to `length` bytes from `position` (fewer only at the end). */
  read(position: number, length: number): Promise<Buffer>;
}

/** A ByteSource over an open file of `size` bytes (positional reads: the descriptor's offset is untouched). */
export function fileSource(
  handle: {
    read(buf: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
  },
  size: number,
): ByteSource {
  return {
    size,
    read: async (position, length) => {
      const n = Math.max(0, Math.min(length, size - position));
      const buf = Buffer.alloc(n);
      let total = 0;
      while (total < n) {
        const { bytesRead } = await handle.read(buf, total, n - total, position + total);
        if (bytesRead === 0) break;
        total += bytesRead;
      }
      return buf.subarray(0, total);
    },
  };
}

/** A ByteSource over bytes in memory (vectors, tests). */
export function bufferSource(bytes: Uint8Array): ByteSource {
  const b = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  return {
    size: b.byteLength,
    read: async (position, length) => b.subarray(position, Math.min(b.byteLength, position + length)),
  };
}

/** Why a record was quarantined. */
export type QuarantineReason =
  | 'crc'
  | 'version'
  | 'type'
  | 'tag'
  | 'malformed'
  | 'framing'
  | 'order'
  | 'missing'
  | 'checkpoint';

/** A record (or a span, or a gap) that failed its check: never delivered. */
export interface QuarantinedRecord {
  /** Byte offset in the journal (of the record, or of the next record for a gap). */
  readonly offset: number;
  /** Bytes it spans (0 for a gap or a checkpoint mismatch). */
  readonly length: number;
  /** Its claimed seq, when readable; for `missing`, the first missing seq. */
  readonly seq: number | undefined;
  /** Why (docs/outbox.md, "Reading a journal: integrity"). */
  readonly reason: QuarantineReason;
}

/** An accepted record. */
export interface AcceptedRecord {
  readonly offset: number;
  readonly length: number;
  readonly seq: number;
  readonly body: RecordBody;
}

/** What a walk found besides the records. */
export interface JournalScan {
  /** The outbox id of the header. */
  readonly id: Buffer;
  /** Offset just after the last whole record (where a torn tail starts; the size if none). */
  readonly end: number;
  /** Bytes of a torn tail (0 when the journal ended on a whole record). */
  readonly tornBytes: number;
  /** Highest seq of an accepted or quarantined whole record (0 if none). */
  readonly highestSeq: number;
  /** The first CHECKPOINT's seq (0 when it was not found). */
  readonly checkpointSeq: number;
  /** Records accepted. */
  readonly records: number;
  readonly quarantined: readonly QuarantinedRecord[];
}

/** Receives each accepted record, in file order. */
export type RecordSink = (record: AcceptedRecord) => void;

const CHUNK = 64 * 1024;

/** The offset of the next whole record with a good CRC at or after `from`, or undefined. */
async function nextWhole(source: ByteSource, from: number): Promise<number | undefined> {
  let pos = from;
  while (pos < source.size) {
    const chunk = await source.read(pos, CHUNK + FRAME_HEAD_BYTES);
    let i = chunk.indexOf(RECORD_MAGIC);
    while (i >= 0 && i < CHUNK) {
      const at = pos + i;
      const head = await source.read(at, FRAME_HEAD_BYTES);
      const frame = checkFrame(head, source.size - at);
      if (frame.kind === 'whole') {
        const full = checkFrame(await source.read(at, frame.length), source.size - at);
        if (full.kind === 'whole' && full.crcOk) return at;
      }
      i = chunk.indexOf(RECORD_MAGIC, i + 1);
    }
    pos += CHUNK;
  }
  return undefined;
}

/** Throw SIPC_ERR_OUTBOX_CORRUPT unless the journal starts with our header; the outbox id. */
export async function readHeader(source: ByteSource, path: string): Promise<Buffer> {
  const head = await source.read(0, HEADER_BYTES);
  if (
    head.byteLength < HEADER_BYTES ||
    !head.subarray(0, JOURNAL_MAGIC.length).equals(Buffer.from(JOURNAL_MAGIC))
  )
    throw createError('SIPC_ERR_OUTBOX_CORRUPT', `${path} is not an outbox journal (format version 1)`, {
      details: { path, reason: 'header' },
    });
  return Buffer.from(head.subarray(JOURNAL_MAGIC.length, JOURNAL_MAGIC.length + OUTBOX_ID_BYTES));
}

/** Walk the journal (see the module comment), giving each accepted record to `sink`. */
export async function scanJournal(
  source: ByteSource,
  keys: OutboxKeys,
  path: string,
  sink: RecordSink,
): Promise<JournalScan> {
  const id = await readHeader(source, path);
  const quarantined: QuarantinedRecord[] = [];
  let pos = HEADER_BYTES;
  let end = pos;
  let highest = 0;
  let last = 0;
  let records = 0;
  let checkpoint: { seq: number; n: number; h: Buffer; offset: number } | undefined;
  // Cast, not annotated: the closures below move it on, which narrowing would not see.
  let phase = 'checkpoint' as 'checkpoint' | 'carried' | 'appended' | 'unplaced';
  const carried: number[] = [];
  // The carried entries wait for the CHECKPOINT's check before the sink sees them (their
  // params dropped: only the index's metadata is kept meanwhile).
  const held: AcceptedRecord[] = [];
  let expected = 0;
  const quarantine = (q: QuarantinedRecord) => quarantined.push(q);
  const closeCarried = (offset: number) => {
    if (checkpoint === undefined) return;
    const ok = carried.length === checkpoint.n && seqListHash(carried).equals(checkpoint.h);
    if (!ok) quarantine({ offset, length: 0, seq: checkpoint.seq, reason: 'checkpoint' });
    // A carried set that is not the one the CHECKPOINT names (a record replayed into it, one
    // removed or replaced) delivers none of them: fail closed.
    for (const r of held)
      if (ok) {
        records++;
        sink(r);
      } else quarantine({ offset: r.offset, length: r.length, seq: r.seq, reason: 'checkpoint' });
    held.length = 0;
    phase = 'appended';
    expected = checkpoint.seq + 1;
  };
  /** Whether a valid record is in its place (and the layout's state moves on). */
  const place = (
    offset: number,
    length: number,
    seq: number,
    body: RecordBody,
  ): 'accept' | 'held' | 'order' => {
    if (phase === 'carried') {
      // Carried entries: increasing among themselves, all below the CHECKPOINT's seq.
      const prev = carried.at(-1) ?? 0;
      if (body.type === RecordType.ENQUEUE && seq < checkpoint!.seq && seq > prev) {
        carried.push(seq);
        held.push({ offset, length, seq, body: { ...body, params: undefined } });
        if (carried.length === checkpoint!.n) closeCarried(offset + length);
        return 'held';
      }
      closeCarried(offset);
    }
    if (seq <= last) return 'order';
    if (phase === 'checkpoint') {
      if (body.type === RecordType.CHECKPOINT) {
        checkpoint = { seq, n: body.n, h: Buffer.from(body.h), offset };
        phase = 'carried';
        if (body.n === 0) closeCarried(offset);
        last = seq;
        return 'accept';
      }
      // The CHECKPOINT itself is lost: the carried entries cannot be checked; order still is.
      quarantine({ offset, length: 0, seq: undefined, reason: 'checkpoint' });
      phase = 'unplaced';
    }
    if (body.type === RecordType.CHECKPOINT) return 'order';
    if (phase === 'appended') {
      if (seq < expected) return 'order';
      if (seq > expected) quarantine({ offset, length: 0, seq: expected, reason: 'missing' });
      expected = seq + 1;
    }
    last = seq;
    return 'accept';
  };
  while (pos < source.size) {
    const head = await source.read(pos, FRAME_HEAD_BYTES);
    const frame = checkFrame(head, source.size - pos);
    if (frame.kind !== 'whole') {
      const next = await nextWhole(source, pos + 1);
      if (next === undefined) break; // a torn tail
      quarantine({ offset: pos, length: next - pos, seq: undefined, reason: 'framing' });
      pos = next;
      end = pos;
      continue;
    }
    const opened = openRecord(keys, id, await source.read(pos, frame.length));
    if (opened.seq !== undefined && opened.seq > highest) highest = opened.seq;
    if (!opened.ok) {
      quarantine({ offset: pos, length: frame.length, seq: opened.seq, reason: opened.reason });
      // The record in the next place, damaged: its seq is accounted for (no 'missing' after it).
      if (phase === 'appended' && opened.seq === expected) expected++;
    } else {
      const placed = place(pos, frame.length, opened.seq, opened.body);
      if (placed === 'order')
        quarantine({ offset: pos, length: frame.length, seq: opened.seq, reason: 'order' });
      else if (placed === 'accept') {
        records++;
        sink({ offset: pos, length: frame.length, seq: opened.seq, body: opened.body });
      }
    }
    pos += frame.length;
    end = pos;
  }
  if (phase === 'carried') closeCarried(end);
  return {
    id,
    end,
    tornBytes: source.size - end,
    highestSeq: highest,
    checkpointSeq: checkpoint?.seq ?? 0,
    records,
    quarantined,
  };
}

/** A live entry as the index keeps it (no params: they stay on disk). */
export interface IndexedEntry {
  readonly seq: number;
  readonly offset: number;
  readonly length: number;
  readonly lane: string | undefined;
  readonly enqueuedAt: number;
  readonly expiresAt: number | undefined;
}

/** The live entries after a walk: every ENQUEUE without a later DONE, in seq order. */
export class LiveIndex {
  readonly entries = new Map<number, IndexedEntry>();
  /** Bytes of the live entries' records. */
  liveBytes = 0;
  /** Bytes of the other records (DONEs, removed entries, the CHECKPOINT). */
  deadBytes = 0;

  /** Feed one accepted record. */
  readonly add: RecordSink = (r) => {
    if (r.body.type === RecordType.ENQUEUE) {
      const b = r.body as EnqueueBody;
      this.entries.set(r.seq, {
        seq: r.seq,
        offset: r.offset,
        length: r.length,
        lane: b.lane,
        enqueuedAt: b.enqueuedAt,
        expiresAt: b.expiresAt,
      });
      this.liveBytes += r.length;
      return;
    }
    this.deadBytes += r.length;
    if (r.body.type === RecordType.DONE) this.remove(r.body.seq);
  };

  /** Remove a live entry (a DONE); false if it was not live. */
  remove(seq: number): boolean {
    const e = this.entries.get(seq);
    if (e === undefined) return false;
    this.entries.delete(seq);
    this.liveBytes -= e.length;
    this.deadBytes += e.length;
    return true;
  }
}
