/**
 * A reconnecting client (issue 16, item 1): gRPC's connectivity states
 * (grpc/grpc doc/connectivity-semantics-and-api.md) over a sequence of RPC clients, one per
 * channel, with gRPC's connection backoff between attempts (./backoff.ts). The map:
 *
 *   idle ──first call / connect()──▶ connecting ──handshake + subscriptions restored──▶ ready
 *   connecting ──transient failure──▶ transient_failure ──backoff delay elapsed──▶ connecting
 *   ready ──channel lost (peer vanished, clean close by the server, ...)──▶ transient_failure
 *   any ──close(), or a trust failure (TERMINAL_CODES, a revoked/expired close)──▶ shutdown
 *
 * Each attempt is a whole `connect()`: transport connection, Noise handshake, the trust check.
 * An attempt gets max(delay, minConnectTimeoutMs) (the backoff's `connectTimeoutMs`); the next
 * one starts no earlier than `delayMs` after this one started. A ready channel resets the
 * backoff. A failed request goes to the retry table (./retry.ts): a call never written is sent
 * again, one certified not executed once, and a policy (`retry`, per method or per call) decides
 * the rest. A kind 13 (`goingAway`) moves new calls to a new channel while the old one drains
 * (ready ─goingAway─▶ connecting). Calls with a `lane` run in order (./lanes.ts). Every timer is
 * on the `Clock`.
 */
import { EventEmitter } from 'node:events';
import { createError, isSecureIpcError, type SecureIpcError } from '../errors.js';
import type { RpcClient, RpcClientEvents } from '../rpc/client.js';
import { type EventListener, guardListener, reportListenerError } from '../rpc/events.js';
import { type ConnectOptions, connect } from '../rpc/serve.js';
import type {
  EventMap,
  EventPayloadOf,
  MethodName,
  ParamsOf,
  PatternCheck,
  PublishPayload,
  Received,
  RequestArgs,
  RequestOptions,
  ResultOf,
  ServiceDefinition,
} from '../rpc/service-types.js';
import { type Backoff, type BackoffOptions, createBackoff, DEFAULT_BACKOFF_INITIAL_MS } from './backoff.js';
import { type Clock, type RandomSource, systemClock, systemRandom, type TimerHandle } from './clock.js';
import { integerIn } from './integer-option.js';
import { DEFAULT_MAX_QUEUED_PER_LANE, Lanes } from './lanes.js';
import {
  type CallRetryOption,
  createRetryPolicy,
  RetryConfig,
  type RetryHooks,
  type RetryOptions,
  type RetryPolicy,
  retryFailedCall,
} from './retry.js';

/** gRPC's connectivity states. */
export type ConnectivityState = 'idle' | 'connecting' | 'ready' | 'transient_failure' | 'shutdown';

/** A `stateChange` event: `error` is the failure that caused a transient_failure or a shutdown. */
export interface ConnectivityStateChange {
  /** The state left. */
  readonly from: ConnectivityState;
  /** The state entered. */
  readonly to: ConnectivityState;
  /** The failure behind the change (transient_failure; shutdown by a trust failure). */
  readonly error?: SecureIpcError;
}

/**
 * Codes that end the loop (state shutdown, never retried): the server is not who we trust, or
 * refuses us for good, or our own options are wrong. SIPC_ERR_REFUSED is terminal unless its
 * `details.reason` is `busy` (a server over its connection cap: transient); reason `closed` is
 * retried `closedRetries` times in a row first (see `ReconnectingClientOptions.closedRetries`).
 */
export const TERMINAL_CONNECT_CODES: readonly string[] = Object.freeze([
  'SIPC_ERR_UNTRUSTED_PEER',
  'SIPC_ERR_BAD_CERTIFICATE',
  'SIPC_ERR_CERT_EXPIRED',
  'SIPC_ERR_REVOKED',
  'SIPC_ERR_VERSION_MISMATCH',
  'SIPC_ERR_PEER_CREDENTIALS',
  'SIPC_ERR_REFUSED',
  'SIPC_ERR_PIPE_SECURITY',
  'SIPC_ERR_INVALID_ADDRESS',
  'SIPC_ERR_INVALID_ARGUMENT',
  'SIPC_ERR_BAD_KEY',
]);
const TERMINAL = new Set(TERMINAL_CONNECT_CODES);

