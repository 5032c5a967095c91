/**
 * docs/vectors/outbox.json: (a) the committed file is byte for byte what scripts/outbox-vectors.ts
 * builds from this implementation, and the reference reader finds in each journal what the file
 * says; (b) a second reader, written here from docs/outbox.md alone, replays the file: it derives
 * the subkeys, rebuilds each AD, opens every record and gets its plaintext, reads every journal
 * and every anchor, and must reach the file's outcome for each. It uses libsodium (sodium-native),
 * node:zlib's CRC-32 and @msgpack/msgpack directly and nothing of src/outbox, so a format change
 * in the code that the spec does not make shows up as a disagreement here.
 */
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { crc32 } from 'node:zlib';
import { decode } from '@msgpack/msgpack';
import test from 'ava';
import { checkOutboxVectors, outboxVectors } from '../scripts/outbox-vectors.js';

// dist/test/outbox-vectors.test.js: the repository root is four levels up.
const file = new URL('../../../../docs/vectors/outbox.json', import.meta.url);
const text = readFileSync(file, 'utf8');
const doc = JSON.parse(text);
const unhex = (s: string) => Buffer.from(s, 'hex');
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');

test('docs/vectors/outbox.json is byte for byte what scripts/outbox-vectors.ts builds (npm run vectors)', (t) => {
  t.is(text, `${JSON.stringify(outboxVectors(), null, 2)}\n`);
});

test('the reference journal reader and anchor decoder reach every outcome the file states', async (t) => {
  await t.notThrowsAsync(checkOutboxVectors(doc));
});

// --- (b) a reader written from docs/outbox.md ------------------------------------------------

/** The three libsodium functions the spec names. */
interface Sodium {
  crypto_kdf_derive_from_key(subkey: Uint8Array, id: number, context: Uint8Array, key: Uint8Array): void;
  crypto_aead_xchacha20poly1305_ietf_decrypt(
    message: Uint8Array,
    nsec: null,
    ciphertext: Uint8Array,
    ad: Uint8Array,
    nonce: Uint8Array,
    key: Uint8Array,
  ): number;
  crypto_generichash(out: Uint8Array, input: Uint8Array, key?: Uint8Array): void;
}
const sodium = createRequire(import.meta.url)('sodium-native') as Sodium;

// "Keys": subkeys 1 (records) and 2 (anchor), context sipcobx1.
function subkey(master: Buffer, id: number): Buffer {
  const out = Buffer.alloc(32);
  sodium.crypto_kdf_derive_from_key(out, id, Buffer.from('sipcobx1'), master);
  return out;
}
const master = unhex(doc.masterKey);
const kRec = subkey(master, 1);
const kAnchor = subkey(master, 2);

function blake2b256(input: Uint8Array, key?: Uint8Array): Buffer {
  const out = Buffer.alloc(32);
  if (key === undefined) sodium.crypto_generichash(out, input);
  else sodium.crypto_generichash(out, input, key);
  return out;
}
const u64 = (n: number) => {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
};

// "The journal format".
const HEADER = Buffer.from('SIPC-OUTBOX 1\n', 'ascii');
const HEADER_BYTES = HEADER.byteLength + 16;
const MIN_L = 50;
const MAX_L = 1_048_626;
const BODY_HEAD = 34; // version 1 · type 1 · seq 8 · nonce 24

/** AD = "sipc-outbox" · outbox id (16) · version u8 · type u8 · seq u64. */
const adOf = (id: Buffer, version: number, type: number, seq: bigint) => {
  const seqBytes = Buffer.alloc(8);
  seqBytes.writeBigUInt64BE(seq);
  return Buffer.concat([Buffer.from('sipc-outbox', 'ascii'), id, Buffer.from([version, type]), seqBytes]);
};

/** The framed length of a whole record at `at` (magic, L in range, ~L, all bytes present), or undefined. */
function wholeAt(j: Buffer, at: number): number | undefined {
  if (at + 12 > j.byteLength || !j.subarray(at, at + 4).equals(Buffer.from('SOBX'))) return undefined;
  const L = j.readUInt32BE(at + 4);
  if (L < MIN_L || L > MAX_L || ~L >>> 0 !== j.readUInt32BE(at + 8)) return undefined;
  return at + 12 + L + 4 <= j.byteLength ? 12 + L + 4 : undefined;
}

