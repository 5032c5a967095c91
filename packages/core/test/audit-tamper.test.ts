/**
 * Tampering with a real audit log directory, one kind of edit per test, and what verifyAuditLog
 * reports: an edited, deleted, moved or inserted record at its index; a truncated tail caught by
 * a witness's checkpoint; a checkpoint re-signed with a later epoch's key refused (the
 * CVE-2023-31439 lesson); a torn tail; a removed segment; any flipped byte.
 */
import { appendFile, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { frame, readEpochKey, readFrameFile, segmentName } from '../src/audit/files.js';
import { openAuditLog } from '../src/audit/log.js';
import { hashLeaf } from '../src/audit/merkle.js';
import { parseCheckpoint, signNote } from '../src/audit/note.js';
import { decodeAuditRecord, encodeAuditRecord } from '../src/audit/record.js';
import { type AuditReport, verifyAuditLog } from '../src/audit/verify.js';

const ORIGIN = 'example.com/test/tamper';

/** A closed log of `n` records (genesis included) with a checkpoint every 2; its anchor. */
async function makeLog(t: { teardown(fn: () => Promise<void>): void }, n = 10, rotateAt?: number) {
  const base = await mkdtemp(join(tmpdir(), 'sipc-audit-tamper-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const dir = join(base, 'log');
  const log = await openAuditLog({ dir, origin: ORIGIN, checkpointEvery: 2 });
  let epoch1Key: Awaited<ReturnType<typeof readEpochKey>> | undefined;
  while (log.size < n) {
    if (log.size === rotateAt) {
      await log.rotateEpoch();
      epoch1Key = await readEpochKey(dir, 1); // what a thief of epoch 1's key has
      continue;
    }
    await log.append({ type: 'event', fields: { i: log.size, who: 'alice' } });
  }
  const anchor = log.anchorKey;
  await log.close();
  const lastCheckpoint = log.lastCheckpoint!; // the close checkpoint, of all n records
  return { dir, anchor, lastCheckpoint, epoch1Key };
}

async function segments(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith('audit-')).sort();
}

async function readRecords(dir: string): Promise<Uint8Array[]> {
  const out: Uint8Array[] = [];
  for (const s of await segments(dir)) out.push(...(await readFrameFile(join(dir, s), 1e7)).frames);
  return out.map((f) => new Uint8Array(f));
}

/** Replace the whole log's records with `frames`, in one segment. */
async function writeRecords(dir: string, frames: Uint8Array[]): Promise<void> {
  for (const s of await segments(dir)) await rm(join(dir, s));
  await writeFile(join(dir, segmentName(0)), Buffer.concat(frames.map(frame)), { mode: 0o600 });
}

async function readCheckpoints(dir: string): Promise<string[]> {
  return (await readFrameFile(join(dir, 'checkpoints.log'), 1e7)).frames.map((f) =>
    Buffer.from(f).toString('utf8'),
  );
}

async function writeCheckpoints(dir: string, notes: string[]): Promise<void> {
  await writeFile(join(dir, 'checkpoints.log'), Buffer.concat(notes.map((n) => frame(Buffer.from(n)))), {
    mode: 0o600,
  });
}

const kinds = (r: AuditReport) => r.problems.map((p) => `${p.kind}@${p.index}`);

test('an untouched log verifies', async (t) => {
  const { dir, anchor } = await makeLog(t);
  const r = await verifyAuditLog(dir, { anchorKey: anchor });
  t.deepEqual(kinds(r), []);
  t.true(r.ok);
});

test('an edited record is reported at its index', async (t) => {
  const { dir, anchor } = await makeLog(t);
  const frames = await readRecords(dir);
  const rec = decodeAuditRecord(frames[4]!);
  frames[4] = encodeAuditRecord({ ...rec, fields: { ...rec.fields, who: 'mallory' } });
  await writeRecords(dir, frames);
  t.deepEqual(kinds(await verifyAuditLog(dir, { anchorKey: anchor })), ['edited@4']);
});

test('an edited last record (no successor) is caught by the closing checkpoint', async (t) => {
  const { dir, anchor } = await makeLog(t);
  const frames = await readRecords(dir);
  const rec = decodeAuditRecord(frames[9]!);
  frames[9] = encodeAuditRecord({ ...rec, fields: { ...rec.fields, who: 'mallory' } });
  await writeRecords(dir, frames);
  const r = await verifyAuditLog(dir, { anchorKey: anchor });
  t.deepEqual(kinds(r), ['edited@9']);
  t.is(r.problems[0]!.toIndex, 9);
});

test('a deleted record is reported at its index', async (t) => {
  const { dir, anchor } = await makeLog(t);
  const frames = await readRecords(dir);
  frames.splice(5, 1);
  await writeRecords(dir, frames);
  t.deepEqual(kinds(await verifyAuditLog(dir, { anchorKey: anchor })), ['deleted@5']);
});

test('two swapped records are reported as reordered at the first', async (t) => {
  const { dir, anchor } = await makeLog(t);
  const frames = await readRecords(dir);
  [frames[3], frames[4]] = [frames[4]!, frames[3]!];
  await writeRecords(dir, frames);
  t.deepEqual(kinds(await verifyAuditLog(dir, { anchorKey: anchor })), ['reordered@3']);
});

test('an inserted record, even one forged with the right index and chain hash, is reported at its index', async (t) => {
  const { dir, anchor } = await makeLog(t);
  const frames = await readRecords(dir);
  const forged = encodeAuditRecord({
    index: 6,
    prev: hashLeaf(frames[5]!),
    type: 'event',
    at: Date.now(),
    fields: { who: 'mallory' },
  });
  frames.splice(6, 0, forged);
  await writeRecords(dir, frames);
  t.deepEqual(kinds(await verifyAuditLog(dir, { anchorKey: anchor })), ['inserted@6']);
  // And one with a wrong index.
  const again = await readRecords(dir);
  again[6] = encodeAuditRecord({ index: 40, prev: undefined, type: 'event', at: 1, fields: {} });
  await writeRecords(dir, again);
  t.deepEqual(kinds(await verifyAuditLog(dir, { anchorKey: anchor })), ['inserted@6']);
});

test('a truncated tail with its checkpoints removed is caught by a witness checkpoint', async (t) => {
  const { dir, anchor, lastCheckpoint } = await makeLog(t);
  const frames = await readRecords(dir);
  await writeRecords(dir, frames.slice(0, 7)); // a checkpoint covers exactly 7
  await writeCheckpoints(
    dir,
    (await readCheckpoints(dir)).filter((n) => parseCheckpoint(n).size <= 7),
  );
  // Alone the shortened log is self-consistent: only a checkpoint held elsewhere shows the cut.
  t.deepEqual(kinds(await verifyAuditLog(dir, { anchorKey: anchor })), []);
  const r = await verifyAuditLog(dir, { anchorKey: anchor, witnessCheckpoints: [lastCheckpoint] });
  t.deepEqual(kinds(r), ['truncated@7']);
  t.is(r.problems[0]!.toIndex, 9);
  // A truncation that leaves the checkpoints is caught by the log's own.
  await writeCheckpoints(dir, [...(await readCheckpoints(dir)), lastCheckpoint]);
  t.deepEqual(kinds(await verifyAuditLog(dir, { anchorKey: anchor })), ['truncated@7']);
});

test("a checkpoint re-signed with a later epoch's key is refused (CVE-2023-31439)", async (t) => {
  const { dir, anchor, epoch1Key } = await makeLog(t, 12, 6);
  const notes = await readCheckpoints(dir);
  const early = notes.findIndex((n) => parseCheckpoint(n).size === 5);
  t.true(early >= 0);
  const text = parseCheckpoint(notes[early]!).note.text;
  notes[early] = signNote(text, ORIGIN, epoch1Key!.secretKey);
  await writeCheckpoints(dir, notes);
  const r = await verifyAuditLog(dir, { anchorKey: anchor });
  t.deepEqual(kinds(r), ['wrong-epoch-key@5']);
});

test("a thief of epoch 1's key rewriting epoch 0's records and re-signing every checkpoint is caught", async (t) => {
  const { dir, anchor, epoch1Key } = await makeLog(t, 12, 6);
  const frames = await readRecords(dir);
  // Rewrite record 2, re-chain everything after it, and re-sign every checkpoint with epoch 1's key.
  const recs = frames.map(decodeAuditRecord);
  const out: Uint8Array[] = frames.slice(0, 2);
  for (let i = 2; i < recs.length; i++) {
    const rec = recs[i]!;
    const fields = i === 2 ? { ...rec.fields, who: 'mallory' } : rec.fields;
    out.push(encodeAuditRecord({ ...rec, prev: hashLeaf(out[i - 1]!), fields }));
  }
  await writeRecords(dir, out);
  const { MerkleTree } = await import('../src/audit/merkle.js');
  const tree = MerkleTree.from(out.map(hashLeaf));
  const { signCheckpoint } = await import('../src/audit/note.js');
  const notes = (await readCheckpoints(dir)).map((n) => {
    const size = parseCheckpoint(n).size;
    return signCheckpoint({ origin: ORIGIN, size, root: tree.rootAt(size) }, epoch1Key!.secretKey);
  });
  await writeCheckpoints(dir, notes);
  const r = await verifyAuditLog(dir, { anchorKey: anchor });
  t.false(r.ok);
  const ks = kinds(r);
  t.true(ks.includes('edited@0') || ks.includes('edited@2'), ks.join(' '));
  t.true(
    ks.some((k) => k.startsWith('wrong-epoch-key@')),
    ks.join(' '),
  );
});

test('a torn tail is reported; reopening cuts it and the log verifies again', async (t) => {
  const { dir, anchor } = await makeLog(t);
  const last = (await segments(dir)).at(-1)!;
  await appendFile(join(dir, last), Buffer.from([0, 0, 0, 9, 1, 2]));
  t.deepEqual(kinds(await verifyAuditLog(dir, { anchorKey: anchor })), ['torn@10']);
  const log = await openAuditLog({ dir, origin: ORIGIN });
  t.is(log.size, 10);
  await log.append({ type: 'event' });
  await log.close();
  t.deepEqual(kinds(await verifyAuditLog(dir, { anchorKey: anchor })), []);
});

test('a removed segment is reported as deleted records at its first index', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'sipc-audit-tamper-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const dir = join(base, 'log');
  const log = await openAuditLog({ dir, origin: ORIGIN, maxSegmentBytes: 120 });
  for (let i = 0; i < 12; i++)
    await log.append({ type: 'event', fields: { i, pad: 'xxxxxxxxxxxxxxxxxxxx' } });
  const anchor = log.anchorKey;
  await log.close();
  const segs = await segments(dir);
  t.true(segs.length >= 3);
  const removed = segs[1]!;
  await rm(join(dir, removed));
  const r = await verifyAuditLog(dir, { anchorKey: anchor });
  t.deepEqual(kinds(r), [`deleted@${Number(removed.slice(6, 26))}`]);
  await t.throwsAsync(openAuditLog({ dir, origin: ORIGIN }), { code: 'SIPC_ERR_AUDIT_CORRUPT' });
});

test('any flipped byte of any record is caught', async (t) => {
  const { dir, anchor } = await makeLog(t, 6);
  const frames = await readRecords(dir);
  for (let i = 0; i < frames.length; i++)
    for (let at = 0; at < frames[i]!.byteLength; at += 3) {
      const copy = frames.map((f) => new Uint8Array(f));
      copy[i]![at]! ^= 0x20;
      await writeRecords(dir, copy);
      const r = await verifyAuditLog(dir, { anchorKey: anchor });
      t.false(r.ok, `record ${i} byte ${at}`);
    }
});
