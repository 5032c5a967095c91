/**
 * Client retries decided by the protocol (issue 16, item 2; docs/protocol.md, "Retries, pushback
 * and graceful drain"), with gRPC's retry policy (gRFC A6, A6-client-retries.md). The map of one
 * failed call:
 *
 *   failure ─► classifyFailure ─► unsent ──────────────► transparent retry (any number, deadline-bounded)
 *                                 not-executed (1st) ──► one transparent retry (after pushback, if any)
 *                                 not-executed, no-channel, lost + idempotency key,
 *                                 handler error with a listed code ─► policy retry: maxAttempts,
 *                                                                      throttle, backoff or pushback
 *                                 never, local, lost without a key ─► the caller gets the error
 *
 * Transparent retries count neither toward `maxAttempts` nor for the throttle (A6: they did not
 * reach the server's application). Every wait is on the `Clock`; one deadline (the call's
 * `timeoutMs`) covers every attempt and every wait.
 */
import { DIAGNOSTICS_VERSION, diagnostics, type RetryMessage } from '../diagnostics/channels.js';
import { createError, isSecureIpcError, RemoteError, type SecureIpcError } from '../errors.js';
import { compilePatterns, type NameMatcher } from '../rpc/patterns.js';
import type { RequestOptions } from '../rpc/service-types.js';
import { type Clock, MAX_TIMER_MS, type RandomSource, type TimerHandle } from './clock.js';

/** The client-side cap of `maxAttempts` (gRFC A6's default): a larger value is treated as 5. */
export const MAX_RETRY_ATTEMPTS = 5;
/** Default first retry's backoff cap, ms. */
export const DEFAULT_RETRY_INITIAL_BACKOFF_MS = 100;
/** Default cap of every retry's backoff, ms. */
export const DEFAULT_RETRY_MAX_BACKOFF_MS = 10_000;
/** Default growth of the backoff per retry. */
export const DEFAULT_RETRY_BACKOFF_MULTIPLIER = 2;
/** Most codes in one policy's `retryableCodes`. */
export const MAX_RETRYABLE_CODES = 64;
/** Most method patterns in `retry.methods`. */
export const MAX_RETRY_METHOD_PATTERNS = 256;

/**
 * Codes a retry never follows, even when a policy lists them (the table in docs/protocol.md:
 * the same request gets the same answer again). Listing one is SIPC_ERR_INVALID_ARGUMENT.
 */
export const NEVER_RETRIED_CODES: readonly string[] = Object.freeze([
  'SIPC_ERR_FORBIDDEN',
  'SIPC_ERR_NO_SUCH_METHOD',
  'SIPC_ERR_BAD_ENVELOPE',
  'SIPC_ERR_INVALID_ARGUMENT',
]);
const NEVER = new Set(NEVER_RETRIED_CODES);

/** A retry policy (gRFC A6's `retryPolicy`, durations in ms). */
export interface RetryPolicyOptions {
  /** Attempts including the first: an integer ≥ 1 (1: no policy retries); above 5 it is 5. */
  maxAttempts: number;
  /** Backoff cap of the first retry, ms, in (0, maxBackoffMs] (default 100). */
  initialBackoffMs?: number;
  /** Cap of every retry's backoff, ms, in (0, 2^31 - 1] (default 10,000). */
  maxBackoffMs?: number;
  /** Growth per retry, in [1, 100] (default 2). */
  backoffMultiplier?: number;
  /**
   * Codes of a handler's error that may be retried: secure-ipc codes (`SIPC_ERR_HANDLER`,
   * `SIPC_ERR_BUSY`, ...) or an application's own (a `RemoteError`'s `remoteCode`). At most 64;
   * never one of NEVER_RETRIED_CODES. Default none (only the rows the protocol makes safe).
   */
  retryableCodes?: readonly string[];
}

/** A validated policy. */
export interface RetryPolicy {
  /** Attempts including the first, 1 to 5 (clamped). */
  readonly maxAttempts: number;
  /** Backoff cap of the first retry, ms. */
  readonly initialBackoffMs: number;
  /** Cap of every retry's backoff, ms. */
  readonly maxBackoffMs: number;
  /** Growth of the backoff cap per retry. */
  readonly backoffMultiplier: number;
  /** Codes of a handler's error that are retried. */
  readonly retryableCodes: ReadonlySet<string>;
}