const isUint = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isStr = (v: unknown) => typeof v === 'string';

/** The plaintext table: a missing or mistyped known key is malformed; unknown keys are ignored. */
function wellFormed(type: number, plain: Uint8Array): Record<string, unknown> | undefined {
  let v: unknown;
  try {
    v = decode(plain);
  } catch {
    return undefined;
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v) || v instanceof Uint8Array) return undefined;
  const m = v as Record<string, unknown>;
  const ok =
    type === 1
      ? isUint(m.n) && m.h instanceof Uint8Array && m.h.byteLength === 32
      : type === 3
        ? isUint(m.s) && (m.r === 'ok' || m.r === 'failed' || m.r === 'expired')
        : isStr(m.m) &&
          isStr(m.k) &&
          isUint(m.t) &&
          (m.l === undefined || isStr(m.l)) &&
          (m.x === undefined || isUint(m.x));
  return ok ? m : undefined;
}

type Opened =
  | { ok: true; type: number; seq: number; plain: Buffer; body: Record<string, unknown> }
  | { ok: false; seq: number | undefined; reason: string };

/** Reading a journal, step 1: is a whole record valid, and what does it hold. */
function openWhole(id: Buffer, key: Buffer, framed: Buffer): Opened {
  const L = framed.readUInt32BE(4);
  const body = framed.subarray(12, 12 + L);
  const big = body.readBigUInt64BE(2);
  const seq = big >= 1n && big <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(big) : undefined;
  if (crc32(body) !== framed.readUInt32BE(12 + L)) return { ok: false, seq, reason: 'crc' };
  if (body[0] !== 1) return { ok: false, seq, reason: 'version' };
  const type = body[1]!;
  if (type < 1 || type > 3) return { ok: false, seq, reason: 'type' };
  if (seq === undefined) return { ok: false, seq, reason: 'malformed' };
  const plain = Buffer.alloc(L - BODY_HEAD - 16);
  try {
    sodium.crypto_aead_xchacha20poly1305_ietf_decrypt(
      plain,
      null,
      body.subarray(BODY_HEAD),
      adOf(id, 1, type, big),
      body.subarray(10, BODY_HEAD),
      key,
    );
  } catch {
    return { ok: false, seq, reason: 'tag' };
  }
  const decoded = wellFormed(type, plain);
  return decoded === undefined
    ? { ok: false, seq, reason: 'malformed' }
    : { ok: true, type, seq, plain, body: decoded };
}

interface Quarantined {
  offset: number;
  length: number;
  seq: number | undefined;
  reason: string;
}

/**
 * Step 2, the layout: CHECKPOINT(C, n, h) · n carried ENQUEUEs (seqs increasing, below C, hashing
 * to h) · seqs C+1, C+2, ... A record out of place is 'order'; a gap after the carried ones is
 * 'missing' (the record after it is in its place). Returns whether the record is accepted.
 *
 * Two rules here are the layout's, not step 2's words: step 2 says an accepted record's seq is
 * "larger than the last accepted one", which no carried entry is (all are below C); the layout
 * ("seqs increasing, all < C") is what is followed: a carried entry is compared with the previous
 * carried one. And see `damagedInPlace`.
 */
class Layout {
  last = 0;
  checkpoint: { seq: number; n: number; h: Buffer } | undefined;
  carried: number[] = [];
  next = 0;
  constructor(private readonly quarantine: (q: Quarantined) => void) {}

  place(offset: number, r: { type: number; seq: number; body: Record<string, unknown> }): boolean {
    if (this.checkpoint !== undefined && this.next === 0) {
      const previous = this.carried.at(-1) ?? 0;
      if (r.type === 2 && r.seq < this.checkpoint.seq && r.seq > previous) {
        this.carried.push(r.seq);
        if (this.carried.length === this.checkpoint.n) this.endCarried(offset);
        return true;
      }
      this.endCarried(offset);
    }
    if (r.seq <= this.last) return false;
    if (this.checkpoint === undefined) {
      if (r.type !== 1) return false;
      this.checkpoint = { seq: r.seq, n: r.body.n as number, h: Buffer.from(r.body.h as Uint8Array) };
      if (this.checkpoint.n === 0) this.endCarried(offset);
      return true;
    }
    if (r.type === 1 || r.seq < this.next) return false;
    if (r.seq > this.next) this.quarantine({ offset, length: 0, seq: this.next, reason: 'missing' });
    this.next = r.seq + 1;
    return true;
  }

