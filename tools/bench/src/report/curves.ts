/**
 * Hand-written SVG line charts of how cost grows (issue 14, item 3): round trip p50 and bulk
 * throughput against the payload size, and throughput, p99 and memory against the number of
 * connections; one line per swept row, both axes logarithmic (64 B to 16 MiB, 1 to 10,000
 * connections, values over several decades). Payload sizes: medians of the sweep's rounds. A point
 * a row failed at leaves a gap in its line, never an invented point.
 */
import type { RowResult } from '../e2e.js';
import { median } from '../stats.js';
import { esc, svgDocument } from './svg.js';

/** A value (or a gap) at each x of a sweep. */
export type Points = { size: number; value: number | undefined }[];

/** The points of a sweep's record keyed by x (as a string), smallest x first. */
function pointsOf<T>(record: Record<string, T> | undefined, read: (at: T) => number | undefined): Points {
  return Object.entries(record ?? {})
    .map(([x, at]) => ({ size: Number(x), value: read(at) }))
    .sort((a, b) => a.size - b.size);
}

/** Median per size of one sweep series, or undefined where no round produced a value. */
export function sweepMedians(row: RowResult, series: 'rttP50Us' | 'mbPerSec'): Points {
  return pointsOf(row.sweep, (at) => {
    const present = at[series].filter((v): v is number => v !== undefined && Number.isFinite(v) && v > 0);
    return present.length === 0 ? undefined : median(present);
  });
}

const COLORS = ['#8b949e', '#1f6feb', '#d1242f', '#2da44e', '#bf8700'];
// Panel width and height, and its margins (left: value labels, right: the legend).
const [W, H, L, R, T, B] = [760, 300, 70, 200, 40, 40] as const;

export function sizeLabel(n: number): string {
  if (n >= 2 ** 20) return `${+(n / 2 ** 20).toFixed(3)} MiB`;
  if (n >= 1024) return `${+(n / 1024).toFixed(1)} KiB`;
  return `${n} B`;
}

/** One row's line: a value (or a gap) at each x. */
interface Line {
  label: string;
  points: Points;
}

function panel(lines: Line[], title: string, y0: number, xLabel: (x: number) => string): string[] {
  const sizes = [...new Set(lines.flatMap((l) => l.points.map((p) => p.size)))].sort((a, b) => a - b);
  const values = lines.flatMap((l) => l.points.flatMap((p) => (p.value === undefined ? [] : [p.value])));
  const out = [`<text x="10" y="${y0 + 20}" font-size="13" font-weight="bold">${esc(title)}</text>`];
  if (sizes.length < 2 || values.length === 0) {
    out.push(`<text x="${L}" y="${y0 + 60}" font-size="12" fill="#999">not measured</text>`);
    return out;
  }
  const lx0 = Math.log10(sizes[0]!);
  const lx1 = Math.log10(sizes.at(-1)!);
  const ly0 = Math.floor(Math.log10(Math.min(...values)));
  const ly1 = Math.ceil(Math.log10(Math.max(...values)) + 1e-9);
  const x = (size: number) => L + ((Math.log10(size) - lx0) / (lx1 - lx0)) * (W - L - R);
  const y = (v: number) => y0 + T + (1 - (Math.log10(v) - ly0) / Math.max(1, ly1 - ly0)) * (H - T - B);
  for (let d = ly0; d <= ly1; d++) {
    const yy = y(10 ** d).toFixed(1);
    out.push(
      `<line x1="${L}" y1="${yy}" x2="${W - R}" y2="${yy}" stroke="#ddd"/>`,
      `<text x="${L - 6}" y="${yy}" font-size="10" text-anchor="end">${(10 ** d).toLocaleString('en-US')}</text>`,
    );
  }
  for (const size of sizes) {
    const xx = x(size).toFixed(1);
    out.push(
      `<line x1="${xx}" y1="${y0 + T}" x2="${xx}" y2="${y0 + H - B}" stroke="#eee"/>`,
      `<text x="${xx}" y="${y0 + H - B + 14}" font-size="10" text-anchor="middle">${esc(xLabel(size))}</text>`,
    );
  }
  lines.forEach(({ label, points }, i) => {
    const color = COLORS[i % COLORS.length]!;
    let path = '';
    let pen = false;
    for (const p of points) {
      if (p.value === undefined) {
        pen = false;
        continue;
      }
      path += `${pen ? 'L' : 'M'}${x(p.size).toFixed(1)} ${y(p.value).toFixed(1)} `;
      pen = true;
      out.push(
        `<circle cx="${x(p.size).toFixed(1)}" cy="${y(p.value).toFixed(1)}" r="2.5" fill="${color}"/>`,
      );
    }
    out.push(
      `<path d="${path.trim()}" fill="none" stroke="${color}" stroke-width="2"/>`,
      `<text x="${W - R + 10}" y="${y0 + T + 14 + i * 16}" font-size="11" fill="${color}">${esc(label)}</text>`,
    );
  });
  return out;
}

/** The payload-size sweep's two panels as one SVG document, or undefined when no row was swept. */
export function renderSizeCurves(rows: RowResult[], title: string): string | undefined {
  const swept = rows.filter((r) => r.sweep !== undefined);
  if (swept.length === 0) return undefined;
  const lines = (series: 'rttP50Us' | 'mbPerSec') =>
    swept.map((row) => ({ label: row.label, points: sweepMedians(row, series) }));
  return chart(
    title,
    [
      ['Round trip p50 (µs) against payload size, lower is better', lines('rttP50Us')],
      ['Bulk one-way throughput (MB/s) against message size, higher is better', lines('mbPerSec')],
    ],
    sizeLabel,
  );
}

/** One series of the connection sweep, by connection count. */
export function connSeries(row: RowResult, series: 'perSec' | 'p99Us' | 'rssKiB'): Points {
  return pointsOf(row.connSweep, (at) =>
    at[series] !== undefined && at[series]! > 0 ? at[series] : undefined,
  );
}

/** The connection sweep's three panels as one SVG document, or undefined when no row was swept. */
export function renderConnCurves(rows: RowResult[], title: string): string | undefined {
  const swept = rows.filter((r) => r.connSweep !== undefined);
  if (swept.length === 0) return undefined;
  const lines = (series: 'perSec' | 'p99Us' | 'rssKiB') =>
    swept.map((row) => ({ label: row.label, points: connSeries(row, series) }));
  return chart(
    title,
    [
      [
        'Requests/s with every connection busy (64 B echo, one in flight each), higher is better',
        lines('perSec'),
      ],
      ['Round trip p99 (µs) with every connection busy, lower is better', lines('p99Us')],
      [
        'RSS of both sides (KiB) above the same processes with no connection, lower is better',
        lines('rssKiB'),
      ],
    ],
    (n) => n.toLocaleString('en-US'),
  );
}

function chart(title: string, panels: [string, Line[]][], xLabel: (x: number) => string): string {
  const parts = [`<text x="10" y="20" font-size="15" font-weight="bold">${esc(title)}</text>`];
  panels.forEach(([name, lines], i) => {
    parts.push(...panel(lines, name, 20 + i * H, xLabel));
  });
  return svgDocument(W, 20 + panels.length * H + 10, parts);
}
