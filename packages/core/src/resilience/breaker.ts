/**
 * A circuit breaker (issue 16, item 4), after cockatiel's CircuitBreakerPolicy and opossum.
 *
 *   closed ──(N consecutive failures, or failure ratio ≥ threshold over windowMs with ≥ minimumVolume calls)──▶ open
 *   open ──(the first call after the open period: halfOpenAfterMs, or the backoff's next delay)──▶ half-open
 *   half-open ──(a probe succeeds)──▶ closed        half-open ──(a probe fails)──▶ open (next, longer period)
 *
 * While open every call fails at once with SIPC_ERR_CIRCUIT_OPEN (`details.retryAfterMs`) and its
 * function is never called; in half-open at most `maxHalfOpenProbes` calls run at once and the
 * others fail the same way. Open → half-open happens at the first call after the period (as in
 * cockatiel), so an idle breaker holds no timer. Each outcome is classified `success`, `failure`
 * or `ignore` (default: `defaultClassify`); an ignored outcome counts for nothing and only frees
 * its half-open probe slot. An outcome that arrives after the state changed since its call began
 * (a slow call from before the circuit opened) is ignored, so it cannot open or close the wrong
 * period. Every time reading goes through the `clock`.
 */
import { EventEmitter } from 'node:events';
import { type BreakerStateMessage, DIAGNOSTICS_VERSION, diagnostics } from '../diagnostics/channels.js';
import { createError, isSecureIpcError } from '../errors.js';
import { reportListenerError } from '../rpc/events.js';
import { type Backoff, type BackoffOptions, createBackoff } from './backoff.js';
import { type Clock, MAX_TIMER_MS, systemClock } from './clock.js';
import { integerIn } from './integer-option.js';

/** A breaker's state. */
export type CircuitState = 'closed' | 'open' | 'half-open';

/** How a call's outcome counts: a `failure`, a `success`, or nothing (`ignore`). */
export type CircuitOutcome = 'success' | 'failure' | 'ignore';

/** Default consecutive failures that open a circuit. */
export const DEFAULT_CONSECUTIVE_FAILURES = 5;
/** Default open period before a probe, ms. */
export const DEFAULT_HALF_OPEN_AFTER_MS = 10_000;
/** Most probes in flight at once in half-open (the limit of `maxHalfOpenProbes`). */
export const MAX_HALF_OPEN_PROBES = 100;
/** Most buckets of a ratio window. */
export const MAX_RATIO_BUCKETS = 1000;

/** The ratio policy: open when failures / calls ≥ `threshold` over the last `windowMs`. */
export interface FailureRatioOptions {
  /** Failure ratio that opens the circuit, in (0, 1]. */
  threshold: number;
  /** The sliding window, ms, in [1, MAX_TIMER_MS]. */
  windowMs: number;
  /** Fewest counted calls in the window before the ratio can open it, integer ≥ 1. */
  minimumVolume: number;
  /** The window's granularity: it slides by windowMs / buckets (integer in [1, 1000], default 10). */
  buckets?: number;
}

/** Options of `createCircuitBreaker`. */
export interface CircuitBreakerOptions {
  /** Open after this many failures in a row (integer ≥ 1; default 5; `false`: no such policy). */
  consecutiveFailures?: number | false;
  /** Also (or instead) open on a failure ratio within a window (default: no ratio policy). */
  failureRatio?: FailureRatioOptions;
  /** Open period before a probe, ms, in [0, MAX_TIMER_MS] (default 10 000). */
  halfOpenAfterMs?: number;
  /**
   * Instead of a constant period: the Nth open in a row waits the backoff's Nth `delayMs`
   * (cockatiel's `halfOpenAfter` backoff); a close resets it. Exclusive with `halfOpenAfterMs`.
   */
  halfOpenBackoff?: BackoffOptions;
  /** Probes in flight at once in half-open, integer in [1, 100] (default 1). */
  maxHalfOpenProbes?: number;
  /** How an error counts (default `defaultClassify`). A resolved call is always a success. */
  classify?: (error: unknown) => CircuitOutcome;
  /** Time source (default `systemClock`). */
  clock?: Clock;
  /** A name for the breaker, put in SIPC_ERR_CIRCUIT_OPEN's details and in events. */
  name?: string;
}

