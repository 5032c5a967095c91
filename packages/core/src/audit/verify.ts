/**
 * Verifying an audit log directory (docs/audit.md "Verification"):
 *
 *   segments → frames → records + leaf hashes          a gap or torn frame: a problem at its index
 *   the chain walk (n = i, p = leaf(i-1))              the first break, classified: edited, deleted,
 *                                                      reordered, inserted
 *   the epochs (genesis = anchor, each handover        bad-epoch; the epoch key in force per size
 *     signed by the previous key)
 *   the checkpoints (file + witness + handovers)       bad-checkpoint, bad-signature, wrong-epoch-key,
 *                                                      truncated, edited (root), unsigned tail
 *
 * Problems a record problem at index i explains (every checkpoint over i no longer matching) are
 * not repeated. `readAuditLog` is what `openAuditLog` reuses to resume a log.
 */
import { join } from 'node:path';
import { bytesEqual, sodium } from '../crypto/sodium.js';
import { createError, isSecureIpcError } from '../errors.js';
import { type AccessGuard, posixOwnerOnly } from '../keys/access-guard.js';
import { CHECKPOINTS_FILE, openAuditDirectory, readFrameFile } from './files.js';
import { hashLeaf, MerkleTree } from './merkle.js';
import { type Checkpoint, noteSignatureBy, parseCheckpoint, parseVerifierKey } from './note.js';
import {
  type AuditRecord,
  decodeAuditRecord,
  EPOCH_TYPE,
  type EpochFields,
  handoverText,
  parseEpochRecord,
} from './record.js';

/** What went wrong, at a record index (docs/audit.md "Verification"). */
export type AuditProblemKind =
  | 'edited'
  | 'deleted'
  | 'reordered'
  | 'inserted'
  | 'truncated'
  | 'torn'
  | 'bad-epoch'
  | 'bad-checkpoint'
  | 'bad-signature'
  | 'wrong-epoch-key'
  | 'unsigned';

/** One problem of a verification report. */
export interface AuditProblem {
  /** What happened. */
  readonly kind: AuditProblemKind;
  /** The first record index concerned (for checkpoint problems: the checkpoint's tree size). */
  readonly index: number;
  /** The last record index concerned, when a range is known. */
  readonly toIndex?: number;
  /** Where the checkpoint came from, for checkpoint problems: `file:<position>` or `witness:<position>`. */
  readonly checkpoint?: string;
  /** A sentence for people (no record contents). */
  readonly message: string;
}

/** An epoch as the verifier followed it. */
export interface AuditEpoch {
  /** The epoch number. */
  readonly epoch: number;
  /** The index of its epoch record (0 for the genesis). */
  readonly startIndex: number;
  /** Its Ed25519 public key. */
  readonly publicKey: Uint8Array;
}

/** The outcome of `verifyAuditLog`. */
export interface AuditReport {
  /** True only when there is no problem. */
  readonly ok: boolean;
  /** Records read. */
  readonly size: number;
  /** The log's origin (from the genesis record), if it could be read. */
  readonly origin: string | undefined;
  /** The root of all records read. */
  readonly root: Uint8Array;
  /** The epochs followed from the anchor. */
  readonly epochs: readonly AuditEpoch[];
  /** Checkpoints whose signature and root verified. */
  readonly verifiedCheckpoints: number;
  /** The largest tree size a verified checkpoint covers (0 when none). */
  readonly signedSize: number;
  /** The problems, first record problem first. */
  readonly problems: readonly AuditProblem[];
}

/** Options of `verifyAuditLog`. */
export interface VerifyAuditLogOptions {
  /** Epoch 0's Ed25519 public key (32 bytes), its base64, or its C2SP verifier key text. */
  readonly anchorKey: Uint8Array | string;
  /** Checkpoints a witness holds (signed notes), checked like the log's own: they catch truncation. */
  readonly witnessCheckpoints?: readonly string[];
  /** The directory's access guard (default POSIX owner-only). */
  readonly guard?: AccessGuard;
}

