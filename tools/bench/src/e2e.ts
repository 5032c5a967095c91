/**
 * The end-to-end runner (parent side). Every row gets its own server process and client process;
 * all rows are started first, then each round runs each scenario across all rows in the same
 * order (A B C ... A B C), so drift on a shared machine hits every row alike and the per-round
 * ratios stay fair. The idle-RSS test uses fresh process pairs per row and round, because a
 * process that already pushed gigabytes has a heap that would hide the growth.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { WorkerHandle } from './control.js';
import type { Impl } from './impl.js';
import { implById } from './impls/index.js';
import { loadAverage } from './machine.js';
import type { Plan } from './plan.js';
import type { ConnectResult, RoundTripResult } from './scenarios.js';

export const METRICS = [
  'rttP50Us',
  'rttP99Us',
  'rttPerSec',
  'pipelinedPerSec',
  'bulkMBps',
  'connectP50Ms',
  'connectP99Ms',
  'rssPerConnKiB',
  'rssClientKiB',
  'rssServerKiB',
] as const;
export type Metric = (typeof METRICS)[number];

/** Per-round measurements of one row (undefined where a round failed). */
export interface RowResult {
  id: string;
  label: string;
  baseline: string;
  security: string;
  packages: string[];
  rounds: Record<Metric, (number | undefined)[]>;
  /** The payload-size sweep: per size (as a string), per round; absent when the row was not swept. */
  sweep?: Record<string, { rttP50Us: (number | undefined)[]; mbPerSec: (number | undefined)[] }>;
  /**
   * The connection sweep, per connection count (as a string): requests/s and p99 µs with every
   * connection busy, and RSS growth of both sides (KiB) over the same processes with no extra
   * connection; absent when the row was not swept.
   */
  connSweep?: Record<string, { perSec?: number; p99Us?: number; rssKiB?: number }>;
  errors: string[];
}

export interface E2eResult {
  rows: RowResult[];
  /** Load average before each round, then at the end. */
  loads: string[];
}

interface Live {
  impl: Impl;
  result: RowResult;
  server?: WorkerHandle;
  client?: WorkerHandle;
  dir?: string;
}

/** The scenarios of one round, in order. */
export const SCENARIOS = ['roundTrip', 'pipelined', 'bulk', 'connect'] as const;
export type Scenario = (typeof SCENARIOS)[number];
const RUN_TIMEOUT = 120_000;
const RSS_WARMUP = 20;

export async function runEndToEnd(
  rowIds: string[],
  plan: Plan,
  execArgv: string[],
  log: (line: string) => void,
): Promise<E2eResult> {
  const live: Live[] = rowIds.map((id) => {
    const impl = implById(id);
    const rounds = Object.fromEntries(
      METRICS.map((m) => [m, [] as (number | undefined)[]]),
    ) as RowResult['rounds'];
    return {
      impl,
      result: {
        id,
        label: impl.label,
        baseline: impl.baseline,
        security: impl.security,
        packages: impl.packages,
        rounds,
        errors: [],
      },
    };
  });
  const loads: string[] = [];

  // Start-up is not measured, so all rows start at once (it is the slow part of a quick run).
  await startAll(live, execArgv);
  const running = () => live.filter((r) => r.client !== undefined);

  // One unrecorded pass so every row is JIT-warm before the first recorded round.
  log(`warm-up pass over ${running().length} rows`);
  for (const scenario of plan.scenarios) {
    for (const row of running()) {
      await runScenario(row, scenario, warmupParams(plan, scenario)).catch((e) =>
        fail(row, `warm-up ${scenario}`, e),
      );
    }
  }

  for (let r = 0; r < plan.rounds; r++) {
    loads.push(loadAverage());
    log(`round ${r + 1}/${plan.rounds} (load ${loads.at(-1)})`);
    for (const scenario of plan.scenarios) {
      for (const row of running()) {
        const value = await runScenario(
          row,
          scenario,
          plan[scenario] as unknown as Record<string, number>,
        ).catch((e) => {
          fail(row, scenario, e);
          return undefined;
        });
        record(row.result, scenario, r, value);
      }
    }
  }
  await sweepSizes(
    running().filter((row) => plan.sweep.rows.includes(row.impl.id)),
    plan,
    log,
  );
  await Promise.all(live.map(stop));

  for (let r = 0; r < plan.rssRounds; r++) {
    loads.push(loadAverage());
    log(`idle RSS round ${r + 1}/${plan.rssRounds}, ${plan.idle} connections per row (load ${loads.at(-1)})`);
    const rows = live.filter((row) => !row.result.errors.some((e) => e.startsWith('setup')));
    await startAll(rows, execArgv);
    // Measured one row at a time; the other rows' processes sit idle meanwhile.
    for (const row of rows) {
      if (row.client === undefined) continue;
      try {
        // Open and close a few connections first, so code paths, pools and caches that every
        // connection shares are in the baseline and not counted against the first idle ones.
        await row.client.call({ op: 'open-idle', n: RSS_WARMUP }, 120_000);
        await row.client.call({ op: 'close-idle' }, 60_000);
        const [c0, s0] = await rssBoth(row);
        await row.client!.call({ op: 'open-idle', n: plan.idle }, 300_000);
        const [c1, s1] = await rssBoth(row);
        const cKiB = (c1 - c0) / 1024 / plan.idle;
        const sKiB = (s1 - s0) / 1024 / plan.idle;
        row.result.rounds.rssClientKiB[r] = cKiB;
        row.result.rounds.rssServerKiB[r] = sKiB;
        row.result.rounds.rssPerConnKiB[r] = cKiB + sKiB;
      } catch (e) {
        fail(row, 'idle RSS', e);
      } finally {
        await stop(row);
      }
    }
  }
  await sweepConnections(
    live.filter(
      (row) =>
        plan.connSweep.rows.includes(row.impl.id) && !row.result.errors.some((e) => e.startsWith('setup')),
    ),
    plan,
    execArgv,
    log,
  );
  loads.push(loadAverage());
  return { rows: live.map((l) => l.result), loads };
}

