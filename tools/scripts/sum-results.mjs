#!/usr/bin/env node
// Reads a test log (ava's default reporter output from every package, as nx prints it) and prints
// the closing line CI reads: `N passed, N failed` summed over all packages. ava prints per-package
// `N tests passed` / `N tests failed` / `N known failures` / `N tests skipped` lines instead, and
// omits the passed line when something failed: then the package's `✔` lines are counted.
// Uncaught exceptions, unhandled rejections and timeouts count as failures. Output of a Wine
// attempt that crashed (re-run by tools/wine/run-ava.sh) is prefixed and so never matches.
// Exit code 1 if any failed or if nothing ran.
import { readFileSync } from 'node:fs';

const log = readFileSync(process.argv[2] ?? 0, 'utf8');
const SUMMARY =
  /^\s*(\d+) (tests? passed|tests? failed|known failures?|tests? skipped|tests? todo|uncaught exceptions?|unhandled rejections?|tests? remained pending after a timeout)\s*$/;
let passed = 0;
let failed = 0;
let skipped = 0;

// One block per ava run: nx prints `> nx run <project>:<target>` before each, and a package may
// run ava twice (transport-win: Linux node, then Windows node under Wine), each with its summary.
function closeBlock(block) {
  let sawPassed = false;
  let ticks = 0;
  for (const line of block) {
    if (/^\s*✔ /.test(line)) ticks++;
    const m = SUMMARY.exec(line);
    if (!m) continue;
    const n = Number(m[1]);
    const what = m[2];
    if (what.includes('passed')) {
      passed += n;
      sawPassed = true;
      ticks = 0;
    } else if (what.includes('skipped') || what.includes('todo')) skipped += n;
    else {
      failed += n;
      if (!sawPassed) passed += ticks;
      ticks = 0;
    }
  }
}

let block = [];
for (const line of log.split(/\r?\n/)) {
  if (/^> nx run /.test(line)) {
    closeBlock(block);
    block = [];
  }
  block.push(line);
}
closeBlock(block);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
