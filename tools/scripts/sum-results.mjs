#!/usr/bin/env node
// Reads a test log (ava's default reporter output from every package, as nx prints it) and prints
// the closing line CI reads: `N passed, N failed` summed over all packages (ava prints per-package
// `N tests passed` / `N tests failed` / `N known failures` / `N tests skipped` lines instead).
// Uncaught exceptions, unhandled rejections and timeouts count as failures. Exit code 1 if any failed
// or if nothing ran.
import { readFileSync } from 'node:fs';

const log = readFileSync(process.argv[2] ?? 0, 'utf8');
let passed = 0;
let failed = 0;
let skipped = 0;
for (const line of log.split(/\r?\n/)) {
  const m =
    /^\s*(?:[✔✘─]\s*)?(\d+) (tests? passed|tests? failed|known failures?|tests? skipped|tests? todo|uncaught exceptions?|unhandled rejections?|tests? remained pending after a timeout)\s*$/.exec(
      line,
    );
  if (!m) continue;
  const n = Number(m[1]);
  const what = m[2];
  if (what.includes('passed')) passed += n;
  else if (what.includes('skipped') || what.includes('todo')) skipped += n;
  else failed += n;
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
