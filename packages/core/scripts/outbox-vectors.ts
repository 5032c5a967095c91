/**
 * The outbox vectors (docs/vectors/outbox.json; format docs/outbox.md, "The journal format",
 * "Reading a journal: integrity", "Rollback: the anchor"), built from this implementation with a
 * fixed master key, outbox id and nonces: `outboxVectors()` makes the bytes with the format's own
 * sealer (the refused cases are hand-made variations of them) and states what a reader must do
 * with each; `checkOutboxVectors()` replays every stated outcome through the journal reader and
 * the anchor decoder and throws on any disagreement. scripts/generate-vectors.ts runs the check
 * before it writes; test/outbox-vectors.test.ts runs it again and replays the file with a reader
 * of its own written from the spec.
 */
import { crc32 } from 'node:zlib';
import { sodium } from '../src/crypto/sodium.js';
import {
  decodeAnchor,
  deriveOutboxKeys,
  encodeAnchor,
  FRAME_HEAD_BYTES,
  HEADER_BYTES,
  journalHeader,
  type OutboxKeys,
  openRecord,
  type RecordBody,
  RecordType,
  recordAd,
  sealRecord,
  seqListHash,
} from '../src/outbox/format.js';
import { bufferSource, LiveIndex, scanJournal } from '../src/outbox/journal.js';

const hex = (bytes: Uint8Array): string => Buffer.from(bytes).toString('hex');

function expect(condition: boolean, what: string): void {
  if (!condition) throw new Error(`outbox vector generation: ${what}`);
}

/** The fixed inputs. */
const MASTER = Buffer.from(Array.from({ length: 32 }, (_, i) => 0x80 + i));
const OUTBOX_ID = Buffer.from('a0a1a2a3a4a5a6a7a8a9aaabacadaeaf', 'hex');
const OTHER_ID = Buffer.from('b0b1b2b3b4b5b6b7b8b9babbbcbdbebf', 'hex');
const T = 1_767_225_600_000; // 2026-01-01T00:00:00Z
/** Record `seq`'s nonce: bytes seq·16, seq·16 + 1, ... (mod 256). */
const nonceOf = (seq: number) => Buffer.from(Array.from({ length: 24 }, (_, i) => (seq * 16 + i) & 0xff));
const keyOf = (seq: number) => `obx-${hex(OUTBOX_ID)}-${seq}`;

/** A record to build: its name, seq and plaintext body. */
interface RecordCase {
  readonly name: string;
  readonly seq: number;
  readonly body: RecordBody;
}

const CASES: readonly RecordCase[] = [
  { name: 'CHECKPOINT of a new outbox (n 0)', seq: 1, body: { type: 1, n: 0, h: seqListHash([]) } },
  {
    name: 'ENQUEUE with params, lane and ttl',
    seq: 2,
    body: {
      type: 2,
      method: 'orders.place',
      params: { sku: 'A-1', qty: 2, tags: ['gift'] },
      idempotencyKey: keyOf(2),
      lane: 'orders',
      enqueuedAt: T,
      expiresAt: T + 3_600_000,
    },
  },
  {
    name: 'ENQUEUE minimal (no params, the default lane, no expiry)',
    seq: 3,
    body: {
      type: 2,
      method: 'audit.flush',
      params: undefined,
      idempotencyKey: keyOf(3),
      lane: undefined,
      enqueuedAt: T + 1_000,
      expiresAt: undefined,
    },
  },
  {
    name: 'ENQUEUE with params and lane, no expiry',
    seq: 4,
    body: {
      type: 2,
      method: 'orders.place',
      params: { sku: 'B-2', qty: 1 },
      idempotencyKey: keyOf(4),
      lane: 'orders',
      enqueuedAt: T + 2_000,
      expiresAt: undefined,
    },
  },
  { name: 'DONE ok', seq: 5, body: { type: 3, seq: 3, result: 'ok' } },
  { name: 'DONE failed', seq: 6, body: { type: 3, seq: 2, result: 'failed' } },
  { name: 'DONE expired', seq: 7, body: { type: 3, seq: 4, result: 'expired' } },
];

