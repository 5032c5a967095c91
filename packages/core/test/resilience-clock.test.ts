/**
 * The injectable clock and random sources (issue 16, item 9): the manual clock runs due timers in
 * order and only when advanced, the system clock is monotonic and fires, seededRandom is
 * mulberry32 (known answers below, also in docs/resilience.md), bad arguments are typed errors.
 */
import test from 'ava';
import { isSecureIpcError } from '../src/errors.js';
import {
  MAX_TIMER_MS,
  manualClock,
  seededRandom,
  systemClock,
  systemRandom,
} from '../src/resilience/clock.js';

const invalid = { is: (e: unknown) => isSecureIpcError(e, 'SIPC_ERR_INVALID_ARGUMENT') };
const throwsInvalid = (t: { true(v: boolean, m?: string): void }, fn: () => unknown, what: string) => {
  try {
    fn();
    t.true(false, `${what}: did not throw`);
  } catch (e) {
    t.true(invalid.is(e), `${what}: SIPC_ERR_INVALID_ARGUMENT`);
  }
};

test('manualClock: time moves only on advance, due timers run in due order, same-due in set order', (t) => {
  const clock = manualClock(100);
  const ran: string[] = [];
  clock.setTimeout(() => ran.push(`b@${clock.now()}`), 20);
  clock.setTimeout(() => ran.push(`a@${clock.now()}`), 10);
  clock.setTimeout(() => ran.push(`c@${clock.now()}`), 20);
  clock.setTimeout(() => ran.push(`late@${clock.now()}`), 31);
  t.is(clock.now(), 100);
  t.is(clock.pendingTimers, 4);
  clock.advance(9);
  t.deepEqual(ran, []);
  clock.advance(21);
  t.deepEqual(ran, ['a@110', 'b@120', 'c@120']);
  t.is(clock.now(), 130);
  t.is(clock.pendingTimers, 1);
  clock.advance(1);
  t.deepEqual(ran.at(-1), 'late@131');
  t.is(clock.pendingTimers, 0);
});

test('manualClock: a timer set by a callback inside the window runs in the same advance; cleared timers never run', (t) => {
  const clock = manualClock();
  const ran: number[] = [];
  clock.setTimeout(() => {
    ran.push(clock.now());
    clock.setTimeout(() => ran.push(clock.now()), 5);
  }, 5);
  const cleared = clock.setTimeout(() => ran.push(-1), 7);
  clock.clearTimeout(cleared);
  clock.clearTimeout(cleared); // twice does nothing
  clock.advance(10);
  t.deepEqual(ran, [5, 10]);
  const zero = clock.setTimeout(() => ran.push(clock.now()), 0);
  t.is(clock.pendingTimers, 1);
  clock.advance(0);
  t.deepEqual(ran, [5, 10, 10]);
  clock.clearTimeout(zero); // already ran: nothing
});

test('manualClock: a throwing callback propagates out of advance with time at that timer', (t) => {
  const clock = manualClock();
  clock.setTimeout(() => {
    throw new Error('boom');
  }, 3);
  let after = false;
  clock.setTimeout(() => {
    after = true;
  }, 4);
  t.throws(() => clock.advance(10), { message: 'boom' });
  t.is(clock.now(), 3);
  t.false(after);
  clock.advance(1);
  t.true(after);
});

test('clocks: bad arguments are SIPC_ERR_INVALID_ARGUMENT', (t) => {
  const clock = manualClock();
  for (const clk of [clock, systemClock]) {
    throwsInvalid(t, () => clk.setTimeout(undefined as never, 1), 'no function');
    for (const ms of [-1, Number.NaN, Number.POSITIVE_INFINITY, MAX_TIMER_MS + 1, '5' as never])
      throwsInvalid(t, () => clk.setTimeout(() => {}, ms), `delay ${String(ms)}`);
  }
  for (const ms of [-1, Number.NaN, Number.POSITIVE_INFINITY])
    throwsInvalid(t, () => clock.advance(ms), `advance ${ms}`);
  throwsInvalid(t, () => manualClock(Number.NaN), 'start NaN');
  t.is(clock.pendingTimers, 0);
});

test('systemClock: monotonic now, a timer fires, a cleared one does not', async (t) => {
  const a = systemClock.now();
  const b = systemClock.now();
  t.true(b >= a);
  let cleared = false;
  const h = systemClock.setTimeout(() => {
    cleared = true;
  }, 1);
  systemClock.clearTimeout(h);
  await new Promise<void>((resolve) => systemClock.setTimeout(resolve, 5));
  t.false(cleared);
  t.true(systemClock.now() >= b);
});

test('seededRandom: mulberry32 known answers, reproducible, in [0, 1)', (t) => {
  // mulberry32(0) and mulberry32(42): the first draws, as 32-bit integers (value * 2^32).
  const ints = (seed: number, n: number) => {
    const r = seededRandom(seed);
    return Array.from({ length: n }, () => r() * 4294967296);
  };
  t.deepEqual(ints(0, 3), [1144304738, 1416247, 958946056]);
  t.deepEqual(ints(42, 3), [2581720956, 1925393290, 3661312704]);
  t.deepEqual(ints(0xffffffff, 2), ints(0xffffffff, 2));
  const r = seededRandom(7);
  for (let i = 0; i < 1000; i++) {
    const v = r();
    t.true(v >= 0 && v < 1);
  }
  for (const seed of [-1, 1.5, 2 ** 32, Number.NaN, '1' as never])
    throwsInvalid(t, () => seededRandom(seed), `seed ${seed}`);
  const s = systemRandom();
  t.true(s >= 0 && s < 1);
});