/**
 * The connection sweep, one row at a time in fresh processes: grow to each count of connections
 * (each proven by one answered request) and read RSS on both sides; then close them all, and grow
 * again, loading all of them at once at each count. At 10,000 connections a row takes tens of
 * seconds of handshakes per pass.
 */
async function sweepConnections(rows: Live[], plan: Plan, execArgv: string[], log: (line: string) => void) {
  const { counts, durationMs } = plan.connSweep;
  if (rows.length === 0 || counts.length === 0) return;
  for (const row of rows) {
    log(`connection sweep of ${row.impl.id}: ${counts.join(', ')} connections (load ${loadAverage()})`);
    await start(row, execArgv).catch((e) => fail(row, 'connection sweep setup', e));
    if (row.client === undefined) continue;
    const sweep: NonNullable<RowResult['connSweep']> = {};
    row.result.connSweep = sweep;
    try {
      await row.client.call({ op: 'open-idle', n: RSS_WARMUP }, 120_000);
      await row.client.call({ op: 'close-idle' }, 60_000);
      const [c0, s0] = await rssBoth(row);
      // Memory first, with no load at all: a load step grows the heaps (young generation, buffer
      // pools), which would be counted against the connections of every later step.
      for (const n of counts) {
        await row.client.call({ op: 'grow-idle', n }, 600_000);
        const [c1, s1] = await rssBoth(row);
        sweep[String(n)] = { rssKiB: (c1 - c0 + (s1 - s0)) / 1024 };
      }
      await row.client.call({ op: 'close-idle' }, 120_000);
      for (const n of counts) {
        await row.client.call({ op: 'grow-idle', n }, 600_000);
        const load = await row.client.call<{ perSec: number; p99Us: number }>(
          { op: 'conn-load', durationMs, size: 64 },
          RUN_TIMEOUT,
        );
        Object.assign(sweep[String(n)]!, { perSec: load.perSec, p99Us: load.p99Us });
      }
    } catch (e) {
      fail(row, 'connection sweep', e);
    }
    await stop(row);
  }
}

async function startAll(rows: Live[], execArgv: string[]): Promise<void> {
  await Promise.all(
    rows.map((row) =>
      start(row, execArgv).catch((e) => {
        fail(row, 'setup', e);
      }),
    ),
  );
}

async function start(row: Live, execArgv: string[]): Promise<void> {
  const secrets = await row.impl.secrets();
  row.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipc-bench-'));
  row.server = new WorkerHandle('server', execArgv);
  const address = await row.server.call<string>(
    { op: 'serve', row: row.impl.id, secrets: secrets.server, dir: row.dir },
    30_000,
  );
  row.client = new WorkerHandle('client', execArgv);
  await row.client.call({ op: 'connect', row: row.impl.id, secrets: secrets.client, address }, 30_000);
}

