/**
 * Circuit breakers per target and per method pattern around an RPC client, without touching the
 * client: `withCircuitBreaker(client, options)` returns an object with the client's `request`,
 * `ping` and `publish` where each call first passes the breaker of the first method pattern that
 * matches (if any), then the target's breaker, and only then reaches the client. While a breaker
 * is open nothing is written to the channel. Clients that are not wrapped pay nothing.
 *
 * Method patterns use the policy's matcher (rpc/patterns.ts: `*` matches any run of characters,
 * linear time, never a RegExp).
 */
import { createError } from '../errors.js';
import type { RpcClient } from '../rpc/client.js';
import { compilePatterns, type NameMatcher } from '../rpc/patterns.js';
import type {
  EventMap,
  MethodName,
  PublishPayload,
  Received,
  RequestArgs,
  RequestOptions,
  ResultOf,
  ServiceDefinition,
} from '../rpc/service-types.js';
import { type CircuitBreaker, type CircuitBreakerOptions, createCircuitBreaker } from './breaker.js';

/** Most method patterns of one `withCircuitBreaker` (each is a breaker of its own). */
export const MAX_BREAKER_METHOD_PATTERNS = 256;

/** Options of `withCircuitBreaker`. */
export interface WithCircuitBreakerOptions {
  /**
   * The target's breaker, every call passes it: options for a new one (default `{}`, the
   * defaults of `createCircuitBreaker`), or a breaker to share (with the client that replaces
   * this one after a reconnect, say).
   */
  target?: CircuitBreakerOptions | CircuitBreaker;
  /**
   * Method pattern → options of its own breaker (one breaker per pattern, shared by the methods
   * it matches). The first pattern in object order that matches a method applies; at most 256.
   */
  methods?: Readonly<Record<string, CircuitBreakerOptions>>;
}

/** A client's calls through circuit breakers. */
export interface BreakerClient<S extends object = ServiceDefinition, E extends object = EventMap> {
  /** `client.request` through the method's breaker (if a pattern matches) and the target's. */
  request<M extends MethodName<S>>(method: M, ...args: RequestArgs<S, M>): Promise<Received<ResultOf<S, M>>>;
  /** `client.ping` through the target's breaker. */
  ping<T>(payload?: T, options?: RequestOptions): Promise<T>;
  /** `client.publish` through the target's breaker. */
  publish<T extends Extract<keyof E, string>>(topic: T, payload: PublishPayload<E, T>): Promise<void>;
  /** The target's breaker. */
  readonly target: CircuitBreaker;
  /** The method breakers, by pattern. */
  readonly methods: ReadonlyMap<string, CircuitBreaker>;
  /** The wrapped client (its calls do not pass the breakers). */
  readonly client: RpcClient<S, E>;
}

function isBreaker(value: unknown): value is CircuitBreaker {
  return (
    typeof value === 'object' && value !== null && typeof (value as CircuitBreaker).execute === 'function'
  );
}

function methodBreakers(
  methods: Readonly<Record<string, CircuitBreakerOptions>>,
): Array<[string, NameMatcher, CircuitBreaker]> {
  if (typeof methods !== 'object' || methods === null)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'methods must be an object of pattern → options');
  const entries = Object.entries(methods);
  if (entries.length > MAX_BREAKER_METHOD_PATTERNS)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `At most ${MAX_BREAKER_METHOD_PATTERNS} method patterns`);
  return entries.map(([pattern, options]) => {
    if (pattern.length === 0) throw createError('SIPC_ERR_INVALID_ARGUMENT', 'A method pattern is not empty');
    return [pattern, compilePatterns([pattern]), createCircuitBreaker({ name: pattern, ...options })];
  });
}

/**
 * Wrap `client` so that its calls pass circuit breakers per target and per method pattern
 * (docs/resilience.md, "Per-method breakers"). Throws SIPC_ERR_INVALID_ARGUMENT for bad options.
 */
export function withCircuitBreaker<S extends object = ServiceDefinition, E extends object = EventMap>(
  client: RpcClient<S, E>,
  options: WithCircuitBreakerOptions = {},
): BreakerClient<S, E> {
  if (typeof client?.request !== 'function')
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'withCircuitBreaker needs an RPC client');
  const target = isBreaker(options.target) ? options.target : createCircuitBreaker(options.target ?? {});
  const byPattern = methodBreakers(options.methods ?? {});
  const throughTarget = <T>(call: () => Promise<T>, signal?: AbortSignal) =>
    target.execute(call, signal === undefined ? {} : { signal });
  const through = <T>(method: string, call: () => Promise<T>, signal?: AbortSignal): Promise<T> => {
    const own = byPattern.find(([, matches]) => matches(method))?.[2];
    if (own === undefined) return throughTarget(call, signal);
    return own.execute(() => throughTarget(call, signal), signal === undefined ? {} : { signal });
  };
  return {
    request<M extends MethodName<S>>(method: M, ...args: RequestArgs<S, M>) {
      const signal = (args[1] as RequestOptions | undefined)?.signal;
      return through(method, () => client.request(method, ...args), signal);
    },
    ping<T>(payload?: T, requestOptions?: RequestOptions) {
      return throughTarget(() => client.ping(payload, requestOptions), requestOptions?.signal);
    },
    publish<T extends Extract<keyof E, string>>(topic: T, payload: PublishPayload<E, T>) {
      return throughTarget(() => client.publish(topic, payload));
    },
    target,
    methods: new Map(byPattern.map(([pattern, , breaker]) => [pattern, breaker])),
    client,
  };
}
