/**
 * Audit log witnesses (docs/audit.md, "Witnesses"): the update a log gives a witness (its last
 * checkpoint, the consistency proof from what the witness holds, the epoch records it lacks with
 * their proofs), the witness that verifies it and raises a fork, and C2SP tlog-cosignature/v1
 * cosignatures (Ed25519, signature type 0x04) of the checkpoints a witness accepts.
 */
import { createHash } from 'node:crypto';
import { bytesEqual, sodium } from '../crypto/sodium.js';
import { createError, type SecureIpcError } from '../errors.js';
import { HASH_BYTES, hashLeaf, verifyConsistency, verifyInclusion } from './merkle.js';
import {
  type Checkpoint,
  MAX_NOTE_BYTES,
  noteKeyId,
  noteSignatureBy,
  type ParsedCheckpoint,
  parseCheckpoint,
  type SignedNote,
} from './note.js';
import { decodeAuditRecord, type EpochFields, handoverText, parseEpochRecord } from './record.js';

/** Most epoch records one witness update carries (docs/audit.md, "Witnesses"). */
export const MAX_WITNESS_EPOCHS = 64;

const COSIGNATURE = 0x04;
const EM_DASH = '\u2014';

/** What a witness holds and asks an update from (`$audit.checkpoint`'s params). */
export interface AuditWitnessRequest {
  /** The size of the last checkpoint it accepted (0 at first). */
  readonly size: number;
  /** The epoch in force at that size; absent when it has accepted nothing yet. */
  readonly epoch?: number | undefined;
}

/** One epoch record of a witness update, with its proofs in the update's checkpoint tree. */
export interface AuditWitnessEpoch {
  /** The record's index. */
  readonly index: number;
  /** Its bytes as stored. */
  readonly record: Uint8Array;
  /** The inclusion proof of its leaf in the checkpoint's tree. */
  readonly inclusion: readonly Uint8Array[];
  /** The consistency proof from `index` to the checkpoint's size (empty for index 0). */
  readonly consistency: readonly Uint8Array[];
}

/** What a log gives a witness (`$audit.checkpoint`'s answer, docs/audit.md "Witnesses"). */
export interface AuditWitnessUpdate {
  /** A signed checkpoint note of the log. */
  readonly checkpoint: string;
  /** The consistency proof from the witness's size to the checkpoint's. */
  readonly consistency: readonly Uint8Array[];
  /** The epoch records after the witness's epoch below the checkpoint's size, in order. */
  readonly epochs: readonly AuditWitnessEpoch[];
}

/** @internal One epoch record as a log keeps it for witnesses. */
export interface EpochRecordRef {
  readonly epoch: number;
  readonly index: number;
  readonly bytes: Uint8Array;
  readonly fields: EpochFields;
}

/** @internal What `witnessUpdate` and `checkCosignature` read of a log. */
export interface WitnessSource {
  readonly origin: string;
  readonly lastCheckpoint: string | undefined;
  readonly epochRecords: readonly EpochRecordRef[];
  inclusionProof(index: number, size: number): Uint8Array[];
  consistencyProof(size1: number, size2: number): Uint8Array[];
}

function invalid(message: string): SecureIpcError {
  return createError('SIPC_ERR_INVALID_ARGUMENT', message);
}

/** The key in force at tree size `size`: that of the last epoch record below it. */
function keyInForce(epochs: readonly EpochRecordRef[], size: number): EpochRecordRef | undefined {
  let found: EpochRecordRef | undefined;
  for (const e of epochs) if (e.index < size) found = e;
  return found;
}

