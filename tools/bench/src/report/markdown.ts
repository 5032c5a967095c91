/**
 * The markdown report: where it ran, the end-to-end table with ratios, the targets, the micro
 * benchmarks, the versions and every error a row hit. Values are printed as measured; a row that
 * failed a scenario shows a dash and its error is listed, never a filled-in number.
 */
import type { E2eResult, Metric, RowResult } from '../e2e.js';
import type { MachineInfo } from '../machine.js';
import type { MicroResult } from '../micro/run.js';
import type { Plan } from '../plan.js';
import { connSeries, type Points, sizeLabel, sweepMedians } from './curves.js';
import type { Limits, RowSummary, TargetVerdict } from './summary.js';

export interface ReportInput {
  startedAt: Date;
  finishedAt: Date;
  plan: Plan;
  machine: MachineInfo;
  loadStart: string;
  loadEnd: string;
  e2e: E2eResult | undefined;
  summary: RowSummary[];
  verdicts: TargetVerdict[];
  limits: Limits;
  micro: MicroResult[];
  notes: string[];
  versions: [string, string][];
}

const num = (x: number | undefined, digits: number) =>
  x === undefined
    ? '–'
    : x.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
const times = (x: number | undefined) => (x === undefined ? '' : ` (${x.toFixed(2)}×)`);

function cell(s: RowSummary, metric: Metric, digits: number): string {
  const v = s.median[metric];
  if (v === undefined) return '–';
  return `${num(v, digits)}${s.row.id === s.row.baseline ? '' : times(s.ratio[metric])}`;
}

