/**
 * Turns per-round measurements into what the report shows: per-row medians, per-row ratios to the
 * raw baseline (median of per-round ratios, see stats.medianRatio), and the issue's targets
 * judged on the secure-ipc rows. Nothing here adjusts a number toward a target.
 */
import type { E2eResult, Metric, RowResult } from '../e2e.js';
import type { MicroResult } from '../micro/run.js';
import { median, roundRatios } from '../stats.js';

export interface RowSummary {
  row: RowResult;
  median: Partial<Record<Metric, number>>;
  ratio: Partial<Record<Metric, number>>;
  /** Smallest and largest per-round ratio: how much the rounds disagreed. */
  ratioRange: Partial<Record<Metric, [number, number]>>;
  /** Rounds that produced a value, per metric. */
  n: Partial<Record<Metric, number>>;
}

/** What a target's ratio is taken against. */
export type Reference =
  | 'raw'
  | 'secret-stream'
  | 'crypto bound'
  | 'raw + 1.5 × in-memory handshake'
  | 'noise-handshake';

/** A target of issue 14: ratio `metric / reference` must be `<=` or `>=` the limit. */
export interface Target {
  name: string;
  /** The end-to-end metric (none for the in-memory handshake, judged from the micro rounds). */
  metric?: Metric;
  op: '<=' | '>=';
  limit: number;
  against: Reference;
}

/** The row the `secret-stream` targets compare with. */
export const SECRET_STREAM_ROW = 'secret-stream-unix';

const RT = 'round trip p50';
const PIPE = 'pipelined req/s (64 in flight)';
const BULK = 'bulk 64 KiB MB/s';
const CONNECT = 'connect → first authenticated reply p50';
const RSS = 'RSS per idle connection (both sides)';
const target = (
  name: string,
  metric: Metric,
  op: Target['op'],
  limit: number,
  against: Reference,
): Target => ({
  name,
  metric,
  op,
  limit,
  against,
});

export const TARGETS: Target[] = [
  target(RT, 'rttP50Us', '<=', 1.3, 'raw'),
  target(RT, 'rttP50Us', '<=', 1, 'secret-stream'),
  target('round trip p99', 'rttP99Us', '<=', 1, 'secret-stream'),
  target(PIPE, 'pipelinedPerSec', '>=', 0.6, 'raw'),
  target(PIPE, 'pipelinedPerSec', '>=', 1, 'secret-stream'),
  target(BULK, 'bulkMBps', '>=', 0.75, 'crypto bound'),
  target(BULK, 'bulkMBps', '>=', 2, 'secret-stream'),
  target(CONNECT, 'connectP50Ms', '<=', 1, 'secret-stream'),
  target(CONNECT, 'connectP50Ms', '<=', 1, 'raw + 1.5 × in-memory handshake'),
  target(RSS, 'rssPerConnKiB', '<=', 2.5, 'raw'),
  target(RSS, 'rssPerConnKiB', '<=', 1, 'secret-stream'),
];

/**
 * The physical limits of this machine, from the micro benchmarks of the same run (undefined when
 * they did not run): what the targets against the crypto bound and the handshake are taken against.
 */
export interface Limits {
  /** ChaCha20-Poly1305 encrypt on one core at the bulk message size (64 KiB), MB/s. */
  cryptoBoundMBps?: number;
  /** One X25519 DH and one X25519 key pair, µs. */
  dhUs?: number;
  keyPairUs?: number;
  /** The X25519 work an XX handshake needs: 6 DH (ee, es, se on each side) + 2 key pairs (one ephemeral per side), µs. */
  handshakeFloorUs?: number;
  /** A full XX handshake in memory, both roles: noise-handshake's and core's (channel included), µs. */
  noiseHandshakeUs?: number;
  coreHandshakeUs?: number;
  /** `raw-unix` bulk of the same run, MB/s, and the bulk ceiling derived from it (`bulkCeilingMBps`). */
  rawBulkMBps?: number;
  bulkCeilingMBps?: number;
}

/**
 * The most a design can carry in bulk when each side's one core does both the AEAD over every
 * byte (at `cryptoMBps`) and that byte's socket I/O (at most `rawMBps`, what raw sustains with no
 * crypto): per byte, 1/crypto + 1/raw seconds on the busier side, with perfect overlap of the two
 * sides. A derived upper bound, not a measurement; undefined when either input is missing.
 */
export function bulkCeilingMBps(
  cryptoMBps: number | undefined,
  rawMBps: number | undefined,
): number | undefined {
  if (cryptoMBps === undefined || rawMBps === undefined || !(cryptoMBps > 0) || !(rawMBps > 0))
    return undefined;
  return 1 / (1 / cryptoMBps + 1 / rawMBps);
}

/** `limits` with the raw-unix bulk of `rows` and the bulk ceiling filled in. */
export function withBulkCeiling(limits: Limits, rows: readonly RowSummary[]): Limits {
  const rawBulkMBps = rows.find((r) => r.row.id === 'raw-unix')?.median.bulkMBps;
  const bulkCeiling = bulkCeilingMBps(limits.cryptoBoundMBps, rawBulkMBps);
  return bulkCeiling === undefined ? limits : { ...limits, rawBulkMBps, bulkCeilingMBps: bulkCeiling };
}

