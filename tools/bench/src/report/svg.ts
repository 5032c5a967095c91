/**
 * Hand-written SVG bar chart of the ratios to the raw baseline: one panel per metric, one bar per
 * row, a line at 1.0 (raw) and a line at the issue's target. Plain SVG 1.1 text, no dependency;
 * each panel has its own linear scale (capped, with the value printed) so that a 9× connect
 * time and a 0.05× bulk rate both stay readable.
 */
import type { Metric } from '../e2e.js';
import { type RowSummary, TARGETS } from './summary.js';

const PANELS: { metric: Metric; title: string }[] = [
  { metric: 'rttP50Us', title: 'Round trip p50, 64 B (lower is better)' },
  { metric: 'rttP99Us', title: 'Round trip p99, 64 B (lower is better)' },
  { metric: 'pipelinedPerSec', title: 'Pipelined requests/s, 64 in flight (higher is better)' },
  { metric: 'bulkMBps', title: 'Bulk one-way 64 KiB, MB/s (higher is better)' },
  { metric: 'connectP50Ms', title: 'Connect → first authenticated reply p50 (lower is better)' },
  { metric: 'rssPerConnKiB', title: 'RSS per idle connection, both sides (lower is better)' },
];

const WIDTH = 980;
const LABEL_W = 330;
const BAR_W = 540;
const ROW_H = 18;
const CAP = 12;

export const esc = (s: string) =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

export function renderSvg(rows: RowSummary[], title: string): string {
  const bars = rows.filter((s) => s.row.id !== s.row.baseline);
  const parts: string[] = [];
  let y = 40;
  parts.push(
    `<text x="10" y="24" font-size="16" font-weight="bold">${esc(title)}</text>`,
    `<text x="${WIDTH - 10}" y="24" font-size="11" text-anchor="end" fill="#555">ratio to raw net over the same socket kind (raw = 1.0)</text>`,
  );
  for (const panel of PANELS) {
    const target = TARGETS.find((t) => t.metric === panel.metric && t.against === 'raw');
    const ratios = bars.map((s) => s.ratio[panel.metric]).filter((x): x is number => x !== undefined);
    const max = Math.min(CAP, Math.max(1, target?.limit ?? 1, ...ratios) * 1.08);
    const xOf = (v: number) => LABEL_W + (Math.min(v, max) / max) * BAR_W;
    const top = y;
    parts.push(`<text x="10" y="${y + 14}" font-size="13" font-weight="bold">${esc(panel.title)}</text>`);
    y += 22;
    for (const s of bars) {
      const v = s.ratio[panel.metric];
      const color = s.row.id.startsWith('sipc-')
        ? '#1f6feb'
        : s.row.id.startsWith('chan-')
          ? '#79a8f0'
          : '#8b949e';
      parts.push(
        `<text x="${LABEL_W - 8}" y="${y + 13}" font-size="11" text-anchor="end">${esc(s.row.label)}</text>`,
      );
      if (v === undefined) {
        parts.push(`<text x="${LABEL_W + 4}" y="${y + 13}" font-size="11" fill="#999">not measured</text>`);
      } else {
        const w = Math.max(1, xOf(v) - LABEL_W);
        parts.push(
          `<rect x="${LABEL_W}" y="${y + 3}" width="${w.toFixed(1)}" height="${ROW_H - 6}" fill="${color}"/>`,
          `<text x="${(LABEL_W + w + 4).toFixed(1)}" y="${y + 13}" font-size="11">${v.toFixed(2)}×${v > max ? ' (bar capped)' : ''}</text>`,
        );
      }
      y += ROW_H;
    }
    const one = xOf(1).toFixed(1);
    parts.push(
      `<line x1="${one}" y1="${top + 20}" x2="${one}" y2="${y}" stroke="#000" stroke-width="1"/>`,
      `<text x="${one}" y="${y + 11}" font-size="10" text-anchor="middle">raw 1.0</text>`,
    );
    if (target !== undefined) {
      const tx = xOf(target.limit).toFixed(1);
      parts.push(
        `<line x1="${tx}" y1="${top + 20}" x2="${tx}" y2="${y}" stroke="#d1242f" stroke-width="1.5" stroke-dasharray="4 3"/>`,
        `<text x="${tx}" y="${top + 14}" font-size="10" fill="#d1242f" text-anchor="middle">${esc(`target ${target.op} ${target.limit}`)}</text>`,
      );
    }
    y += 24;
  }
  return svgDocument(WIDTH, y, parts);
}

/** A standalone SVG 1.1 document of `width` x `height` on white, holding `parts`. */
export function svgDocument(width: number, height: number, parts: readonly string[]): string {
  return [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#fff"/>`,
    ...parts,
    '</svg>',
    '',
  ].join('\n');
}
