/**
 * Turns per-round measurements into what the report shows: per-row medians, per-row ratios to the
 * raw baseline (median of per-round ratios, see stats.medianRatio), and the targets
 * judged on the secure-ipc rows. Nothing here adjusts a number toward a target.
 */
import type { E2eResult, Metric, RowResult } from '../e2e.js';
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

/**
 * A target of issue 14 that is a ratio to the raw baseline (4-byte length prefix, same socket
 * kind): ratio `metric / baseline` must be `<=` or `>=` the limit. The other targets
 * (against secret-stream, the crypto bound and the handshake floor) are not judged here yet.
 */
export interface Target {
  name: string;
  metric: Metric;
  op: '<=' | '>=';
  limit: number;
}

export const TARGETS: Target[] = [
  { name: 'round trip p50', metric: 'rttP50Us', op: '<=', limit: 1.3 },
  { name: 'pipelined req/s (64 in flight)', metric: 'pipelinedPerSec', op: '>=', limit: 0.6 },
  { name: 'RSS per idle connection (both sides)', metric: 'rssPerConnKiB', op: '<=', limit: 2.5 },
];

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

/** Judge every target on every row whose id starts with `prefix` (the secure-ipc rows). */
export function judgeTargets(rows: RowSummary[], prefix: string): TargetVerdict[] {
  const verdicts: TargetVerdict[] = [];
  for (const s of rows.filter((r) => r.row.id.startsWith(prefix))) {
    for (const target of TARGETS) {
      const ratio = s.ratio[target.metric];
      const met =
        ratio === undefined ? undefined : target.op === '<=' ? ratio <= target.limit : ratio >= target.limit;
      verdicts.push({ target, rowId: s.row.id, ratio, range: s.ratioRange[target.metric], met });
    }
  }
  return verdicts;
}
