// ava's CLI for runtimes other than Node (tools/scripts/runtimes.mjs runs it under Bun and Deno).
// ava 7 calls `v8.takeCoverage()` when a run ends (for c8 coverage); Bun 1.4 and Deno 2.9 throw
// "not implemented" there, which crashes ava after the last test. Coverage is not collected in
// these runs, so a no-op stands in for it. Nothing else about ava or the tests is changed.
import v8 from 'node:v8';

try {
  v8.takeCoverage();
} catch {
  v8.takeCoverage = () => undefined;
}
await import('../../node_modules/ava/entrypoints/cli.mjs');