/** What a `stateChange` event carries. */
export interface CircuitStateChange {
  /** The breaker's name, if it has one. */
  readonly name: string | undefined;
  /** The state before. */
  readonly from: CircuitState;
  /** The state now. */
  readonly to: CircuitState;
  /** Why: `consecutive` / `ratio` (closed → open), `probe-failed`, `probe-succeeded`, `period-over`, `reset`. */
  readonly reason: 'consecutive' | 'ratio' | 'probe-failed' | 'probe-succeeded' | 'period-over' | 'reset';
  /** For `to: 'open'`: how long the open period is, ms. */
  readonly openForMs?: number;
}

/** Events of a circuit breaker. */
export interface CircuitBreakerEvents {
  /** The state changed (emitted after the change; a throwing listener is reported as `error`). */
  stateChange: [change: CircuitStateChange];
  /** A `stateChange` listener threw (without an `error` listener it is rethrown on the next tick). */
  error: [error: unknown];
}

/** Options of one `execute`. */
export interface CircuitExecuteOptions {
  /** Abort the wait for `fn` (SIPC_ERR_ABORTED); also passed to `fn`, which should stop. */
  signal?: AbortSignal;
}

/** A circuit breaker (see the module comment). */
export interface CircuitBreaker extends EventEmitter<CircuitBreakerEvents> {
  /** The state as of the last call (open stays `open` until a call after the period). */
  readonly state: CircuitState;
  /** The breaker's name, if any. */
  readonly name: string | undefined;
  /**
   * Run `fn` through the breaker: fails fast with SIPC_ERR_CIRCUIT_OPEN without calling it while
   * open (or while half-open with every probe slot taken); otherwise returns what `fn` returns,
   * and counts the outcome.
   */
  execute<T>(
    fn: (signal: AbortSignal | undefined) => Promise<T> | T,
    options?: CircuitExecuteOptions,
  ): Promise<T>;
  /** Close the circuit and clear every count (an operator's override). */
  reset(): void;
}

/** Codes that say nothing about the target's health (docs/resilience.md, "What counts as a failure"). */
const IGNORED_CODES: ReadonlySet<string> = new Set([
  'SIPC_ERR_FORBIDDEN',
  'SIPC_ERR_INVALID_ARGUMENT',
  'SIPC_ERR_NO_SUCH_METHOD',
  'SIPC_ERR_ABORTED',
  'SIPC_ERR_CANCELLED',
  'SIPC_ERR_IDEMPOTENCY_CONFLICT',
  'SIPC_ERR_CIRCUIT_OPEN',
  'SIPC_ERR_REMOTE',
]);

/**
 * The default classification: `ignore` for the codes that are answers or the caller's own choice
 * (FORBIDDEN, INVALID_ARGUMENT, NO_SUCH_METHOD, ABORTED, CANCELLED, IDEMPOTENCY_CONFLICT,
 * CIRCUIT_OPEN of an inner breaker, and a `RemoteError`: the application answered, it decides
 * with its own `classify`), `failure` for everything else (timeouts, closed connections, BUSY,
 * HANDLER, errors that are not secure-ipc errors).
 */
export function defaultClassify(error: unknown): CircuitOutcome {
  return isSecureIpcError(error) && IGNORED_CODES.has(error.code) ? 'ignore' : 'failure';
}

function invalid(message: string): Error {
  return createError('SIPC_ERR_INVALID_ARGUMENT', message);
}

/** Failure and call counts per bucket of a sliding time window. */
class RatioWindow {
  readonly #bucketMs: number;
  readonly #failures: number[];
  readonly #calls: number[];
  /** The bucket index (time / bucketMs) each slot last counted for. */
  readonly #slotOf: number[];

  constructor(readonly options: Required<FailureRatioOptions>) {
    this.#bucketMs = options.windowMs / options.buckets;
    this.#failures = new Array(options.buckets).fill(0);
    this.#calls = new Array(options.buckets).fill(0);
    this.#slotOf = new Array(options.buckets).fill(Number.NEGATIVE_INFINITY);
  }

  /** Count one outcome at `now`; true when the ratio policy says open. */
  record(now: number, failed: boolean): boolean {
    const index = Math.floor(now / this.#bucketMs);
    const slot = ((index % this.options.buckets) + this.options.buckets) % this.options.buckets;
    if (this.#slotOf[slot] !== index) {
      this.#slotOf[slot] = index;
      this.#failures[slot] = 0;
      this.#calls[slot] = 0;
    }
    this.#calls[slot]!++;
    if (failed) this.#failures[slot]!++;
    let calls = 0;
    let failures = 0;
    for (let i = 0; i < this.options.buckets; i++)
      if (this.#slotOf[i]! > index - this.options.buckets) {
        calls += this.#calls[i]!;
        failures += this.#failures[i]!;
      }
    return failed && calls >= this.options.minimumVolume && failures >= this.options.threshold * calls;
  }