/** @internal The update a log answers a witness at `from` (docs/audit.md, "Witnesses"). */
export function witnessUpdate(log: WitnessSource, from: AuditWitnessRequest): AuditWitnessUpdate {
  if (!Number.isSafeInteger(from.size) || from.size < 0) throw invalid('size must be an integer >= 0');
  if (from.epoch !== undefined && (!Number.isSafeInteger(from.epoch) || from.epoch < 0))
    throw invalid('epoch must be an integer >= 0');
  const last = log.lastCheckpoint;
  if (last === undefined) throw createError('SIPC_ERR_AUDIT_CORRUPT', 'The audit log has no checkpoint');
  const head = parseCheckpoint(last);
  const after = from.epoch ?? -1;
  const pending = log.epochRecords.filter((e) => e.epoch > after && e.index < head.size);
  let checkpoint = last;
  let size = head.size;
  if (pending.length > MAX_WITNESS_EPOCHS) {
    // Paged: the handover of the first epoch left out, a checkpoint signed by the last one in.
    const next = pending[MAX_WITNESS_EPOCHS]!;
    const { root, signature, publicKey } = next.fields;
    const text = handoverText(log.origin, next.index, root!, next.epoch, publicKey);
    const prev = pending[MAX_WITNESS_EPOCHS - 1]!;
    const id = Buffer.alloc(4);
    id.writeUInt32BE(noteKeyId(log.origin, prev.fields.publicKey));
    checkpoint = `${text}\n${EM_DASH} ${log.origin} ${Buffer.concat([id, signature!]).toString('base64')}\n`;
    size = next.index;
    pending.length = MAX_WITNESS_EPOCHS;
  }
  return {
    checkpoint,
    consistency: from.size > 0 && from.size < size ? log.consistencyProof(from.size, size) : [],
    epochs: pending.map((e) => ({
      index: e.index,
      record: e.bytes,
      inclusion: log.inclusionProof(e.index, size),
      consistency: e.index > 0 ? log.consistencyProof(e.index, size) : [],
    })),
  };
}

/** The C2SP cosignature key ID: SHA-256(name || 0x0A || 0x04 || key)[0:4], big-endian. */
export function cosignatureKeyId(name: string, publicKey: Uint8Array): number {
  return createHash('sha256')
    .update(name, 'utf8')
    .update(Buffer.from([0x0a, COSIGNATURE]))
    .update(publicKey)
    .digest()
    .readUInt32BE(0);
}

function cosignedMessage(text: string, time: number): Buffer {
  return Buffer.from(`cosignature/v1\ntime ${time}\n${text}`, 'utf8');
}

function badName(name: string): boolean {
  return typeof name !== 'string' || name.length === 0 || /[\s+]/u.test(name);
}

/**
 * The tlog-cosignature/v1 line of checkpoint text `text` by the witness Ed25519 key `secretKey`
 * (libsodium's 64-byte form) named `name`, at `time` (seconds since the Unix epoch).
 */
export function cosignatureLine(text: string, name: string, secretKey: Uint8Array, time: number): string {
  if (badName(name))
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'A witness name is non-empty, without spaces or +');
  if (secretKey?.byteLength !== sodium.crypto_sign_SECRETKEYBYTES)
    throw createError('SIPC_ERR_BAD_KEY', 'An Ed25519 secret key is 64 bytes (seed || public key)');
  if (!Number.isSafeInteger(time) || time < 0)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'A cosignature time is an integer >= 0');
  const sig = new Uint8Array(sodium.crypto_sign_BYTES);
  sodium.crypto_sign_detached(sig, cosignedMessage(text, time), secretKey);
  const head = Buffer.alloc(12);
  head.writeUInt32BE(cosignatureKeyId(name, secretKey.subarray(32)), 0);
  head.writeBigUInt64BE(BigInt(time), 4);
  return `${EM_DASH} ${name} ${Buffer.concat([head, sig]).toString('base64')}\n`;
}

/** A verified cosignature. */
export interface Cosignature {
  /** The witness's key name. */
  readonly name: string;
  /** When it cosigned, seconds since the Unix epoch. */
  readonly time: number;
  /** The Ed25519 signature (64 bytes). */
  readonly signature: Uint8Array;
}

/**
 * The cosignature of `note` by the witness key `publicKey` named `name` (tlog-cosignature/v1), or
 * undefined when no line of that key verifies.
 */
export function verifyCosignature(
  note: SignedNote,
  name: string,
  publicKey: Uint8Array,
): Cosignature | undefined {
  if (publicKey?.byteLength !== sodium.crypto_sign_PUBLICKEYBYTES) return undefined;
  const id = cosignatureKeyId(name, publicKey);
  for (const sig of note.signatures) {
    if (sig.name !== name || sig.keyId !== id || sig.signature.byteLength !== 72) continue;
    const t = Buffer.from(sig.signature.buffer, sig.signature.byteOffset, 8).readBigUInt64BE(0);
    if (t > BigInt(Number.MAX_SAFE_INTEGER)) continue;
    const signature = sig.signature.subarray(8);
    if (sodium.crypto_sign_verify_detached(signature, cosignedMessage(note.text, Number(t)), publicKey))
      return { name, time: Number(t), signature: new Uint8Array(signature) };
  }
  return undefined;
}

