/**
 * openAuditLog on real files: a fresh log verifies from its anchor, the tree continues across
 * reopen and segment rotation, checkpoints every N records and on close, epoch rotation erases
 * the old secret (its file gone, the in-memory key zeroed) and the chain of keys verifies, files
 * are 0600 in a 0700 directory and an exposed directory is refused, bad input is typed.
 */
import { chmod, mkdtemp, readdir, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { readFrameFile } from '../src/audit/files.js';
import { openAuditLog } from '../src/audit/log.js';
import {
  hashLeaf,
  inclusionProof,
  merkleRoot,
  verifyConsistency,
  verifyInclusion,
} from '../src/audit/merkle.js';
import { parseCheckpoint, verifyCheckpoint } from '../src/audit/note.js';
import { decodeAuditRecord } from '../src/audit/record.js';
import { verifyAuditLog } from '../src/audit/verify.js';

const posix = process.platform !== 'win32';
const ORIGIN = 'example.com/test/audit';

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const base = await mkdtemp(join(tmpdir(), 'sipc-audit-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  return join(base, 'log');
}

test('a new log: genesis record, appends, checkpoint on close, verifies from its anchor', async (t) => {
  const dir = await tempDir(t);
  const log = await openAuditLog({ dir, origin: ORIGIN });
  t.is(log.size, 1);
  t.is(log.epoch, 0);
  for (let i = 0; i < 5; i++) {
    const r = await log.append({
      type: 'rpc.call',
      fields: { method: 'shop.buy', i, ok: true, id: new Uint8Array([i]) },
    });
    t.is(r.index, i + 1);
  }
  const anchor = log.anchorKey;
  const root = log.root;
  await log.close();
  const report = await verifyAuditLog(dir, { anchorKey: anchor });
  t.deepEqual(report.problems, []);
  t.true(report.ok);
  t.is(report.size, 6);
  t.is(report.signedSize, 6);
  t.deepEqual(Buffer.from(report.root), Buffer.from(root));
  const rec = decodeAuditRecord(
    (await readFrameFile(join(dir, 'audit-00000000000000000000.log'), 1e6)).frames[3]!,
  );
  t.is(rec.type, 'rpc.call');
  t.is(rec.index, 3);
  t.like(rec.fields, { method: 'shop.buy', i: 2, ok: true });
  // The anchor as base64 and as C2SP verifier key text are accepted too.
  t.true((await verifyAuditLog(dir, { anchorKey: Buffer.from(anchor).toString('base64') })).ok);
  t.true((await verifyAuditLog(dir, { anchorKey: log.anchorVerifierKey })).ok);
  // Another anchor: the genesis is refused.
  const other = await verifyAuditLog(dir, { anchorKey: new Uint8Array(32).fill(1) });
  t.false(other.ok);
  t.is(other.problems[0]!.kind, 'bad-epoch');
});

test('checkpoints every N records; proofs from the log verify against its checkpoints', async (t) => {
  const dir = await tempDir(t);
  const log = await openAuditLog({ dir, origin: ORIGIN, checkpointEvery: 4 });
  const notes: string[] = [];
  for (let i = 0; i < 12; i++) {
    await log.append({ type: 'e', fields: { i } });
    if (log.lastCheckpoint !== undefined && !notes.includes(log.lastCheckpoint))
      notes.push(log.lastCheckpoint);
  }
  const sizes = notes.map((n) => parseCheckpoint(n).size);
  t.deepEqual(sizes, [1, 5, 9, 13]);
  const last = verifyCheckpoint(notes[3]!, log.publicKey, ORIGIN)!;
  const first = verifyCheckpoint(notes[1]!, log.publicKey, ORIGIN)!;
  t.true(verifyInclusion(log.leafHash(7), 7, 13, log.inclusionProof(7, 13), last.root));
  t.true(verifyConsistency(5, 13, log.consistencyProof(5, 13), first.root, last.root));
  await log.close();
});

test('a checkpoint when checkpointIntervalMs passed since the last one and records were added', async (t) => {
  const dir = await tempDir(t);
  let now = 5_000_000;
  const log = await openAuditLog({ dir, origin: ORIGIN, now: () => now, checkpointIntervalMs: 1000 });
  await log.append({ type: 'e' });
  t.is(parseCheckpoint(log.lastCheckpoint!).size, 1);
  now += 999;
  await log.append({ type: 'e' });
  t.is(parseCheckpoint(log.lastCheckpoint!).size, 1);
  now += 1;
  await log.append({ type: 'e' });
  t.is(parseCheckpoint(log.lastCheckpoint!).size, 4);
  await log.close();
});

test('reopen continues the same tree and chain; rotation by size keeps the tree continuous', async (t) => {
  const dir = await tempDir(t);
  let log = await openAuditLog({ dir, origin: ORIGIN, maxSegmentBytes: 200 });
  for (let i = 0; i < 10; i++) await log.append({ type: 'e', fields: { text: `record number ${i}` } });
  const anchor = log.anchorKey;
  await log.close();
  log = await openAuditLog({ dir, origin: ORIGIN, maxSegmentBytes: 200 });
  t.is(log.size, 11);
  for (let i = 10; i < 20; i++) await log.append({ type: 'e', fields: { text: `record number ${i}` } });
  await log.close();
  const segments = (await readdir(dir)).filter((n) => n.startsWith('audit-')).sort();
  t.true(segments.length > 3, `${segments.length} segments`);
  const frames: Uint8Array[] = [];
  for (const s of segments) frames.push(...(await readFrameFile(join(dir, s), 1e6)).frames);
  t.is(frames.length, 21);
  t.is(
    segments[1],
    `audit-${String(decodeAuditRecord((await readFrameFile(join(dir, segments[1]!), 1e6)).frames[0]!).index).padStart(20, '0')}.log`,
  );
  const report = await verifyAuditLog(dir, { anchorKey: anchor });
  t.deepEqual(report.problems, []);
  t.deepEqual(Buffer.from(report.root), Buffer.from(merkleRoot(frames.map(hashLeaf))));
  t.true(
    verifyInclusion(hashLeaf(frames[15]!), 15, 21, inclusionProof(frames.map(hashLeaf), 15), report.root),
  );
  await t.throwsAsync(openAuditLog({ dir, origin: 'example.com/other' }), {
    code: 'SIPC_ERR_INVALID_ARGUMENT',
  });
});

test('epoch rotation: the old key file is removed and its secret zeroed; the key chain verifies', async (t) => {
  const dir = await tempDir(t);
  let now = 1_000_000;
  const log = await openAuditLog({ dir, origin: ORIGIN, now: () => now, epochPeriodMs: 10_000 });
  t.deepEqual(
    (await readdir(dir)).filter((n) => n.startsWith('epoch-')),
    ['epoch-0.key'],
  );
  const key0 = await readFile(join(dir, 'epoch-0.key'), 'utf8');
  await log.append({ type: 'e' });
  t.is(await log.rotateEpoch(), 1);
  t.deepEqual(
    (await readdir(dir)).filter((n) => n.startsWith('epoch-')),
    ['epoch-1.key'],
  );
  t.not(await readFile(join(dir, 'epoch-1.key'), 'utf8'), key0);
  await log.append({ type: 'e' });
  now += 10_000; // the period passed: the next append rotates first
  await log.append({ type: 'e' });
  t.is(log.epoch, 2);
  t.deepEqual(
    (await readdir(dir)).filter((n) => n.startsWith('epoch-')),
    ['epoch-2.key'],
  );
  const anchor = log.anchorKey;
  await log.close();
  const report = await verifyAuditLog(dir, { anchorKey: anchor });
  t.deepEqual(report.problems, []);
  t.deepEqual(
    report.epochs.map((e) => [e.epoch, e.startIndex]),
    [
      [0, 0],
      [1, 2],
      [2, 4],
    ],
  );
  // Reopen picks up epoch 2's key.
  const again = await openAuditLog({ dir, origin: ORIGIN });
  t.is(again.epoch, 2);
  await again.close();
});

test('the in-memory secret of an epoch is zeroed when it ends', async (t) => {
  const dir = await tempDir(t);
  const files = await import('../src/audit/files.js');
  const key = await files.createEpochKey(
    await (async () => {
      await files.openAuditDirectory(dir, true);
      return dir;
    })(),
    5,
  );
  t.false(key.secretKey.every((b) => b === 0));
  await files.eraseEpochKey(dir, key);
  t.true(key.secretKey.every((b) => b === 0));
  t.deepEqual(await readdir(dir), []);
});

test('files are 0600 in a 0700 directory; an exposed directory or file is refused', async (t) => {
  if (!posix) return t.pass('POSIX modes only');
  const dir = await tempDir(t);
  const log = await openAuditLog({ dir, origin: ORIGIN });
  await log.close();
  t.is((await stat(dir)).mode & 0o777, 0o700);
  for (const name of await readdir(dir)) t.is((await stat(join(dir, name))).mode & 0o777, 0o600, name);
  await chmod(join(dir, 'checkpoints.log'), 0o644);
  await t.throwsAsync(openAuditLog({ dir, origin: ORIGIN }), { code: 'SIPC_ERR_INSECURE_FILE' });
  await chmod(join(dir, 'checkpoints.log'), 0o600);
  await chmod(dir, 0o755);
  await t.throwsAsync(openAuditLog({ dir, origin: ORIGIN }), { code: 'SIPC_ERR_INSECURE_DIRECTORY' });
  await t.throwsAsync(verifyAuditLog(dir, { anchorKey: new Uint8Array(32) }), {
    code: 'SIPC_ERR_INSECURE_DIRECTORY',
  });
});

test('bad input is a typed error and leaves the log usable', async (t) => {
  const dir = await tempDir(t);
  await t.throwsAsync(openAuditLog({ dir, origin: 'has space' }), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  await t.throwsAsync(openAuditLog({ dir, origin: ORIGIN, checkpointEvery: 0 }), {
    code: 'SIPC_ERR_INVALID_ARGUMENT',
  });
  const log = await openAuditLog({ dir, origin: ORIGIN, maxRecordBytes: 100 });
  await t.throwsAsync(log.append({ type: 'epoch' }), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  await t.throwsAsync(log.append({ type: '' }), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  await t.throwsAsync(log.append({ type: 'e', fields: { x: 1.5 } }), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  await t.throwsAsync(log.append({ type: 'e', fields: { x: 'y'.repeat(200) } }), {
    code: 'SIPC_ERR_INVALID_ARGUMENT',
  });
  t.is((await log.append({ type: 'e' })).index, 1);
  t.throws(() => log.inclusionProof(5), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  await t.throwsAsync(verifyAuditLog(dir, { anchorKey: 'not a key' }), { code: 'SIPC_ERR_BAD_KEY' });
  await log.close();
  await t.throwsAsync(log.append({ type: 'e' }), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
});