/** The last segment of a log as read: where appending continues. */
export interface AuditSegmentEnd {
  /** Its file name (`audit-<first index>.log`). */
  readonly name: string;
  /** Its size in bytes. */
  readonly bytes: number;
  /** The byte offset of a torn tail (a frame cut by a crash), or undefined. */
  readonly tornAt: number | undefined;
}

/** What `readAuditLog` found in a log directory: the records as stored, and the checkpoints. */
export interface AuditLogState {
  /** The stored record bytes, in order. */
  readonly frames: readonly Uint8Array[];
  /** Their leaf hashes. */
  readonly leafHashes: readonly Uint8Array[];
  /** Decoded records (undefined where one does not decode). */
  readonly records: readonly (AuditRecord | undefined)[];
  /** The checkpoint notes of checkpoints.log, as text. */
  readonly checkpointNotes: readonly string[];
  /** Epoch numbers with a key file. */
  readonly epochKeys: readonly number[];
  /** The last segment (undefined when there is none). */
  readonly lastSegment: AuditSegmentEnd | undefined;
  /** Structural problems found while reading (torn frames, segment gaps). */
  readonly readProblems: readonly AuditProblem[];
}

/** Largest segment file `readAuditLog` reads (the writer's cap plus one frame). */
const MAX_READ_BYTES = 2 ** 31 - 1;

/**
 * Read a log directory's segments and checkpoints, without verifying anything beyond the framing
 * (what `secure-ipc audit tail` and `audit proof` read; `verifyAuditLog` says whether to trust it).
 */
export async function readAuditLog(dir: string, guard: AccessGuard = posixOwnerOnly): Promise<AuditLogState> {
  const listing = await openAuditDirectory(dir, false, guard);
  const frames: Uint8Array[] = [];
  const readProblems: AuditProblem[] = [];
  let lastSegment: AuditLogState['lastSegment'];
  for (let s = 0; s < listing.segments.length; s++) {
    const seg = listing.segments[s]!;
    const file = await readFrameFile(join(dir, seg.name), MAX_READ_BYTES);
    if (seg.first !== frames.length && readProblems.length === 0)
      readProblems.push({
        kind: seg.first > frames.length ? 'deleted' : 'inserted',
        index: frames.length,
        message: `segment ${seg.name} starts at ${seg.first}, but ${frames.length} records precede it`,
      });
    frames.push(...file.frames);
    if (file.tornAt !== undefined && s < listing.segments.length - 1)
      readProblems.push({
        kind: 'torn',
        index: frames.length,
        message: `segment ${seg.name} is cut inside a frame`,
      });
    lastSegment = { name: seg.name, bytes: file.bytes, tornAt: file.tornAt };
  }
  const cps = await readFrameFile(join(dir, CHECKPOINTS_FILE), MAX_READ_BYTES);
  const utf8 = new TextDecoder();
  return {
    frames,
    leafHashes: frames.map(hashLeaf),
    records: frames.map((f) => {
      try {
        return decodeAuditRecord(f);
      } catch {
        return undefined;
      }
    }),
    checkpointNotes: cps.frames.map((f) => utf8.decode(f)),
    epochKeys: listing.epochKeys,
    lastSegment,
    readProblems,
  };
}