/** A cosigned checkpoint a log accepted (`checkCosignature`). */
export interface AcceptedCosignature extends Cosignature, Checkpoint {
  /** The witness's Ed25519 public key. */
  readonly key: Uint8Array;
}

/**
 * @internal Check a cosigned note a witness gives back: a checkpoint of this log (its signature by
 * the key in force at its size) with exactly one other line, a cosignature by `key`.
 * SIPC_ERR_INVALID_ARGUMENT (public) otherwise.
 */
export function checkCosignature(log: WitnessSource, note: unknown, key: unknown): AcceptedCosignature {
  if (typeof note !== 'string' || Buffer.byteLength(note, 'utf8') > MAX_NOTE_BYTES)
    throw invalid(`note must be a string of at most ${MAX_NOTE_BYTES} bytes`);
  if (!(key instanceof Uint8Array) || key.byteLength !== sodium.crypto_sign_PUBLICKEYBYTES)
    throw invalid('key must be a 32-byte Ed25519 public key');
  let cp: ParsedCheckpoint;
  try {
    cp = parseCheckpoint(note);
  } catch {
    throw invalid('note is not a checkpoint');
  }
  const signer = keyInForce(log.epochRecords, cp.size);
  if (cp.origin !== log.origin || signer === undefined) throw invalid('note is not a checkpoint of this log');
  if (noteSignatureBy(cp.note, log.origin, signer.fields.publicKey) !== 'valid')
    throw invalid('note is not a checkpoint this log signed');
  const others = cp.note.signatures.filter((s) => s.name !== log.origin);
  if (others.length !== 1) throw invalid('note must carry exactly one cosignature');
  const cosig = verifyCosignature(cp.note, others[0]!.name, key);
  if (cosig === undefined) throw invalid('the cosignature does not verify by key');
  return { ...cosig, key: new Uint8Array(key), origin: cp.origin, size: cp.size, root: cp.root };
}

/** Options of `createAuditWitness`. */
export interface AuditWitnessOptions {
  /** The log's origin. */
  readonly origin: string;
  /** The witness's key name (a schema-less URL, no spaces or +), as its cosignatures carry it. */
  readonly name: string;
  /** The witness's Ed25519 secret key, libsodium's 64-byte form (`sodium.crypto_sign_keypair`). */
  readonly secretKey: Uint8Array;
  /** The log's trust anchor (epoch 0's public key); without it, the first genesis record seen. */
  readonly anchorKey?: Uint8Array;
  /** A state saved from an earlier witness of this log (`witness.state`). */
  readonly state?: AuditWitnessState;
  /** The clock of cosignatures (default `Date.now`). */
  readonly now?: () => number;
}

/** What a witness holds of a log (save it to go on after a restart). */
export interface AuditWitnessState {
  /** The log's origin. */
  readonly origin: string;
  /** The size of the last checkpoint accepted. */
  readonly size: number;
  /** Its root. */
  readonly root: Uint8Array;
  /** The epoch in force at that size. */
  readonly epoch: number;
  /** That epoch's Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** The accepted checkpoint, with the witness's cosignature (a witness checkpoint for `verifyAuditLog`). */
  readonly checkpoint: string;
}

/** The outcome of `AuditWitness.update`. */
export interface AuditWitnessResult {
  /** The checkpoint accepted, with this witness's cosignature line added. */
  readonly cosigned: string;
  /** Its size. */
  readonly size: number;
  /** True when it is larger than the one held before. */
  readonly advanced: boolean;
  /** True when the update was paged (more epochs follow: ask again). */
  readonly more: boolean;
}

/** A witness of one audit log (docs/audit.md, "Witnesses"). */
export interface AuditWitness {
  /** The witness's Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** Its key name. */
  readonly name: string;
  /** What it holds (undefined before the first update it accepted). */
  readonly state: AuditWitnessState | undefined;
  /** What to ask the log for (`$audit.checkpoint`'s params). */
  request(): AuditWitnessRequest;
  /**
   * Verify an update; on success keep its checkpoint and return it cosigned. SIPC_ERR_AUDIT_FORK
   * when it contradicts what is held (the held and the new checkpoint in `details`),
   * SIPC_ERR_AUDIT_CORRUPT (reason `witness`) when it does not verify; the state is unchanged then.
   */
  update(update: AuditWitnessUpdate): AuditWitnessResult;
  /** Zero the witness's copy of its secret key; `update` throws afterwards. */
  close(): void;
}

