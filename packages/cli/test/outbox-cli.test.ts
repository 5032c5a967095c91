// `secure-ipc outbox inspect` and `verify` through the real binary in a child process, on real
// outboxes written by core's openOutbox: the table and --json, the passphrase from a file or
// SECURE_IPC_PASSPHRASE, verify's exit codes (a flipped byte, a restored older copy, a torn tail),
// and a sentinel in every method, params and idempotency key that never reaches stdout or stderr.
import { execFile } from 'node:child_process';
import { chmodSync, cpSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { openOutbox } from '@secure-ipc/core';
import test, { type ExecutionContext } from 'ava';
import { type CliRun, cliMain, tempDir } from './helpers.js';

const SENTINEL = 'SENTINEL-cli-outbox-91d2';
const PASSPHRASE = 'outbox cli test passphrase';
// The cheapest Argon2id the key file format accepts: each run of the CLI derives the key once.
const FAST_LIMITS = { opslimit: 2, memlimit: 64 * 1024 * 1024 };

/** Run the CLI with exactly `env` (plus PATH) as its environment. */
function run(args: string[], env: Record<string, string> = {}): Promise<CliRun> {
  return new Promise((resolve) => {
    execFile(
      process.execPath,
      [cliMain, ...args],
      { timeout: 60_000, env: { PATH: process.env.PATH ?? '', ...env } },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
      },
    );
  });
}

interface Place {
  dir: string;
  keyFile: string;
  passFile: string;
  /** The key options of the CLI for this outbox. */
  key: string[];
}

/** An outbox with three entries (two in lane "orders", one in the default lane), its key and passphrase file. */
async function place(t: ExecutionContext): Promise<Place> {
  const root = await tempDir(t, 'sipc-cli-outbox-');
  const p = {
    dir: join(root, 'outbox'),
    keyFile: join(root, 'outbox.key'),
    passFile: join(root, 'passphrase'),
  };
  writeFileSync(p.passFile, `${PASSPHRASE}\n`, { mode: 0o600 });
  const outbox = await openOutbox({
    dir: p.dir,
    key: { file: p.keyFile, passphrase: PASSPHRASE, limits: FAST_LIMITS },
  });
  await outbox.add(
    `orders.${SENTINEL}`,
    { secret: SENTINEL },
    { lane: 'orders', idempotencyKey: `key-${SENTINEL}` },
  );
  await outbox.add('orders.place', { note: SENTINEL }, { lane: 'orders', ttlMs: 3_600_000 });
  await outbox.add(SENTINEL, Buffer.from(SENTINEL));
  await outbox.close();
  return { ...p, key: ['--key-file', p.keyFile, '--passphrase-file', p.passFile] };
}

function noSentinel(t: ExecutionContext, r: CliRun): void {
  t.false(r.stdout.includes(SENTINEL), 'stdout holds a method, params or idempotency key');
  t.false(r.stderr.includes(SENTINEL), 'stderr holds a method, params or idempotency key');
}

/** The byte offsets of the journal's records (the magic before each). */
function recordOffsets(bytes: Buffer): number[] {
  const offsets: number[] = [];
  for (let i = bytes.indexOf('SOBX'); i >= 0; i = bytes.indexOf('SOBX', i + 1)) offsets.push(i);
  return offsets;
}

test('outbox inspect: counts, sizes, ages, the lane table, anchor and status; nothing of the payload', async (t) => {
  const p = await place(t);
  const journal = readFileSync(join(p.dir, 'outbox.log'));
  const r = await run(['outbox', 'inspect', p.dir, ...p.key]);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
  noSentinel(t, r);
  const lines = r.stdout.trimEnd().split('\n');
  t.regex(lines[0]!, /^outbox [0-9a-f]{32} in /);
  t.regex(r.stdout, /^journal: \d+(\.\d)? (B|KiB), 4 records, highest seq 4$/m);
  t.regex(
    r.stdout,
    /^3 entries, \d+(\.\d)? (B|KiB), oldest \d+ s ago, newest \d+ s ago, first expiry in 59 min$/m,
  );
  t.regex(r.stdout, /^ {2}lane +entries +bytes$/m);
  t.regex(r.stdout, /^ {2}"orders" +2 +\d+ B$/m);
  t.regex(r.stdout, /^ {2}\(default lane\) +1 +\d+ B$/m);
  t.regex(r.stdout, /^anchor: ok, seq 4 \(.*outbox\.key\.anchor\)$/m);
  t.regex(r.stdout, /^quarantined: 0 records$/m);
  t.regex(r.stdout, /^lock: free$/m);
  t.is(lines.at(-1), 'status: ok');
  t.deepEqual(readFileSync(join(p.dir, 'outbox.log')), journal, 'the journal is unchanged');
});

