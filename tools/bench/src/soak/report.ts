/**
 * The soak's report: the invariants as pass / fail, and the table of results/soak.md (clients,
 * requests, restarts, faults injected, outcomes by code, lost, duplicates, reconnect p50/p99,
 * RSS start/end/slope, duration).
 */
import { loadAverage, machineInfo } from '../machine.js';
import { percentile } from '../stats.js';
import { slope } from './ledger.js';
import type { SoakResult } from './supervisor.js';

/** The invariants of a run and whether each held. */
export function invariants(r: SoakResult): { name: string; held: boolean; value: string }[] {
  const failed = Object.values(r.errors).reduce((a, b) => a + b, 0);
  const total = r.options.clients * r.options.requests;
  return [
    {
      name: 'every call settled (lost = 0)',
      held: r.lost === 0 && r.ok + failed + r.wrong === total,
      value: `${r.lost}`,
    },
    {
      name: 'every rejection typed (SIPC_ERR_*)',
      held: r.errors.untyped === undefined,
      value: `${r.errors.untyped ?? 0} untyped`,
    },
    { name: 'no answer to another call', held: r.wrong === 0, value: `${r.wrong}` },
    {
      name: 'every success left its ledger line',
      held: r.ledger.okWithoutEffect === 0,
      value: `${r.ledger.okWithoutEffect}`,
    },
    {
      name: 'no key executed twice within a server lifetime',
      held: r.ledger.duplicatesWithinLifetime === 0,
      value: `${r.ledger.duplicatesWithinLifetime}`,
    },
    {
      name: 'no key executed in two server lifetimes (the ledger is the durable idempotency store)',
      held: r.ledger.duplicatesAcrossRestarts === 0,
      value: `${r.ledger.duplicatesAcrossRestarts}`,
    },
    {
      name: 'no unhandled rejection / uncaught exception / bad exit',
      held: r.faults.length === 0 && r.missingReports === 0,
      value: `${r.faults.length}`,
    },
  ];
}

/**
 * RSS of one process: first and last sample (MiB) and the least-squares slope (KiB per minute)
 * over the samples after the first quarter of the run (the warm-up: clients, channels and V8's
 * heap growing to their working size).
 */
function rssLine(samples: SoakResult['rss'][number]): { start: number; end: number; slope: number } {
  const mib = (b: number) => b / 2 ** 20;
  return {
    start: mib(samples[0]?.[1] ?? 0),
    end: mib(samples.at(-1)?.[1] ?? 0),
    slope: (slope(samples.slice(Math.floor(samples.length / 4))) * 60_000) / 1024,
  };
}

const fmt = (x: number, d = 0) =>
  Number.isFinite(x)
    ? x.toLocaleString('en-US', { maximumFractionDigits: d, minimumFractionDigits: d })
    : '–';

/** `code n, code n` or `none`. */
function counts(byCode: Record<string, number>): string {
  const list = Object.entries(byCode).map(([c, n]) => `${c} ${fmt(n)}`);
  return list.length === 0 ? 'none' : list.join(', ');
}

/** The markdown report. `label` says what size this run was and why. */
export function soakMarkdown(r: SoakResult, label: string): string {
  const m = machineInfo();
  const rss = r.rss.map(rssLine);
  const p = (q: number) => (r.reconnectMs.length === 0 ? Number.NaN : percentile(r.reconnectMs, q));
  const o = r.options;
  const rows: [string, string][] = [
    [
      'clients × requests',
      `${fmt(o.clients)} × ${fmt(o.requests)} (${o.processes} client processes, ${o.window} in flight per client)`,
    ],
    ['restarts (SIGKILL + start)', fmt(r.restarts)],
    ['resets injected', fmt(r.injected.resets)],
    ['partial writes / delays injected', `${fmt(r.injected.partialWrites)} / ${fmt(r.injected.delays)}`],
    [
      'proxied connections (server down at accept)',
      `${fmt(r.injected.connections)} (${fmt(r.injected.upstreamDown)})`,
    ],
    ['calls ok', fmt(r.ok)],
    ['typed errors by code', counts(r.errors)],
    ['lost (must be 0)', fmt(r.lost)],
    ['reconnecting clients that gave up (terminal failure, by code)', counts(r.shutdown)],
    ['duplicates executed within a server lifetime (must be 0)', fmt(r.ledger.duplicatesWithinLifetime)],
    ['keys executed in two server lifetimes (must be 0)', fmt(r.ledger.duplicatesAcrossRestarts)],
    [
      'reconnect ms after a restart, p50 / p99',
      `${fmt(p(50), 1)} / ${fmt(p(99), 1)} (${r.reconnectMs.length} reconnects)`,
    ],
    [
      'RSS MiB start → end per client process',
      rss.map((x) => `${fmt(x.start, 1)} → ${fmt(x.end, 1)}`).join(', '),
    ],
    [
      'RSS slope KiB/min per client process (after the first quarter)',
      rss.map((x) => fmt(x.slope, 0)).join(', '),
    ],
    ['duration', `${fmt(r.durationMs / 1000, 1)} s`],
  ];
  const inv = invariants(r);
  return [
    '# Soak with chaos (issue 16, item 10)',
    '',
    `${label}. Written by \`npm run soak\` (tools/bench/src/soak/); see tools/bench/README.md, "Soak".`,
    '',
    `Machine: ${m.cpu}, ${m.cores} cores, ${fmt(m.memoryGiB, 1)} GiB, ${m.os}, Node ${m.node}; commit ${m.commit}${
      m.dirty ? ' (packages/ had uncommitted changes)' : ''
    }; load average at the end ${loadAverage()}; ${new Date().toISOString()}.`,
    '',
    '| measure | value |',
    '|---|---|',
    ...rows.map(([k, v]) => `| ${k} | ${v} |`),
    '',
    '| invariant | held | value |',
    '|---|---|---|',
    ...inv.map((i) => `| ${i.name} | ${i.held ? 'yes' : '**NO**'} | ${i.value} |`),
    '',
    `Faults: ${o.faults.delayRate} of chunks delayed up to ${o.faults.maxDelayMs} ms, ${o.faults.splitRate} split into pieces of 1-64 bytes, ` +
      `reset probability ${o.faults.resetRate} per chunk once a connection carried ${o.faults.graceBytes} server bytes; seed ${o.faults.seed}. ` +
      `Each call: \`waitForReady\`, an idempotency key, a ${fmt(o.callTimeoutMs)} ms deadline, retry policy maxAttempts 5.`,
    ...(r.faults.length > 0
      ? ['', 'Faults reported by processes:', '', ...r.faults.map((f) => `- ${f}`)]
      : []),
    '',
  ].join('\n');
}