/** Default `closedRetries`. */
export const DEFAULT_CLOSED_RETRIES = 3;
/** Most `closedRetries`. */
export const MAX_CLOSED_RETRIES = 10;

/** True when `error` ends the reconnect loop (see `TERMINAL_CONNECT_CODES`). */
export function isTerminalConnectError(error: SecureIpcError): boolean {
  if (!TERMINAL.has(error.code)) return false;
  return !(error.code === 'SIPC_ERR_REFUSED' && error.details?.reason === 'busy');
}

/** Options of `createReconnectingClient`: connect()'s (without `signal`) plus the loop's. */
export interface ReconnectingClientOptions extends Omit<ConnectOptions, 'signal'> {
  /** The backoff between attempts (default gRPC's: 1 s initial, ×1.6, ±20 %, 120 s cap, 20 s min connect timeout). */
  backoff?: Omit<BackoffOptions, 'random'>;
  /** Where the timers run (default `systemClock`; `manualClock()` in tests). */
  clock?: Clock;
  /** The backoff's jitter and the retries' (default `systemRandom`; `seededRandom(n)` in tests). */
  random?: RandomSource;
  /** Retry policies, per method pattern, and the throttle (default none: only transparent retries). */
  retry?: RetryOptions;
  /** Most calls waiting in one lane behind the running one (default 1,024): beyond, SIPC_ERR_BUSY. */
  maxQueuedPerLane?: number;
  /**
   * Attempts in a row that may end in SIPC_ERR_REFUSED reason `closed` (the server closed the
   * connection after the handshake, before accepting us) and still be retried, with the backoff:
   * default 3, 0 to 10 (0: the first is terminal). Such a close is what a server that does not
   * trust our key does, and also what a server killed or stopping at that moment looks like;
   * one more `closed` after these ends the loop (shutdown). The count restarts at each accepted
   * channel.
   */
  closedRetries?: number;
  /**
   * An outbox (`openOutbox`, docs/outbox.md): `enqueue` makes requests durable and the client
   * delivers them when it has a channel. The client attaches to it (one client per outbox) and
   * detaches at close; closing the outbox stays the caller's.
   */
  outbox?: ClientOutbox;
}

/** Options of one outbox entry (`enqueue`). */
export interface EnqueueOptions {
  /** Deliver after every earlier entry of this lane (1 to 128 characters). */
  lane?: string;
  /** Give up after this many ms (1 to 2^31−1): removed with an `expired` event. */
  ttlMs?: number;
  /** The request's idempotency key (1 to 128 UTF-8 bytes; default `obx-<outbox id>-<seq>`). */
  idempotencyKey?: string;
}

/** An outbox entry made durable. */
export interface EnqueuedEntry {
  /** The entry's id: its sequence number in decimal. */
  readonly id: string;
  /** The idempotency key its request carries. */
  readonly idempotencyKey: string;
}

/** What a reconnecting client needs of an outbox (`openOutbox`'s Outbox is one). */
export interface ClientOutbox {
  /** Start delivering through `client`. */
  attach(client: ReconnectingClient<any, any>): ClientOutboxAttachment;
}

/** An outbox attached to a client. */
export interface ClientOutboxAttachment {
  /** Make an entry durable (resolves once it is on disk). */
  enqueue(method: string, params: unknown, options?: EnqueueOptions): Promise<EnqueuedEntry>;
  /** Stop delivering through the client. */
  detach(): void;
}

/** How a call waits for a channel. */
export interface ReadyOptions {
  /**
   * false (default, gRPC's fail-fast): wait while idle or connecting, fail with
   * SIPC_ERR_CONNECT_FAILED (cause: the last failure) in transient_failure. true: wait for ready
   * through failed attempts, bounded by `timeoutMs` and `signal`.
   */
  waitForReady?: boolean;
  /** Most ms to wait for ready (for a request: the whole request, the wait included). */
  timeoutMs?: number;
  /** Stop waiting: SIPC_ERR_ABORTED. */
  signal?: AbortSignal;
}

