#!/usr/bin/env node
/**
 * `npm run bench -- [options]`: micro benchmarks in this process, then the end-to-end rows in
 * worker processes, then the markdown report, the SVG chart and the raw per-round data under
 * tools/bench/results/ (see README.md for what every row and column means).
 */
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from './args.js';
import { type E2eResult, runEndToEnd } from './e2e.js';
import { defaultRowIds, implById } from './impls/index.js';
import { loadAverage, machineInfo, packageVersion } from './machine.js';
import { type MicroResult, runMicro } from './micro/run.js';
import { renderConnCurves, renderSizeCurves } from './report/curves.js';
import { renderMarkdown } from './report/markdown.js';
import { judgeHandshake, judgeTargets, limitsFrom, summarize, withBulkCeiling } from './report/summary.js';
import { renderSvg } from './report/svg.js';

const RESULTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../results');

async function main(): Promise<void> {
  const opts = parseArgs(process.argv.slice(2));
  const log = (line: string) => process.stderr.write(`[bench] ${line}\n`);
  const startedAt = new Date();
  const loadStart = loadAverage();
  const machine = machineInfo();
  const notes: string[] = [];
  log(`${opts.plan.mode} run on ${machine.cpu}, ${machine.cores} cores, load ${loadStart}`);

  let micro: MicroResult[] = [];
  if (opts.micro) {
    const m = await runMicro(opts.plan.microRounds, opts.plan.microMs, log, opts.microFilter);
    micro = m.results;
    notes.push(...m.notes);
  }

  const rowIds = opts.rows ?? defaultRowIds();
  let e2e: E2eResult | undefined;
  if (opts.e2e) {
    const execArgv = opts.cpuProfDir ? ['--cpu-prof', `--cpu-prof-dir=${path.resolve(opts.cpuProfDir)}`] : [];
    e2e = await runEndToEnd(rowIds, opts.plan, execArgv, log);
  }
  const summary = e2e ? summarize(e2e) : [];
  const limits = withBulkCeiling(limitsFrom(micro), summary);
  const verdicts = [
    ...judgeTargets(summary, ['sipc-', 'chan-'], limits),
    ...(micro.length > 0 ? [judgeHandshake(micro)] : []),
  ];

  const packages = new Set(['noise-protocol', 'sodium-native', '@msgpack/msgpack', 'noise-handshake']);
  for (const id of rowIds) for (const p of implById(id).packages) packages.add(p);
  const versions: [string, string][] = [...packages].sort().map((p) => [p, packageVersion(p)]);

  const finishedAt = new Date();
  const input = {
    startedAt,
    finishedAt,
    plan: opts.plan,
    machine,
    loadStart,
    loadEnd: loadAverage(),
    e2e,
    summary,
    verdicts,
    limits,
    micro,
    notes,
    versions,
  };
  const dir = opts.out ? path.resolve(opts.out) : RESULTS;
  fs.mkdirSync(dir, { recursive: true });
  const base = path.join(dir, opts.name);
  const when = `${opts.plan.mode} run, ${startedAt.toISOString()}`;
  fs.writeFileSync(`${base}.md`, renderMarkdown(input));
  fs.writeFileSync(`${base}.svg`, renderSvg(summary, `secure-ipc benchmark, ${when}`));
  const curves = e2e && renderSizeCurves(e2e.rows, `cost against payload size, ${when}`);
  if (curves !== undefined) fs.writeFileSync(`${base}.sizes.svg`, curves);
  const connCurves = e2e && renderConnCurves(e2e.rows, `cost against connections, ${when}`);
  if (connCurves !== undefined) fs.writeFileSync(`${base}.connections.svg`, connCurves);
  fs.writeFileSync(`${base}.json`, `${JSON.stringify({ ...input, summary: undefined }, null, 1)}\n`);
  log(
    `wrote ${base}.md, .svg and .json in ${((finishedAt.getTime() - startedAt.getTime()) / 1000).toFixed(1)} s`,
  );
  process.stdout.write(renderMarkdown(input));
}

main().catch((err: unknown) => {
  process.stderr.write(`[bench] ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exit(1);
});