  /**
   * A record that is not valid but claims the next seq after the carried ones takes that place:
   * no 'missing' follows it. docs/outbox.md does not say this (a gap is "a deleted record"); the
   * reference reader does it (journal.ts), and the vectors' flipped-byte cases depend on it.
   */
  damagedInPlace(seq: number | undefined): void {
    if (this.checkpoint !== undefined && this.next !== 0 && seq === this.next) this.next++;
  }

  endCarried(offset: number): void {
    const cp = this.checkpoint!;
    const h = blake2b256(Buffer.concat(this.carried.map(u64)));
    if (this.carried.length !== cp.n || !h.equals(cp.h))
      this.quarantine({ offset, length: 0, seq: cp.seq, reason: 'checkpoint' });
    this.next = cp.seq + 1;
  }
}

/** Steps 1 to 4 over a whole journal: what the vectors state for it. */
function readJournal(j: Buffer, key: Buffer) {
  if (!j.subarray(0, HEADER.byteLength).equals(HEADER)) throw new Error('not an outbox journal');
  const id = j.subarray(HEADER.byteLength, HEADER_BYTES);
  const quarantined: Quarantined[] = [];
  const layout = new Layout((q) => quarantined.push(q));
  const live = new Set<number>();
  let highestSeq = 0;
  let pos = HEADER_BYTES;
  let end = pos;
  while (pos < j.byteLength) {
    const length = wholeAt(j, pos);
    if (length === undefined) {
      // Step 3/4: on at the next offset where a whole record starts, or a torn tail.
      let next = pos + 1;
      while (next < j.byteLength && wholeAt(j, next) === undefined) next++;
      if (next >= j.byteLength) break;
      quarantined.push({ offset: pos, length: next - pos, seq: undefined, reason: 'framing' });
      pos = next;
      continue;
    }
    const r = openWhole(id, key, j.subarray(pos, pos + length));
    if (r.seq !== undefined) highestSeq = Math.max(highestSeq, r.seq);
    if (!r.ok) {
      quarantined.push({ offset: pos, length, seq: r.seq, reason: r.reason });
      layout.damagedInPlace(r.seq);
    } else if (!layout.place(pos, r)) quarantined.push({ offset: pos, length, seq: r.seq, reason: 'order' });
    else {
      layout.last = r.seq;
      if (r.type === 2) live.add(r.seq);
      if (r.type === 3) live.delete(r.body.s as number);
    }
    pos += length;
    end = pos;
  }
  if (layout.checkpoint !== undefined && layout.next === 0) layout.endCarried(end);
  return { quarantined, live: [...live], highestSeq, tornBytes: j.byteLength - end };
}

/** "Rollback: the anchor": id (16) · seq u64 · first 8 bytes of keyed BLAKE2b-256. */
function readAnchor(a: Buffer): { id: string; seq: number } | undefined {
  if (a.byteLength !== 32) return undefined;
  const input = Buffer.concat([Buffer.from('sipc-outbox-anchor', 'ascii'), a.subarray(0, 24)]);
  if (!blake2b256(input, kAnchor).subarray(0, 8).equals(a.subarray(24))) return undefined;
  return { id: hex(a.subarray(0, 16)), seq: Number(a.readBigUInt64BE(16)) };
}

/** A decoded plaintext in the file's terms (a CHECKPOINT's h in hex). */
const asJson = (body: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(body).map(([k, v]) => [k, v instanceof Uint8Array ? hex(v) : v]));

