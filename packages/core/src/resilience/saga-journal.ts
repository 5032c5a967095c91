/**
 * The saga journal (issue 16, item 8): the write-ahead log a saga appends to before and after
 * every effect, so that a process that crashed mid-saga finishes it on restart (`resumeSagas`).
 *
 *   runSaga ─► begin ─► step-started(0) ─► run ─► step-done(0, result) ─► ... ─► end(completed)
 *                           a step throws ─► step-failed(k) ─► undo-started(j) ─► compensate
 *                                            ─► undo-done(j) ... (reverse order) ─► end(compensated)
 *                           a compensation gives up ─► undo-stuck(j): the saga stays unfinished
 *
 * A journal keeps every unfinished saga's records in memory (`JournalIndex`), drops a saga at
 * its `end` record, and refuses a second `begin` for a saga it still holds. Records cross the
 * core value codec (docs/protocol.md, "Values"): a result the RPC can carry can be journaled, and
 * anything else is refused with SIPC_ERR_INVALID_ARGUMENT before it is written. The memory
 * journal round-trips every record through the same codec as the file journal
 * (./saga-file-journal.ts), so what a compensation gets back after a restart is what it gets in
 * a test.
 */
import { createError } from '../errors.js';
import { decodeStoredMap, encodeValue } from '../msgpack/value-codec.js';

/** Largest encoded journal record, in bytes (a step's result or the saga's input included): 64 KiB. */
export const MAX_SAGA_RECORD_BYTES = 64 * 1024;

/** What every journal record carries. */
export interface SagaRecordBase {
  /** The saga the record belongs to. */
  readonly sagaId: string;
}

/** A saga began: its definition's name and its input. */
export interface SagaBeginRecord extends SagaRecordBase {
  /** The record type. */
  readonly type: 'begin';
  /** The definition's name (`resumeSagas` finds the definition by it). */
  readonly saga: string;
  /** The saga's input (absent when undefined). */
  readonly input?: unknown;
}

/** A step is about to run: written before `run` is called. */
export interface SagaStepStartedRecord extends SagaRecordBase {
  /** The record type. */
  readonly type: 'step-started';
  /** The step's index. */
  readonly step: number;
  /** The step's name (checked against the definition on resume). */
  readonly name: string;
}

/** A step returned: written after `run` resolved. */
export interface SagaStepDoneRecord extends SagaRecordBase {
  /** The record type. */
  readonly type: 'step-done';
  /** The step's index. */
  readonly step: number;
  /** What `run` returned (absent when undefined). */
  readonly result?: unknown;
}

/** A step threw: backward recovery follows, and the step itself is not compensated. */
export interface SagaStepFailedRecord extends SagaRecordBase {
  /** The record type. */
  readonly type: 'step-failed';
  /** The step's index. */
  readonly step: number;
  /** The error's SIPC code when it was a secure-ipc error (never its message). */
  readonly code?: string;
}

/** A compensation is about to run, or ran (`undo-done`), or gave up (`undo-stuck`). */
export interface SagaUndoRecord extends SagaRecordBase {
  /** The record type. */
  readonly type: 'undo-started' | 'undo-done';
  /** The compensated step's index. */
  readonly step: number;
}

/** A compensation failed every attempt: the saga stays unfinished for `resumeSagas`. */
export interface SagaUndoStuckRecord extends SagaRecordBase {
  /** The record type. */
  readonly type: 'undo-stuck';
  /** The compensated step's index. */
  readonly step: number;
  /** How many attempts failed in a row. */
  readonly attempts: number;
}

/** The saga finished: every step done, or every started step compensated. */
export interface SagaEndRecord extends SagaRecordBase {
  /** The record type. */
  readonly type: 'end';
  /** How it finished. */
  readonly outcome: 'completed' | 'compensated';
}

/** A journal record (docs/resilience.md, "Compensating actions (sagas)": the normative list). */
export type SagaRecord =
  | SagaBeginRecord
  | SagaStepStartedRecord
  | SagaStepDoneRecord
  | SagaStepFailedRecord
  | SagaUndoRecord
  | SagaUndoStuckRecord
  | SagaEndRecord;

/** The record types, in the order a saga writes them. */
export type SagaRecordType = SagaRecord['type'];

/** One unfinished saga as a journal holds it: its records in the order they were appended. */
export interface SagaLog {
  /** The saga's id. */
  readonly sagaId: string;
  /** Its records, `begin` first. */
  readonly records: readonly SagaRecord[];
}

/**
 * Where sagas are journaled. `append` resolves once the record is durable (the file journal:
 * written and fsynced); a saga never calls it twice at once. A journal is used by one process at
 * a time.
 */
export interface SagaJournal {
  /**
   * Append `record`. Rejects with SIPC_ERR_INVALID_ARGUMENT for a record that cannot be encoded
   * or exceeds `MAX_SAGA_RECORD_BYTES`, a `begin` for a saga the journal holds already, or a record
   * of a saga it does not hold; with the I/O error's code otherwise.
   */
  append(record: SagaRecord): Promise<void>;
  /** Every saga begun and not ended, oldest first, each with its records. */
  unfinished(): Promise<SagaLog[]>;
}