/** A request's options plus `waitForReady`, the call's retry policy and its lane. */
export type ReadyRequestOptions = RequestOptions &
  Pick<ReadyOptions, 'waitForReady'> & {
    /** This call's retry policy instead of the client's (`false`: no policy retries). */
    retry?: CallRetryOption;
    /** Run after every earlier call of this lane settled (1 to 128 characters). */
    lane?: string;
  };

/** `RequestArgs` with `ReadyRequestOptions` in the options slot. */
export type ReadyRequestArgs<A extends unknown[]> = {
  [K in keyof A]: K extends '1' ? ReadyRequestOptions | undefined : A[K];
};

/** A re-subscription a new channel's server refused: the subscription is dropped. */
export interface SubscriptionLost {
  /** The pattern subscribed to. */
  readonly pattern: string;
  /** The server's answer (e.g. SIPC_ERR_FORBIDDEN). */
  readonly error: unknown;
}

/** Events of a reconnecting client. */
export interface ReconnectingClientEvents {
  /** The connectivity state changed. */
  stateChange: [change: ConnectivityStateChange];
  /** A subscription could not be restored on a new channel (it is no longer active). */
  subscriptionLost: [lost: SubscriptionLost];
  /** A current client's `error` (a throwing event listener, a misbehaving server). */
  error: [error: unknown];
}

interface Waiter {
  readonly waitForReady: boolean;
  /** A client this waiter must not get (the one a call just failed on, unsent). */
  readonly avoid: RpcClient<any, any> | undefined;
  readonly resolve: (client: RpcClient<any, any>) => void;
  readonly reject: (error: SecureIpcError) => void;
}

interface Subscription {
  readonly pattern: string;
  readonly listener: EventListener<any>;
  /** The client it is subscribed on, and its unsubscriber there. */
  on: RpcClient<any, any> | undefined;
  unsubscribe: (() => Promise<void>) | undefined;
}

const isStreamedInput = (params: unknown): boolean =>
  typeof params === 'object' && params !== null && Symbol.asyncIterator in params;

const asSecureError = (err: unknown, message: string): SecureIpcError =>
  isSecureIpcError(err) ? err : createError('SIPC_ERR_CONNECT_FAILED', message, { cause: err });

/** A client that reconnects (see the module comment); made by `createReconnectingClient`. */
export class ReconnectingClient<
  S extends object = ServiceDefinition,
  E extends object = EventMap,