async function stop(row: Live): Promise<void> {
  const { client, server, dir } = row;
  row.client = undefined;
  row.server = undefined;
  row.dir = undefined;
  await client?.stop();
  await server?.stop();
  if (dir !== undefined) fs.rmSync(dir, { recursive: true, force: true });
}

async function rssBoth(row: Live): Promise<[number, number]> {
  const [c, s] = await Promise.all([
    row.client!.call<number>({ op: 'rss' }, 30_000),
    row.server!.call<number>({ op: 'rss' }, 30_000),
  ]);
  return [c, s];
}

/**
 * Round trip (p50) and bulk (MB/s) at every payload size of the sweep, rounds interleaved over the
 * rows like the main rounds. Counts scale down with the size (a 16 MiB round trip takes tens of
 * milliseconds) and every measurement stops at the sweep's time cap.
 */
async function sweepSizes(rows: Live[], plan: Plan, log: (line: string) => void): Promise<void> {
  const { sizes, rounds, maxMs } = plan.sweep;
  if (rows.length === 0 || rounds === 0) return;
  for (const row of rows)
    row.result.sweep = Object.fromEntries(
      sizes.map((size) => [String(size), { rttP50Us: [], mbPerSec: [] }]),
    );
  for (let r = 0; r < rounds; r++) {
    log(`payload-size sweep round ${r + 1}/${rounds} over ${rows.length} rows (load ${loadAverage()})`);
    for (const size of sizes) {
      const iterations = Math.max(5, Math.min(1000, Math.floor((64 * 2 ** 20) / size)));
      for (const row of rows) {
        const at = row.result.sweep![String(size)]!;
        const rt = await runScenario(row, 'roundTrip', { iterations, warmup: 3, size, maxMs }).catch((e) => {
          fail(row, `sweep round trip ${size} B`, e);
          return undefined;
        });
        at.rttP50Us[r] = (rt as RoundTripResult | undefined)?.p50Us;
        const bytes = Math.max(32 * 2 ** 20, 8 * size);
        const bulk = await runScenario(row, 'bulk', { size, bytes, maxMs }).catch((e) => {
          fail(row, `sweep bulk ${size} B`, e);
          return undefined;
        });
        at.mbPerSec[r] = (bulk as { mbPerSec: number } | undefined)?.mbPerSec;
      }
    }
  }
}

function runScenario(row: Live, scenario: Scenario, params: Record<string, number>) {
  return row.client!.call<unknown>({ op: 'run', scenario, params }, RUN_TIMEOUT);
}

function warmupParams(plan: Plan, scenario: Scenario): Record<string, number> {
  switch (scenario) {
    case 'roundTrip':
      return { ...plan.roundTrip, iterations: Math.ceil(plan.roundTrip.iterations / 5) };
    case 'pipelined':
      return { ...plan.pipelined, total: Math.ceil(plan.pipelined.total / 5) };
    case 'bulk':
      return { ...plan.bulk, bytes: plan.bulk.bytes / 8, maxMs: plan.bulk.maxMs / 4 };
    case 'connect':
      return { ...plan.connect, count: Math.ceil(plan.connect.count / 5) };
  }
}

function record(result: RowResult, scenario: Scenario, r: number, value: unknown): void {
  if (value === undefined) return;
  if (scenario === 'roundTrip') {
    const v = value as RoundTripResult;
    result.rounds.rttP50Us[r] = v.p50Us;
    result.rounds.rttP99Us[r] = v.p99Us;
    result.rounds.rttPerSec[r] = v.perSec;
  } else if (scenario === 'pipelined') {
    result.rounds.pipelinedPerSec[r] = (value as { perSec: number }).perSec;
  } else if (scenario === 'bulk') {
    result.rounds.bulkMBps[r] = (value as { mbPerSec: number }).mbPerSec;
  } else {
    const v = value as ConnectResult;
    result.rounds.connectP50Ms[r] = v.p50Ms;
    result.rounds.connectP99Ms[r] = v.p99Ms;
  }
}

function fail(row: Live, what: string, e: unknown): void {
  const msg = `${what}: ${e instanceof Error ? e.message : String(e)}`;
  if (!row.result.errors.includes(msg)) row.result.errors.push(msg);
  if (what === 'setup') {
    void stop(row);
  }
}