const RECORD_TYPES: ReadonlySet<string> = new Set<SagaRecordType>([
  'begin',
  'step-started',
  'step-done',
  'step-failed',
  'undo-started',
  'undo-done',
  'undo-stuck',
  'end',
]);

/** Encode a record as the msgpack map the journal stores (refused if over MAX_SAGA_RECORD_BYTES). */
export function encodeSagaRecord(record: SagaRecord): Uint8Array {
  if (typeof record !== 'object' || record === null || !RECORD_TYPES.has(record.type))
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'A saga journal record needs a known type');
  const bytes = encodeValue(record, `saga record (${record.type})`);
  if (bytes.byteLength > MAX_SAGA_RECORD_BYTES)
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `A saga journal record (${record.type}) of ${bytes.byteLength} bytes exceeds ${MAX_SAGA_RECORD_BYTES} bytes`,
      { details: { type: record.type, bytes: bytes.byteLength, max: MAX_SAGA_RECORD_BYTES } },
    );
  return bytes;
}

const isIndex = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 0;
const isName = (v: unknown): v is string => typeof v === 'string' && v.length > 0;

/** The fields each record type must carry, besides `type` and `sagaId`. */
const SHAPES: Record<SagaRecordType, (r: Record<string, unknown>) => boolean> = {
  begin: (r) => isName(r.saga),
  'step-started': (r) => isIndex(r.step) && isName(r.name),
  'step-done': (r) => isIndex(r.step),
  'step-failed': (r) => isIndex(r.step) && (r.code === undefined || typeof r.code === 'string'),
  'undo-started': (r) => isIndex(r.step),
  'undo-done': (r) => isIndex(r.step),
  'undo-stuck': (r) => isIndex(r.step) && isIndex(r.attempts),
  end: (r) => r.outcome === 'completed' || r.outcome === 'compensated',
};

/**
 * Decode one stored record, or undefined for bytes that are not a well-formed record (the
 * caller decides whether that is a torn tail or corruption).
 */
export function decodeSagaRecord(bytes: Uint8Array): SagaRecord | undefined {
  const r = decodeStoredMap(bytes);
  if (r === undefined) return undefined;
  if (typeof r.type !== 'string' || !RECORD_TYPES.has(r.type) || !isName(r.sagaId)) return undefined;
  return SHAPES[r.type as SagaRecordType](r) ? (r as unknown as SagaRecord) : undefined;
}

/** One saga as an index holds it: decoded records and their encoded bytes (for compaction). */
interface Held {
  readonly records: SagaRecord[];
  readonly encoded: Uint8Array[];
}

/**
 * The unfinished sagas of a journal, in memory: the rule every journal applies to what it is
 * asked to append (`check`), and what it records once the append is durable (`add`).
 */
export class JournalIndex {
  readonly #sagas = new Map<string, Held>();

  /** Refuse a record that does not fit the sagas held: a second begin, or a record of no saga. */
  check(record: SagaRecord): void {
    const held = this.#sagas.has(record.sagaId);
    if (record.type === 'begin' && held)
      throw createError(
        'SIPC_ERR_INVALID_ARGUMENT',
        'The journal already holds an unfinished saga with this id',
        {
          details: { sagaId: record.sagaId },
        },
      );
    if (record.type !== 'begin' && !held)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'The journal holds no unfinished saga with this id', {
        details: { sagaId: record.sagaId, type: record.type },
      });
  }

  /**
   * Take a durable record: a begin opens the saga, an end drops it. A record of a saga not held
   * (a log whose begin was lost) is ignored, so reading a file never fails on it.
   */
  add(record: SagaRecord, encoded: Uint8Array): void {
    if (record.type === 'begin') {
      this.#sagas.set(record.sagaId, { records: [record], encoded: [encoded] });
      return;
    }
    const held = this.#sagas.get(record.sagaId);
    if (held === undefined) return;
    if (record.type === 'end') this.#sagas.delete(record.sagaId);
    else {
      held.records.push(record);
      held.encoded.push(encoded);
    }
  }

  /** The unfinished sagas, oldest begin first (copies: the caller may keep them). */
  logs(): SagaLog[] {
    return [...this.#sagas].map(([sagaId, held]) => ({ sagaId, records: held.records.slice() }));
  }

  /** The encoded records of every unfinished saga, in append order per saga, oldest saga first. */
  encodedRecords(): Uint8Array[] {
    return [...this.#sagas.values()].flatMap((held) => held.encoded);
  }
}

/**
 * A journal in memory: for tests and for sagas that need no crash recovery (the process's end
 * loses it). Every record crosses the value codec as the file journal's do.
 */
export function memoryJournal(): SagaJournal {
  const index = new JournalIndex();
  return {
    async append(record) {
      const encoded = encodeSagaRecord(record);
      index.check(record);
      const stored = decodeSagaRecord(encoded);
      if (stored === undefined)
        throw createError(
          'SIPC_ERR_INVALID_ARGUMENT',
          `The saga journal record (${record.type}) is malformed`,
        );
      index.add(stored, encoded);
    },
    async unfinished() {
      return index.logs();
    },
  };
}