> extends EventEmitter<ReconnectingClientEvents> {
  readonly #connectOptions: ConnectOptions;
  readonly #clock: Clock;
  readonly #backoff: Backoff;
  readonly #initialMs: number;
  #state: ConnectivityState = 'idle';
  #client: RpcClient<S, E> | undefined;
  #lastError: SecureIpcError | undefined;
  #terminalError: SecureIpcError | undefined;
  #attempt: AbortController | undefined;
  #timer: TimerHandle | undefined;
  #deadline: TimerHandle | undefined;
  #nextAllowedAt = Number.NEGATIVE_INFINITY;
  #closing: Promise<void> = Promise.resolve();
  readonly #waiters = new Set<Waiter>();
  readonly #subscriptions = new Set<Subscription>();
  /** Clients that sent a kind 13: they finish their running requests, then close. */
  readonly #draining = new Set<RpcClient<S, E>>();
  readonly #random: RandomSource;
  readonly #retry: RetryConfig | undefined;
  readonly #lanes: Lanes;
  readonly #closedRetries: number;
  /** Attempts in a row that ended in SIPC_ERR_REFUSED reason `closed`. */
  #closedInARow = 0;
  #outbox: ClientOutboxAttachment | undefined;

  /** See `createReconnectingClient`. */
  constructor(options: ReconnectingClientOptions) {
    super();
    if (typeof options !== 'object' || options === null)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'createReconnectingClient needs an options object');
    const {
      backoff = {},
      clock = systemClock,
      random,
      retry,
      maxQueuedPerLane = DEFAULT_MAX_QUEUED_PER_LANE,
      closedRetries = DEFAULT_CLOSED_RETRIES,
      outbox,
      ...connectOptions
    } = options;
    if (outbox !== undefined && typeof outbox?.attach !== 'function')
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'outbox must be an outbox (openOutbox)');
    this.#closedRetries = integerIn('closedRetries', closedRetries, 0, MAX_CLOSED_RETRIES);
    if (typeof clock?.setTimeout !== 'function' || typeof clock.now !== 'function')
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'clock must be a Clock');
    if ('signal' in connectOptions)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'A reconnecting client takes no signal: call close()');
    this.#backoff = createBackoff(random === undefined ? backoff : { ...backoff, random });
    this.#initialMs = backoff.initialMs ?? DEFAULT_BACKOFF_INITIAL_MS;
    this.#clock = clock;
    this.#connectOptions = connectOptions;
    this.#random = random ?? systemRandom;
    this.#retry = retry === undefined ? undefined : new RetryConfig(retry);
    this.#lanes = new Lanes(clock, maxQueuedPerLane);
    this.#outbox = outbox?.attach(this);
  }

  /**
   * Make a request durable in the client's outbox: resolves with its id once it is on disk,
   * before any network I/O; the client delivers it when it has a channel, in order per lane,
   * with an idempotency key, and the outbox reports its end (`delivered`, `failed`, `expired`).
   * SIPC_ERR_INVALID_ARGUMENT without an `outbox` option or after close.
   */
  enqueue<M extends MethodName<S>>(
    method: M,
    params?: ParamsOf<S, M>,
    options?: EnqueueOptions,
  ): Promise<EnqueuedEntry> {
    if (this.#outbox === undefined)
      return Promise.reject(
        createError(
          'SIPC_ERR_INVALID_ARGUMENT',
          this.#state === 'shutdown'
            ? 'The reconnecting client is closed'
            : 'enqueue needs the outbox option',
        ),
      );
    return this.#outbox.enqueue(method, params, options);
  }

  /** The connectivity state now. */
  get state(): ConnectivityState {
    return this.#state;
  }

  /** The current channel's client (ready only; undefined otherwise). */
  get client(): RpcClient<S, E> | undefined {
    return this.#state === 'ready' ? this.#client : undefined;
  }

  /** The last failure (an attempt's or a lost channel's); undefined before any. */
  get lastError(): SecureIpcError | undefined {
    return this.#lastError;
  }

  /** Leave idle: start the first attempt now (a call does it too). No effect in other states. */
  connect(): void {
    if (this.#state === 'idle') this.#startAttempt();
  }

  /**
   * `client.request` on the current channel, once ready (see `ReadyOptions` for the wait), retried
   * as the retry table and the call's policy say, in its `lane` if it has one.
   */
  request<M extends MethodName<S>>(
    method: M,
    ...args: ReadyRequestArgs<RequestArgs<S, M>>
  ): Promise<Received<ResultOf<S, M>>> {
    const [params, options] = args as unknown as [unknown, ReadyRequestOptions | undefined];
    const retry = options?.retry;
    if (retry !== undefined && retry !== false)
      try {
        createRetryPolicy(retry); // checked at the call, not at its first failure
      } catch (err) {
        return Promise.reject(err);
      }
    const started = options?.timeoutMs === undefined ? 0 : this.#clock.now();
    type Result = Promise<Received<ResultOf<S, M>>>;
    // No closure on the plain path: only a call in a lane needs one.
    if (options?.lane === undefined) return this.#call(method, params, options, started) as Result;
    return this.#lanes.run(
      options.lane,
      options,
      started,
      () => this.#call(method, params, options, started) as Result,
    );
  }

  /** Calls waiting in `lane` behind the one running (0 for an idle lane). */
  queuedInLane(lane: string): number {
    return this.#lanes.queued(lane);
  }

  /** `client.ping` on the current channel, once ready. */
  async ping<T>(payload?: T, options?: ReadyRequestOptions): Promise<T> {
    const { client, rest } = await this.#ready(options);
    return client.ping(payload, rest);
  }

  /** `client.publish` on the current channel, once ready (`options` bound only the wait). */
  async publish<T extends Extract<keyof E, string>>(
    topic: T,
    payload: PublishPayload<E, T>,
    options?: ReadyOptions,
  ): Promise<void> {
    const { client } = await this.#ready(options);
    return client.publish(topic, payload);
  }

  /**
   * Subscribe on the current channel, once ready, and again on every new channel (before it is
   * reported ready). Resolves with the unsubscriber once the server accepted; a new channel's
   * server that refuses it drops it with a `subscriptionLost` event.
   */
  subscribe<P extends string>(
    pattern: P & PatternCheck<E, P>,
    listener: EventListener<EventPayloadOf<E, P>>,
    options?: ReadyOptions,
  ): Promise<() => Promise<void>>;
  async subscribe(
    pattern: string,
    listener: EventListener<any>,
    options?: ReadyOptions,
  ): Promise<() => Promise<void>> {
    const { client } = await this.#ready(options);
    // Guarded here, so a throwing listener reaches this client's `error` (or is rethrown) as on RpcClient.
    const guarded = guardListener(listener, (err) => reportListenerError(this, err));
    const sub: Subscription = { pattern, listener: guarded, on: client, unsubscribe: undefined };
    sub.unsubscribe = await client.subscribe(pattern as never, guarded);
    this.#subscriptions.add(sub);
    // A channel that came up while the server answered was restored without this one.
    const current = this.#client;
    if (current !== undefined && current !== client && this.#state === 'ready')
      void this.#restoreOne(sub, current);
    return async () => {
      if (!this.#subscriptions.delete(sub)) return;
      const { unsubscribe, on } = sub;
      sub.unsubscribe = undefined;
      sub.on = undefined;
      // On a lost channel there is nothing to undo.
      if (unsubscribe !== undefined && on?.closed === false) await unsubscribe();
    };
  }

  /** Shut down (idempotent): no attempt after it, waiting calls reject, the channel closes. */
  close(): Promise<void> {
    this.#outbox?.detach();
    this.#outbox = undefined;
    if (this.#state !== 'shutdown') this.#shutdown(undefined);
    return this.#closing;
  }

  /** `await using client = createReconnectingClient(...)`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  #setState(to: ConnectivityState, error?: SecureIpcError): void {
    const from = this.#state;
    if (from === to) return;
    this.#state = to;
    this.emit('stateChange', error === undefined ? { from, to } : { from, to, error });
  }

  // ---- calls and their retries -------------------------------------------------------------

  /** One call: its first attempt here (no allocation beyond the plain path), the rest in retry.ts. */
  async #call(
    method: string,
    params: unknown,
    options: ReadyRequestOptions | undefined,
    started: number,
  ): Promise<unknown> {
    let ready: { client: RpcClient<S, E>; rest: RequestOptions | undefined };
    try {
      ready = await this.#ready(options, started);
    } catch (error) {
      // A failed wait is retried only by a policy (it was never written: an attempt that found no channel).
      if (this.#retry === undefined && options?.retry === undefined) throw error;
      return this.#retryCall(method, params, options, started, error, undefined);
    }
    try {
      const value = await (ready.client as RpcClient).request(method, params, ready.rest);
      this.#retry?.throttle?.success();
      return value;
    } catch (error) {
      return this.#retryCall(method, params, options, started, error, ready.client);
    }
  }

  #retryCall(
    method: string,
    params: unknown,
    options: ReadyRequestOptions | undefined,
    started: number,
    error: unknown,
    client: RpcClient<S, E> | undefined,
  ): Promise<unknown> {
    // A streamed input is consumed by its one attempt: it cannot be sent again.
    if (isStreamedInput(params)) return Promise.reject(error);
    const { waitForReady = false, lane: _lane, retry, ...rest } = options ?? {};
    let policy: RetryPolicy | undefined;
    try {
      policy = this.#policyOf(method, retry);
    } catch (bad) {
      return Promise.reject(bad);
    }
    const hooks: RetryHooks<RpcClient<S, E>> = {
      clock: this.#clock,
      random: this.#random,
      ready: (opts, avoid) => this.#acquire(waitForReady === true, opts, avoid),
      send: (c, opts) => (c as RpcClient).request(method, params, opts),
      shutDown: () => this.#state === 'shutdown',
      gone: (c) => c.closed || c !== this.#client,
    };
    const waitFailed = client === undefined;
    const throttle = this.#retry?.throttle;
    return retryFailedCall(
      { method, options: rest, policy, throttle, started, error, waitFailed, client },
      hooks,
    );
  }

  /** The call's own policy, else its method's, else none. */
  #policyOf(method: string, retry: CallRetryOption | undefined): RetryPolicy | undefined {
    if (retry === false) return undefined;
    if (retry !== undefined) return createRetryPolicy(retry);
    return this.#retry?.policyFor(method);
  }

  // ---- waiting for ready -------------------------------------------------------------------

  /** The ready client, and the request options left for it (the wait taken off `timeoutMs`). */
  async #ready(
    options: ReadyRequestOptions | undefined,
    started = 0,
  ): Promise<{ client: RpcClient<S, E>; rest: RequestOptions | undefined }> {
    const { waitForReady = false, lane: _lane, retry: _retry, ...rest } = options ?? {};
    if (this.#state === 'idle') this.#startAttempt();
    const client = this.#usable(undefined)
      ? this.#client!
      : await this.#acquire(waitForReady === true, rest, undefined);
    if (rest.timeoutMs === undefined) return { client, rest: options === undefined ? undefined : rest };
    // The wait (for a channel, in a lane) is taken off the budget; none: the options as they are.
    const left = Math.max(1, Math.ceil(rest.timeoutMs - (this.#clock.now() - started)));
    return { client, rest: left === rest.timeoutMs ? rest : { ...rest, timeoutMs: left } };
  }

  /** True when the current client can take a request (ready, open, not `avoid`). */
  #usable(avoid: RpcClient<any, any> | undefined): boolean {
    const client = this.#client;
    return this.#state === 'ready' && client !== undefined && client !== avoid && !client.closed;
  }

  /** A client to send on: the current one if usable, else the next ready one (see `#wait`). */
  #acquire(
    waitForReady: boolean,
    options: Omit<ReadyOptions, 'waitForReady'>,
    avoid: RpcClient<any, any> | undefined,
  ): Promise<RpcClient<S, E>> {
    if (this.#state === 'idle') this.#startAttempt();
    if (this.#usable(avoid)) return Promise.resolve(this.#client!);
    return this.#wait(waitForReady, options, avoid);
  }

  #notReady(): SecureIpcError {
    if (this.#state === 'shutdown')
      return this.#terminalError === undefined
        ? createError('SIPC_ERR_CHANNEL_CLOSED', 'The reconnecting client is closed')
        : createError('SIPC_ERR_CONNECT_FAILED', `Shut down: ${this.#terminalError.message}`, {
            cause: this.#terminalError,
          });
    return createError(
      'SIPC_ERR_CONNECT_FAILED',
      `Not connected (${this.#state}); waitForReady: true waits through failures`,
      { cause: this.#lastError },
    );
  }

  #wait(
    waitForReady: boolean,
    options: Omit<ReadyOptions, 'waitForReady'>,
    avoid: RpcClient<any, any> | undefined,
  ): Promise<RpcClient<S, E>> {
    const { timeoutMs, signal } = options;
    if (this.#state === 'shutdown' || (this.#state === 'transient_failure' && !waitForReady))
      return Promise.reject(this.#notReady());
    if (signal?.aborted)
      return Promise.reject(createError('SIPC_ERR_ABORTED', undefined, { cause: signal.reason }));
    return new Promise((resolve, reject) => {
      let timer: TimerHandle | undefined;
      const done = () => {
        this.#waiters.delete(waiter);
        if (timer !== undefined) this.#clock.clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const waiter: Waiter = {
        waitForReady,
        avoid,
        resolve: (client) => {
          done();
          resolve(client);
        },
        reject: (error) => {
          done();
          reject(error);
        },
      };
      // The timer first: it checks timeoutMs and throws before anything is registered.
      if (timeoutMs !== undefined)
        timer = this.#clock.setTimeout(
          () =>
            waiter.reject(
              createError('SIPC_ERR_TIMEOUT', `Not ready within ${timeoutMs} ms`, { cause: this.#lastError }),
            ),
          timeoutMs,
        );
      const onAbort = () =>
        waiter.reject(createError('SIPC_ERR_ABORTED', undefined, { cause: signal?.reason }));
      signal?.addEventListener('abort', onAbort, { once: true });
      this.#waiters.add(waiter);
    });
  }

  /** Settle the waiters the new state decides: ready resolves all, a failure rejects some. */
  #wakeWaiters(): void {
    for (const waiter of [...this.#waiters]) {
      if (this.#usable(waiter.avoid)) waiter.resolve(this.#client!);
      else if (this.#state === 'shutdown' || (this.#state === 'transient_failure' && !waiter.waitForReady))
        waiter.reject(this.#notReady());
    }
  }

  // ---- the connection loop -----------------------------------------------------------------

  #startAttempt(): void {
    this.#timer = undefined;
    const step = this.#backoff.next();
    const started = this.#clock.now();
    this.#nextAllowedAt = started + step.delayMs;
    const controller = new AbortController();
    this.#attempt = controller;
    this.#setState('connecting');
    const deadline = this.#clock.setTimeout(
      () =>
        controller.abort(createError('SIPC_ERR_TIMEOUT', `No channel within ${step.connectTimeoutMs} ms`)),
      step.connectTimeoutMs,
    );
    this.#deadline = deadline;
    connect<S, E>({ ...this.#connectOptions, signal: controller.signal }).then(
      (client) => {
        this.#clock.clearTimeout(deadline);
        if (this.#attempt !== controller) void client.close();
        else void this.#onConnected(client, started);
      },
      (err: unknown) => {
        this.#clock.clearTimeout(deadline);
        if (this.#attempt !== controller) return;
        this.#attempt = undefined;
        const error = controller.signal.aborted
          ? createError('SIPC_ERR_CONNECT_FAILED', `No channel within ${step.connectTimeoutMs} ms`, {
              cause: err,
            })
          : asSecureError(err, 'The connection attempt failed');
        this.#onFailure(error);
      },
    );
  }

  async #onConnected(client: RpcClient<S, E>, started: number): Promise<void> {
    this.#client = client;
    client.on('error', (err) => {
      if (this.listenerCount('error') > 0) this.emit('error', err);
    });
    client.once('close', (error, info) => this.#onClose(client, error, info));
    // Protocol version 3's kind 13.
    client.once('goingAway', () => this.#onGoingAway(client));
    // Closed before these listeners (a draining server closes new channels right after accepting
    // them): its close event is gone, so the loss is handled here, or the loop would stall.
    if (client.closed) {
      // A clean close's info (resilience may not import the channel layer's closeInfoOf).
      this.#onClose(client, undefined, { reason: 'clean', error: undefined });
      return;
    }
    await Promise.all([...this.#subscriptions].map((sub) => this.#restoreOne(sub, client)));
    // Lost meanwhile (the close handler moved on), or shut down.
    if (this.#client !== client || this.#attempt === undefined) return;
    this.#attempt = undefined;
    this.#backoff.reset();
    this.#closedInARow = 0;
    // A channel that drops at once does not make the loop spin: one attempt per initialMs at most.
    this.#nextAllowedAt = started + this.#initialMs;
    this.#setState('ready');
    this.#wakeWaiters();
  }

  async #restoreOne(sub: Subscription, client: RpcClient<S, E>): Promise<void> {
    try {
      const unsubscribe = await client.subscribe(sub.pattern as never, sub.listener);
      if (!this.#subscriptions.has(sub) || client.closed) {
        if (!client.closed) await unsubscribe();
        return;
      }
      const { on: old, unsubscribe: undoOld } = sub;
      sub.on = client;
      sub.unsubscribe = unsubscribe;
      // Still on a draining channel: stop its copy, so an event is not delivered twice for long.
      if (old !== undefined && old !== client && !old.closed) void undoOld?.().catch(() => {});
    } catch (error) {
      if (client.closed || !this.#subscriptions.has(sub)) return; // the channel's loss is handled by its close
      this.#subscriptions.delete(sub);
      sub.on = undefined;
      sub.unsubscribe = undefined;
      this.emit('subscriptionLost', { pattern: sub.pattern, error });
    }
  }

  #onClose(
    client: RpcClient<S, E>,
    error: SecureIpcError | undefined,
    info: RpcClientEvents['close'][1],
  ): void {
    if (this.#client !== client || this.#state === 'shutdown') return;
    this.#client = undefined;
    this.#attempt = undefined;
    const lost = error ?? createError('SIPC_ERR_CONNECTION_CLOSED', 'The server closed the channel');
    // The server revoked us, or a certificate expired: as terminal as at the handshake.
    if (info.reason === 'revoked' || info.reason === 'expired') this.#shutdown(lost);
    else this.#onFailure(lost);
  }

  /**
   * The server sent a kind 13: this channel runs what it has, then closes. New calls go to a new
   * channel, connected now (no sooner than one attempt per `initialMs`, as after a lost channel);
   * the calls it did not run come back to the retry table as not executed.
   */
  #onGoingAway(client: RpcClient<S, E>): void {
    // Also while its subscriptions are restored (connecting): that channel is given up too.
    if (this.#client !== client || this.#state === 'shutdown') return;
    this.#client = undefined;
    this.#attempt = undefined;
    this.#draining.add(client);
    client.once('close', () => this.#draining.delete(client));
    const delay = this.#nextAllowedAt - this.#clock.now();
    if (delay <= 0) this.#startAttempt();
    else {
      this.#setState('connecting');
      this.#timer = this.#clock.setTimeout(() => this.#startAttempt(), delay);
    }
  }

  #onFailure(error: SecureIpcError): void {
    this.#lastError = error;
    const closedBeforeAccepted = error.code === 'SIPC_ERR_REFUSED' && error.details?.reason === 'closed';
    if (closedBeforeAccepted && this.#closedInARow < this.#closedRetries) this.#closedInARow++;
    else if (isTerminalConnectError(error)) {
      this.#shutdown(error);
      return;
    }
    this.#setState('transient_failure', error);
    this.#wakeWaiters();
    if (this.#state !== 'transient_failure') return; // a stateChange listener closed us
    const delay = this.#nextAllowedAt - this.#clock.now();
    if (delay <= 0) this.#startAttempt();
    else this.#timer = this.#clock.setTimeout(() => this.#startAttempt(), delay);
  }

  #shutdown(error: SecureIpcError | undefined): void {
    for (const timer of [this.#timer, this.#deadline])
      if (timer !== undefined) this.#clock.clearTimeout(timer);
    this.#timer = undefined;
    this.#deadline = undefined;
    const attempt = this.#attempt;
    this.#attempt = undefined;
    attempt?.abort(createError('SIPC_ERR_CHANNEL_CLOSED', 'The reconnecting client is closed'));
    const client = this.#client;
    this.#client = undefined;
    this.#terminalError = error;
    if (error !== undefined) this.#lastError = error;
    this.#subscriptions.clear();
    const closing = [...this.#draining].map((c) => c.close().catch(() => {}));
    this.#draining.clear();
    if (client !== undefined) closing.push(client.close().catch(() => {}));
    this.#closing = Promise.all(closing).then(() => {});
    this.#setState('shutdown', error);
    this.#wakeWaiters();
  }
}

/**
 * A client that connects on first use (or `connect()`) and reconnects with gRPC's backoff after
 * transient failures, until `close()` or a trust failure (docs/resilience.md, "Reconnecting
 * client"). Throws SIPC_ERR_INVALID_ARGUMENT for bad loop options; connect()'s own options are
 * checked by the first attempt (a bad one is terminal).
 */
export function createReconnectingClient<S extends object = ServiceDefinition, E extends object = EventMap>(
  options: ReconnectingClientOptions,
): ReconnectingClient<S, E> {
  return new ReconnectingClient<S, E>(options);
}
