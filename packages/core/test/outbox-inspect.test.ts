/**
 * inspectOutbox (docs/outbox.md, "The CLI") on real journals: the report of a good journal (per
 * lane, DONE results, no payload), a flipped byte quarantined with its reason, the read-only
 * property (every file byte-identical, mtimes unchanged, no lock, nothing cut or created), and
 * the anchor statuses, including an older copy of the directory restored ('behind').
 */
import {
  chmodSync,
  cpSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { isSecureIpcError } from '../src/errors.js';
import { inspectOutbox } from '../src/outbox/inspect.js';
import { FAST_LIMITS, openTestOutbox, outboxPlace, PASSPHRASE } from './fixtures/outbox-world.js';

const SENTINEL = 'SENTINEL-inspect-5e1f';

type Place = ReturnType<typeof outboxPlace>;
const inspect = (place: Place, passphrase = PASSPHRASE) =>
  inspectOutbox({ dir: place.dir, key: { file: place.keyFile, passphrase, limits: FAST_LIMITS } });

/** An outbox with entries in two lanes and the default lane, one of them delivered (DONE ok). */
async function filled(place: Place): Promise<void> {
  const outbox = await openTestOutbox(place);
  await outbox.add(
    `orders.${SENTINEL}`,
    { secret: SENTINEL },
    { lane: 'orders', idempotencyKey: `k-${SENTINEL}` },
  );
  await outbox.add('orders.place', { n: 2 }, { lane: 'orders', ttlMs: 3_600_000 });
  await outbox.add('audit.log', { n: 3 }, { lane: 'audit' });
  await outbox.add('plain', null);
  const audit = outbox.head('audit');
  if (audit === undefined) throw new Error('fixture: the audit lane has no head');
  await outbox.finish(audit.seq, 'ok');
  await outbox.close();
}

/** Every file of the place with its bytes and mtime. */
function snapshot(place: Place): Record<string, { bytes: string; mtimeMs: number }> {
  const out: Record<string, { bytes: string; mtimeMs: number }> = {};
  const files = [
    place.keyFile,
    `${place.keyFile}.anchor`,
    ...readdirSync(place.dir).map((f) => join(place.dir, f)),
  ];
  for (const f of files) {
    const st = statSync(f);
    out[f] = { bytes: readFileSync(f).toString('base64'), mtimeMs: st.mtimeMs };
  }
  out[place.dir] = { bytes: readdirSync(place.dir).sort().join(','), mtimeMs: statSync(place.dir).mtimeMs };
  return out;
}

test('a good journal: counts, bytes, times and lanes; DONE results; anchor ok; never a method, params or key', async (t) => {
  const place = outboxPlace(t);
  const before = Date.now();
  await filled(place);
  const r = await inspect(place);
  t.true(r.ok);
  t.regex(r.id, /^[0-9a-f]{32}$/);
  t.is(r.journalBytes, statSync(join(place.dir, 'outbox.log')).size);
  t.is(r.records, 6, 'CHECKPOINT, four ENQUEUEs, one DONE');
  t.is(r.entries.count, 3);
  t.deepEqual(
    r.lanes.map((l) => [l.lane, l.count]),
    [
      ['orders', 2],
      [undefined, 1],
    ],
  );
  t.is(
    r.lanes.reduce((n, l) => n + l.bytes, 0),
    r.entries.bytes,
  );
  t.true(r.entries.oldestEnqueuedAt! >= before && r.entries.oldestEnqueuedAt! <= r.entries.newestEnqueuedAt!);
  t.true(r.entries.earliestExpiresAt! > r.entries.oldestEnqueuedAt!);
  t.deepEqual(r.done, { ok: 1, failed: 0, expired: 0 });
  t.is(r.tornBytes, 0);
  t.deepEqual(r.quarantined, []);
  t.deepEqual(r.anchor, { where: `${place.keyFile}.anchor`, seq: r.highestSeq, status: 'ok' });
  t.is(r.lockedBy, undefined);
  t.false(JSON.stringify(r).includes(SENTINEL), 'the report holds no method, params or idempotency key');
  t.false(JSON.stringify(r).includes('orders.place'));
});

test('read-only: every file byte-identical, mtimes unchanged, no lock taken, a torn tail not cut, a temporary file kept', async (t) => {
  const place = outboxPlace(t);
  await filled(place);
  const journal = join(place.dir, 'outbox.log');
  writeFileSync(journal, Buffer.from('SOBX\x00\x00'), { flag: 'a' }); // a write cut by a crash
  writeFileSync(join(place.dir, '.outbox.log.tmp-0011223344556677'), 'left by a crash', { mode: 0o600 });
  const before = snapshot(place);
  const r = await inspect(place);
  t.is(r.tornBytes, 6);
  t.true(r.ok, 'a torn tail is normal after a crash');
  t.deepEqual(snapshot(place), before);
  // An outbox that is open: inspect names its holder and leaves its lock alone.
  const outbox = await openTestOutbox(place);
  t.teardown(() => outbox.close());
  const lock = readFileSync(join(place.dir, 'lock'), 'utf8');
  const live = await inspect(place);
  t.is(live.lockedBy, process.pid);
  t.is(readFileSync(join(place.dir, 'lock'), 'utf8'), lock);
});

test('a flipped byte: that record quarantined with its reason (crc) and seq, the rest read; ok false', async (t) => {
  const place = outboxPlace(t);
  await filled(place);
  const good = await inspect(place);
  const journal = join(place.dir, 'outbox.log');
  const bytes = readFileSync(journal);
  // The second ENQUEUE: find the third record's magic and flip a byte of its ciphertext.
  const offsets: number[] = [];
  for (let i = bytes.indexOf('SOBX'); i >= 0; i = bytes.indexOf('SOBX', i + 1)) offsets.push(i);
  const at = offsets[2]!;
  bytes[at + 60] = bytes[at + 60]! ^ 0x01;
  writeFileSync(journal, bytes);
  const r = await inspect(place);
  t.false(r.ok);
  t.deepEqual(
    r.quarantined.map((q) => [q.offset, q.reason, q.seq]),
    [[at, 'crc', 3]],
  );
  t.is(r.records, good.records - 1);
  t.is(r.entries.count, good.entries.count - 1);
  t.is(r.anchor.status, 'ok', 'the quarantined record still counts for the highest seq');
});

test('anchor statuses: ahead after a crash, behind for a restored older copy, missing, invalid, other-outbox', async (t) => {
  const place = outboxPlace(t);
  await filled(place);
  const anchorFile = `${place.keyFile}.anchor`;
  const oldAnchor = readFileSync(anchorFile);
  const oldDir = `${place.dir}.copy`;
  cpSync(place.dir, oldDir, { recursive: true, preserveTimestamps: true });
  chmodSync(oldDir, 0o700); // Node 22's cpSync creates the copy's directory 0755
  const outbox = await openTestOutbox(place);
  await outbox.add('later', { n: 9 });
  await outbox.close();
  const now = await inspect(place);
  t.is(now.anchor.status, 'ok');

  // The anchor of before the last record: what a crash between the record and its anchor leaves.
  const newAnchor = readFileSync(anchorFile);
  writeFileSync(anchorFile, oldAnchor);
  const ahead = await inspect(place);
  t.is(ahead.anchor.status, 'ahead');
  t.true(ahead.ok);
  t.is(ahead.anchor.seq, now.anchor.seq! - 1);
  writeFileSync(anchorFile, newAnchor);

  // The older copy of the directory restored: a rollback.
  rmSync(place.dir, { recursive: true });
  renameSync(oldDir, place.dir);
  const behind = await inspect(place);
  t.is(behind.anchor.status, 'behind');
  t.false(behind.ok);
  t.true(behind.highestSeq < behind.anchor.seq!);

  rmSync(anchorFile);
  const missing = await inspect(place);
  t.deepEqual([missing.anchor.status, missing.ok], ['missing', false], 'missing with entries is not ok');

  writeFileSync(anchorFile, Buffer.concat([Buffer.from('SIPC-OUTBOX-ANCHOR 1\n'), Buffer.alloc(32, 7)]), {
    mode: 0o600,
  });
  const bad = await inspect(place);
  t.deepEqual([bad.anchor.status, bad.anchor.seq, bad.ok], ['invalid', undefined, false]);

  // A second outbox under the same key file: its (valid) anchor names the other outbox.
  const other = { ...place, dir: join(place.root, 'other') };
  rmSync(anchorFile);
  const second = await openTestOutbox(other);
  await second.close();
  const fresh = await inspectOutbox({
    dir: other.dir,
    key: { file: place.keyFile, passphrase: PASSPHRASE },
  });
  t.deepEqual([fresh.anchor.status, fresh.ok], ['ok', true]);
  const foreign = await inspect(place);
  t.deepEqual([foreign.anchor.status, foreign.ok], ['other-outbox', false]);

  // A new outbox whose anchor was never written holds only its CHECKPOINT: missing but fine.
  rmSync(anchorFile);
  const unanchored = await inspectOutbox({
    dir: other.dir,
    key: { file: place.keyFile, passphrase: PASSPHRASE },
  });
  t.deepEqual([unanchored.anchor.status, unanchored.ok, unanchored.records], ['missing', true, 1]);
});

test('typed errors: not a journal, a link, a group-readable journal, a wrong passphrase, a missing key (none created)', async (t) => {
  const place = outboxPlace(t);
  await filled(place);
  const journal = join(place.dir, 'outbox.log');
  const err = (p: Promise<unknown>) => t.throwsAsync(p);
  t.true(isSecureIpcError(await err(inspect(place, 'wrong passphrase')), 'SIPC_ERR_BAD_KEY'));
  const noKey = await err(
    inspectOutbox({ dir: place.dir, key: { file: join(place.root, 'absent.key'), passphrase: PASSPHRASE } }),
  );
  t.true(isSecureIpcError(noKey, 'SIPC_ERR_INVALID_ARGUMENT'));
  t.throws(() => statSync(join(place.root, 'absent.key')), undefined, 'no key file was created');
  const bytes = readFileSync(journal);
  writeFileSync(journal, Buffer.concat([Buffer.from('NOT-AN-OUTBOX\n'), bytes.subarray(14)]));
  t.true(isSecureIpcError(await err(inspect(place)), 'SIPC_ERR_OUTBOX_CORRUPT'));
  writeFileSync(journal, bytes, { mode: 0o644 });
  chmodSync(journal, 0o640);
  t.true(isSecureIpcError(await err(inspect(place)), 'SIPC_ERR_INSECURE_FILE'));
  chmodSync(journal, 0o600);
  renameSync(journal, join(place.root, 'elsewhere.log'));
  symlinkSync(join(place.root, 'elsewhere.log'), journal);
  t.true(isSecureIpcError(await err(inspect(place)), 'SIPC_ERR_INSECURE_FILE'));
  chmodSync(place.dir, 0o750);
  t.true(isSecureIpcError(await err(inspect(place)), 'SIPC_ERR_INSECURE_DIRECTORY'));
});
