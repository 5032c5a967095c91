/**
 * `npm run fuzz` (10^7 inputs per target) and CI (10^5, in test/fuzz.test.ts):
 *   node dist/fuzz/run.js [TARGET|all] [--runs N] [--seed S] [--out DIR]
 * Prints one line per target; on a finding writes the input to DIR (default fuzz/findings, git-
 * ignored) and exits 1. Commit a finding under fuzz/regressions/TARGET/ once it is fixed: the test
 * suite replays every regression input.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { fuzz } from './engine.js';
import { TARGETS } from './targets.js';

const args = process.argv.slice(2);
const flag = (name: string) => {
  const at = args.indexOf(name);
  return at < 0 ? undefined : args.splice(at, 2)[1];
};
const runs = Number(flag('--runs') ?? 10_000_000);
const seed = flag('--seed');
const out = flag('--out') ?? fileURLToPath(new URL('../../fuzz/findings', import.meta.url));
const which = args[0] ?? 'all';
const names = which === 'all' ? Object.keys(TARGETS) : [which];
let failed = false;
for (const name of names) {
  const spec = TARGETS[name];
  if (spec === undefined) {
    console.error(`unknown target ${name}; targets: ${Object.keys(TARGETS).join(', ')}`);
    process.exit(2);
  }
  const start = performance.now();
  const result = fuzz(spec.fuzz, {
    runs,
    seeds: spec.seeds(),
    randomSeed: seed === undefined ? undefined : Number(seed),
  });
  const seconds = ((performance.now() - start) / 1000).toFixed(1);
  const line = `${name}: ${result.executions} inputs in ${seconds} s, corpus ${result.corpus}, features ${result.features}, seed ${result.randomSeed}`;
  if (result.finding === undefined) {
    console.log(`${line}: no finding`);
    continue;
  }
  failed = true;
  mkdirSync(join(out, name), { recursive: true });
  const file = join(out, name, `${result.finding.sha256}.bin`);
  writeFileSync(file, result.finding.input);
  console.log(`${line}: FINDING written to ${file}`);
  console.log(String((result.finding.error as Error)?.stack ?? result.finding.error));
}
process.exit(failed ? 1 : 0);
