/**
 * Typed service definitions without code generation: a service is a TypeScript interface of
 * method name → `(params) => result`. The same interface types `server.handle` and
 * `client.request`, so a renamed method or a changed params shape fails to compile on both sides.
 * A method whose result is an `AsyncIterable<T>` is a stream; one whose params are an
 * `AsyncIterable<X>` takes a streamed input (a client stream, or bidirectional when both are).
 */
import type { PeerInfo } from '../transport/contract.js';

/** Anything with methods: `interface Files { 'files.read'(p: { path: string }): Uint8Array }`. */
export type ServiceDefinition = { [method: string]: (params: any) => any };

/** Topic name → payload type, for typed events. */
export type EventMap = { [topic: string]: unknown };

/** Method names of a service. */
export type MethodName<S> = Extract<keyof S, string>;

/** Params of method `M` (a type that cannot cross the wire becomes `NotWire`: calls fail to compile). */
export type ParamsOf<S, M extends keyof S> = S[M] extends (params: infer P) => unknown
  ? WireParams<P, M>
  : never;

/** Result of method `M` once awaited (an AsyncIterable stays an AsyncIterable); `NotWire` if it cannot cross. */
export type ResultOf<S, M extends keyof S> = S[M] extends (params: any) => infer R
  ? CrossesWire<Awaited<R>> extends true
    ? Awaited<R>
    : NotWire<'result', M>
  : never;

/**
 * What a method's params or result is when it cannot cross the wire (docs/protocol.md, "Values"):
 * no value has this type, so a handler or a call of that method fails to compile, naming it.
 */
export interface NotWire<What extends string, M> {
  readonly 'cannot cross the wire (docs/protocol.md, Values)': [What, M];
}

/**
 * The types the value model carries (docs/protocol.md, "Values"), checked deeply: null, boolean,
 * number, bigint, string, Uint8Array (Buffer too), Date, arrays and tuples of them (no undefined
 * items), objects of them (undefined properties are omitted), Map with scalar keys (string,
 * number, bigint, boolean, null, Uint8Array), Set. Not: functions, symbols, Error, Promise, other
 * typed arrays, ArrayBuffer, RegExp, WeakMap/WeakSet and other objects with methods. A top-level params or
 * result may also be undefined (absent) or an AsyncIterable of a crossing type (a stream).
 * `any` and `unknown` pass (the run-time check still applies). `true` if `T` crosses.
 */
export type CrossesWire<T> = 0 extends 1 & T
  ? true
  : unknown extends T
    ? true
    : false extends TopCrosses<T>
      ? false
      : true;

// biome-ignore lint/suspicious/noConfusingVoidType: a method declared `(): void` answers undefined, which crosses
type TopCrosses<T> = T extends undefined | void
  ? true
  : T extends AsyncIterable<infer I>
    ? false extends Crosses<I, 8>
      ? false
      : true
    : Crosses<T, 8>;

// Each level one less; at the bottom a type is taken as crossing (recursive types stay finite).
type Less = [never, 0, 1, 2, 3, 4, 5, 6, 7, 8];
type WireKey = string | number | bigint | boolean | null | Uint8Array;

/** `true`, `false` or `boolean` (some members of the union do not cross). */
type Crosses<T, D extends number> = [D] extends [never]
  ? true
  : 0 extends 1 & T
    ? true
    : unknown extends T
      ? true
      : T extends string | number | boolean | bigint | null | Date | Uint8Array
        ? true
        : T extends undefined | symbol | ((...args: any) => any)
          ? false
          : // Map and Set first: structurally, a Map is a WeakMap and a Set a WeakSet.
            T extends ReadonlyMap<infer K, infer V>
            ? [K] extends [WireKey]
              ? Crosses<V, Less[D]>
              : false
            : T extends ReadonlySet<infer V>
              ? Crosses<V, Less[D]>
              : T extends Error | Promise<unknown> | ArrayBufferView | ArrayBuffer | RegExp
                ? false
                : T extends readonly (infer U)[]
                  ? Crosses<U, Less[D]>
                  : T extends object
                    ? {
                        [K in keyof T]-?: K extends symbol
                          ? false
                          : Crosses<Exclude<T[K], undefined>, Less[D]>;
                      }[keyof T]
                    : false;