/** Retry throttling per target (gRFC A6's `retryThrottling`): a token bucket. */
export interface RetryThrottleOptions {
  /** Tokens when full, in (0, 1000] (A6's example: 10). */
  maxTokens: number;
  /** Tokens a success adds, in (0, 1] (A6's example: 0.1). */
  tokenRatio: number;
}

/** The `retry` option of a reconnecting client. */
export interface RetryOptions {
  /** The policy of every method no pattern of `methods` matches (default none). */
  policy?: RetryPolicyOptions;
  /** Method pattern → its policy (`false`: none); the first match in object order applies; at most 256. */
  methods?: Readonly<Record<string, RetryPolicyOptions | false>>;
  /** Retry throttling for this client's target (default none). */
  throttle?: RetryThrottleOptions;
}

/** A call's retry option: a policy of its own, or `false` for no policy retries. */
export type CallRetryOption = RetryPolicyOptions | false;

/** Which row of the retry table a failure is (docs/resilience.md, "Retries"). */
export type FailureKind =
  /** Never written to a channel (`details.written === false`): not an attempt. */
  | 'unsent'
  /** SIPC_ERR_UNAVAILABLE (`details.notExecuted`): certified not run. */
  | 'not-executed'
  /** Written, then the channel was lost with no answer: may have run. */
  | 'lost'
  /** FORBIDDEN, NO_SUCH_METHOD, BAD_ENVELOPE, INVALID_ARGUMENT: the same again, never retried. */
  | 'never'
  /** An error the peer answered with (a handler's): retried only for listed codes. */
  | 'handler'
  /** Anything else of this end (timeout, abort, a closed client): never retried. */
  | 'local';

const LOST_CODES = new Set(['SIPC_ERR_CONNECTION_CLOSED', 'SIPC_ERR_CHANNEL_CLOSED']);

/** The retry table's row of a request's failure. */
export function classifyFailure(error: unknown): FailureKind {
  if (!isSecureIpcError(error)) return 'local';
  const details = error.details;
  if (details?.written === false) return 'unsent';
  if (details?.notExecuted === true) return 'not-executed';
  if (NEVER.has(error.code)) return 'never';
  if (details?.remote === true) return 'handler';
  if (LOST_CODES.has(error.code)) return 'lost';
  return 'local';
}

/** The code a policy's `retryableCodes` is matched against: an application's own, or ours. */
function codeOf(error: SecureIpcError): string {
  return error instanceof RemoteError ? error.remoteCode : error.code;
}

/**
 * The peer's pushback on an error (docs/protocol.md, "Pushback"): the ms to wait at least, `'stop'`
 * for a negative value (do not retry), undefined when there is none (a `retryAfterMs` that is not
 * an integer is not pushback). A wait longer than a timer can hold is `'stop'` (never undercut).
 */
export function readPushback(error: unknown): number | 'stop' | undefined {
  if (!isSecureIpcError(error)) return undefined;
  const data = error instanceof RemoteError ? error.data : error.details?.data;
  if (typeof data !== 'object' || data === null || !Object.hasOwn(data, 'retryAfterMs')) return undefined;
  const value = (data as { retryAfterMs: unknown }).retryAfterMs;
  if (typeof value === 'bigint') return 'stop';
  if (typeof value !== 'number' || !Number.isSafeInteger(value)) return undefined;
  return value < 0 || value > MAX_TIMER_MS ? 'stop' : value;
}

const invalid = (message: string) => createError('SIPC_ERR_INVALID_ARGUMENT', message);

function inRange(value: unknown, low: number, high: number, lowOpen: boolean): value is number {
  return typeof value === 'number' && (lowOpen ? value > low : value >= low) && value <= high;
}

function validCodes(codes: unknown): ReadonlySet<string> {
  if (codes === undefined) return new Set();
  if (!Array.isArray(codes) || codes.length > MAX_RETRYABLE_CODES)
    throw invalid(`retryableCodes must be an array of at most ${MAX_RETRYABLE_CODES} codes`);
  for (const code of codes) {
    if (typeof code !== 'string' || code.length === 0 || code.length > 128)
      throw invalid('A retryable code is a string of 1 to 128 characters');
    if (NEVER.has(code)) throw invalid(`${code} is never retried: the same request gets the same answer`);
  }
  return new Set(codes as string[]);
}