  clear(): void {
    this.#slotOf.fill(Number.NEGATIVE_INFINITY);
  }
}

function ratioOptions(o: FailureRatioOptions | undefined): Required<FailureRatioOptions> | undefined {
  if (o === undefined) return undefined;
  if (typeof o !== 'object' || o === null) throw invalid('failureRatio must be an object');
  const { threshold, windowMs } = o;
  if (typeof threshold !== 'number' || !(threshold > 0 && threshold <= 1))
    throw invalid('failureRatio.threshold must be a number in (0, 1]');
  if (typeof windowMs !== 'number' || !(windowMs >= 1 && windowMs <= MAX_TIMER_MS))
    throw invalid(`failureRatio.windowMs must be a number in [1, ${MAX_TIMER_MS}]`);
  return {
    threshold,
    windowMs,
    minimumVolume: integerIn('failureRatio.minimumVolume', o.minimumVolume, 1, Number.MAX_SAFE_INTEGER),
    buckets: integerIn('failureRatio.buckets', o.buckets ?? 10, 1, MAX_RATIO_BUCKETS),
  };
}

interface Resolved {
  consecutive: number | undefined;
  ratio: Required<FailureRatioOptions> | undefined;
  openPeriod: () => number;
  resetPeriod: () => void;
  maxProbes: number;
  classify: (error: unknown) => CircuitOutcome;
  clock: Clock;
  name: string | undefined;
}

function openPeriodOf(options: CircuitBreakerOptions): Pick<Resolved, 'openPeriod' | 'resetPeriod'> {
  if (options.halfOpenBackoff !== undefined) {
    if (options.halfOpenAfterMs !== undefined)
      throw invalid('Give halfOpenAfterMs or halfOpenBackoff, not both');
    const backoff: Backoff = createBackoff(options.halfOpenBackoff);
    return { openPeriod: () => backoff.next().delayMs, resetPeriod: () => backoff.reset() };
  }
  const ms = options.halfOpenAfterMs ?? DEFAULT_HALF_OPEN_AFTER_MS;
  if (typeof ms !== 'number' || !(ms >= 0 && ms <= MAX_TIMER_MS))
    throw invalid(`halfOpenAfterMs must be a number in [0, ${MAX_TIMER_MS}]`);
  return { openPeriod: () => ms, resetPeriod: () => {} };
}

function resolve(options: CircuitBreakerOptions): Resolved {
  if (typeof options !== 'object' || options === null)
    throw invalid('Circuit breaker options must be an object');
  const c = options.consecutiveFailures ?? DEFAULT_CONSECUTIVE_FAILURES;
  const consecutive =
    c === false ? undefined : integerIn('consecutiveFailures', c, 1, Number.MAX_SAFE_INTEGER);
  const ratio = ratioOptions(options.failureRatio);
  if (consecutive === undefined && ratio === undefined)
    throw invalid('A circuit breaker needs consecutiveFailures or failureRatio');
  const classify = options.classify ?? defaultClassify;
  if (typeof classify !== 'function') throw invalid('classify must be a function');
  const clock = options.clock ?? systemClock;
  if (typeof clock?.now !== 'function') throw invalid('clock must be a Clock');
  if (options.name !== undefined && typeof options.name !== 'string') throw invalid('name must be a string');
  return {
    consecutive,
    ratio,
    ...openPeriodOf(options),
    maxProbes: integerIn('maxHalfOpenProbes', options.maxHalfOpenProbes ?? 1, 1, MAX_HALF_OPEN_PROBES),
    classify,
    clock,
    name: options.name,
  };
}

class Breaker extends EventEmitter<CircuitBreakerEvents> implements CircuitBreaker {
  readonly #o: Resolved;
  readonly #window: RatioWindow | undefined;
  #state: CircuitState = 'closed';
  /** Bumped on every transition: an outcome counts only in the period its call began in. */
  #epoch = 0;
  #consecutive = 0;
  #openUntil = 0;
  #probes = 0;

  constructor(options: Resolved) {
    super();
    this.#o = options;
    this.#window = options.ratio === undefined ? undefined : new RatioWindow(options.ratio);
  }

  get state(): CircuitState {
    return this.#state;
  }

  get name(): string | undefined {
    return this.#o.name;
  }

