/**
 * The outbox journal under tampering and crashes (docs/outbox.md, "Reading a journal: integrity",
 * "Rollback: the anchor"), on real files: a flipped byte costs exactly that record (typed event,
 * never delivered), swapped, replayed and foreign records are rejected, a torn tail is cut at the
 * last whole record, an older copy of the directory or a missing anchor refuses to open, a
 * record changed while the outbox runs is caught when it is read back to be sent.
 */
import { chmodSync, cpSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { crc32 } from 'node:zlib';
import test from 'ava';
import { isSecureIpcError } from '../src/errors.js';
import type { Outbox, QuarantineEvent } from '../src/outbox/outbox.js';
import {
  deliveringClient,
  events,
  ledgerServer,
  openTestOutbox,
  outboxPlace,
  PASSPHRASE,
} from './fixtures/outbox-world.js';

const HEADER = 30;

/** XOR one byte. */
function flip(bytes: Buffer, at: number, mask: number): void {
  bytes[at] = bytes[at]! ^ mask;
}

/** The framed records of a journal: [offset, length]. */
function frames(journal: Buffer): [number, number][] {
  const out: [number, number][] = [];
  for (let pos = HEADER; pos + 12 <= journal.byteLength; ) {
    const length = 12 + journal.readUInt32BE(pos + 4) + 4;
    out.push([pos, length]);
    pos += length;
  }
  return out;
}

/** A journal with a CHECKPOINT and `n` ENQUEUEs `record {n: 1..n}`; the outbox closed. */
async function journalWith(
  t: Parameters<typeof outboxPlace>[0],
  n: number,
): Promise<{ place: ReturnType<typeof outboxPlace>; path: string; ids: string[] }> {
  const place = outboxPlace(t);
  const outbox = await openTestOutbox(place);
  const ids: string[] = [];
  for (let i = 1; i <= n; i++) ids.push((await outbox.add('record', { n: i })).id);
  await outbox.close();
  return { place, path: join(place.dir, 'outbox.log'), ids };
}

/** Open, collect the open's quarantine, deliver everything to a ledger server; the ledger's n's. */
async function deliverAll(
  t: Parameters<typeof outboxPlace>[0],
  place: ReturnType<typeof outboxPlace>,
): Promise<{ outbox: Outbox; quarantined: readonly QuarantineEvent[]; executed: number[] }> {
  const outbox = await openTestOutbox(place);
  t.teardown(() => outbox.close());
  const quarantined = outbox.quarantined;
  const count = outbox.size;
  const world = await ledgerServer(t, place.root);
  const delivered = events(outbox, 'delivered', count);
  deliveringClient(t, world.connect, outbox);
  if (count > 0) await delivered;
  return { outbox, quarantined, executed: world.ledger.map((l) => l.n) };
}

test('one flipped byte quarantines exactly that record (crc): typed event, never delivered; the others are', async (t) => {
  const { place, path, ids } = await journalWith(t, 3);
  const bytes = readFileSync(path);
  const [, second] = frames(bytes).slice(1);
  flip(bytes, second![0] + 60, 0x01); // inside the second ENQUEUE's ciphertext
  writeFileSync(path, bytes);
  const { quarantined, executed, outbox } = await deliverAll(t, place);
  t.is(quarantined.length, 1);
  t.like(quarantined[0], { reason: 'crc', id: ids[1], offset: second![0] });
  t.true(isSecureIpcError(quarantined[0]!.error, 'SIPC_ERR_OUTBOX_CORRUPT'));
  t.deepEqual(executed, [1, 3], 'entry 2 never delivered');
  t.is(outbox.size, 0);
});

test('a changed ciphertext with a recomputed CRC fails the tag; a record of another outbox too', async (t) => {
  const { place, path, ids } = await journalWith(t, 2);
  const bytes = readFileSync(path);
  const [, first] = frames(bytes);
  const [off, len] = first!;
  flip(bytes, off + 50, 0x80);
  bytes.writeUInt32BE(crc32(bytes.subarray(off + 12, off + len - 4)), off + len - 4);
  writeFileSync(path, bytes);
  // A record sealed for another outbox (same key file, other id) appended at the end.
  const other = await journalWith(t, 1);
  const foreignBytes = readFileSync(other.path);
  const [, foreign] = frames(foreignBytes);
  // Same key: copy the other outbox's key file over ours is not needed (each place has its own key),
  // so the foreign record fails the tag whatever the key: another id in the AD, another key.
  writeFileSync(path, Buffer.concat([bytes, foreignBytes.subarray(foreign![0], foreign![0] + foreign![1])]));
  const { quarantined, executed } = await deliverAll(t, place);
  t.deepEqual(
    quarantined.map((q) => q.reason),
    ['tag', 'tag'],
  );
  t.is(quarantined[0]!.id, ids[0]);
  t.deepEqual(executed, [2]);
});

test('swapped records: the one out of place is rejected (order) and the gap reported (missing); a replayed record is rejected', async (t) => {
  const { place, path } = await journalWith(t, 3);
  const bytes = readFileSync(path);
  const [cp, a, b, c] = frames(bytes);
  const part = ([o, l]: [number, number]) => bytes.subarray(o, o + l);
  // checkpoint, 1, 3, 2 (swapped), then 1 again (replayed).
  writeFileSync(
    path,
    Buffer.concat([bytes.subarray(0, HEADER), part(cp!), part(a!), part(c!), part(b!), part(a!)]),
  );
  const { quarantined, executed } = await deliverAll(t, place);
  t.deepEqual(
    quarantined.map((q) => q.reason),
    ['missing', 'order', 'order'],
  );
  t.deepEqual(
    executed,
    [1, 3],
    'the swapped-back record and the replay are never delivered; each entry at most once',
  );
});

test('a torn tail (a record cut short by a crash) is cut at the last whole record; appends go on after it', async (t) => {
  const { place, path } = await journalWith(t, 3);
  const bytes = readFileSync(path);
  const last = frames(bytes).at(-1)!;
  // A fourth append cut short: its first 20 bytes reached the disk, enqueue never resolved.
  writeFileSync(path, Buffer.concat([bytes, bytes.subarray(last[0], last[0] + 20)]));
  const outbox = await openTestOutbox(place);
  t.deepEqual(outbox.quarantined, [], 'a torn tail is not a quarantine');
  t.is(outbox.size, 3);
  t.is(statSync(path).size, bytes.byteLength, 'the file was cut where the torn record began');
  const { id } = await outbox.add('record', { n: 4 });
  await outbox.close();
  const again = await openTestOutbox(place);
  t.deepEqual(
    again.entries().map((e) => e.id),
    ['2', '3', '4', id],
  );
  await again.close();
  // Cutting a record that was acknowledged (the anchor covers it) is not a torn write: refused.
  const now = readFileSync(path);
  const end = frames(now).at(-1)!;
  writeFileSync(path, now.subarray(0, end[0] + 20));
  await t.throwsAsync(openTestOutbox(place), { code: 'SIPC_ERR_OUTBOX_ROLLBACK' });
});

test('zeros at the end (blocks allocated, data lost) are a torn tail too', async (t) => {
  const { place, path } = await journalWith(t, 2);
  writeFileSync(path, Buffer.concat([readFileSync(path), Buffer.alloc(4096)]));
  const outbox = await openTestOutbox(place);
  t.deepEqual(outbox.quarantined, []);
  t.is(outbox.size, 2);
  await outbox.close();
});

test('restoring an older copy of the directory is refused (SIPC_ERR_OUTBOX_ROLLBACK): nothing is delivered again', async (t) => {
  const { place } = await journalWith(t, 2);
  const backup = join(place.root, 'backup');
  cpSync(place.dir, backup, { recursive: true });
  chmodSync(backup, 0o700); // Node 22's cpSync creates the copy's directory 0755
  const { executed, outbox } = await deliverAll(t, place); // both delivered, DONE records written
  t.deepEqual(executed, [1, 2]);
  await outbox.close();
  rmSync(place.dir, { recursive: true, force: true });
  cpSync(backup, place.dir, { recursive: true });
  chmodSync(place.dir, 0o700); // Node 22's cpSync creates the copy's directory 0755
  rmSync(join(place.dir, 'lock'), { force: true });
  const err = await t.throwsAsync(openTestOutbox(place));
  t.true(isSecureIpcError(err, 'SIPC_ERR_OUTBOX_ROLLBACK'), String(err));
  t.like((err as unknown as { details: object }).details, { reason: 'rollback' });
});

test('the anchor: missing with entries refuses (no-anchor) unless adoptUnanchored; a wrong one refuses (anchor); a deleted journal refuses', async (t) => {
  const { place, path } = await journalWith(t, 1);
  const anchor = `${place.keyFile}.anchor`;
  const saved = readFileSync(anchor);
  rmSync(anchor);
  await t.throwsAsync(openTestOutbox(place), { code: 'SIPC_ERR_OUTBOX_ROLLBACK', message: /anchor/ });
  const adopted = await openTestOutbox(place, { adoptUnanchored: true });
  t.is(adopted.size, 1);
  await adopted.close();
  t.true(statSync(anchor).isFile(), 'adopting writes the anchor');
  const bad = Buffer.from(saved);
  flip(bad, bad.byteLength - 1, 1);
  writeFileSync(anchor, bad, { mode: 0o600 });
  const wrong = await t.throwsAsync(openTestOutbox(place));
  t.like((wrong as unknown as { details: object }).details, { reason: 'anchor' });
  writeFileSync(anchor, saved, { mode: 0o600 });
  rmSync(path);
  const gone = await t.throwsAsync(openTestOutbox(place));
  t.like((gone as unknown as { details: object }).details, { reason: 'rollback', journalSeq: 0 });
});

test('a journal that is not one, and a wrong passphrase, are typed errors at open', async (t) => {
  const { place, path } = await journalWith(t, 1);
  const bytes = readFileSync(path);
  const broken = Buffer.from(bytes);
  flip(broken, 3, 0x20);
  writeFileSync(path, broken);
  await t.throwsAsync(openTestOutbox(place), { code: 'SIPC_ERR_OUTBOX_CORRUPT' });
  writeFileSync(path, bytes);
  const { openOutbox } = await import('../src/outbox/outbox.js');
  await t.throwsAsync(
    openOutbox({ dir: place.dir, key: { file: place.keyFile, passphrase: `${PASSPHRASE}!` } }),
    {
      code: 'SIPC_ERR_BAD_KEY',
    },
  );
  const ok = await openTestOutbox(place);
  t.is(ok.size, 1, 'a refused open leaves the outbox usable');
  await ok.close();
});

test('a record changed while the outbox runs is caught when read back to be sent: quarantined, not delivered', async (t) => {
  const place = outboxPlace(t);
  const outbox = await openTestOutbox(place);
  t.teardown(() => outbox.close());
  const a = await outbox.add('record', { n: 1 });
  await outbox.add('record', { n: 2 });
  const path = join(place.dir, 'outbox.log');
  const bytes = readFileSync(path);
  const [, first] = frames(bytes);
  flip(bytes, first![0] + 70, 0x04);
  writeFileSync(path, bytes); // same inode, same size: the outbox's descriptor sees it
  const quarantined = events(outbox, 'quarantined', 1);
  const delivered = events(outbox, 'delivered', 1);
  const world = await ledgerServer(t, place.root);
  deliveringClient(t, world.connect, outbox);
  const [q] = (await quarantined) as QuarantineEvent[];
  t.is(q!.id, a.id);
  await delivered;
  t.deepEqual(
    world.ledger.map((l) => l.n),
    [2],
  );
});

test('compaction keeps the live entries (a new CHECKPOINT carries them), shrinks the file, and a deleted carried record is reported', async (t) => {
  const place = outboxPlace(t);
  const outbox = await openTestOutbox(place);
  const world = await ledgerServer(t, place.root);
  // Two entries in a lane the server refuses to finish until the end: they are carried over.
  for (let i = 1; i <= 2; i++) await outbox.add('record', { n: i, tag: 'keep' });
  const path = join(place.dir, 'outbox.log');
  const rc = deliveringClient(t, world.connect, outbox);
  const delivered = events(outbox, 'delivered', 2);
  await delivered;
  await rc.close();
  // Dead bytes beyond 64 KiB: 80 entries of 1 KiB delivered, then two kept (no client).
  const rc2 = deliveringClient(t, world.connect, outbox);
  const many = events(outbox, 'delivered', 80);
  for (let i = 3; i <= 82; i++) await outbox.add('record', { n: i, tag: 'x'.repeat(1024) });
  await many;
  await rc2.close();
  const kept = [(await outbox.add('record', { n: 100 })).id, (await outbox.add('record', { n: 101 })).id];
  const written = 82 * 1100;
  const before = statSync(path).size;
  t.true(
    before < 64 * 1024 + 2 * 1100 + 8 * 1024,
    `compacted on the way: ${before} of ~${written} bytes written`,
  );
  await outbox.compact();
  await outbox.close();
  const size = statSync(path).size;
  t.true(size < 1024, `compacted to ${size} bytes`);
  const bytes = readFileSync(path);
  const again = await openTestOutbox(place);
  t.deepEqual(
    again.entries().map((e) => e.id),
    kept,
  );
  await again.close();
  // Remove a carried or appended live record: the layout check reports it.
  const fr = frames(bytes);
  const victim = fr.at(-2)!;
  writeFileSync(path, Buffer.concat([bytes.subarray(0, victim[0]), bytes.subarray(victim[0] + victim[1])]));
  const cut = await openTestOutbox(place);
  t.true(cut.quarantined.length >= 1, 'a deleted record is reported');
  t.true(
    cut.quarantined.every((q) => q.reason === 'missing' || q.reason === 'checkpoint'),
    JSON.stringify(cut.quarantined.map((q) => q.reason)),
  );
  t.is(cut.size, 0, 'a carried set with a record missing delivers none of it (fail closed)');
  await cut.close();
});

test('an old record replayed among the carried entries of a compacted journal delivers none of them (checkpoint)', async (t) => {
  const place = outboxPlace(t);
  const outbox = await openTestOutbox(place);
  for (let i = 1; i <= 3; i++) await outbox.add('record', { n: i });
  const path = join(place.dir, 'outbox.log');
  const before = readFileSync(path);
  await outbox.finish(3, 'ok'); // entry 2 (seq 3) delivered; then compacted: entries 1 and 3 carried
  await outbox.compact();
  await outbox.close();
  const bytes = readFileSync(path);
  const fr = frames(bytes);
  // header · CHECKPOINT · carried seq 2 · carried seq 4: put the delivered seq 3 back between them.
  const second = frames(before)[2]!; // the ENQUEUE of seq 3
  const replayed = before.subarray(second[0], second[0] + second[1]);
  writeFileSync(path, Buffer.concat([bytes.subarray(0, fr[2]![0]), replayed, bytes.subarray(fr[2]![0])]));
  const again = await openTestOutbox(place);
  t.is(again.size, 0, 'nothing of a carried set the CHECKPOINT does not name is delivered');
  t.true(again.quarantined.some((q) => q.reason === 'checkpoint' && q.id === '3'));
  await again.close();
});

test('a key file reached through a link to the outbox directory is inside it: refused', async (t) => {
  const place = outboxPlace(t);
  const { symlinkSync, mkdirSync, readdirSync } = await import('node:fs');
  mkdirSync(place.dir, { mode: 0o700 });
  symlinkSync(place.dir, join(place.root, 'alias'));
  await t.throwsAsync(openTestOutbox({ dir: place.dir, keyFile: join(place.root, 'alias', 'outbox.key') }), {
    code: 'SIPC_ERR_INVALID_ARGUMENT',
    message: /inside the outbox directory/,
  });
  t.deepEqual(readdirSync(place.dir), [], 'no key, anchor or journal written there');
});