/** Validate a policy (SIPC_ERR_INVALID_ARGUMENT for a bad one); `maxAttempts` above 5 becomes 5. */
export function createRetryPolicy(options: RetryPolicyOptions): RetryPolicy {
  if (typeof options !== 'object' || options === null) throw invalid('A retry policy is an object');
  const {
    maxAttempts,
    initialBackoffMs = DEFAULT_RETRY_INITIAL_BACKOFF_MS,
    maxBackoffMs = Math.max(DEFAULT_RETRY_MAX_BACKOFF_MS, initialBackoffMs),
    backoffMultiplier = DEFAULT_RETRY_BACKOFF_MULTIPLIER,
  } = options;
  if (!Number.isSafeInteger(maxAttempts) || maxAttempts < 1)
    throw invalid('maxAttempts must be an integer of at least 1');
  if (!inRange(maxBackoffMs, 0, MAX_TIMER_MS, true)) throw invalid('maxBackoffMs must be in (0, 2^31 - 1]');
  if (!inRange(initialBackoffMs, 0, maxBackoffMs, true))
    throw invalid('initialBackoffMs must be in (0, maxBackoffMs]');
  if (!inRange(backoffMultiplier, 1, 100, false)) throw invalid('backoffMultiplier must be in [1, 100]');
  return Object.freeze({
    maxAttempts: Math.min(maxAttempts, MAX_RETRY_ATTEMPTS),
    initialBackoffMs,
    maxBackoffMs,
    backoffMultiplier,
    retryableCodes: validCodes(options.retryableCodes),
  });
}

/**
 * gRFC A6's backoff before policy retry `n` (1 for the first): random(0, min(initial ×
 * multiplier^(n-1), max)), one draw of `random`.
 */
export function retryBackoffMs(policy: RetryPolicy, n: number, random: RandomSource): number {
  const cap = Math.min(policy.initialBackoffMs * policy.backoffMultiplier ** (n - 1), policy.maxBackoffMs);
  const r = random();
  if (!(r >= 0 && r < 1)) throw invalid('A RandomSource must return a number in [0, 1)');
  return r * cap;
}

/** A retry token bucket (gRFC A6): a failure takes 1, a success adds `tokenRatio`. */
export class RetryThrottle {
  readonly #max: number;
  readonly #ratio: number;
  #tokens: number;

  /** Validates the options (SIPC_ERR_INVALID_ARGUMENT); the bucket starts full. */
  constructor(options: RetryThrottleOptions) {
    if (typeof options !== 'object' || options === null) throw invalid('throttle is an object');
    if (!inRange(options.maxTokens, 0, 1000, true)) throw invalid('throttle.maxTokens must be in (0, 1000]');
    if (!inRange(options.tokenRatio, 0, 1, true)) throw invalid('throttle.tokenRatio must be in (0, 1]');
    this.#max = options.maxTokens;
    this.#ratio = options.tokenRatio;
    this.#tokens = options.maxTokens;
  }

  /** Tokens now, in [0, maxTokens]. */
  get tokens(): number {
    return this.#tokens;
  }

  /** True while retries are allowed: more than maxTokens / 2 tokens. */
  get allows(): boolean {
    return this.#tokens > this.#max / 2;
  }

  /** A call succeeded. */
  success(): void {
    this.#tokens = Math.min(this.#max, this.#tokens + this.#ratio);
  }

  /** A call failed in a way a policy retries (or with pushback saying stop). */
  failure(): void {
    this.#tokens = Math.max(0, this.#tokens - 1);
  }
}

/** The `retry` option, validated: the policy of a method, and the throttle. */
export class RetryConfig {
  readonly #fallback: RetryPolicy | undefined;
  readonly #methods: ReadonlyArray<readonly [NameMatcher, RetryPolicy | undefined]>;
  /** The target's throttle, if configured. */
  readonly throttle: RetryThrottle | undefined;

