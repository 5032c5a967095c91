/**
 * gRPC's connection backoff (issue 16, item 9 and grpc/grpc doc/connection-backoff.md): the
 * committed vectors are what the implementation computes, the defaults are gRPC's, every delay
 * stays within its jitter band and under the cap's band, options are validated.
 */
import { readFileSync } from 'node:fs';
import test from 'ava';
import { isSecureIpcError } from '../src/errors.js';
import {
  createBackoff,
  DEFAULT_BACKOFF_INITIAL_MS,
  DEFAULT_BACKOFF_JITTER,
  DEFAULT_BACKOFF_MAX_MS,
  DEFAULT_BACKOFF_MULTIPLIER,
  DEFAULT_MIN_CONNECT_TIMEOUT_MS,
  MAX_BACKOFF_MS,
} from '../src/resilience/backoff.js';
import { seededRandom } from '../src/resilience/clock.js';
import { BACKOFF_VECTORS_FILE, buildBackoffVectors } from './resilience-vectors.js';

test('test/vectors/backoff.json is exactly what this implementation computes', (t) => {
  const committed = JSON.parse(readFileSync(BACKOFF_VECTORS_FILE, 'utf8'));
  t.deepEqual(committed, JSON.parse(JSON.stringify(buildBackoffVectors())));
});

test('the vectors replayed step by step from their own fields (as another implementation would)', (t) => {
  const { backoff } = JSON.parse(readFileSync(BACKOFF_VECTORS_FILE, 'utf8')) as {
    backoff: Array<{
      seed: number;
      options: Record<string, number>;
      resetAfter?: number;
      steps: Array<{ attempt: number; r: number | null; delayMs: number; connectTimeoutMs: number }>;
    }>;
  };
  t.true(backoff.length >= 5);
  for (const v of backoff) {
    const o = {
      initialMs: DEFAULT_BACKOFF_INITIAL_MS,
      multiplier: DEFAULT_BACKOFF_MULTIPLIER,
      jitter: DEFAULT_BACKOFF_JITTER,
      maxMs: DEFAULT_BACKOFF_MAX_MS,
      minConnectTimeoutMs: DEFAULT_MIN_CONNECT_TIMEOUT_MS,
      ...v.options,
    };
    // The document's pseudo-code, written out independently of src/resilience/backoff.ts.
    const random = seededRandom(v.seed);
    let current = o.initialMs;
    v.steps.forEach((step, i) => {
      const first = i === 0 || i === v.resetAfter;
      if (first) current = o.initialMs;
      else current = Math.min(current * o.multiplier, o.maxMs);
      const r = first ? null : random();
      const delay = r === null ? current : current * (1 + o.jitter * (2 * r - 1));
      t.is(step.r, r);
      t.is(step.delayMs, delay);
      t.is(step.connectTimeoutMs, Math.max(delay, o.minConnectTimeoutMs));
      t.is(step.attempt, i < (v.resetAfter ?? Number.POSITIVE_INFINITY) ? i + 1 : i - v.resetAfter! + 1);
    });
  }
});

test("defaults are gRPC's: 1 s, x1.6, ±20 %, 120 s cap, 20 s minimum connect timeout", (t) => {
  t.is(DEFAULT_BACKOFF_INITIAL_MS, 1000);
  t.is(DEFAULT_BACKOFF_MULTIPLIER, 1.6);
  t.is(DEFAULT_BACKOFF_JITTER, 0.2);
  t.is(DEFAULT_BACKOFF_MAX_MS, 120_000);
  t.is(DEFAULT_MIN_CONNECT_TIMEOUT_MS, 20_000);
  for (let seed = 0; seed < 50; seed++) {
    const b = createBackoff({ random: seededRandom(seed) });
    t.deepEqual(b.next(), { attempt: 1, delayMs: 1000, connectTimeoutMs: 20_000 });
    let base = 1000;
    for (let n = 2; n <= 30; n++) {
      base = Math.min(base * 1.6, 120_000);
      const s = b.next();
      t.is(s.attempt, n);
      t.true(
        s.delayMs >= base * 0.8 && s.delayMs < base * 1.2,
        `attempt ${n}: ${s.delayMs} in ±20 % of ${base}`,
      );
      t.is(s.connectTimeoutMs, Math.max(s.delayMs, 20_000));
    }
    t.is(b.attempts, 30);
    b.reset();
    t.is(b.attempts, 0);
    t.is(b.next().delayMs, 1000);
  }
});

test('the extremes of the random source land on the jitter band edges', (t) => {
  const low = createBackoff({ random: () => 0 });
  low.next();
  t.is(low.next().delayMs, 1600 * 0.8);
  const high = createBackoff({ random: () => 1 - 2 ** -53, jitter: 0 });
  high.next();
  t.is(high.next().delayMs, 1600);
});

test('bad options and a random source out of [0, 1) are SIPC_ERR_INVALID_ARGUMENT', (t) => {
  const bad = [
    { initialMs: 0 },
    { initialMs: -1 },
    { initialMs: 200_000 }, // above maxMs
    { multiplier: 0.5 },
    { multiplier: 101 },
    { multiplier: Number.NaN },
    { jitter: 1 },
    { jitter: -0.1 },
    { maxMs: 0 },
    { maxMs: MAX_BACKOFF_MS + 1 },
    { maxMs: Number.POSITIVE_INFINITY },
    { minConnectTimeoutMs: -1 },
    { minConnectTimeoutMs: '20' as never },
    { random: 5 as never },
  ];
  for (const options of bad) {
    const err = t.throws(() => createBackoff(options));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), JSON.stringify(options));
  }
  t.true(
    isSecureIpcError(
      t.throws(() => createBackoff(null as never)),
      'SIPC_ERR_INVALID_ARGUMENT',
    ),
  );
  for (const value of [1, -0.5, Number.NaN, '0.5']) {
    const b = createBackoff({ random: () => value as number });
    b.next(); // the first attempt draws nothing
    t.true(
      isSecureIpcError(
        t.throws(() => b.next()),
        'SIPC_ERR_INVALID_ARGUMENT',
      ),
      String(value),
    );
  }
  t.notThrows(() => createBackoff({ initialMs: MAX_BACKOFF_MS, maxMs: MAX_BACKOFF_MS, jitter: 0.99 }));
});