/** The first break of the chain (n = i, p = leaf(i-1)), classified; undefined when none. */
export function chainProblem(state: Pick<AuditLogState, 'records' | 'leafHashes'>): AuditProblem | undefined {
  const { records, leafHashes } = state;
  const nAt = (i: number) => records[i]?.index;
  for (let i = 0; i < records.length; i++) {
    const r = records[i];
    if (r === undefined)
      return { kind: 'edited', index: i, message: `record ${i} does not decode as a record` };
    if (r.index === i) {
      if (i === 0 ? r.prev === undefined : r.prev !== undefined && bytesEqual(r.prev, leafHashes[i - 1]!))
        continue;
      if (nAt(i + 1) === i)
        return { kind: 'inserted', index: i, message: `record ${i} was inserted (the next record is ${i})` };
      return {
        kind: 'edited',
        index: i - 1,
        message: `record ${i - 1} was changed (record ${i} does not chain to it)`,
      };
    }
    if (r.index > i) {
      if (nAt(i + 1) === i && r.index !== i + 1)
        return { kind: 'inserted', index: i, message: `a record was inserted at ${i}` };
      for (let k = i + 1; k < records.length; k++)
        if (nAt(k) === i)
          return {
            kind: 'reordered',
            index: i,
            toIndex: k,
            message: `record ${i} is at position ${k}: records were moved`,
          };
      return {
        kind: 'deleted',
        index: i,
        toIndex: r.index - 1,
        message: `records ${i} to ${r.index - 1} are missing`,
      };
    }
    // r.index < i: two records claim the same place; the one the next record chains to is genuine.
    const next = records[i + 1];
    if (r.index === i - 1 && next?.prev !== undefined && bytesEqual(next.prev, leafHashes[i]!))
      return { kind: 'inserted', index: i - 1, message: `a record was inserted at ${i - 1}` };
    return {
      kind: 'inserted',
      index: i,
      message: `a record was inserted at ${i} (it claims index ${r.index})`,
    };
  }
  return undefined;
}

/** Decode an anchor: 32 raw bytes, their base64, or a C2SP verifier key. */
function anchorBytes(anchor: Uint8Array | string): Uint8Array {
  if (typeof anchor !== 'string') {
    if (anchor.byteLength !== sodium.crypto_sign_PUBLICKEYBYTES)
      throw createError('SIPC_ERR_BAD_KEY', 'An audit anchor key is a 32-byte Ed25519 public key');
    return anchor;
  }
  const raw = Buffer.from(anchor, 'base64');
  if (raw.byteLength === 32 && raw.toString('base64') === anchor) return new Uint8Array(raw);
  try {
    return parseVerifierKey(anchor).publicKey;
  } catch (err) {
    throw createError(
      'SIPC_ERR_BAD_KEY',
      'An audit anchor key is 32 bytes, their base64, or a C2SP verifier key',
      {
        cause: err,
      },
    );
  }
}

interface Epochs {
  readonly origin: string | undefined;
  readonly epochs: AuditEpoch[];
  /** The handovers as checkpoints signed by the previous epoch. */
  readonly handovers: { checkpoint: Checkpoint; index: number }[];
  readonly problems: AuditProblem[];
}

/** Follow the epoch records from the anchor; stops at the first bad one. */
function followEpochs(records: readonly (AuditRecord | undefined)[], anchor: Uint8Array): Epochs {
  const epochs: AuditEpoch[] = [];
  const handovers: Epochs['handovers'] = [];
  const problems: AuditProblem[] = [];
  const first = records[0];
  let genesis: EpochFields | undefined;
  try {
    if (first !== undefined && first.type === EPOCH_TYPE) genesis = parseEpochRecord(first);
  } catch {}
  if (genesis === undefined || genesis.epoch !== 0) {
    problems.push({ kind: 'bad-epoch', index: 0, message: 'record 0 is not the genesis epoch record' });
    return { origin: undefined, epochs, handovers, problems };
  }
  const origin = genesis.origin!;
  if (!bytesEqual(genesis.publicKey, anchor)) {
    problems.push({ kind: 'bad-epoch', index: 0, message: "the genesis record's key is not the anchor" });
    return { origin, epochs, handovers, problems };
  }
  epochs.push({ epoch: 0, startIndex: 0, publicKey: genesis.publicKey });
  for (let i = 1; i < records.length; i++) {
    const r = records[i];
    if (r === undefined || r.type !== EPOCH_TYPE) continue;
    const prev = epochs[epochs.length - 1]!;
    let e: EpochFields;
    try {
      e = parseEpochRecord(r);
    } catch (err) {
      problems.push({
        kind: 'bad-epoch',
        index: i,
        message: isSecureIpcError(err) ? err.message : 'bad epoch record',
      });
      break;
    }
    const text = Buffer.from(handoverText(origin, i, e.root!, e.epoch, e.publicKey), 'utf8');
    if (
      e.epoch !== prev.epoch + 1 ||
      !sodium.crypto_sign_verify_detached(e.signature!, text, prev.publicKey)
    ) {
      problems.push({
        kind: 'bad-epoch',
        index: i,
        message: `epoch record ${i} is not epoch ${prev.epoch + 1} signed by epoch ${prev.epoch}'s key`,
      });
      break;
    }
    epochs.push({ epoch: e.epoch, startIndex: i, publicKey: e.publicKey });
    handovers.push({ checkpoint: { origin, size: i, root: e.root! }, index: i });
  }
  return { origin, epochs, handovers, problems };
}