/** A plaintext as the vectors show it (msgpack keys; `h` in hex). */
function bodyJson(body: RecordBody): Record<string, unknown> {
  if (body.type === RecordType.CHECKPOINT) return { n: body.n, h: hex(body.h) };
  if (body.type === RecordType.DONE) return { s: body.seq, r: body.result };
  const out: Record<string, unknown> = { m: body.method, k: body.idempotencyKey, t: body.enqueuedAt };
  if (body.params !== undefined) out.p = body.params;
  if (body.lane !== undefined) out.l = body.lane;
  if (body.expiresAt !== undefined) out.x = body.expiresAt;
  return out;
}

/** The plaintext sealed in a framed record (decrypted with K_rec: what the sealer really wrote). */
function plaintextOf(keys: OutboxKeys, id: Uint8Array, framed: Buffer): Buffer {
  const L = framed.readUInt32BE(4);
  const body = framed.subarray(FRAME_HEAD_BYTES, FRAME_HEAD_BYTES + L);
  const plain = Buffer.alloc(L - 34 - 16);
  sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
    plain,
    null,
    body.subarray(34),
    recordAd(id, body[0]!, body[1]!, Number(body.readBigUInt64BE(2))),
    body.subarray(10, 34),
    keys.records,
  );
  return plain;
}

/** A copy of a framed record with `edit` applied to its body, and its CRC recomputed. */
function rewritten(framed: Buffer, edit: (body: Buffer) => void): Buffer {
  const out = Buffer.from(framed);
  const L = out.readUInt32BE(4);
  const body = out.subarray(FRAME_HEAD_BYTES, FRAME_HEAD_BYTES + L);
  edit(body);
  out.writeUInt32BE(crc32(body), FRAME_HEAD_BYTES + L);
  return out;
}

/** A copy with one byte XORed with 0x01. */
function flipped(framed: Buffer, at: number): Buffer {
  const out = Buffer.from(framed);
  out[at] = out[at]! ^ 0x01;
  return out;
}

/** What a reader must find in a journal. */
interface Expected {
  /** Quarantined: the index of the part it is (or, for `missing`, the part after the gap). */
  readonly quarantined: ReadonlyArray<{ part: number; seq: number; reason: string; gap?: true }>;
  /** Live entries' seqs, in order. */
  readonly live: readonly number[];
  readonly highestSeq: number;
  /** Bytes of a torn tail. */
  readonly tornBytes?: number;
}

/** A journal vector: its bytes, and what a reader finds (offsets into the journal). */
function journalVector(name: string, parts: readonly Buffer[], want: Expected): Record<string, unknown> {
  const offsets: number[] = [];
  let at = HEADER_BYTES;
  for (const p of parts) {
    offsets.push(at);
    at += p.byteLength;
  }
  return {
    name,
    journal: hex(Buffer.concat([journalHeader(OUTBOX_ID), ...parts])),
    quarantined: want.quarantined.map((q) => ({
      offset: offsets[q.part],
      length: q.gap === true ? 0 : parts[q.part]!.byteLength,
      seq: q.seq,
      reason: q.reason,
    })),
    live: want.live,
    highestSeq: want.highestSeq,
    tornBytes: want.tornBytes ?? 0,
  };
}