export function renderMarkdown(r: ReportInput): string {
  const m = r.machine;
  const out: string[] = [];
  out.push(`# secure-ipc benchmark (${r.plan.mode} run)`, '');
  if (r.plan.mode === 'quick') {
    out.push('> Quick smoke run: too short to quote. Use `npm run bench` (full) for numbers.', '');
  }
  out.push(
    `- Started ${r.startedAt.toISOString()}, finished ${r.finishedAt.toISOString()}`,
    `- Machine: ${m.cpu}, ${m.cores} cores, ${m.memoryGiB.toFixed(1)} GiB RAM, ${m.os}`,
    `- Node ${m.node}; tree at commit ${m.commit}${m.dirty ? ' with uncommitted changes under packages/ (built as they were)' : ''}`,
    `- Load average (1/5/15 min): ${r.loadStart} at start, ${r.loadEnd} at the end`,
  );
  if (r.e2e !== undefined) out.push(`- Load average before each round: ${r.e2e.loads.join('; ')}`);
  out.push(
    `- Plan per round and row (each capped in time for slow rows, rates computed over what was done): ` +
      `round trip ${r.plan.roundTrip.iterations} × ${r.plan.roundTrip.size} B (or ${r.plan.roundTrip.maxMs} ms); ` +
      `pipelined ${r.plan.pipelined.total} × ${r.plan.pipelined.size} B with ${r.plan.pipelined.inflight} in flight (or ${r.plan.pipelined.maxMs} ms); ` +
      `bulk ${r.plan.bulk.bytes / 2 ** 20} MiB in ${r.plan.bulk.size / 1024} KiB messages (or ${r.plan.bulk.maxMs} ms); ` +
      `connect × ${r.plan.connect.count} (or ${r.plan.connect.maxMs} ms); ${r.plan.rounds} interleaved rounds; ` +
      `idle RSS with ${r.plan.idle} connections × ${r.plan.rssRounds} rounds`,
    '',
  );

  if (r.e2e !== undefined) {
    out.push(
      '## End to end (server and client in separate processes)',
      '',
      'Medians over rounds; in parentheses the median of per-round ratios to the raw row over the same socket kind.',
      'Round trip and pipelined: 64-byte echo; bulk: one-way 64 KiB messages, MB = 10^6 bytes;',
      'connect: new connection + handshake + first 64-byte reply; RSS: growth of client + server RSS per idle',
      'authenticated connection (each proven by one reply), after GC on both sides.',
      '',
      '| row | RT p50 µs | RT p99 µs | RT/s | pipelined req/s | bulk MB/s | connect p50 ms | connect p99 ms | RSS/conn KiB (client+server) | protection |',
      '|---|---|---|---|---|---|---|---|---|---|',
    );
    for (const s of r.summary) {
      const rss =
        s.median.rssPerConnKiB === undefined
          ? '–'
          : `${cell(s, 'rssPerConnKiB', 1)} = ${num(s.median.rssClientKiB, 1)} + ${num(s.median.rssServerKiB, 1)}`;
      out.push(
        `| ${s.row.label} | ${cell(s, 'rttP50Us', 1)} | ${cell(s, 'rttP99Us', 1)} | ${cell(s, 'rttPerSec', 0)} | ` +
          `${cell(s, 'pipelinedPerSec', 0)} | ${cell(s, 'bulkMBps', 0)} | ${cell(s, 'connectP50Ms', 3)} | ` +
          `${cell(s, 'connectP99Ms', 3)} | ${rss} | ${s.row.security} |`,
      );
    }
    out.push('');

    out.push(
      '## Targets (issue 14), secure-ipc rows',
      '',
      'Each ratio is the median of per-round ratios to its reference: raw (4-byte prefix, same socket kind),',
      `${'`'}secret-stream-unix${'`'} measured in the same rounds, the crypto bound, or raw connect + 1.5 × core's in-memory`,
      'handshake (both from the micro benchmarks of this run, see "Limits"). "not measured": the reference was not in this run.',
      '',
    );
    if (r.verdicts.length === 0) {
      out.push('No secure-ipc row was measured in this run, so no target could be judged.', '');
    } else {
      out.push(
        '| target | row | against | measured ratio (median of rounds) | per-round range | limit | verdict |',
        '|---|---|---|---|---|---|---|',
      );
      for (const v of r.verdicts) {
        const verdict = v.met === undefined ? 'not measured' : v.met ? 'met' : '**not met**';
        out.push(
          `| ${v.target.name} | ${v.rowId} | ${v.target.against} | ${v.ratio === undefined ? '–' : `${v.ratio.toFixed(3)}×`} | ` +
            `${v.range === undefined ? '–' : `${v.range[0].toFixed(2)}-${v.range[1].toFixed(2)}×`} | ` +
            `${v.target.op} ${v.target.limit.toFixed(2)}× | ${verdict} |`,
        );
      }
      out.push('');
    }

    // Each swept row's series; a table cell joins the row's values at one x with " / ".
    const table = (
      heading: string[],
      xName: string,
      rows: RowResult[],
      series: (row: RowResult) => { points: Points; digits: number }[],
      xLabel: (x: number) => string,
    ) => {
      if (rows.length === 0) return;
      const all = rows.map(series);
      const xs = [...new Set(all.flatMap((s) => s.flatMap((one) => one.points.map((p) => p.size))))].sort(
        (a, b) => a - b,
      );
      out.push(
        ...heading,
        '',
        `| ${xName} | ${rows.map((row) => row.label).join(' | ')} |`,
        `|---|${rows.map(() => '---|').join('')}`,
      );
      for (const x of xs) {
        const cells = all.map((s) =>
          s.map(({ points, digits }) => num(points.find((p) => p.size === x)?.value, digits)).join(' / '),
        );
        out.push(`| ${xLabel(x)} | ${cells.join(' | ')} |`);
      }
      out.push('');
    };
    table(
      [
        '## How cost grows with the payload size (curves: `*.sizes.svg`)',
        '',
        'Medians of the sweep rounds: round trip p50 µs / bulk one-way MB/s, at each payload size.',
      ],
      'size',
      r.e2e.rows.filter((row) => row.sweep !== undefined),
      (row) => [
        { points: sweepMedians(row, 'rttP50Us'), digits: 1 },
        { points: sweepMedians(row, 'mbPerSec'), digits: 0 },
      ],
      sizeLabel,
    );
    table(
      [
        '## How cost grows with the connections (curves: `*.connections.svg`)',
        '',
        'Per row in fresh processes: a pass reading the RSS growth of both sides at each count (each connection proven by',
        'one reply, after GC; "–" where it was at or below zero), then a pass with every connection busy with one 64-byte',
        'echo in flight at each count: requests/s / p99 µs / RSS KiB.',
      ],
      'connections',
      r.e2e.rows.filter((row) => row.connSweep !== undefined),
      (row) => [
        { points: connSeries(row, 'perSec'), digits: 0 },
        { points: connSeries(row, 'p99Us'), digits: 1 },
        { points: connSeries(row, 'rssKiB'), digits: 0 },
      ],
      (n) => n.toLocaleString('en-US'),
    );

    const errors = r.summary.filter((s) => s.row.errors.length > 0);
    if (errors.length > 0) {
      out.push('## Errors (the scenario shows a dash, or fewer rounds, where it failed)', '');
      for (const s of errors) for (const e of s.row.errors) out.push(`- ${s.row.id}: ${e}`);
      out.push('');
    }
  }

  const l = r.limits;
  if (l.cryptoBoundMBps !== undefined || l.handshakeFloorUs !== undefined) {
    out.push(
      '## Limits (this machine, one core, from the micro benchmarks below)',
      '',
      `- Crypto bound: ChaCha20-Poly1305 encrypt at 64 KiB (the bulk message size): ${num(l.cryptoBoundMBps, 0)} MB/s`,
      `- Handshake floor: 6 X25519 DH (ee, es, se on each side) × ${num(l.dhUs, 1)} µs + 2 key pairs × ${num(l.keyPairUs, 1)} µs = ${num(l.handshakeFloorUs, 0)} µs of CPU`,
      `- In-memory XX handshake, both roles: noise-handshake ${num(l.noiseHandshakeUs, 0)} µs; core (channel included) ${num(l.coreHandshakeUs, 0)} µs`,
    );
    if (l.bulkCeilingMBps !== undefined && l.cryptoBoundMBps !== undefined)
      out.push(
        `- Bulk ceiling of one core per side (derived, not measured): the AEAD over every byte and that byte's socket I/O on the same core, 1 / (1/${num(l.cryptoBoundMBps, 0)} + 1/${num(l.rawBulkMBps, 0)} MB/s of \`raw-unix\` bulk) = ${num(l.bulkCeilingMBps, 0)} MB/s, ${num(l.bulkCeilingMBps / l.cryptoBoundMBps, 2)}× the crypto bound`,
      );
    out.push('');
  }

  if (r.micro.length > 0) {
    out.push(
      '## Micro benchmarks (one process, one core)',
      '',
      '| case | ops/s (median) | µs/op | MB/s |',
      '|---|---|---|---|',
    );
    for (const x of r.micro) {
      out.push(
        `| ${x.name} | ${num(x.opsPerSec, 0)} | ${num(1e6 / x.opsPerSec, 2)} | ${x.bytes > 0 ? num((x.opsPerSec * x.bytes) / 1e6, 0) : ''} |`,
      );
    }
    out.push('');
  }

  if (r.notes.length > 0) {
    out.push('## Notes', '');
    for (const n of r.notes) out.push(`- ${n}`);
    out.push('');
  }

  out.push('## Versions', '', '| package | version |', '|---|---|');
  for (const [name, version] of r.versions) out.push(`| ${name} | ${version} |`);
  out.push('');
  return out.join('\n');
}