/**
 * A new witness Ed25519 key: libsodium's 64-byte secret key (seed || public key), in guarded
 * memory. Keep it where the application keeps its other secrets; its public half (the last 32
 * bytes) is what verifiers of its cosignatures are given.
 */
export function generateWitnessKey(): Uint8Array {
  const seed = sodium.sodium_malloc(sodium.crypto_sign_SEEDBYTES);
  const publicKey = new Uint8Array(sodium.crypto_sign_PUBLICKEYBYTES);
  const secretKey = sodium.sodium_malloc(sodium.crypto_sign_SECRETKEYBYTES);
  try {
    sodium.randombytes_buf(seed);
    sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed);
  } finally {
    sodium.sodium_memzero(seed);
  }
  return secretKey;
}

/** A witness of the audit log `origin`, holding `state` if given. */
export function createAuditWitness(options: AuditWitnessOptions): AuditWitness {
  return new Witness(options);
}

function reject(why: string): SecureIpcError {
  return createError('SIPC_ERR_AUDIT_CORRUPT', `The audit witness update does not verify: ${why}`, {
    details: { reason: 'witness' },
  });
}

const isHashList = (v: unknown): v is Uint8Array[] =>
  Array.isArray(v) &&
  v.length <= 64 &&
  v.every((h) => h instanceof Uint8Array && h.byteLength === HASH_BYTES);

/** Check the shape of an update that came from a peer (`$audit.checkpoint`'s answer). */
function checkShape(u: unknown): AuditWitnessUpdate {
  const m = u as Record<string, unknown> | undefined;
  if (typeof m !== 'object' || m === null) throw reject('not a map');
  if (typeof m.checkpoint !== 'string') throw reject('no checkpoint');
  if (!isHashList(m.consistency)) throw reject('consistency is not a list of at most 64 hashes');
  if (!Array.isArray(m.epochs) || m.epochs.length > MAX_WITNESS_EPOCHS)
    throw reject(`epochs is not a list of at most ${MAX_WITNESS_EPOCHS}`);
  for (const e of m.epochs as unknown[]) {
    const x = e as Record<string, unknown> | undefined;
    if (
      typeof x !== 'object' ||
      x === null ||
      !Number.isSafeInteger(x.index) ||
      (x.index as number) < 0 ||
      !(x.record instanceof Uint8Array) ||
      !isHashList(x.inclusion) ||
      !isHashList(x.consistency)
    )
      throw reject('an epoch entry is malformed');
  }
  return m as unknown as AuditWitnessUpdate;
}

class Witness implements AuditWitness {
  readonly name: string;
  readonly publicKey: Uint8Array;
  readonly #origin: string;
  readonly #secretKey: Uint8Array;
  readonly #anchor: Uint8Array | undefined;
  readonly #now: () => number;
  #state: AuditWitnessState | undefined;
  #closed = false;

