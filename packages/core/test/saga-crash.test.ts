// Sagas across a crash (issue 16, item 8): a child process runs a three-step saga on a file
// journal and is SIGKILLed at every point that matters (before and after each journal record,
// inside a step's run or a compensation before and after its effect); a second process resumes.
// The effect ledger (a file standing in for a server with idempotency keys) must show every
// step's effect applied and undone exactly once net, no compensation attempted for a step that
// never started, and the journal must end with no unfinished saga.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { fileJournal } from '../src/resilience/saga-file-journal.js';
import type { CrashPoint } from './fixtures/saga-crash-child.js';
import { type LedgerLine, readLedger } from './fixtures/saga-ledger.js';

const CHILD = fileURLToPath(new URL('./fixtures/saga-crash-child.js', import.meta.url));
const STEPS = ['reserve', 'charge', 'ship'];

interface Case {
  crash: CrashPoint;
  failAt?: number;
  recovery?: 'backward' | 'forward';
  /** Index of the last step whose step-started record reached the journal before the crash. */
  lastStarted: number;
  /** Where the first resuming process crashes too (a third one then resumes). */
  resumeCrash?: CrashPoint;
}

interface Exit {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Run the child to its end (async: the cases' processes run side by side). */
function child(mode: 'run' | 'resume', dir: string, c: Case, crash: CrashPoint | 'none'): Promise<Exit> {
  const args = [
    CHILD,
    mode,
    join(dir, 'journal'),
    join(dir, 'ledger'),
    crash === 'none' ? 'none' : JSON.stringify(crash),
    String(c.failAt ?? -1),
    c.recovery ?? 'backward',
  ];
  const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], timeout: 20_000 });
  const out = { stdout: '', stderr: '' };
  proc.stdout.setEncoding('utf8').on('data', (d: string) => (out.stdout += d));
  proc.stderr.setEncoding('utf8').on('data', (d: string) => (out.stderr += d));
  return new Promise((resolve) => proc.on('close', (status, signal) => resolve({ ...out, status, signal })));
}

const ledger = (dir: string): LedgerLine[] => readLedger(join(dir, 'ledger'));

const count = (lines: LedgerLine[], kind: LedgerLine['kind'], op: LedgerLine['op'], step: string) =>
  lines.filter((l) => l.kind === kind && l.op === op && l.step === step).length;

