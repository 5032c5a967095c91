/**
 * gRPC's connection backoff (grpc/grpc doc/connection-backoff.md), as a small stateful
 * generator: `next()` at the start of each attempt says how long to give the attempt
 * (`connectTimeoutMs`) and how long after the attempt's start the following one may begin
 * (`delayMs`); `reset()` after a success starts over. The algorithm, exactly as the document's
 * pseudo-code:
 *
 *   attempt 1:   backoff = INITIAL_BACKOFF;                              delay = backoff
 *   attempt n>1: backoff = min(backoff * MULTIPLIER, MAX_BACKOFF);      delay = backoff * (1 + JITTER * (2r - 1))
 *   every attempt: connectTimeout = max(delay, MIN_CONNECT_TIMEOUT)
 *
 * with r drawn from the `RandomSource` (one draw per attempt after the first). The first delay has
 * no jitter, as in the document (gRPC's C core jitters it too; docs/resilience.md says why we keep
 * the document's form). All randomness goes through `random`, so a seeded source reproduces the
 * vectors in packages/core/test/vectors/backoff.json.
 */
import { createError } from '../errors.js';
import { MAX_TIMER_MS, type RandomSource, systemRandom } from './clock.js';

/** gRPC's INITIAL_BACKOFF: 1 s. */
export const DEFAULT_BACKOFF_INITIAL_MS = 1000;
/** gRPC's MULTIPLIER: 1.6. */
export const DEFAULT_BACKOFF_MULTIPLIER = 1.6;
/** gRPC's JITTER: ±20 %. */
export const DEFAULT_BACKOFF_JITTER = 0.2;
/** gRPC's MAX_BACKOFF: 120 s. */
export const DEFAULT_BACKOFF_MAX_MS = 120_000;
/** gRPC's MIN_CONNECT_TIMEOUT: 20 s. */
export const DEFAULT_MIN_CONNECT_TIMEOUT_MS = 20_000;
/** Largest `maxMs` (half a timer's limit, so a jittered delay is always a valid timer). */
export const MAX_BACKOFF_MS = Math.floor(MAX_TIMER_MS / 2);
/** Largest `multiplier`. */
export const MAX_BACKOFF_MULTIPLIER = 100;

/** Options of `createBackoff` (every one defaults to gRPC's value). */
export interface BackoffOptions {
  /** The first delay, ms, in (0, maxMs] (default 1000). */
  initialMs?: number;
  /** Growth per attempt, in [1, 100] (default 1.6). */
  multiplier?: number;
  /** Relative jitter, in [0, 1): a delay is spread over ±jitter of the backoff (default 0.2). */
  jitter?: number;
  /** The backoff's cap (before jitter), ms, in [initialMs, MAX_BACKOFF_MS] (default 120 000). */
  maxMs?: number;
  /** The shortest time an attempt is given, ms, in [0, MAX_TIMER_MS] (default 20 000). */
  minConnectTimeoutMs?: number;
  /** Where the jitter comes from (default `systemRandom`; `seededRandom(n)` in tests). */
  random?: RandomSource;
}

/** What `next()` says about one attempt. */
export interface BackoffStep {
  /** 1 for the first attempt since the start or the last `reset()`. */
  readonly attempt: number;
  /** How long after this attempt's start the next attempt may begin, ms. */
  readonly delayMs: number;
  /** How long to give this attempt, ms: max(delayMs, minConnectTimeoutMs). */
  readonly connectTimeoutMs: number;
}

/** A backoff sequence (see the module comment for the algorithm). */
export interface Backoff {
  /** The next attempt's delay and timeout; advances the sequence. */
  next(): BackoffStep;
  /** Start over at the initial backoff (after a success). */
  reset(): void;
  /** Attempts handed out since the start or the last `reset()`. */
  readonly attempts: number;
}

function inRange(
  name: string,
  value: unknown,
  min: number,
  max: number,
  minOpen = false,
  maxOpen = false,
): number {
  const ok =
    typeof value === 'number' &&
    Number.isFinite(value) &&
    (minOpen ? value > min : value >= min) &&
    (maxOpen ? value < max : value <= max);
  if (!ok)
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `${name} must be a number in ${minOpen ? '(' : '['}${min}, ${max}${maxOpen ? ')' : ']'}`,
    );
  return value as number;
}

/** The options with defaults, checked; throws SIPC_ERR_INVALID_ARGUMENT out of range. */
function resolveOptions(options: BackoffOptions): Required<BackoffOptions> {
  if (typeof options !== 'object' || options === null)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'Backoff options must be an object');
  const maxMs = inRange('maxMs', options.maxMs ?? DEFAULT_BACKOFF_MAX_MS, 0, MAX_BACKOFF_MS, true);
  const random = options.random ?? systemRandom;
  if (typeof random !== 'function')
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'random must be a function returning [0, 1)');
  return {
    initialMs: inRange('initialMs', options.initialMs ?? DEFAULT_BACKOFF_INITIAL_MS, 0, maxMs, true),
    multiplier: inRange(
      'multiplier',
      options.multiplier ?? DEFAULT_BACKOFF_MULTIPLIER,
      1,
      MAX_BACKOFF_MULTIPLIER,
    ),
    jitter: inRange('jitter', options.jitter ?? DEFAULT_BACKOFF_JITTER, 0, 1, false, true),
    maxMs,
    minConnectTimeoutMs: inRange(
      'minConnectTimeoutMs',
      options.minConnectTimeoutMs ?? DEFAULT_MIN_CONNECT_TIMEOUT_MS,
      0,
      MAX_TIMER_MS,
    ),
    random,
  };
}

/**
 * A gRPC connection backoff. Throws SIPC_ERR_INVALID_ARGUMENT for an option out of its range
 * (docs/resilience.md, "Backoff"); `next()` throws it if `random` returns a value outside [0, 1).
 */
export function createBackoff(options: BackoffOptions = {}): Backoff {
  const o = resolveOptions(options);
  let attempts = 0;
  let backoff = o.initialMs;
  return {
    next(): BackoffStep {
      let delayMs = o.initialMs;
      if (attempts === 0) backoff = o.initialMs;
      else {
        backoff = Math.min(backoff * o.multiplier, o.maxMs);
        const r = o.random();
        if (typeof r !== 'number' || !(r >= 0 && r < 1))
          throw createError('SIPC_ERR_INVALID_ARGUMENT', 'random returned a value outside [0, 1)');
        delayMs = backoff * (1 + o.jitter * (2 * r - 1));
      }
      attempts++;
      return { attempt: attempts, delayMs, connectTimeoutMs: Math.max(delayMs, o.minConnectTimeoutMs) };
    },
    reset(): void {
      attempts = 0;
      backoff = o.initialMs;
    },
    get attempts() {
      return attempts;
    },
  };
}
