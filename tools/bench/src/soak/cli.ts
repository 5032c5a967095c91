/**
 * `npm run soak -- [options]`: one soak run (./supervisor.ts), its report printed and written to
 * results/soak.md (or `--out FILE`). Exits 1 when an invariant did not hold.
 */
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { invariants, soakMarkdown } from './report.js';
import { runSoak, type SoakOptions } from './supervisor.js';

const USAGE =
  'usage: npm run soak -- [--clients N] [--requests N] [--processes N] [--window N] [--restart-every-ms N] [--restarts N] [--seed N] [--label TEXT] [--out FILE]';

function parse(argv: readonly string[]): { options: SoakOptions; label: string; out: string } {
  const options: SoakOptions = {
    clients: 1000,
    requests: 1000,
    processes: 8,
    window: 1,
    restarts: 0,
    restartEveryMs: 3000,
    callTimeoutMs: 60_000,
    rssEveryMs: 1000,
    faults: { seed: 16, delayRate: 0.05, maxDelayMs: 5, splitRate: 0.1, resetRate: 0.0005, graceBytes: 1024 },
  };
  let label = '';
  let out = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../results/soak.md');
  const ints: Record<string, (n: number) => void> = {
    '--clients': (n) => (options.clients = n),
    '--requests': (n) => (options.requests = n),
    '--processes': (n) => (options.processes = n),
    '--window': (n) => (options.window = n),
    '--restart-every-ms': (n) => (options.restartEveryMs = n),
    '--restarts': (n) => (options.restarts = n),
    '--seed': (n) => (options.faults.seed = n),
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[++i];
    if (v === undefined) throw new Error(`${a} needs a value\n${USAGE}`);
    const set = ints[a];
    if (set !== undefined) {
      const n = Number(v);
      if (!(Number.isSafeInteger(n) && n >= 0)) throw new Error(`${a}: not a count: ${v}`);
      set(n);
    } else if (a === '--label') label = v;
    else if (a === '--out') out = path.resolve(v);
    else throw new Error(`unknown option ${a}\n${USAGE}`);
  }
  if (options.clients < 1 || options.requests < 1 || options.processes < 1 || options.window < 1)
    throw new Error('--clients, --requests, --processes and --window must be at least 1');
  return { options, label, out };
}

const { options, label, out } = parse(process.argv.slice(2));
const result = await runSoak(options);
const full = options.clients === 1000 && options.requests === 1000;
const md = soakMarkdown(
  result,
  label || (full ? 'Full size (1,000 × 1,000)' : `Reduced size (${options.clients} × ${options.requests})`),
);
writeFileSync(out, md);
process.stdout.write(md);
if (invariants(result).some((i) => !i.held)) process.exitCode = 1;
