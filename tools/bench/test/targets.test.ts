/**
 * The report's judgement of issue 14's targets: each ratio is taken against the right reference,
 * round by round, and a reference missing from the run is "not measured", never met.
 */
import test from 'ava';
import { type E2eResult, METRICS, type RowResult } from '../src/e2e.js';
import type { MicroResult } from '../src/micro/run.js';
import {
  bulkCeilingMBps,
  judgeHandshake,
  judgeTargets,
  LIMIT_CASES,
  limitsFrom,
  summarize,
  withBulkCeiling,
} from '../src/report/summary.js';

function row(
  id: string,
  baseline: string,
  values: Partial<Record<(typeof METRICS)[number], number[]>>,
): RowResult {
  const rounds = Object.fromEntries(METRICS.map((m) => [m, values[m] ?? []])) as RowResult['rounds'];
  return { id, label: id, baseline, security: '', packages: [], rounds, errors: [] };
}

const micro = (name: string, opsPerSec: number[], bytes = 0): MicroResult => ({
  name,
  bytes,
  opsPerSec: [...opsPerSec].sort((a, b) => a - b)[Math.floor(opsPerSec.length / 2)]!,
  rounds: opsPerSec,
});

function verdict(rows: RowResult[], limitsMicro: MicroResult[], name: string, against: string) {
  const e2e: E2eResult = { rows, loads: [] } as unknown as E2eResult;
  const verdicts = judgeTargets(summarize(e2e), ['sipc-'], limitsFrom(limitsMicro));
  return verdicts.find((v) => v.target.name.startsWith(name) && v.target.against === against)!;
}

const RAW = row('raw-unix', 'raw-unix', {
  rttP50Us: [40, 50, 60],
  bulkMBps: [1000, 1000, 1000],
  connectP50Ms: [0.2, 0.2, 0.2],
});
const SS = row('secret-stream-unix', 'raw-unix', { rttP50Us: [60, 100, 90], bulkMBps: [200, 300, 250] });
const SIPC = row('sipc-unix', 'raw-unix', {
  rttP50Us: [48, 55, 90],
  bulkMBps: [600, 700, 800],
  connectP50Ms: [1.0, 0.9, 1.1],
});
const LIMITS = [
  micro('AEAD encrypt 64 KiB', [15_000, 16_000, 17_000], 65536),
  micro('X25519 DH (crypto_scalarmult)', [25_000, 25_000, 25_000]),
  micro('X25519 key pair (crypto_kx_keypair)', [50_000, 50_000, 50_000]),
  micro(`${LIMIT_CASES.coreHandshake} (secureConnect + secureAccept over memoryPair)`, [2000, 1000, 2000]),
  micro(`${LIMIT_CASES.noiseHandshake} 4.2.0 (contrast)`, [2500, 2500, 1000]),
];

test('ratios to raw and to secret-stream are medians of per-round ratios', (t) => {
  const toRaw = verdict([RAW, SS, SIPC], LIMITS, 'round trip p50', 'raw');
  t.is(toRaw.ratio, 1.2); // 1.2, 1.1, 1.5
  t.deepEqual(toRaw.range, [1.1, 1.5]);
  t.true(toRaw.met);
  const toSs = verdict([RAW, SS, SIPC], LIMITS, 'round trip p50', 'secret-stream');
  t.is(toSs.ratio, 0.8); // 0.8, 0.55, 1.0
  t.true(toSs.met);
  const bulk = verdict([RAW, SS, SIPC], LIMITS, 'bulk', 'secret-stream');
  t.is(bulk.ratio, 3); // 3, 2.33, 3.2
  t.true(bulk.met);
});

test('bulk against the crypto bound and connect against raw + 1.5 x the in-memory handshake', (t) => {
  const limits = limitsFrom(LIMITS);
  t.is(limits.cryptoBoundMBps, (16_000 * 65536) / 1e6);
  t.is(limits.handshakeFloorUs, 6 * 40 + 2 * 20);
  t.is(limits.coreHandshakeUs, 500);
  const bulk = verdict([RAW, SS, SIPC], LIMITS, 'bulk', 'crypto bound');
  t.is(bulk.ratio, 700 / limits.cryptoBoundMBps!);
  t.false(bulk.met);
  // raw 0.2 ms + 1.5 x 0.5 ms = 0.95 ms: 1.0 / 0.95, 0.9 / 0.95, 1.1 / 0.95.
  const connect = verdict([RAW, SS, SIPC], LIMITS, 'connect', 'raw + 1.5 × in-memory handshake');
  t.true(Math.abs(connect.ratio! - 1.0 / 0.95) < 1e-12);
  t.false(connect.met);
});

test('a reference missing from the run is not measured, never met', (t) => {
  const noSs = verdict([RAW, SIPC], LIMITS, 'round trip p50', 'secret-stream');
  t.is(noSs.ratio, undefined);
  t.is(noSs.met, undefined);
  const noMicro = verdict([RAW, SS, SIPC], [], 'bulk', 'crypto bound');
  t.is(noMicro.met, undefined);
  t.is(judgeHandshake([]).met, undefined);
});

test('the in-memory handshake is judged round by round as time (1 / ops) against noise-handshake', (t) => {
  // Per round, core's time over noise-handshake's: 2500/2000, 2500/1000, 1000/2000.
  const v = judgeHandshake(LIMITS);
  t.is(v.ratio, 1.25);
  t.deepEqual(v.range, [0.5, 2.5]);
  t.false(v.met);
});

test('the bulk ceiling: the AEAD and the socket I/O of every byte on one core, from the same run', (t) => {
  t.is(bulkCeilingMBps(1000, 1000), 500);
  t.is(bulkCeilingMBps(1200, 600), 400);
  t.is(bulkCeilingMBps(undefined, 600), undefined);
  t.is(bulkCeilingMBps(1200, 0), undefined);
  const e2e: E2eResult = { rows: [RAW, SIPC], loads: [] } as unknown as E2eResult;
  const limits = withBulkCeiling(limitsFrom(LIMITS), summarize(e2e));
  t.is(limits.rawBulkMBps, 1000);
  t.is(limits.bulkCeilingMBps, 1 / (1 / limits.cryptoBoundMBps! + 1 / 1000));
  const noRaw = withBulkCeiling(
    limitsFrom(LIMITS),
    summarize({ rows: [SIPC], loads: [] } as unknown as E2eResult),
  );
  t.is(noRaw.bulkCeilingMBps, undefined);
});