/** The refused cases, on the journal CHECKPOINT 1 · ENQUEUE 2, 3, 4 · DONE 5 (of 3). */
function refusedJournals(keys: OutboxKeys, r: readonly Buffer[]): Record<string, unknown>[] {
  const [c1, e2, e3, e4, d5] = r as [Buffer, Buffer, Buffer, Buffer, Buffer];
  // A byte of the ciphertext: 3 bytes into it (body offset 34 + 3).
  const flipCiphertext = (b: Buffer) => {
    b[37] = b[37]! ^ 0x01;
  };
  const foreign = sealRecord(keys, OTHER_ID, 3, CASES[2]!.body, nonceOf(3));
  const kept = { live: [2, 4], highestSeq: 5 };
  return [
    journalVector('ENQUEUE 3 with a flipped CRC byte', [c1, e2, flipped(e3, e3.byteLength - 1), e4, d5], {
      quarantined: [{ part: 2, seq: 3, reason: 'crc' }],
      ...kept,
    }),
    journalVector(
      'ENQUEUE 3 with a flipped ciphertext byte (CRC recomputed)',
      [c1, e2, rewritten(e3, flipCiphertext), e4, d5],
      { quarantined: [{ part: 2, seq: 3, reason: 'tag' }], ...kept },
    ),
    journalVector(
      'ENQUEUE 3 with version 2 (CRC recomputed)',
      [c1, e2, rewritten(e3, (b) => (b[0] = 2)), e4, d5],
      { quarantined: [{ part: 2, seq: 3, reason: 'version' }], ...kept },
    ),
    journalVector(
      'ENQUEUE 3 with the unknown type 9 (CRC recomputed)',
      [c1, e2, rewritten(e3, (b) => (b[1] = 9)), e4, d5],
      { quarantined: [{ part: 2, seq: 3, reason: 'type' }], ...kept },
    ),
    journalVector(
      'ENQUEUE 3 sealed for another outbox id (same key, seq and nonce)',
      [c1, e2, foreign, e4, d5],
      {
        quarantined: [{ part: 2, seq: 3, reason: 'tag' }],
        ...kept,
      },
    ),
    journalVector(
      'ENQUEUE 3 with its seq changed to 6 (CRC recomputed): a bad tag, then 3 is missing',
      [c1, e2, rewritten(e3, (b) => b.writeBigUInt64BE(6n, 2)), e4, d5],
      {
        quarantined: [
          { part: 2, seq: 6, reason: 'tag' },
          { part: 3, seq: 3, reason: 'missing', gap: true },
        ],
        live: [2, 4],
        highestSeq: 6,
      },
    ),
    journalVector(
      'ENQUEUE 3 and 4 swapped: 3 is missing before 4, then 3 is out of order',
      [c1, e2, e4, e3, d5],
      {
        quarantined: [
          { part: 2, seq: 3, reason: 'missing', gap: true },
          { part: 3, seq: 3, reason: 'order' },
        ],
        ...kept,
      },
    ),
    journalVector('ENQUEUE 3 replayed after DONE 5', [c1, e2, e3, e4, d5, e3], {
      quarantined: [{ part: 5, seq: 3, reason: 'order' }],
      ...kept,
    }),
    journalVector('ENQUEUE 3 deleted', [c1, e2, e4, d5], {
      quarantined: [{ part: 2, seq: 3, reason: 'missing', gap: true }],
      ...kept,
    }),
    journalVector(
      'cut in the middle of DONE 5 (a torn tail of 20 bytes)',
      [c1, e2, e3, e4, d5.subarray(0, 20)],
      {
        quarantined: [],
        live: [2, 3, 4],
        highestSeq: 4,
        tornBytes: 20,
      },
    ),
  ];
}