/**
 * What a value of type `T` arrives as: a bigint as `number | bigint` (integers within 2^53 arrive
 * as numbers), a Buffer as a Uint8Array, a ReadonlyMap/ReadonlySet as a Map/Set, containers
 * mapped item by item.
 */
export type Received<T> = 0 extends 1 & T
  ? T
  : T extends bigint
    ? number | bigint
    : T extends Uint8Array
      ? Uint8Array
      : T extends string | number | boolean | null | undefined | Date
        ? T
        : T extends AsyncIterable<infer I>
          ? AsyncIterable<Received<I>>
          : T extends ReadonlyMap<infer K, infer V>
            ? Map<Received<K>, Received<V>>
            : T extends ReadonlySet<infer V>
              ? Set<Received<V>>
              : T extends readonly unknown[]
                ? { -readonly [K in keyof T]: Received<T[K]> }
                : T extends object
                  ? { [K in keyof T]: Received<T[K]> }
                  : T;

/**
 * Items of a streamed input (a client-stream or bidirectional method, `(p: AsyncIterable<X>) => …`:
 * protocol version 2), `never` for a method whose params are one value.
 */
export type InputItemOf<S, M extends keyof S> = ParamsOf<S, M> extends AsyncIterable<infer T> ? T : never;

/** Items of a stream result, `never` for a unary method. */
export type StreamItemOf<S, M extends keyof S> = ResultOf<S, M> extends AsyncIterable<infer T> ? T : never;

/** What a handler knows about the request, all of it from the authenticated channel or validated headers. */
export interface HandlerContext {
  /** The method called. */
  readonly method: string;
  /** The peer's static key from the Noise handshake (its identity). */
  readonly remoteStaticKey: Uint8Array;
  /** Fingerprint of `remoteStaticKey`. */
  readonly peerId: string;
  /** The roles the policy gave the peer. */
  readonly roles: readonly string[];
  /** What the OS says about the peer process. */
  readonly peer: PeerInfo;
  /**
   * This end's local id of the channel the request came on (as `$stats` and `peer.channel.id` of
   * the server's `peer` event say it): tells apart two connections of one key. Undefined on a
   * channel without one.
   */
  readonly channelId?: number | undefined;
  /** What the caller sent along with the request (validated; absent fields were not sent). */
  readonly headers: RequestHeaders;
  /**
   * Which attempt of the same call this is, as the caller said (`h.attempt`, protocol version 3):
   * 1 when it did not say (the first attempt, or a peer below version 3). Not authenticated
   * beyond the channel, not unique: a hint for logs and metrics, never for decisions.
   */
  readonly attempt: number;
  /**
   * Fires on cancel (reason SIPC_ERR_CANCELLED), deadline (SIPC_ERR_TIMEOUT) and disconnect
   * (SIPC_ERR_CONNECTION_CLOSED), and when an item of a streamed input fails the params schema
   * (reason: that SIPC_ERR_INVALID_ARGUMENT `PublicError`, which ended the call).
   */
  readonly signal: AbortSignal;
}

/**
 * The request's headers as a handler sees them: the same names as `RequestOptions` (the wire
 * abbreviates them as `h.timeout`, `h.idem`, `h.trace`, `h.tracestate`; see docs/protocol.md).
 */
export interface RequestHeaders {
  /** Milliseconds the caller still waits for the answer (its budget left when it sent the request). */
  readonly timeoutMs?: number;
  /** The caller's idempotency key. */
  readonly idempotencyKey?: string;
  /** The caller's W3C traceparent. */
  readonly traceparent?: string;
  /**
   * The caller's W3C tracestate, exactly as sent (protocol version 4; only with `traceparent`).
   * Absent from a peer below version 4, which cannot send it.
   */
  readonly tracestate?: string;
}

/** What an event listener knows about the sender. */
export interface EventContext {
  /** The topic. */
  readonly topic: string;
  /** The sender's static key. */
  readonly remoteStaticKey: Uint8Array;
  /** Fingerprint of `remoteStaticKey`. */
  readonly peerId: string;
  /** The sender's roles. */
  readonly roles: readonly string[];
  /** What the OS says about the sender. */
  readonly peer: PeerInfo;
}

