/**
 * Ordering lanes (issue 16, item 6): the calls of one lane run one after another in the order they
 * were made: the next starts (is written) only once the one before it settled, its retries
 * included. Different lanes, and calls without one, are independent.
 *
 *   run(lane) ─► lane idle? ─yes─► start ─► settled ─► the next live call of the lane starts
 *                   │ no                                 (none: the lane is forgotten)
 *                   ▼
 *              the lane's FIFO (at most maxQueued live calls; abort/timeout drops a call)
 *
 * A lane exists only while it has a call running or waiting, so idle lanes cost nothing.
 */
import { createError } from '../errors.js';
import { Fifo } from '../rpc/fifo.js';
import type { Clock, TimerHandle } from './clock.js';
import { integerIn } from './integer-option.js';

/** Default most calls waiting in one lane (behind the one running). */
export const DEFAULT_MAX_QUEUED_PER_LANE = 1024;
/** Most `maxQueuedPerLane`. */
export const MAX_QUEUED_PER_LANE = 1_000_000;
/** Longest lane name, in characters. */
export const MAX_LANE_NAME_LENGTH = 128;

/** Whether `name` can name a lane: a string of 1 to MAX_LANE_NAME_LENGTH characters. */
export const isLaneName = (name: unknown): name is string =>
  typeof name === 'string' && name.length > 0 && name.length <= MAX_LANE_NAME_LENGTH;

interface Waiting {
  /** Gave up while waiting: skipped when its turn comes. */
  dropped: boolean;
  readonly start: () => void;
}

interface Lane {
  readonly queue: Fifo<Waiting>;
  /** Live (not dropped) calls in the queue. */
  live: number;
}

/** How long a queued call may wait: its deadline and signal. */
export interface LaneWaitOptions {
  /** The call's whole budget, ms, counted from `started`. */
  readonly timeoutMs?: number;
  /** Gives up the wait: SIPC_ERR_ABORTED. */
  readonly signal?: AbortSignal;
}

/** The lanes of one client. */
export class Lanes {
  readonly #clock: Clock;
  readonly #maxQueued: number;
  readonly #lanes = new Map<string, Lane>();

  /** `maxQueued`: most calls waiting per lane (an integer in [1, 1,000,000]). */
  constructor(clock: Clock, maxQueued = DEFAULT_MAX_QUEUED_PER_LANE) {
    this.#maxQueued = integerIn('maxQueuedPerLane', maxQueued, 1, MAX_QUEUED_PER_LANE);
    this.#clock = clock;
  }

  /** Lanes with a call running or waiting. */
  get size(): number {
    return this.#lanes.size;
  }

  /** Calls waiting in `name` (behind the one running). */
  queued(name: string): number {
    return this.#lanes.get(name)?.live ?? 0;
  }

  /**
   * Run `fn` in lane `name` after every call made before it in that lane settled. A full lane
   * rejects with SIPC_ERR_BUSY; a bad name with SIPC_ERR_INVALID_ARGUMENT; a wait past the deadline
   * with SIPC_ERR_TIMEOUT, an aborted one with SIPC_ERR_ABORTED (the call is removed, never runs).
   */
  run<T>(name: string, options: LaneWaitOptions, started: number, fn: () => Promise<T>): Promise<T> {
    if (!isLaneName(name))
      return Promise.reject(
        createError(
          'SIPC_ERR_INVALID_ARGUMENT',
          `A lane is a string of 1 to ${MAX_LANE_NAME_LENGTH} characters`,
        ),
      );
    const lane = this.#lanes.get(name);
    if (lane === undefined) {
      this.#lanes.set(name, { queue: new Fifo(), live: 0 });
      return this.#start(name, fn);
    }
    if (lane.live >= this.#maxQueued)
      return Promise.reject(
        createError('SIPC_ERR_BUSY', `Lane full: ${this.#maxQueued} calls already wait in it`, {
          details: { lane: name, queued: lane.live },
        }),
      );
    return this.#enqueue(name, lane, options, started, fn);
  }

  #start<T>(name: string, fn: () => Promise<T>): Promise<T> {
    let result: Promise<T>;
    try {
      result = fn();
    } catch (err) {
      result = Promise.reject(err);
    }
    const next = () => this.#next(name);
    result.then(next, next);
    return result;
  }

  #next(name: string): void {
    const lane = this.#lanes.get(name);
    if (lane === undefined) return;
    for (let item = lane.queue.shift(); item !== undefined; item = lane.queue.shift()) {
      if (item.dropped) continue;
      lane.live--;
      item.start();
      return;
    }
    this.#lanes.delete(name);
  }

  #enqueue<T>(
    name: string,
    lane: Lane,
    options: LaneWaitOptions,
    started: number,
    fn: () => Promise<T>,
  ): Promise<T> {
    const { timeoutMs, signal } = options;
    if (signal?.aborted)
      return Promise.reject(createError('SIPC_ERR_ABORTED', undefined, { cause: signal.reason }));
    return new Promise<T>((resolve, reject) => {
      let timer: TimerHandle | undefined;
      const cleanup = () => {
        if (timer !== undefined) this.#clock.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const waiting: Waiting = {
        dropped: false,
        start: () => {
          cleanup();
          this.#start(name, fn).then(resolve, reject);
        },
      };
      const drop = (err: unknown) => {
        // Left in the queue, marked (removing from the middle is O(n)): #next skips it.
        waiting.dropped = true;
        lane.live--;
        cleanup();
        reject(err);
      };
      const onAbort = () => drop(createError('SIPC_ERR_ABORTED', undefined, { cause: signal?.reason }));
      // The timer first: a bad timeoutMs throws before anything is registered.
      if (timeoutMs !== undefined) {
        const left = Math.max(0, timeoutMs - (this.#clock.now() - started));
        timer = this.#clock.setTimeout(
          () => drop(createError('SIPC_ERR_TIMEOUT', `Still waiting in lane after ${timeoutMs} ms`)),
          left,
        );
      }
      signal?.addEventListener('abort', onAbort, { once: true });
      lane.queue.push(waiting);
      lane.live++;
    });
  }
}