  /** Validates every policy and pattern (SIPC_ERR_INVALID_ARGUMENT). */
  constructor(options: RetryOptions) {
    if (typeof options !== 'object' || options === null) throw invalid('retry is an object');
    this.#fallback = options.policy === undefined ? undefined : createRetryPolicy(options.policy);
    const methods = options.methods ?? {};
    if (typeof methods !== 'object' || methods === null) throw invalid('retry.methods is an object');
    const entries = Object.entries(methods);
    if (entries.length > MAX_RETRY_METHOD_PATTERNS)
      throw invalid(`At most ${MAX_RETRY_METHOD_PATTERNS} retry method patterns`);
    this.#methods = entries.map(([pattern, policy]) => {
      if (pattern.length === 0) throw invalid('A method pattern is not empty');
      return [compilePatterns([pattern]), policy === false ? undefined : createRetryPolicy(policy)] as const;
    });
    this.throttle = options.throttle === undefined ? undefined : new RetryThrottle(options.throttle);
  }

  /** The policy of `method` (the first matching pattern's, else `policy`), or undefined for none. */
  policyFor(method: string): RetryPolicy | undefined {
    for (const [matches, policy] of this.#methods) if (matches(method)) return policy;
    return this.#fallback;
  }
}

/** What the retry loop needs from the client it retries on. */
export interface RetryHooks<C> {
  readonly clock: Clock;
  readonly random: RandomSource;
  /** A client to send on, never `avoid` (the wait bounded by `options.timeoutMs` and `signal`). */
  ready(options: RequestOptions, avoid: C | undefined): Promise<C>;
  /** Send the request on `client`. */
  send(client: C, options: RequestOptions): Promise<unknown>;
  /** True once the client is closed or shut down (nothing more to wait for). */
  shutDown(): boolean;
  /** True when `client` takes no more calls (its channel closed, or going away): unsent ones go elsewhere. */
  gone(client: C): boolean;
}

/** One call's state, made only when its first attempt failed. */
export interface FailedCall<C> {
  /** The method called (for diagnostics). */
  readonly method: string;
  /** The call's request options (the retry ones taken off). */
  readonly options: RequestOptions;
  /** The policy that applies, if any. */
  readonly policy: RetryPolicy | undefined;
  readonly throttle: RetryThrottle | undefined;
  /** Clock time the call began (its deadline counts from there). */
  readonly started: number;
  /** The first failure, and whether it was the wait for a channel (nothing sent). */
  readonly error: unknown;
  readonly waitFailed: boolean;
  /** The client the first attempt failed on. */
  readonly client: C | undefined;
}

interface Decision {
  readonly delayMs: number;
  readonly transparent: boolean;
}

/** Retry a failed call as the table and its policy say; resolves or rejects as the last attempt. */
export async function retryFailedCall<C>(call: FailedCall<C>, hooks: RetryHooks<C>): Promise<unknown> {
  const { policy, throttle, options } = call;
  const hasKey = options.idempotencyKey !== undefined;
  let { error, waitFailed, client } = call;
  let writes = 0;
  let policyAttempts = 1;
  let backoffN = 1;
  let unavailableRetried = false;
  let retried = false;
  for (;;) {
    const kind: FailureKind | 'no-channel' = waitFailed ? noChannel(error, hooks) : classifyFailure(error);
    // Counted as written unless known not to be (a local timeout or abort may have been written).
    if (!waitFailed && kind !== 'unsent') writes++;
    const pushback = readPushback(error);
    const retryable = policyRetryable(kind, error, policy, hasKey);
    const transparentUnavailable = kind === 'not-executed' && !unavailableRetried;
    if (throttle !== undefined && !transparentUnavailable && kind !== 'no-channel' && kind !== 'unsent')
      if (retryable || pushback === 'stop') throttle.failure();
    let decision: Decision | undefined;
    if (pushback === 'stop' || kind === 'local' || kind === 'never') decision = undefined;
    else if (kind === 'unsent')
      // Only off a channel that is gone: an unsent call on a live one would fail there again.
      decision = client !== undefined && hooks.gone(client) ? { delayMs: 0, transparent: true } : undefined;
    else if (transparentUnavailable) {
      unavailableRetried = true;
      decision = { delayMs: pushback ?? 0, transparent: true };
    } else if (
      retryable &&
      policy !== undefined &&
      policyAttempts < policy.maxAttempts &&
      throttle?.allows !== false
    ) {
      decision = { delayMs: pushback ?? retryBackoffMs(policy, backoffN, hooks.random), transparent: false };
      // A6: after a pushback delay the next backoff starts again from initialBackoffMs.
      backoffN = pushback === undefined ? backoffN + 1 : 1;
    }
    const left = timeLeft(call, hooks.clock);
    if (decision === undefined || left <= decision.delayMs)
      throw retried || policy !== undefined ? withAttempts(error, writes) : error;
    if (!decision.transparent) policyAttempts++;
    retried = true;
    // The next try's `h.attempt`: only once the call may have been written (1 means none is sent).
    const attempt = writes > 0 ? Math.min(writes + 1, 255) : 1;
    if (diagnostics.retry.hasSubscribers) {
      const message: RetryMessage = {
        v: DIAGNOSTICS_VERSION,
        method: call.method,
        code: isSecureIpcError(error) ? codeOf(error) : 'SIPC_ERR_INTERNAL',
        delayMs: decision.delayMs,
        transparent: decision.transparent,
        attempt,
        at: Date.now(),
      };
      diagnostics.retry.publish(message);
    }
    const avoid = kind === 'unsent' ? client : undefined;
    try {
      await pause(decision.delayMs, options.signal, hooks.clock);
      const next = { ...options, timeoutMs: remaining(call, hooks.clock) } as RequestOptions & {
        attempt?: number;
      };
      if (attempt > 1) next.attempt = attempt;
      waitFailed = true;
      client = await hooks.ready(next, avoid);
      waitFailed = false;
      const value = await hooks.send(client, next);
      throttle?.success();
      return value;
    } catch (err) {
      if (isSecureIpcError(err, 'SIPC_ERR_ABORTED')) throw withAttempts(err, writes);
      error = err;
    }
  }
}