/** The epoch in force for a checkpoint of tree size `size`: the last epoch record among 0 … size-1. */
export function epochForSize(epochs: readonly AuditEpoch[], size: number): AuditEpoch | undefined {
  let found: AuditEpoch | undefined;
  for (const e of epochs) if (e.startIndex < size || e.startIndex === 0) found = e;
  return found;
}

/** Verify a log directory against its epoch-0 key (docs/audit.md "Verification"). */
export async function verifyAuditLog(dir: string, options: VerifyAuditLogOptions): Promise<AuditReport> {
  const anchor = anchorBytes(options.anchorKey);
  const state = await readAuditLog(dir, options.guard);
  return verifyAuditState(state, anchor, options.witnessCheckpoints ?? []);
}

/** @internal The verification of an already read log. */
export function verifyAuditState(
  state: AuditLogState,
  anchor: Uint8Array,
  witness: readonly string[],
): AuditReport {
  const problems: AuditProblem[] = [...state.readProblems];
  if (state.lastSegment?.tornAt !== undefined)
    problems.push({
      kind: 'torn',
      index: state.frames.length,
      message: `segment ${state.lastSegment.name} ends inside a frame at byte ${state.lastSegment.tornAt}`,
    });
  const size = state.frames.length;
  const chain = chainProblem(state);
  if (chain !== undefined && !problems.some((p) => p.index <= chain.index)) problems.push(chain);
  const recordProblemAt =
    problems.length > 0 ? Math.min(...problems.map((p) => p.index)) : Number.POSITIVE_INFINITY;
  const ep = followEpochs(state.records, anchor);
  problems.push(...ep.problems.filter((p) => p.index < recordProblemAt || p.index === 0));

  // The root of any prefix (a checkpoint's size) in O(log n) from one pass over the leaves.
  const tree = MerkleTree.from(state.leafHashes);

  let verified = 0;
  let signedSize = 0;
  const good: number[] = [];
  const lastGoodBelow = (s: number) => good.filter((g) => g < s).reduce((a, b) => Math.max(a, b), 0);
  const candidates: { source: string; cp?: Checkpoint; note?: string; preverified?: boolean }[] = [
    ...ep.handovers.map((h, i) => ({ source: `epoch:${i + 1}`, cp: h.checkpoint, preverified: true })),
    ...state.checkpointNotes.map((note, i) => ({ source: `file:${i}`, note })),
    ...witness.map((note, i) => ({ source: `witness:${i}`, note })),
  ];
  const checkpointProblems: AuditProblem[] = [];
  for (const c of candidates) {
    let cp = c.cp;
    if (cp === undefined) {
      let parsed: ReturnType<typeof parseCheckpoint>;
      try {
        parsed = parseCheckpoint(c.note!);
      } catch {
        checkpointProblems.push({
          kind: 'bad-checkpoint',
          index: 0,
          checkpoint: c.source,
          message: `checkpoint ${c.source} is malformed`,
        });
        continue;
      }
      if (ep.origin === undefined || parsed.origin !== ep.origin) {
        checkpointProblems.push({
          kind: 'bad-checkpoint',
          index: parsed.size,
          checkpoint: c.source,
          message: `checkpoint ${c.source} is for another origin`,
        });
        continue;
      }
      const inForce = epochForSize(ep.epochs, parsed.size);
      const status =
        inForce === undefined ? 'absent' : noteSignatureBy(parsed.note, ep.origin, inForce.publicKey);
      if (status !== 'valid') {
        const other = ep.epochs.find(
          (e) => e !== inForce && noteSignatureBy(parsed.note, ep.origin!, e.publicKey) === 'valid',
        );
        const beyondKnown = parsed.size > size && c.source.startsWith('witness:');
        if (other !== undefined && !(beyondKnown && other.epoch > (inForce?.epoch ?? 0)))
          checkpointProblems.push({
            kind: 'wrong-epoch-key',
            index: parsed.size,
            checkpoint: c.source,
            message: `checkpoint ${c.source} (size ${parsed.size}) is signed by epoch ${other.epoch}'s key, not by epoch ${inForce?.epoch}'s, the key in force at that size`,
          });
        else if (!beyondKnown)
          checkpointProblems.push({
            kind: 'bad-signature',
            index: parsed.size,
            checkpoint: c.source,
            message: `checkpoint ${c.source} (size ${parsed.size}) has no valid signature by the key in force`,
          });
        // A witness's checkpoint beyond the records present, signed by an epoch whose record is
        // gone, is still the caller's trusted evidence of a longer log: it counts as truncation.
        if (!beyondKnown) continue;
      }
      cp = parsed;
    }
    if (cp.size > size) {
      if (recordProblemAt === Number.POSITIVE_INFINITY)
        checkpointProblems.push({
          kind: 'truncated',
          index: size,
          toIndex: cp.size - 1,
          checkpoint: c.source,
          message: `checkpoint ${c.source} covers ${cp.size} records, only ${size} are present`,
        });
      continue;
    }
    if (!bytesEqual(cp.root, tree.rootAt(cp.size))) {
      if (cp.size > recordProblemAt) continue; // explained by the record problem
      const from = lastGoodBelow(cp.size);
      checkpointProblems.push({
        kind: 'edited',
        index: from,
        toIndex: cp.size - 1,
        checkpoint: c.source,
        message: `checkpoint ${c.source} (size ${cp.size}) does not match the records: one of records ${from} to ${cp.size - 1} was changed`,
      });
      continue;
    }
    if (c.preverified !== true) verified++;
    good.push(cp.size);
    signedSize = Math.max(signedSize, cp.size);
  }
  // One 'edited' range and one truncation are enough: the earliest of each.
  const firstOf = (kind: AuditProblemKind) =>
    checkpointProblems.filter((p) => p.kind === kind).sort((a, b) => a.index - b.index)[0];
  const firstEdit = firstOf('edited');
  const firstTruncation = firstOf('truncated');
  problems.push(...checkpointProblems.filter((p) => p.kind !== 'edited' && p.kind !== 'truncated'));
  if (firstEdit !== undefined) problems.push(firstEdit);
  if (firstTruncation !== undefined) problems.push(firstTruncation);
  if (signedSize < size && recordProblemAt === Number.POSITIVE_INFINITY && firstEdit === undefined)
    problems.push({
      kind: 'unsigned',
      index: signedSize,
      toIndex: size - 1,
      message: `records ${signedSize} to ${size - 1} are covered by no valid checkpoint`,
    });
  problems.sort((a, b) => a.index - b.index);
  return {
    ok: problems.length === 0,
    size,
    origin: ep.origin,
    root: tree.root(),
    epochs: ep.epochs,
    verifiedCheckpoints: verified,
    signedSize,
    problems,
  };
}