/** Run until the crash, check it died of SIGKILL, resume, check the resumer finished. */
async function crashAndResume(t: import('ava').ExecutionContext, c: Case): Promise<LedgerLine[]> {
  const dir = mkdtempSync(join(tmpdir(), 'sipc-saga-crash-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const first = await child('run', dir, c, c.crash);
  t.is(first.signal, 'SIGKILL', `the first process dies at the crash point (stderr: ${first.stderr})`);
  if (c.resumeCrash !== undefined) {
    const resumer = await child('resume', dir, c, c.resumeCrash);
    t.is(resumer.signal, 'SIGKILL', `the first resumer dies at its crash point (stderr: ${resumer.stderr})`);
  }
  const second = await child('resume', dir, c, 'none');
  t.is(second.status, 0, second.stderr);
  const report = JSON.parse(second.stdout.trim()) as { recoveries: { outcome: string }[] };
  const journal = await fileJournal(join(dir, 'journal'));
  t.deepEqual(await journal.unfinished(), [], 'the journal holds no unfinished saga');
  await journal.close();
  const lines = ledger(dir);
  // No compensation is even attempted for a step that never started.
  for (let i = c.lastStarted + 1; i < STEPS.length; i++) {
    t.is(count(lines, 'attempt', 'undo', STEPS[i]!), 0, `no undo of ${STEPS[i]}, which never started`);
    t.is(count(lines, 'attempt', 'do', STEPS[i]!), c.recovery === 'forward' ? 1 : 0);
  }
  // Every step done and only the end record missing: the saga completed, whatever the recovery.
  const allDone =
    c.failAt === undefined &&
    (c.crash.type === 'end' ||
      (c.crash.type === 'step-done' && c.crash.at === 'journal-after' && c.crash.step === 2));
  const completes = c.recovery === 'forward' || allDone;
  t.deepEqual(
    report.recoveries.map((r) => r.outcome),
    [completes ? 'completed' : 'compensated'],
  );
  return lines;
}

/** Backward recovery: every step's effect applied at most once and undone exactly as often. */
function assertUndoneNet(t: import('ava').ExecutionContext, lines: LedgerLine[], c: Case): void {
  STEPS.forEach((step, i) => {
    const done = count(lines, 'applied', 'do', step);
    t.true(done <= 1, `${step} applied at most once`);
    t.is(count(lines, 'applied', 'undo', step), done, `${step} undone exactly once net`);
    if (i <= c.lastStarted && i !== c.failAt)
      t.true(count(lines, 'attempt', 'undo', step) >= 1, `${step} (started) was compensated`);
  });
}

const stepPoints = (k: number): Case[] => [
  { crash: { at: 'journal-before', type: 'step-started', step: k }, lastStarted: k - 1 },
  { crash: { at: 'journal-after', type: 'step-started', step: k }, lastStarted: k },
  { crash: { at: 'run-after-effect', step: k }, lastStarted: k },
  { crash: { at: 'journal-before', type: 'step-done', step: k }, lastStarted: k },
  { crash: { at: 'journal-after', type: 'step-done', step: k }, lastStarted: k },
];

// Forward recovery at the points where step 1 is ambiguous or about to start.
const forwardCases: Case[] = stepPoints(1).map((c) => ({ ...c, recovery: 'forward' as const }));

// The crash after step 2's step-done record leaves a completed saga: its own test below.
const backwardCases = [0, 1, 2]
  .flatMap(stepPoints)
  .filter((c) => !(c.crash.type === 'step-done' && c.crash.at === 'journal-after' && c.crash.step === 2));

for (const c of backwardCases) {
  test(`backward: crash ${c.crash.at} ${c.crash.type ?? ''} step ${c.crash.step}`, async (t) => {
    const lines = await crashAndResume(t, c);
    assertUndoneNet(t, lines, c);
  });
}

test('backward: crash after the begin record (nothing ran, nothing to undo)', async (t) => {
  const lines = await crashAndResume(t, { crash: { at: 'journal-after', type: 'begin' }, lastStarted: -1 });
  t.deepEqual(lines, []);
});

test('crash before the end record: every step done, the saga counts as completed, nothing undone', async (t) => {
  const lines = await crashAndResume(t, { crash: { at: 'journal-before', type: 'end' }, lastStarted: 2 });
  for (const step of STEPS) {
    t.is(count(lines, 'applied', 'do', step), 1);
    t.is(count(lines, 'attempt', 'undo', step), 0);
  }
});

test('backward: crash after the last step-done record: completed, nothing undone', async (t) => {
  const lines = await crashAndResume(t, {
    crash: { at: 'journal-after', type: 'step-done', step: 2 },
    lastStarted: 2,
  });
  for (const step of STEPS) {
    t.is(count(lines, 'applied', 'do', step), 1);
    t.is(count(lines, 'attempt', 'undo', step), 0);
  }
});

// Step 2 (ship) fails, so charge and reserve are compensated; the crash hits that compensation.
const compensationCases: Case[] = [
  { crash: { at: 'journal-before', type: 'step-failed', step: 2 }, failAt: 2, lastStarted: 2 },
  { crash: { at: 'journal-after', type: 'step-failed', step: 2 }, failAt: 2, lastStarted: 2 },
  ...[1, 0].flatMap((j): Case[] => [
    { crash: { at: 'journal-after', type: 'undo-started', step: j }, failAt: 2, lastStarted: 2 },
    { crash: { at: 'undo-before-effect', step: j }, failAt: 2, lastStarted: 2 },
    { crash: { at: 'undo-after-effect', step: j }, failAt: 2, lastStarted: 2 },
    { crash: { at: 'journal-before', type: 'undo-done', step: j }, failAt: 2, lastStarted: 2 },
    { crash: { at: 'journal-after', type: 'undo-done', step: j }, failAt: 2, lastStarted: 2 },
  ]),
  { crash: { at: 'journal-before', type: 'end' }, failAt: 2, lastStarted: 2 },
];

for (const c of compensationCases) {
  test(`compensating: crash ${c.crash.at} ${c.crash.type ?? ''} step ${c.crash.step ?? ''}`, async (t) => {
    const lines = await crashAndResume(t, c);
    assertUndoneNet(t, lines, c);
    t.is(count(lines, 'applied', 'do', 'ship'), 0, 'the failed step had no effect');
    // Killed before its step-failed record, ship is ambiguous in the journal: its compensation
    // runs (and, ship having no effect, undoes nothing); once step-failed is journaled it never runs.
    if (c.crash.type !== 'step-failed' || c.crash.at !== 'journal-before')
      t.is(count(lines, 'attempt', 'undo', 'ship'), 0, 'the failed step is not compensated');
    t.is(count(lines, 'applied', 'do', 'reserve'), 1);
    t.is(count(lines, 'applied', 'do', 'charge'), 1);
  });
}

// The process that resumes crashes too, at each point of the compensation it repeats or goes on with.
const doubleCrashCases: Case[] = [
  {
    crash: { at: 'undo-after-effect', step: 1 },
    resumeCrash: { at: 'undo-before-effect', step: 1 },
    failAt: 2,
    lastStarted: 2,
  },
  {
    crash: { at: 'undo-after-effect', step: 1 },
    resumeCrash: { at: 'undo-after-effect', step: 0 },
    failAt: 2,
    lastStarted: 2,
  },
  {
    crash: { at: 'run-after-effect', step: 1 },
    resumeCrash: { at: 'journal-before', type: 'undo-done', step: 1 },
    lastStarted: 1,
  },
];

for (const c of doubleCrashCases) {
  test(`crash, then a crash while resuming (${c.resumeCrash?.at} ${c.resumeCrash?.type ?? ''} step ${c.resumeCrash?.step})`, async (t) => {
    const lines = await crashAndResume(t, c);
    assertUndoneNet(t, lines, c);
    t.is(count(lines, 'applied', 'do', 'reserve'), 1);
    t.is(count(lines, 'applied', 'do', 'charge'), 1);
  });
}

for (const c of forwardCases) {
  test(`forward: crash ${c.crash.at} ${c.crash.type ?? ''} step ${c.crash.step}`, async (t) => {
    const lines = await crashAndResume(t, c);
    for (const step of STEPS) {
      t.is(count(lines, 'applied', 'do', step), 1, `${step} applied exactly once`);
      t.is(count(lines, 'attempt', 'undo', step), 0, 'nothing undone');
    }
  });
}
