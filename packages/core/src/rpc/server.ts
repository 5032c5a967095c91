/**
 * The RPC server: a handler registry, a policy, an idempotency window and event routing, shared
 * by every channel it serves. Feed it channels (`server.attach(channel)`) or a whole secure
 * listener (`server.listen(secureListener)`); `serve()` in ./serve.ts does both for you.
 */
import { EventEmitter } from 'node:events';
import { encodeEnvelope } from '../envelope/encode.js';
import { EnvelopeKind as Kind } from '../envelope/types.js';
import { createError } from '../errors.js';
import type { AnyHandler, HandlerFailure } from './dispatcher.js';
import { type EventListener, EventRouter } from './events.js';
import { IdempotencyCache, type IdempotencyOptions } from './idempotency.js';
import { isReservedMethod, RESERVED_METHOD_PREFIX } from './methods.js';
import { RpcPeer } from './peer.js';
import { DENY_ALL, type Policy, type PolicyDecision } from './policy.js';
import type { EventMap, Handler, MethodName, ServiceDefinition } from './service-types.js';
import type { RpcChannel } from './session.js';

/** Options of an RPC server. */
export interface RpcServerOptions {
  /** Who may call what; deny by default (without one, only `$ping` is allowed). */
  policy?: Policy;
  /**
   * Idempotency cache settings: window (10 minutes), entries per peer (1,000) and in all
   * (10,000), detached executions per peer (64), in all (1,024) and their lifetime (60 s).
   */
  idempotency?: IdempotencyOptions;
  /** Most requests of one peer run at once (default 64); excess ones are refused with SIPC_ERR_BUSY. */
  maxIncoming?: number;
  /** Most requests this server sends to one peer at once (default 64). */
  maxInFlight?: number;
}

/** Events of an RPC server. */
export interface RpcServerEvents {
  /** An authorization decision (who, what, verdict): the feed for audit logging. */
  decision: [decision: PolicyDecision];
  /** A new peer session. */
  peer: [peer: RpcPeer];
  /** A peer session ended. */
  peerClose: [peer: RpcPeer];
  /** A local failure with no caller to tell (a throwing event listener, a misbehaving peer). */
  error: [error: unknown];
  /**
   * A handler failed with an error that is not public: its caller got SIPC_ERR_HANDLER with
   * `correlationId` only; here is the real error (never the params), for the server's log.
   */
  handlerError: [failure: HandlerFailure];
}

/** A listener of secure channels, as `secureListen` returns. */
export interface ChannelSource {
  /** Where it listens. */
  readonly address?: string;
  on(event: 'channel', listener: (channel: RpcChannel) => void): unknown;
  off(event: 'channel', listener: (channel: RpcChannel) => void): unknown;
  close(): Promise<void>;
}

/** An RPC server typed by service `S` (methods) and `E` (event topics). */
export class RpcServer<
  S extends object = ServiceDefinition,
  E extends object = EventMap,
> extends EventEmitter<RpcServerEvents> {
  readonly #handlers = new Map<string, AnyHandler>();
  readonly #events = new EventRouter();
  readonly #peers = new Set<RpcPeer>();
  readonly #sources = new Set<ChannelSource>();
  readonly #idempotency: IdempotencyCache;
  readonly #policy: Policy;
  readonly #options: RpcServerOptions;

  /** Create a server; nothing is served until channels are attached. */
  constructor(options: RpcServerOptions = {}) {
    super();
    this.#options = options;
    this.#policy = options.policy ?? DENY_ALL;
    this.#idempotency = new IdempotencyCache(options.idempotency);
  }

  /** The address of the first listener served (with a `tcp://host:0` port filled in). */
  get address(): string | undefined {
    for (const s of this.#sources) return s.address;
    return undefined;
  }

  /** The live peer sessions. */
  get peers(): ReadonlySet<RpcPeer> {
    return this.#peers;
  }

  /** Register the handler of `method` (names starting with `$` are reserved). */
  handle<M extends MethodName<S>>(method: M, handler: Handler<S, M>): this {
    if (typeof method !== 'string' || method.length === 0 || isReservedMethod(method))
      throw createError(
        'SIPC_ERR_INVALID_ARGUMENT',
        `Method names are non-empty and must not start with ${RESERVED_METHOD_PREFIX}`,
      );
    if (this.#handlers.has(method))
      throw createError('SIPC_ERR_INVALID_ARGUMENT', `A handler for ${method} is already registered`);
    this.#handlers.set(method, handler as AnyHandler);
    return this;
  }

  /**
   * Receive the events peers publish on topics matching `pattern` (a peer's event needs `publish`
   * on its topic in the policy); returns the function that removes the listener.
   */
  subscribe<T extends Extract<keyof E, string>>(pattern: T, listener: EventListener<E[T]>): () => void;
  /** Receive events on a wildcard pattern (`files.*`). */
  subscribe(pattern: string, listener: EventListener): () => void;
  subscribe(pattern: string, listener: EventListener<any>): () => void {
    return this.#events.add(pattern, listener);
  }

  /** Send an event to every peer subscribed to `topic` (encoded once); resolves with how many got it. */
  async publish<T extends Extract<keyof E, string>>(topic: T, payload: E[T]): Promise<number> {
    const bytes = encodeEnvelope({ k: Kind.Event, m: topic, p: payload });
    const sends: Promise<void>[] = [];
    for (const peer of this.#peers) if (peer.wants(topic)) sends.push(peer.sendEncoded(bytes));
    const results = await Promise.allSettled(sends);
    return results.filter((r) => r.status === 'fulfilled').length;
  }

  /** Serve one secure channel. */
  attach(channel: RpcChannel): RpcPeer {
    const peer = new RpcPeer(channel, {
      handlers: this.#handlers,
      events: this.#events,
      policy: this.#policy,
      idempotency: this.#idempotency,
      maxIncoming: this.#options.maxIncoming,
      maxInFlight: this.#options.maxInFlight,
      wantsDecisions: () => this.listenerCount('decision') > 0,
      onDecision: (d) => this.emit('decision', d),
      onHandlerError: (f) => {
        if (this.listenerCount('handlerError') > 0) this.emit('handlerError', f);
      },
      onError: (err) => {
        if (this.listenerCount('error') > 0) this.emit('error', err);
      },
    });
    if (peer.closed) return peer;
    this.#peers.add(peer);
    channel.once('close', () => {
      this.#peers.delete(peer);
      this.emit('peerClose', peer);
    });
    this.emit('peer', peer);
    return peer;
  }

  /** Serve every channel a secure listener accepts. */
  listen(source: ChannelSource): this {
    const onChannel = (channel: RpcChannel) => this.attach(channel);
    source.on('channel', onChannel);
    this.#sources.add(source);
    return this;
  }

  /** Stop listening and close every peer session. */
  async close(): Promise<void> {
    const sources = [...this.#sources];
    this.#sources.clear();
    await Promise.allSettled(sources.map((s) => s.close()));
    await Promise.allSettled([...this.#peers].map((p) => p.close()));
  }
}

/** Create an RPC server typed by a service interface. */
export function createServer<S extends object = ServiceDefinition, E extends object = EventMap>(
  options: RpcServerOptions = {},
): RpcServer<S, E> {
  return new RpcServer<S, E>(options);
}
