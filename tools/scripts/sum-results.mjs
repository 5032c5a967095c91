#!/usr/bin/env node
// CI's closing line, counted from the TAP reports in .reports/ (see tools/scripts/tap.mjs), never
// from a log: one line per report, then `N passed, N failed[, N skipped]`.
//
//   node tools/scripts/sum-results.mjs [--only=test|runtimes] [--expect=NAME,NAME...]
//
// It knows which reports to expect: one per ava run in each workspace's `test` script (an
// `ava-tap.mjs [--variant=V]` gives <package>[-V], the Wine runner <package>-wine) and one per
// suite of the runtime matrix (tools/scripts/runtimes.mjs). A missing report, a bail-out, a run
// that never printed its plan, a plan that does not match the results and a report with no test
// are failures. Reports found beside the expected ones are counted too (.ci/run empties the
// directory first, so in CI every report is from this run). `--expect` replaces the list of
// expected reports (used to check the summer itself).
// Exit code 1 on any failure, or if no test passed at all.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { expectedReports as runtimeReports } from './runtimes.mjs';
import {
  failuresOf,
  readReport,
  repoRoot,
  reportDir,
  reportLine,
  reportPath,
  shortName,
  skippedOf,
} from './tap.mjs';

/** The reports `npm test` writes, read off each workspace's test script. */
function testReports() {
  const root = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8'));
  const names = [];
  const problems = [];
  for (const ws of root.workspaces) {
    const dir = join(repoRoot, ws);
    const script = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')).scripts?.test;
    if (!script) continue;
    const short = shortName(dir);
    const runs = [...script.matchAll(/ava-tap\.mjs((?:\s+(?!&&|\|\||;)\S+)*)|run-ava\.sh/g)];
    for (const run of runs) {
      const variant = run[0] === 'run-ava.sh' ? 'wine' : /--variant=(\S+)/.exec(run[1] ?? '')?.[1];
      names.push(variant ? `${short}-${variant}` : short);
    }
    if (runs.length === 0)
      problems.push(`${ws}'s test script writes no TAP report (use tools/scripts/ava-tap.mjs)`);
  }
  return { names, problems };
}

const flag = (key) => process.argv.find((a) => a.startsWith(`--${key}=`))?.slice(key.length + 3);
const only = flag('only');
const expectOnly = flag('expect');
const fromTest = expectOnly === undefined ? testReports() : { names: [], problems: [] };
const expected =
  expectOnly !== undefined
    ? expectOnly.split(',').filter(Boolean)
    : [...(only === 'runtimes' ? [] : fromTest.names), ...(only === 'test' ? [] : runtimeReports())];
let found = [];
try {
  found = readdirSync(reportDir)
    .filter((f) => f.endsWith('.tap'))
    .map((f) => f.slice(0, -'.tap'.length));
} catch {
  // no report directory: every expected report is missing
}
const names = [...expected, ...found.filter((f) => !expected.includes(f)).sort()];

let passed = 0;
let failed = 0;
let skipped = 0;
// Wall time of the ava runs (each report's `# time: N s`), by where they ran.
const seconds = { 'npm test': 0, 'test:runtimes': 0 };
const runtimeNames = new Set(runtimeReports());
for (const problem of fromTest.problems) {
  console.log(`[tap] FAIL ${problem}`);
  failed++;
}
for (const name of names) {
  const file = reportPath(name);
  const r = readReport(file);
  console.log(reportLine(name, r, file) + (expected.includes(name) ? '' : ' (not an expected report)'));
  passed += r.passed;
  failed += failuresOf(r);
  skipped += skippedOf(r);
  seconds[runtimeNames.has(name) ? 'test:runtimes' : 'npm test'] += r.seconds ?? 0;
}
const timed = Object.entries(seconds).filter(([, s]) => s > 0);
if (timed.length > 0)
  console.log(`[tap] time in ava runs: ${timed.map(([k, s]) => `${k} ${s} s`).join(', ')}`);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