  async execute<T>(
    fn: (signal: AbortSignal | undefined) => Promise<T> | T,
    options: CircuitExecuteOptions = {},
  ): Promise<T> {
    if (typeof fn !== 'function') throw invalid('execute needs a function');
    const signal = options.signal;
    if (signal?.aborted) throw createError('SIPC_ERR_ABORTED', undefined, { cause: signal.reason });
    this.#admit();
    const epoch = this.#epoch;
    const probe = this.#state === 'half-open';
    if (probe) this.#probes++;
    const run = (async () => fn(signal))();
    run.then(
      () => this.#settle(epoch, probe, 'success'),
      (err: unknown) => this.#settle(epoch, probe, this.#classify(err)),
    );
    return signal === undefined ? run : raceAbort(run, signal);
  }

  reset(): void {
    this.#o.resetPeriod();
    this.#window?.clear();
    this.#consecutive = 0;
    if (this.#state !== 'closed') this.#transition('closed', 'reset');
  }

  /** Let the call in, or throw SIPC_ERR_CIRCUIT_OPEN. */
  #admit(): void {
    if (this.#state === 'open') {
      const now = this.#o.clock.now();
      if (now < this.#openUntil) throw this.#openError(Math.ceil(this.#openUntil - now));
      this.#transition('half-open', 'period-over');
    }
    if (this.#state === 'half-open' && this.#probes >= this.#o.maxProbes) throw this.#openError(undefined);
  }

  #openError(retryAfterMs: number | undefined): Error {
    return createError('SIPC_ERR_CIRCUIT_OPEN', undefined, {
      details: { state: this.#state, retryAfterMs, name: this.#o.name },
    });
  }

  #classify(err: unknown): CircuitOutcome {
    try {
      const outcome = this.#o.classify(err);
      return outcome === 'success' || outcome === 'ignore' ? outcome : 'failure';
    } catch {
      return 'failure'; // a classifier that throws: fail closed
    }
  }

  #settle(epoch: number, probe: boolean, outcome: CircuitOutcome): void {
    if (epoch !== this.#epoch) return;
    if (probe) this.#probes--;
    if (outcome === 'ignore') return;
    const failed = outcome === 'failure';
    if (this.#state === 'half-open') {
      if (failed) this.#open('probe-failed');
      else {
        this.#o.resetPeriod();
        this.#transition('closed', 'probe-succeeded');
      }
      return;
    }
    this.#consecutive = failed ? this.#consecutive + 1 : 0;
    const byRatio = this.#window?.record(this.#o.clock.now(), failed) === true;
    if (this.#o.consecutive !== undefined && this.#consecutive >= this.#o.consecutive)
      this.#open('consecutive');
    else if (byRatio) this.#open('ratio');
  }

  #open(reason: CircuitStateChange['reason']): void {
    const openForMs = this.#o.openPeriod();
    this.#openUntil = this.#o.clock.now() + openForMs;
    this.#transition('open', reason, openForMs);
  }

  #transition(to: CircuitState, reason: CircuitStateChange['reason'], openForMs?: number): void {
    const from = this.#state;
    this.#state = to;
    this.#epoch++;
    this.#probes = 0;
    if (to === 'closed') {
      this.#consecutive = 0;
      this.#window?.clear();
    }
    const change: CircuitStateChange =
      openForMs === undefined
        ? { name: this.#o.name, from, to, reason }
        : { name: this.#o.name, from, to, reason, openForMs };
    if (diagnostics.breakerState.hasSubscribers) {
      const message: BreakerStateMessage = {
        v: DIAGNOSTICS_VERSION,
        name: change.name,
        from,
        to,
        reason,
        openForMs,
        at: Date.now(),
      };
      diagnostics.breakerState.publish(message);
    }
    try {
      this.emit('stateChange', change);
    } catch (err) {
      reportListenerError(this, err);
    }
  }
}

/** `run`, or SIPC_ERR_ABORTED as soon as `signal` aborts (run's own outcome is still counted). */
function raceAbort<T>(run: Promise<T>, signal: AbortSignal): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(createError('SIPC_ERR_ABORTED', undefined, { cause: signal.reason }));
    signal.addEventListener('abort', onAbort, { once: true });
    run.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/**
 * A circuit breaker with consecutive-failure and/or failure-ratio policies, half-open probes and
 * `stateChange` events (docs/resilience.md, "Circuit breaker"). Throws SIPC_ERR_INVALID_ARGUMENT
 * for an option out of its range.
 */
export function createCircuitBreaker(options: CircuitBreakerOptions = {}): CircuitBreaker {
  return new Breaker(resolve(options));
}
