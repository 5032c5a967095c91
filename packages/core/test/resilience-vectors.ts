/**
 * Builds the backoff vectors of test/vectors/backoff.json from this implementation (the vectors
 * test compares the committed file with this, so the file never drifts from the code). To
 * regenerate after an intended change: `npx tsc -b` then
 * `node -e "import('./dist/test/resilience-vectors.js').then((m) => m.writeBackoffVectors())"`
 * in packages/core. The format is described in the file itself and in docs/resilience.md.
 */
import { writeFileSync } from 'node:fs';
import { type BackoffOptions, createBackoff } from '../src/resilience/backoff.js';
import { seededRandom } from '../src/resilience/clock.js';

/** dist/test/x.js → packages/core/test/vectors/backoff.json. */
export const BACKOFF_VECTORS_FILE = new URL('../../test/vectors/backoff.json', import.meta.url);

const CASES: Array<{
  name: string;
  seed: number;
  options: Omit<BackoffOptions, 'random'>;
  steps: number;
  resetAfter?: number;
}> = [
  { name: "gRPC's defaults", seed: 1, options: {}, steps: 16 },
  { name: 'defaults, another seed', seed: 2026, options: {}, steps: 16 },
  {
    name: 'every option changed',
    seed: 42,
    options: { initialMs: 100, multiplier: 2, jitter: 0.5, maxMs: 5000, minConnectTimeoutMs: 1000 },
    steps: 10,
  },
  {
    name: 'no jitter (a draw is still taken per attempt after the first)',
    seed: 7,
    options: { jitter: 0 },
    steps: 14,
  },
  { name: 'reset after the 4th attempt', seed: 3, options: {}, steps: 8, resetAfter: 4 },
];

const MULBERRY_SEEDS = [0, 1, 42, 2026, 0xffffffff];

/** The vectors, as the JSON file holds them. */
export function buildBackoffVectors(): unknown {
  return {
    description:
      'Backoff vectors (docs/resilience.md, "Backoff"). mulberry32: each seed\'s first 5 outputs as unsigned 32-bit integers (the RandomSource value is the integer / 2^32). backoff: for each case, a backoff with `options` (omitted ones are gRPC\'s defaults) and random = mulberry32(seed); `steps[i]` is what next() returns at attempt i+1: `r` is the draw it took (null on the first attempt since the start or a reset, which has no jitter), `delayMs` and `connectTimeoutMs` as IEEE-754 doubles; with `resetAfter: n`, reset() is called after the nth step.',
    mulberry32: MULBERRY_SEEDS.map((seed) => {
      const r = seededRandom(seed);
      return { seed, outputs: Array.from({ length: 5 }, () => r() * 2 ** 32) };
    }),
    backoff: CASES.map((c) => {
      const draw = seededRandom(c.seed);
      let last: number | null = null;
      const backoff = createBackoff({
        ...c.options,
        random: () => {
          last = draw();
          return last;
        },
      });
      const steps = [];
      for (let i = 0; i < c.steps; i++) {
        if (c.resetAfter !== undefined && i === c.resetAfter) backoff.reset();
        last = null;
        const s = backoff.next();
        steps.push({ attempt: s.attempt, r: last, delayMs: s.delayMs, connectTimeoutMs: s.connectTimeoutMs });
      }
      return {
        name: c.name,
        seed: c.seed,
        options: c.options,
        ...(c.resetAfter === undefined ? {} : { resetAfter: c.resetAfter }),
        steps,
      };
    }),
  };
}

/** Write test/vectors/backoff.json from this implementation. */
export function writeBackoffVectors(): void {
  writeFileSync(BACKOFF_VECTORS_FILE, `${JSON.stringify(buildBackoffVectors(), null, 2)}\n`);
}