  constructor(o: AuditWitnessOptions) {
    if (badName(o.origin))
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'An audit log origin is non-empty, without spaces or +');
    if (badName(o.name))
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'A witness name is non-empty, without spaces or +');
    if (o.secretKey?.byteLength !== sodium.crypto_sign_SECRETKEYBYTES)
      throw createError('SIPC_ERR_BAD_KEY', 'A witness secret key is 64 bytes (seed || public key)');
    if (o.anchorKey !== undefined && o.anchorKey.byteLength !== sodium.crypto_sign_PUBLICKEYBYTES)
      throw createError('SIPC_ERR_BAD_KEY', 'An anchor key is a 32-byte Ed25519 public key');
    if (o.state !== undefined && o.state.origin !== o.origin)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'The witness state is of another origin');
    this.#origin = o.origin;
    this.name = o.name;
    this.#secretKey = sodium.sodium_malloc(sodium.crypto_sign_SECRETKEYBYTES);
    this.#secretKey.set(o.secretKey);
    this.publicKey = new Uint8Array(o.secretKey.subarray(32));
    this.#anchor = o.anchorKey === undefined ? undefined : new Uint8Array(o.anchorKey);
    this.#now = o.now ?? Date.now;
    this.#state = o.state;
  }

  get state(): AuditWitnessState | undefined {
    return this.#state;
  }

  request(): AuditWitnessRequest {
    const s = this.#state;
    return s === undefined ? { size: 0 } : { size: s.size, epoch: s.epoch };
  }

  close(): void {
    sodium.sodium_memzero(this.#secretKey);
    this.#closed = true;
  }

  update(input: AuditWitnessUpdate): AuditWitnessResult {
    if (this.#closed) throw createError('SIPC_ERR_INVALID_ARGUMENT', 'The audit witness is closed');
    const u = checkShape(input);
    let cp: ParsedCheckpoint;
    try {
      cp = parseCheckpoint(u.checkpoint);
    } catch (err) {
      throw reject((err as Error).message);
    }
    if (cp.origin !== this.#origin) throw reject('the checkpoint is of another origin');
    const held = this.#state;
    const S = held?.size ?? 0;
    let epoch = held?.epoch;
    let key = held?.publicKey;
    // 2. The epochs the witness lacks, each bound to the checkpoint's tree.
    for (const entry of u.epochs) {
      let f: EpochFields;
      let n: number;
      try {
        const record = decodeAuditRecord(entry.record);
        f = parseEpochRecord(record);
        n = record.index;
      } catch (err) {
        throw reject((err as Error).message);
      }
      const want = epoch === undefined ? 0 : epoch + 1;
      if (n !== entry.index || f.epoch !== want)
        throw reject(`epoch record ${entry.index} is not epoch ${want}`);
      if (f.epoch === 0) {
        if (n !== 0 || f.origin !== this.#origin)
          throw reject('the genesis record is not record 0 of this origin');
        if (this.#anchor !== undefined && !bytesEqual(f.publicKey, this.#anchor))
          throw reject('the genesis key is not the trust anchor');
      } else {
        const text = handoverText(this.#origin, n, f.root!, f.epoch, f.publicKey);
        if (n < S || !sodium.crypto_sign_verify_detached(f.signature!, Buffer.from(text, 'utf8'), key!))
          throw reject(`the handover of epoch ${f.epoch} is not signed by epoch ${f.epoch - 1}`);
      }
      if (
        !verifyInclusion(hashLeaf(entry.record), n, cp.size, entry.inclusion, cp.root) ||
        (n > 0 && !verifyConsistency(n, cp.size, entry.consistency, f.root!, cp.root))
      )
        throw reject(`epoch record ${n} is not in the checkpoint's tree`);
      epoch = f.epoch;
      key = f.publicKey;
    }
    // 3. The checkpoint, by the key in force (no other key counts).
    if (key === undefined || noteSignatureBy(cp.note, this.#origin, key) !== 'valid')
      throw reject('the checkpoint is not signed by the key in force');
    // 4. Forks: the log went back, or shows another tree.
    if (held !== undefined) {
      const fork =
        cp.size < S
          ? 'the log is smaller than a checkpoint it signed before'
          : cp.size === S
            ? bytesEqual(cp.root, held.root)
              ? undefined
              : 'the log signed two roots for one size'
            : S > 0 && !verifyConsistency(S, cp.size, u.consistency, held.root, cp.root)
              ? 'the log does not extend the checkpoint it signed before'
              : undefined;
      if (fork !== undefined)
        throw createError('SIPC_ERR_AUDIT_FORK', `Audit log fork: ${fork}`, {
          details: { origin: this.#origin, held: held.checkpoint, presented: u.checkpoint },
        });
    }
    const line = cosignatureLine(cp.note.text, this.name, this.#secretKey, Math.floor(this.#now() / 1000));
    const cosigned = `${u.checkpoint}${line}`;
    this.#state = {
      origin: this.#origin,
      size: cp.size,
      root: cp.root,
      epoch: epoch!,
      publicKey: key,
      checkpoint: cosigned,
    };
    // A paged update's checkpoint is a handover: a checkpoint body with an extension line.
    const more = cp.note.text.split('\n').length > 4;
    return { cosigned, size: cp.size, advanced: cp.size > S, more };
  }
}