/** A handler for method `M` of service `S`. */
export type Handler<S, M extends keyof S> = (
  params: Received<ParamsOf<S, M>>,
  context: HandlerContext,
) => ResultOf<S, M> | Promise<ResultOf<S, M>>;

/** Options of one request. */
export interface RequestOptions {
  /** Milliseconds to wait; past it the request rejects with SIPC_ERR_TIMEOUT and a cancel is sent. */
  timeoutMs?: number;
  /** Abort the request: rejects with SIPC_ERR_ABORTED and a cancel is sent. */
  signal?: AbortSignal;
  /**
   * Idempotency key: the server runs the request at most once per key within its window. 1 to
   * 128 UTF-8 bytes; a longer one rejects the request with SIPC_ERR_INVALID_ARGUMENT, unsent.
   */
  idempotencyKey?: string;
  /**
   * W3C traceparent to pass along: version `00`, lowercase hex, trace-id and parent-id not all
   * zeros; anything else rejects the request with SIPC_ERR_INVALID_ARGUMENT, unsent.
   */
  traceparent?: string;
  /**
   * W3C tracestate to pass along with `traceparent` (W3C Trace Context Level 1: at most 512
   * characters and 32 `key=value` members, lowercase keys, no key twice; docs/protocol.md,
   * `h.tracestate`). Anything else rejects the request with SIPC_ERR_INVALID_ARGUMENT, unsent, on
   * every protocol version. Sent as `h.tracestate` on protocol-version-4 channels only, and only
   * with a `traceparent`: otherwise it is left out and the request is sent without it.
   */
  tracestate?: string;
  /**
   * Which attempt of the same call this is (a retry's: 2 for the first retry, at most 255); sent
   * as `h.attempt` on protocol-version-3 channels only (left out below). Anything else rejects the
   * request with SIPC_ERR_INVALID_ARGUMENT, unsent.
   */
  attempt?: number;
}

/**
 * What `client.request(method, ...)` takes after the name: the params, optional when the method
 * takes none (`status(): Status` is called as `request('status')`) or accepts `undefined`, then
 * the options.
 */
export type RequestArgs<S, M extends keyof S> = S[M] extends (...args: infer A) => unknown
  ? A extends []
    ? [params?: undefined, options?: RequestOptions]
    : undefined extends A[0]
      ? [params?: WireParams<A[0], M>, options?: RequestOptions]
      : [params: WireParams<A[0], M>, options?: RequestOptions]
  : never;

// The params as declared, or NotWire when they cannot cross (see ParamsOf).
type WireParams<P, M> = CrossesWire<P> extends true ? P : NotWire<'params', M>;

/** A subscription pattern as a template literal type: `files.*` → `files.${string}`. */
export type PatternTemplate<P extends string> = P extends `${infer Head}*${infer Rest}`
  ? `${Head}${string}${PatternTemplate<Rest>}`
  : P;

/**
 * The topics of `E` that pattern `P` can match (`*` matches any run of characters, dots
 * included, as at run time); every string when `E` is the untyped `EventMap`.
 */
export type TopicsMatching<E, P extends string> = string extends keyof E
  ? P extends `${string}*${string}`
    ? string
    : P
  : Extract<keyof E, PatternTemplate<P>> & string;

/**
 * The payload `publish` takes for topic `T`: its declared type, or `NotWire` when that cannot cross
 * the wire (docs/protocol.md, "Values"), so such a publish fails to compile, naming the topic.
 */
export type PublishPayload<E, T extends keyof E> =
  CrossesWire<E[T]> extends true ? E[T] : NotWire<'payload', T>;

/**
 * The payload of an event matched by `P` as a listener receives it: the union of the matching
 * topics' payloads, mapped as values arrive (`Received`: a `bigint` as `number | bigint`, ...).
 */
export type EventPayloadOf<E, P extends string> = string extends keyof E
  ? Received<E[keyof E]>
  : Received<E[TopicsMatching<E, P> & keyof E]>;

/**
 * `unknown` if pattern `P` can match a topic of `E`, else `never` (a pattern that matches no
 * declared topic fails to compile).
 */
export type PatternCheck<E, P extends string> = [TopicsMatching<E, P>] extends [never] ? never : unknown;