/** A failed wait for a channel: retryable by a policy unless the client is shut down or gave up. */
function noChannel<C>(error: unknown, hooks: RetryHooks<C>): FailureKind | 'no-channel' {
  if (hooks.shutDown() || !isSecureIpcError(error, 'SIPC_ERR_CONNECT_FAILED')) return 'local';
  return 'no-channel';
}

function policyRetryable(
  kind: FailureKind | 'no-channel',
  error: unknown,
  policy: RetryPolicy | undefined,
  hasKey: boolean,
): boolean {
  if (policy === undefined) return false;
  switch (kind) {
    case 'not-executed':
    case 'no-channel':
      return true;
    case 'lost':
      return hasKey;
    case 'handler':
      return policy.retryableCodes.has(codeOf(error as SecureIpcError));
    default:
      return false;
  }
}

/** Ms left of the call's deadline (Infinity without one). */
function timeLeft<C>(call: FailedCall<C>, clock: Clock): number {
  const { timeoutMs } = call.options;
  return timeoutMs === undefined ? Number.POSITIVE_INFINITY : timeoutMs - (clock.now() - call.started);
}

function remaining<C>(call: FailedCall<C>, clock: Clock): number | undefined {
  const left = timeLeft(call, clock);
  return left === Number.POSITIVE_INFINITY ? undefined : Math.max(1, Math.ceil(left));
}

/** The last error, as a copy with `details.attempts` (the error may be shared by several calls). */
export function withAttempts(error: unknown, attempts: number): unknown {
  if (!isSecureIpcError(error)) return error;
  const details = { ...error.details, attempts };
  const cause = (error as { cause?: unknown }).cause;
  const copy =
    error instanceof RemoteError
      ? new RemoteError(error.message, { remoteCode: error.remoteCode, data: error.data, cause, details })
      : createError(error.code, error.message, { cause, details });
  if (error.stack !== undefined) copy.stack = error.stack;
  return copy;
}

/** Wait `ms` on the clock (0: no timer); SIPC_ERR_ABORTED when `signal` fires first. */
function pause(ms: number, signal: AbortSignal | undefined, clock: Clock): Promise<void> {
  if (signal?.aborted)
    return Promise.reject(createError('SIPC_ERR_ABORTED', undefined, { cause: signal.reason }));
  if (ms <= 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    let timer: TimerHandle | undefined;
    const onAbort = () => {
      if (timer !== undefined) clock.clearTimeout(timer);
      reject(createError('SIPC_ERR_ABORTED', undefined, { cause: signal?.reason }));
    };
    timer = clock.setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