test('spec reader: the subkeys, the header and a new CHECKPOINT h are what the spec derives', (t) => {
  t.is(hex(kRec), doc.recordKey);
  t.is(hex(kAnchor), doc.anchorKey);
  t.not(doc.recordKey, doc.anchorKey);
  t.is(doc.header, hex(Buffer.concat([HEADER, unhex(doc.outboxId)])));
  t.is(doc.records[0].body.h, hex(blake2b256(Buffer.alloc(0))), 'h of a new outbox: BLAKE2b-256 of nothing');
});

test('spec reader: every record frames, opens under its AD and gives its plaintext and body', (t) => {
  const id = unhex(doc.outboxId);
  t.deepEqual(
    doc.records.map((r: { type: number }) => r.type),
    [1, 2, 2, 2, 3, 3, 3],
  );
  for (const r of doc.records) {
    const framed = unhex(r.record);
    t.is(wholeAt(framed, 0), framed.byteLength, `${r.name}: one whole record`);
    const body = framed.subarray(12, framed.byteLength - 4);
    t.deepEqual([body[0], body[1], Number(body.readBigUInt64BE(2))], [1, r.type, r.seq], r.name);
    t.is(hex(body.subarray(10, BODY_HEAD)), r.nonce, `${r.name}: nonce`);
    t.is(hex(adOf(id, 1, r.type, BigInt(r.seq))), r.ad, `${r.name}: AD`);
    t.is(unhex(r.ad).byteLength, 37);
    const opened = openWhole(id, kRec, framed);
    if (!opened.ok) {
      t.fail(`${r.name}: ${opened.reason}`);
      continue;
    }
    t.is(hex(opened.plain), r.plaintext, `${r.name}: plaintext`);
    t.deepEqual(asJson(opened.body), r.body, `${r.name}: body`);
  }
});

test('spec reader: each valid journal is the header and whole records, read with nothing quarantined', (t) => {
  const base = unhex(doc.journals[0].journal);
  t.true(
    base.equals(
      Buffer.concat([unhex(doc.header), ...doc.records.slice(0, 5).map((r: any) => unhex(r.record))]),
    ),
  );
  for (const v of doc.journals) {
    const found = readJournal(unhex(v.journal), kRec);
    t.deepEqual(found.quarantined, [], v.name);
    t.deepEqual(
      found,
      { quarantined: v.quarantined, live: v.live, highestSeq: v.highestSeq, tornBytes: v.tornBytes },
      v.name,
    );
  }
});

test('spec reader: each refused case is refused for the stated reason, the rest of its journal kept', (t) => {
  const reasons = new Set<string>();
  for (const v of doc.refused) {
    const found = readJournal(unhex(v.journal), kRec);
    t.deepEqual(
      found,
      { quarantined: v.quarantined, live: v.live, highestSeq: v.highestSeq, tornBytes: v.tornBytes },
      v.name,
    );
    for (const q of found.quarantined) reasons.add(q.reason);
  }
  t.deepEqual([...reasons].sort(), ['crc', 'missing', 'order', 'tag', 'type', 'version']);
  t.true(
    doc.refused.some((v: { tornBytes: number }) => v.tornBytes > 0),
    'a torn tail among them',
  );
});

test('spec reader: under another record key every record of the journal fails its tag', (t) => {
  const found = readJournal(unhex(doc.journals[0].journal), kAnchor);
  t.deepEqual(
    found.quarantined.map((q) => q.reason),
    ['tag', 'tag', 'tag', 'tag', 'tag'],
  );
  t.deepEqual(found.live, []);
});

test('spec reader: anchors are accepted with their id and seq, or refused, as stated', (t) => {
  t.is(doc.anchors.filter((a: { outcome: string }) => a.outcome === 'valid').length, 1);
  for (const a of doc.anchors) {
    const got = readAnchor(unhex(a.anchor));
    const ok = got !== undefined && got.id === doc.outboxId;
    t.is(ok ? 'valid' : 'refused', a.outcome, a.name);
    if (ok) t.deepEqual(got, { id: a.id, seq: a.seq }, a.name);
  }
  const valid = doc.anchors.find((a: { outcome: string }) => a.outcome === 'valid');
  t.is(valid.seq, doc.journals[0].highestSeq, 'the anchor is at the journal’s highest seq');
});