/** The vector document (docs/vectors/outbox.json). */
export function outboxVectors(): unknown {
  const keys = deriveOutboxKeys(MASTER);
  try {
    const framed = CASES.map((c) => sealRecord(keys, OUTBOX_ID, c.seq, c.body, nonceOf(c.seq)));
    const records = CASES.map((c, i) => ({
      name: c.name,
      type: c.body.type,
      seq: c.seq,
      nonce: hex(nonceOf(c.seq)),
      plaintext: hex(plaintextOf(keys, OUTBOX_ID, framed[i]!)),
      body: bodyJson(c.body),
      ad: hex(recordAd(OUTBOX_ID, 1, c.body.type, c.seq)),
      record: hex(framed[i]!),
    }));
    for (const [i, f] of framed.entries())
      expect(openRecord(keys, OUTBOX_ID, f).ok, `${CASES[i]!.name} opens`);
    const compactedCheckpoint = sealRecord(
      keys,
      OUTBOX_ID,
      8,
      { type: 1, n: 2, h: seqListHash([2, 4]) },
      nonceOf(8),
    );
    const done9 = sealRecord(keys, OUTBOX_ID, 9, { type: 3, seq: 2, result: 'ok' }, nonceOf(9));
    const base = framed.slice(0, 5);
    const anchor = encodeAnchor(keys, OUTBOX_ID, 5);
    return {
      description:
        'The encrypted outbox journal (docs/outbox.md, "Keys", "The journal format", "Reading a journal: integrity", "Rollback: the anchor"). Bytes are lowercase hex. `masterKey` M gives `recordKey` (subkey 1) and `anchorKey` (subkey 2) by crypto_kdf_derive_from_key with `kdfContext`. `records`: one record of each type sealed with a fixed `nonce` under `outboxId`: `plaintext` (msgpack; `body` is what it decodes to, `h` in hex), `ad` and the framed `record`. `journals`: whole journals (the header, then records) that a reader opens with nothing quarantined; `refused`: journals with one record changed, moved, replayed, removed or cut, each with what a reader finds: `quarantined` (`offset` and `length` of the record in the journal, length 0 for a gap, which names the first missing `seq` at the offset of the record after it; the record `seq` claims; `reason`), the `live` entries (ENQUEUE seqs without a DONE, in order), `highestSeq` (of an accepted or quarantined whole record) and `tornBytes`. `anchors`: 32-byte anchors, `valid` (with the `id` and `seq` they hold) or `refused` (the tag does not match).',
      masterKey: hex(MASTER),
      kdfContext: 'sipcobx1',
      recordKey: hex(keys.records),
      anchorKey: hex(keys.anchor),
      outboxId: hex(OUTBOX_ID),
      header: hex(journalHeader(OUTBOX_ID)),
      records,
      journals: [
        journalVector('CHECKPOINT 1 · ENQUEUE 2, 3, 4 · DONE 5 (of 3)', base, {
          quarantined: [],
          live: [2, 4],
          highestSeq: 5,
        }),
        journalVector(
          'compacted: CHECKPOINT 8 (n 2, h of [2, 4]) · ENQUEUE 2, 4 (copied) · DONE 9 (of 2)',
          [compactedCheckpoint, framed[1]!, framed[3]!, done9],
          { quarantined: [], live: [4], highestSeq: 9 },
        ),
      ],
      refused: refusedJournals(keys, base),
      anchors: [
        { name: 'the journal at seq 5', anchor: hex(anchor), outcome: 'valid', id: hex(OUTBOX_ID), seq: 5 },
        { name: 'a flipped tag byte', anchor: hex(flipped(anchor, 31)), outcome: 'refused' },
        {
          name: 'seq 6 with the tag of seq 5',
          anchor: hex(
            Buffer.concat([
              anchor.subarray(0, 16),
              Buffer.from('0000000000000006', 'hex'),
              anchor.subarray(24),
            ]),
          ),
          outcome: 'refused',
        },
        {
          name: 'another outbox id with the tag of this one',
          anchor: hex(Buffer.concat([OTHER_ID, anchor.subarray(16)])),
          outcome: 'refused',
        },
      ],
    };
  } finally {
    sodium.sodium_memzero(keys.records);
    sodium.sodium_memzero(keys.anchor);
  }
}

/** What the journal reader finds in a journal vector, in the vector's terms. */
export async function readWithReference(keys: OutboxKeys, journal: Buffer): Promise<Record<string, unknown>> {
  const index = new LiveIndex();
  const scan = await scanJournal(bufferSource(journal), keys, 'vector', index.add);
  return {
    quarantined: scan.quarantined.map((q) => ({
      offset: q.offset,
      length: q.length,
      seq: q.seq,
      reason: q.reason,
    })),
    live: [...index.entries.keys()],
    highestSeq: scan.highestSeq,
    tornBytes: scan.tornBytes,
  };
}

/** Replay every outcome `doc` states through the reference reader; throw on a disagreement. */
export async function checkOutboxVectors(doc: any): Promise<void> {
  const keys = deriveOutboxKeys(Buffer.from(doc.masterKey, 'hex'));
  try {
    for (const v of [...doc.journals, ...doc.refused]) {
      const got = JSON.stringify(await readWithReference(keys, Buffer.from(v.journal, 'hex')));
      const want = JSON.stringify({
        quarantined: v.quarantined,
        live: v.live,
        highestSeq: v.highestSeq,
        tornBytes: v.tornBytes,
      });
      expect(got === want, `${v.name}: the reader found ${got}, the vector says ${want}`);
    }
    for (const a of doc.anchors) {
      const got = decodeAnchor(keys, Buffer.from(a.anchor, 'hex'));
      const ok = got !== undefined && hex(got.id) === doc.outboxId;
      expect(ok === (a.outcome === 'valid') && (!ok || got.seq === a.seq), `anchor ${a.name}`);
    }
  } finally {
    sodium.sodium_memzero(keys.records);
    sodium.sodium_memzero(keys.anchor);
  }
}