/** The micro case names the limits are read from (micro/*.ts). */
export const LIMIT_CASES = {
  cryptoBound: 'AEAD encrypt 64 KiB',
  dh: 'X25519 DH (crypto_scalarmult)',
  keyPair: 'X25519 key pair (crypto_kx_keypair)',
  noiseHandshake: 'XX handshake, noise-handshake',
  coreHandshake: 'XX handshake via core',
} as const;

export function limitsFrom(micro: readonly MicroResult[]): Limits {
  const us = (prefix: string) => {
    const m = micro.find((x) => x.name.startsWith(prefix));
    return m === undefined ? undefined : 1e6 / m.opsPerSec;
  };
  const aead = micro.find((x) => x.name === LIMIT_CASES.cryptoBound);
  const dhUs = us(LIMIT_CASES.dh);
  const keyPairUs = us(LIMIT_CASES.keyPair);
  return {
    cryptoBoundMBps: aead === undefined ? undefined : (aead.opsPerSec * aead.bytes) / 1e6,
    dhUs,
    keyPairUs,
    handshakeFloorUs: dhUs === undefined || keyPairUs === undefined ? undefined : 6 * dhUs + 2 * keyPairUs,
    noiseHandshakeUs: us(LIMIT_CASES.noiseHandshake),
    coreHandshakeUs: us(LIMIT_CASES.coreHandshake),
  };
}

export interface TargetVerdict {
  target: Target;
  rowId: string;
  ratio: number | undefined;
  range: [number, number] | undefined;
  met: boolean | undefined;
}

export function summarize(e2e: E2eResult): RowSummary[] {
  const byId = new Map(e2e.rows.map((r) => [r.id, r]));
  return e2e.rows.map((row) => {
    const base = byId.get(row.baseline);
    const s: RowSummary = { row, median: {}, ratio: {}, ratioRange: {}, n: {} };
    for (const [metric, values] of Object.entries(row.rounds) as [Metric, (number | undefined)[]][]) {
      const present = values.filter((v): v is number => v !== undefined && Number.isFinite(v));
      s.n[metric] = present.length;
      if (present.length > 0) s.median[metric] = median(present);
      if (base !== undefined) {
        const rs = roundRatios(values, base.rounds[metric]);
        if (rs.length > 0) {
          s.ratio[metric] = median(rs);
          s.ratioRange[metric] = [Math.min(...rs), Math.max(...rs)];
        }
      }
    }
    return s;
  });
}

/** The per-round reference values of `target` for the rounds of this run, or undefined. */
function reference(
  target: Target,
  s: RowSummary,
  byId: ReadonlyMap<string, RowSummary>,
  limits: Limits,
): readonly (number | undefined)[] | undefined {
  if (target.metric === undefined) return undefined;
  const rounds = s.row.rounds[target.metric];
  switch (target.against) {
    case 'raw':
      return byId.get(s.row.baseline)?.row.rounds[target.metric];
    case 'secret-stream':
      return byId.get(SECRET_STREAM_ROW)?.row.rounds[target.metric];
    case 'crypto bound':
      return limits.cryptoBoundMBps === undefined ? undefined : rounds.map(() => limits.cryptoBoundMBps);
    case 'raw + 1.5 × in-memory handshake': {
      const hs = limits.coreHandshakeUs;
      const raw = byId.get(s.row.baseline)?.row.rounds[target.metric];
      if (hs === undefined || raw === undefined) return undefined;
      return raw.map((ms) => (ms === undefined ? undefined : ms + (1.5 * hs) / 1000));
    }
    case 'noise-handshake':
      return undefined;
  }
}

/** Judge every target on every row whose id starts with one of `prefixes` (the secure-ipc rows). */
export function judgeTargets(
  rows: RowSummary[],
  prefixes: readonly string[],
  limits: Limits = {},
): TargetVerdict[] {
  const byId = new Map(rows.map((r) => [r.row.id, r]));
  const verdicts: TargetVerdict[] = [];
  for (const s of rows.filter((r) => prefixes.some((p) => r.row.id.startsWith(p)))) {
    for (const target of TARGETS) {
      const ref = reference(target, s, byId, limits);
      const rs =
        ref === undefined || target.metric === undefined ? [] : roundRatios(s.row.rounds[target.metric], ref);
      const ratio = rs.length === 0 ? undefined : median(rs);
      const met =
        ratio === undefined ? undefined : target.op === '<=' ? ratio <= target.limit : ratio >= target.limit;
      const range: [number, number] | undefined =
        rs.length === 0 ? undefined : [Math.min(...rs), Math.max(...rs)];
      verdicts.push({ target, rowId: s.row.id, ratio, range, met });
    }
  }
  return verdicts;
}

/** The in-memory handshake target (core's ≤ noise-handshake's), from the micro rounds. */
export function judgeHandshake(micro: readonly MicroResult[]): TargetVerdict {
  const core = micro.find((x) => x.name.startsWith(LIMIT_CASES.coreHandshake));
  const nh = micro.find((x) => x.name.startsWith(LIMIT_CASES.noiseHandshake));
  const target: Target = {
    name: 'in-memory XX handshake µs (core)',
    op: '<=',
    limit: 1,
    against: 'noise-handshake',
  };
  if (core === undefined || nh === undefined)
    return { target, rowId: 'micro', ratio: undefined, range: undefined, met: undefined };
  // Time per handshake = 1 / ops: core's time over noise-handshake's, round by round.
  const rs = roundRatios(nh.rounds, core.rounds);
  const ratio = median(rs);
  return { target, rowId: 'micro', ratio, range: [Math.min(...rs), Math.max(...rs)], met: ratio <= 1 };
}