test('outbox inspect --json: the report on one line, null for the default lane; the passphrase from SECURE_IPC_PASSPHRASE', async (t) => {
  const p = await place(t);
  const r = await run(['outbox', 'inspect', p.dir, '--key-file', p.keyFile, '--json'], {
    SECURE_IPC_PASSPHRASE: PASSPHRASE,
  });
  t.is(r.code, 0, r.stderr);
  noSentinel(t, r);
  t.is(r.stdout.trimEnd().split('\n').length, 1);
  const report = JSON.parse(r.stdout);
  t.is(report.entries.count, 3);
  t.deepEqual(
    report.lanes.map((l: { lane: string | null; count: number }) => [l.lane, l.count]),
    [
      ['orders', 2],
      [null, 1],
    ],
  );
  t.deepEqual([report.anchor.status, report.anchor.seq, report.ok, report.lockedBy], ['ok', 4, true, null]);
  t.deepEqual(report.quarantined, []);
  t.is(typeof report.entries.oldestEnqueuedAt, 'number');
});

test('outbox: usage and key errors — no passphrase (2), wrong passphrase (3), both key options (2), a readable passphrase file (3), a missing DIR (3)', async (t) => {
  const p = await place(t);
  const none = await run(['outbox', 'inspect', p.dir, '--key-file', p.keyFile]);
  t.is(none.code, 2, none.stderr);
  t.regex(none.stderr, /--passphrase-file FILE or the SECURE_IPC_PASSPHRASE variable/);
  const wrong = await run(['outbox', 'verify', p.dir, '--key-file', p.keyFile], {
    SECURE_IPC_PASSPHRASE: 'nope',
  });
  t.is(wrong.code, 3, wrong.stderr);
  t.regex(wrong.stderr, /^secure-ipc outbox verify: .*SIPC_ERR_BAD_KEY/);
  const both = await run(['outbox', 'inspect', p.dir, '--keystore', 'acct', ...p.key]);
  t.is(both.code, 2);
  chmodSync(p.passFile, 0o644);
  const readable = await run(['outbox', 'inspect', p.dir, ...p.key]);
  t.is(readable.code, 3);
  t.regex(readable.stderr, /accessible by group or others/);
  chmodSync(p.passFile, 0o600);
  const missing = await run(['outbox', 'inspect', join(p.dir, 'absent'), ...p.key]);
  t.is(missing.code, 3, missing.stderr);
  const sub = await run(['outbox', 'list', p.dir]);
  t.is(sub.code, 2);
  t.regex(sub.stderr, /expected inspect or verify/);
});

test('outbox verify: 0 when ok (a torn tail is reported, not failed); 1 for a quarantined record and for a restored older copy', async (t) => {
  const p = await place(t);
  const journal = join(p.dir, 'outbox.log');
  const ok = await run(['outbox', 'verify', p.dir, ...p.key]);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /^ok: outbox [0-9a-f]{32}, 3 entries, 4 records verified\n$/);

  const older = `${p.dir}.older`;
  cpSync(p.dir, older, { recursive: true });
  chmodSync(older, 0o700); // Node 22's cpSync creates the copy's directory 0755
  const outbox = await openOutbox({ dir: p.dir, key: { file: p.keyFile, passphrase: PASSPHRASE } });
  await outbox.add('later', { n: 1 });
  await outbox.close();

  writeFileSync(journal, Buffer.from('SOBX\x00'), { flag: 'a' });
  const torn = await run(['outbox', 'verify', p.dir, ...p.key]);
  t.is(torn.code, 0, torn.stdout);
  t.regex(torn.stdout, /^torn tail of 5 bytes: .*\nok: /m);

  const bytes = readFileSync(journal);
  const at = recordOffsets(bytes)[2]!;
  bytes[at + 50] = bytes[at + 50]! ^ 0x80;
  writeFileSync(journal, bytes);
  const flipped = await run(['outbox', 'verify', p.dir, ...p.key]);
  t.is(flipped.code, 1, flipped.stdout);
  noSentinel(t, flipped);
  t.regex(flipped.stdout, new RegExp(`^quarantined record at byte ${at}, \\d+ bytes \\(seq 3\\): crc$`, 'm'));
  t.regex(flipped.stdout, /^FAILED: outbox [0-9a-f]{32}, 1 problem$/m);
  const asJson = await run(['outbox', 'verify', p.dir, ...p.key, '--json']);
  t.is(asJson.code, 1);
  const v = JSON.parse(asJson.stdout);
  t.is(v.ok, false);
  t.deepEqual(
    v.problems.map((q: { kind: string; reason?: string; fails: boolean }) => [
      q.kind,
      q.reason ?? null,
      q.fails,
    ]),
    [
      ['quarantined', 'crc', true],
      ['torn-tail', null, false],
    ],
  );

  rmSync(p.dir, { recursive: true });
  renameSync(older, p.dir);
  const rolledBack = await run(['outbox', 'verify', p.dir, ...p.key]);
  t.is(rolledBack.code, 1, rolledBack.stdout);
  t.regex(
    rolledBack.stdout,
    /^anchor behind: the journal ends at seq 4 but the anchor \(.*\) is at seq 5: rollback/m,
  );
  const inspected = await run(['outbox', 'inspect', p.dir, ...p.key]);
  t.is(inspected.code, 0, 'inspect reports, it does not fail');
  t.regex(inspected.stdout, /^anchor: behind, journal at seq 4, anchor at seq 5: a rollback \(/m);
  t.regex(inspected.stdout, /^status: PROBLEMS/m);
});
