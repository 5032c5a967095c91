/**
 * Injectable time and randomness (issue 16, item 9). Every timer and every random draw of the
 * resilience primitives (backoff, circuit breaker, and what builds on them) goes through a
 * `Clock` and a `RandomSource`, so a test drives them with `manualClock()` and `seededRandom()`
 * and never sleeps. The contract and the seeded algorithm are specified in docs/resilience.md
 * ("Time and randomness") so that another implementation reproduces the backoff vectors.
 */
import { createError } from '../errors.js';

/** An opaque timer returned by `Clock.setTimeout`, only good for `clearTimeout` of the same clock. */
export interface TimerHandle {
  /** Opaque: nothing outside the clock that made it reads it. */
  readonly [timerHandle]: true;
}

declare const timerHandle: unique symbol;

/**
 * A source of time. `now()` is monotonic milliseconds from an arbitrary origin (never wall-clock
 * time: it does not jump when the system clock is set), `setTimeout` runs `fn` once after at
 * least `ms` milliseconds on that same time line, `clearTimeout` cancels a timer that has not run
 * (clearing a timer that ran or was cleared does nothing).
 */
export interface Clock {
  /** Monotonic milliseconds from an arbitrary origin (may have a fractional part). */
  now(): number;
  /** Run `fn` once after `ms` milliseconds (0 ≤ ms ≤ `MAX_TIMER_MS`). */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancel a timer of this clock that has not run yet. */
  clearTimeout(handle: TimerHandle): void;
}

/** A random number in [0, 1), as `Math.random` returns. */
export type RandomSource = () => number;

/** Longest timer a clock accepts: Node's own limit (2^31 - 1 ms, about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** Check `setTimeout`'s arguments (the same rule for every clock). */
function checkTimer(fn: unknown, ms: unknown): void {
  if (typeof fn !== 'function') throw createError('SIPC_ERR_INVALID_ARGUMENT', 'A timer needs a function');
  if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0 || ms > MAX_TIMER_MS)
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `A timer's delay is a number of ms in [0, ${MAX_TIMER_MS}]`,
    );
}

/**
 * The process's clock: `now()` is `performance.now()` (monotonic, sub-millisecond), timers are
 * Node's `setTimeout` (they keep the process alive, as Node's do).
 */
export const systemClock: Clock = Object.freeze({
  now: () => performance.now(),
  setTimeout(fn: () => void, ms: number): TimerHandle {
    checkTimer(fn, ms);
    return setTimeout(fn, ms) as unknown as TimerHandle;
  },
  clearTimeout(handle: TimerHandle): void {
    clearTimeout(handle as unknown as ReturnType<typeof setTimeout>);
  },
});

/** A clock that moves only when told: for tests (yours too). */
export interface ManualClock extends Clock {
  /**
   * Move time forward by `ms` (≥ 0), running every timer that falls due on the way in the order of
   * its due time (timers due at the same time: in the order they were set). A timer a callback sets
   * within the window runs too; `now()` reads the timer's due time while its callback runs. An
   * exception from a callback propagates out of `advance`, time stopped at that timer.
   */
  advance(ms: number): void;
  /** Timers set and not yet run or cleared. */
  readonly pendingTimers: number;
}

interface ManualTimer {
  readonly due: number;
  readonly seq: number;
  readonly fn: () => void;
}

/** A manual clock starting at `start` ms (default 0). */
export function manualClock(start = 0): ManualClock {
  if (typeof start !== 'number' || !Number.isFinite(start))
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'A manual clock starts at a finite number of ms');
  let now = start;
  let seq = 0;
  const timers = new Set<ManualTimer>();
  const nextDue = (until: number): ManualTimer | undefined => {
    let best: ManualTimer | undefined;
    for (const t of timers)
      if (
        t.due <= until &&
        (best === undefined || t.due < best.due || (t.due === best.due && t.seq < best.seq))
      )
        best = t;
    return best;
  };
  return {
    now: () => now,
    setTimeout(fn: () => void, ms: number): TimerHandle {
      checkTimer(fn, ms);
      const timer: ManualTimer = { due: now + ms, seq: seq++, fn };
      timers.add(timer);
      return timer as unknown as TimerHandle;
    },
    clearTimeout(handle: TimerHandle): void {
      timers.delete(handle as unknown as ManualTimer);
    },
    advance(ms: number): void {
      if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0)
        throw createError('SIPC_ERR_INVALID_ARGUMENT', 'advance(ms) takes a finite number of ms ≥ 0');
      const until = now + ms;
      for (let t = nextDue(until); t !== undefined; t = nextDue(until)) {
        timers.delete(t);
        now = t.due;
        t.fn();
      }
      now = until;
    },
    get pendingTimers() {
      return timers.size;
    },
  };
}

/**
 * The process's random source: `Math.random` (jitter needs spread, not secrecy; nothing in the
 * resilience primitives draws a secret).
 */
export const systemRandom: RandomSource = () => Math.random();

/**
 * A deterministic random source: mulberry32 seeded with `seed`, an integer in [0, 2^32 - 1]. Each
 * draw adds 0x6D2B79F5 to the 32-bit state and mixes it; the algorithm is spelled out in
 * docs/resilience.md so another implementation reproduces the committed backoff vectors.
 */
export function seededRandom(seed: number): RandomSource {
  if (!Number.isInteger(seed) || seed < 0 || seed > 0xffffffff)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'A seed is an integer in [0, 2^32 - 1]');
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
