/**
 * The RPC server: a handler registry, a policy, an idempotency window and event routing, shared
 * by every channel it serves. Feed it channels (`server.attach(channel)`) or a whole secure
 * listener (`server.listen(secureListener)`); `serve()` in ./serve.ts does both for you.
 */
import { EventEmitter } from 'node:events';
import type { AuditFields } from '../audit/record.js';
import { type CloseInfo, closeInfoOf } from '../channel/options.js';
import type { HandshakeFailure } from '../channel/secure-listener.js';
import { MAX_TIMER_MS } from '../constants.js';
import { DIAGNOSTICS_VERSION, diagnostics, type PolicyDecisionMessage } from '../diagnostics/channels.js';
import { type EventMessage, finishTraced, runTraced, traced, tracing } from '../diagnostics/tracing.js';
import { encodeEnvelope } from '../envelope/encode.js';
import { EnvelopeKind as Kind } from '../envelope/types.js';
import { createError, type SecureIpcError } from '../errors.js';
import { auditRefusal, ServerAudit, type ServerAuditOptions, type ServerAuditState } from './audit.js';
import { DEFAULT_MAX_QUEUED_EVENT_BYTES } from './byte-budget.js';
import type { AnyHandler, HandlerFailure } from './dispatcher.js';
import { type EventListener, EventRouter, guardListener, reportListenerError } from './events.js';
import { IdempotencyCache, type IdempotencyOptions } from './idempotency.js';
import { type Builtin, isReservedMethod, RESERVED_METHOD_PREFIX, STATS } from './methods.js';
import { RpcPeer } from './peer.js';
import { DENY_ALL, Policy, type PolicyDecision } from './policy.js';
import {
  assertMethodSchemas,
  type InferSchemaInput,
  type InferSchemaOutput,
  type MethodSchemas,
  type StandardSchemaV1,
  validatingHandler,
} from './schema.js';
import type {
  EventMap,
  EventPayloadOf,
  Handler,
  HandlerContext,
  InputItemOf,
  MethodName,
  ParamsOf,
  PatternCheck,
  PublishPayload,
  Received,
  ResultOf,
  ServiceDefinition,
  StreamItemOf,
} from './service-types.js';
import type { RpcChannel } from './session.js';
import { type ServerStats, STATS_VERSION } from './stats.js';

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
  /**
   * Bytes of answers (replies and stream items) queued for one peer, not yet accepted by its
   * transport, beyond which that peer's reads pause until it has read half of them; streams wait
   * for room (default 8 MiB; each queued message also counts 512 bytes of overhead).
   */
  maxQueuedReplyBytes?: number;
  /**
   * Bytes of events queued for one subscriber, not yet accepted by its transport, beyond which
   * `publish()` drops the event for that subscriber (default 4 MiB; each event also counts 512
   * bytes of overhead; a subscriber with nothing queued always takes one event).
   */
  maxQueuedEventBytes?: number;
  /**
   * What happens to a subscriber over `maxQueuedEventBytes`: `drop` (default) drops the event for
   * it and counts it (`peer.droppedEvents`, the `eventDropped` event); `disconnect` also closes
   * its channel with SIPC_ERR_BUSY.
   */
  eventOverflow?: 'drop' | 'disconnect';
  /**
   * Record what happens on every channel in a tamper-evident audit log (docs/audit.md, "What a
   * server records"): channel opens and closes, every call with its verdict and the keyed hash
   * of its params, subscribe and publish decisions; with `required`, fail closed.
   */
  audit?: ServerAuditOptions;
}

/** What `publish()` did with one event; subscribers = queued + dropped. */
export interface PublishResult {
  /** Subscribers the event was queued for (handed to their channel; delivery is not confirmed). */
  readonly queued: number;
  /** Subscribers over their event budget, which lost this event (never retried). */
  readonly dropped: number;
}

/** An event dropped for one subscriber over its budget (the `eventDropped` event; never a payload). */
export interface EventDrop {
  /** Fingerprint of the subscriber's static key. */
  readonly peerId: string;
  /** The event's topic. */
  readonly topic: string;
  /** Encoded size of the event. */
  readonly bytes: number;
  /** What the subscriber had queued already (events, with their overhead). */
  readonly queuedBytes: number;
  /** Events dropped for this subscriber so far, this one included. */
  readonly dropped: number;
  /** `drop`, or `disconnect` when the subscriber was also disconnected (eventOverflow). */
  readonly action: 'drop' | 'disconnect';
  /** When (ms since the epoch). */
  readonly at: number;
}

/** Throw SIPC_ERR_INVALID_ARGUMENT unless `value` is undefined or a positive safe integer. */
function assertCount(name: string, value: unknown): void {
  if (value !== undefined && !(Number.isSafeInteger(value) && (value as number) > 0))
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `${name} must be a positive integer`);
}

/** Options of `server.close()`. */
export interface ServerCloseOptions {
  /**
   * Longest graceful drain, in ms (integer 0 to 2^31-1; default 0: close every channel at once,
   * running handlers see SIPC_ERR_CONNECTION_CLOSED). See `RpcServer.close`.
   */
  drainMs?: number;
}

/** Publish one decision on `secure-ipc:policy.decision` (a subscriber's throw is Node's to report). */
function publishDecision(channelId: number | undefined, d: PolicyDecision): void {
  const message: PolicyDecisionMessage = {
    v: DIAGNOSTICS_VERSION,
    channelId,
    peer: d.who,
    roles: d.roles,
    action: d.action,
    what: d.what,
    allowed: d.allowed,
    at: d.at,
  };
  diagnostics.policyDecision.publish(message);
}

/** What `server.setPolicy()` changed. */
export interface PolicyUpdate {
  /** Live channels now authorized by the new policy. */
  readonly channels: number;
  /** Subscriptions dropped because the new policy does not grant them. */
  readonly droppedSubscriptions: number;
}

/** @internal The symbol of RpcServer's recorder accessor (serve() records what only it sees). */
export const kAudit: unique symbol = Symbol('audit');

/** Record a served channel's open now and its close when it comes (docs/audit.md). */
function recordChannel(audit: ServerAudit, channel: RpcChannel, peer: RpcPeer): void {
  const opened = Date.now();
  const { peer: os } = channel;
  const fields: Record<string, AuditFields[string]> = {
    peer: peer.peerId,
    roles: [...peer.roles],
    protocol: channel.version ?? 1,
    transport: os.transport,
  };
  if (channel.id !== undefined) fields.channel = channel.id;
  if (os.pid !== undefined) fields.pid = os.pid;
  if (os.uid !== undefined) fields.uid = os.uid;
  if (os.osIdentity !== undefined) fields.osIdentity = os.osIdentity;
  audit.record('channel.open', fields);
  channel.once('close', (error?: SecureIpcError, info?: CloseInfo) => {
    const closed: Record<string, AuditFields[string]> = {
      peer: peer.peerId,
      reason: (info ?? closeInfoOf(error)).reason,
      durationMs: Date.now() - opened,
    };
    if (channel.id !== undefined) closed.channel = channel.id;
    if (error?.code !== undefined) closed.code = error.code;
    audit.record('channel.close', closed);
  });
}

/** A channel that arrived while the server drains: closed, never served. */
function closeAtOnce(channel: RpcChannel): void {
  void channel.close().catch(() => {});
}

/** Events of an RPC server. */
export interface RpcServerEvents {
  /** An authorization decision (who, what, verdict): the feed for audit logging. */
  decision: [decision: PolicyDecision];
  /** A new peer session. */
  peer: [peer: RpcPeer];
  /** A peer session ended. */
  peerClose: [peer: RpcPeer];
  /**
   * A local failure with no caller to tell: a listener that threw (an event, `decision` or
   * `handlerError` listener; without an `error` listener it is rethrown, see
   * `reportListenerError`), a misbehaving peer.
   */
  error: [error: unknown];
  /** publish() dropped an event for a subscriber over its event budget (see `eventOverflow`). */
  eventDropped: [drop: EventDrop];
  /**
   * A handler failed with an error that is not public: its caller got SIPC_ERR_HANDLER with
   * `correlationId` only; here is the real error (never the params), for the server's log.
   */
  handlerError: [failure: HandlerFailure];
  /**
   * `serve()` only: a handshake that gave no channel (refused: untrusted, revoked, expired, over
   * a cap; or failed: timeout, protocol, authentication), with the peer's OS information, the
   * presented key's fingerprint when known and the reason code; never payload bytes.
   */
  handshakeFailed: [failure: HandshakeFailure];
}

/**
 * `unknown` when the params schema `P` accepts every value the service type allows for `M`'s
 * params; else a type no schema has, whose property names the problem in the compiler's message
 * (a schema that would refuse well-typed calls fails to compile).
 */
export type ParamsSchemaCheck<S, M extends keyof S, P> =
  P extends StandardSchemaV1<any, any>
    ? [SchemaParamsOf<S, M>] extends [InferSchemaInput<P>]
      ? unknown
      : {
          readonly '~error': 'The params schema must accept every value the service type allows for this method';
        }
    : unknown;

/** True for an `AsyncIterable` (a stream), false for `any` (an untyped service) and anything else. */
type IsStream<T> = 0 extends 1 & T ? false : [T] extends [AsyncIterable<unknown>] ? true : false;

/**
 * What the params schema of method `M` describes: one input item `X` for a streamed input
 * (`(p: AsyncIterable<X>) => ...`), else the params.
 */
export type SchemaParamsOf<S, M extends keyof S> =
  IsStream<ParamsOf<S, M>> extends true ? InputItemOf<S, M> : ParamsOf<S, M>;

/** What the result schema of method `M` describes: one item `T` of a stream result, else the result. */
export type SchemaResultOf<S, M extends keyof S> =
  IsStream<ResultOf<S, M>> extends true ? StreamItemOf<S, M> : ResultOf<S, M>;

/**
 * The handler of a method registered with schemas: it gets the params schema's output (an
 * `AsyncIterable` of it for a streamed input; without a schema, the service's params as they
 * arrive, `Received`, like a plain handler's) and returns
 * what the result schema accepts (an `AsyncIterable` of it for a stream; the service's result
 * without one).
 */
export type SchemaHandler<S, M extends keyof S, P, R> = (
  params: P extends StandardSchemaV1<any, any>
    ? IsStream<ParamsOf<S, M>> extends true
      ? AsyncIterable<InferSchemaOutput<P>>
      : InferSchemaOutput<P>
    : Received<ParamsOf<S, M>>,
  context: HandlerContext,
) => R extends StandardSchemaV1<any, any>
  ? IsStream<ResultOf<S, M>> extends true
    ? AsyncIterable<InferSchemaInput<R>> | Promise<AsyncIterable<InferSchemaInput<R>>>
    : InferSchemaInput<R> | Promise<InferSchemaInput<R>>
  : ResultOf<S, M> | Promise<ResultOf<S, M>>;

/** A listener of secure channels, as `secureListen` returns. */
export interface ChannelSource {
  /** Where it listens. */
  readonly address?: string;
  /** Add a listener for each authenticated channel. */
  on(event: 'channel', listener: (channel: RpcChannel) => void): unknown;
  /** Remove a listener added with `on`. */
  off(event: 'channel', listener: (channel: RpcChannel) => void): unknown;
  /** Stop listening (the RPC server's `close()` calls it). */
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
  /** Each source's channel listener (a drain swaps it for closeAtOnce). */
  readonly #onChannel = new Map<ChannelSource, (channel: RpcChannel) => void>();
  readonly #idempotency: IdempotencyCache;
  readonly #audit: ServerAudit | undefined;
  #policy: Policy;
  readonly #options: RpcServerOptions;

  /** Create a server; nothing is served until channels are attached. */
  constructor(options: RpcServerOptions = {}) {
    super();
    assertCount('maxQueuedReplyBytes', options.maxQueuedReplyBytes);
    assertCount('maxQueuedEventBytes', options.maxQueuedEventBytes);
    const overflow = options.eventOverflow;
    if (overflow !== undefined && overflow !== 'drop' && overflow !== 'disconnect')
      throw createError('SIPC_ERR_INVALID_ARGUMENT', "eventOverflow must be 'drop' or 'disconnect'");
    this.#options = options;
    this.#policy = options.policy ?? DENY_ALL;
    this.#idempotency = new IdempotencyCache(options.idempotency);
    this.#audit =
      options.audit === undefined
        ? undefined
        : new ServerAudit(options.audit, (err) => {
            if (this.listenerCount('error') > 0) this.emit('error', err);
          });
  }

  /** @internal serve()'s access to the recorder (handshake failures, revocations). */
  [kAudit](): ServerAudit | undefined {
    return this.#audit;
  }

  /** The audit recorder, when the server audits: records dropped so far, the first failure. */
  get audit(): ServerAuditState | undefined {
    return this.#audit;
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
  handle<M extends MethodName<S>>(method: M, handler: Handler<S, M>): this;
  /**
   * Register the handler of `method` with Standard Schemas (zod, valibot, arktype, ...): `params`
   * is validated before the handler runs, which gets the schema's output (its type inferred);
   * invalid params reach the caller as SIPC_ERR_INVALID_ARGUMENT with the issues' paths and
   * messages in `details.data.issues` (never the value). For a request that streams its input
   * the params schema describes one item and checks each as the handler pulls it (the first
   * invalid one ends the call with that error, paths prefixed by the item's index). `result`, if
   * given, validates a unary result, or each item of a stream result, before it is sent (a failure
   * is this server's bug: SIPC_ERR_HANDLER to the caller, the issues in a `handlerError`). The
   * params schema must accept every value (item) the service type allows, and the result schema
   * must produce the service's result (item) type.
   */
  handle<
    M extends MethodName<S>,
    P extends StandardSchemaV1<any, any> | undefined = undefined,
    R extends StandardSchemaV1<any, SchemaResultOf<S, M>> | undefined = undefined,
  >(
    method: M,
    schemas: MethodSchemas<P & ParamsSchemaCheck<S, M, P>, R>,
    handler: SchemaHandler<S, M, P, R>,
  ): this;
  handle(method: string, schemasOrHandler: MethodSchemas | AnyHandler, handler?: AnyHandler): this {
    if (typeof method !== 'string' || method.length === 0 || isReservedMethod(method))
      throw createError(
        'SIPC_ERR_INVALID_ARGUMENT',
        `Method names are non-empty and must not start with ${RESERVED_METHOD_PREFIX}`,
      );
    if (this.#handlers.has(method))
      throw createError('SIPC_ERR_INVALID_ARGUMENT', `A handler for ${method} is already registered`);
    let run: AnyHandler;
    if (typeof schemasOrHandler === 'function') run = schemasOrHandler;
    else {
      assertMethodSchemas(method, schemasOrHandler);
      if (typeof handler !== 'function')
        throw createError('SIPC_ERR_INVALID_ARGUMENT', `The handler of ${method} must be a function`);
      run = validatingHandler(method, schemasOrHandler, handler);
    }
    this.#handlers.set(method, run);
    return this;
  }

  /**
   * Receive the events peers publish on topics matching `pattern` (a topic or a wildcard like
   * `files.*`, typed by the topics it can match; a peer's event needs `publish` on its topic in
   * the policy); returns the function that removes the listener. A listener that throws does not
   * stop the others: its exception is emitted as `error`, or rethrown without an `error` listener.
   */
  subscribe<P extends string>(
    pattern: P & PatternCheck<E, P>,
    listener: EventListener<EventPayloadOf<E, P>>,
  ): () => void;
  subscribe(pattern: string, listener: EventListener<any>): () => void {
    return this.#events.add(
      pattern,
      guardListener(listener, (err) => reportListenerError(this, err)),
    );
  }

  /**
   * Send an event to every peer subscribed to `topic` (encoded once). Never waits for a peer's
   * transport: the event is queued for each subscriber within its budget and dropped for any
   * subscriber over it (see `maxQueuedEventBytes`, `eventOverflow`); resolves at once with the
   * counts. A dropped event is never retried.
   */
  async publish<T extends Extract<keyof E, string>>(
    topic: T,
    payload: PublishPayload<E, T>,
  ): Promise<PublishResult> {
    if (!traced(tracing.eventPublish)) return this.#publish(topic, payload);
    const message: EventMessage = {
      v: 1,
      channelId: undefined,
      peer: undefined,
      topic,
      queued: undefined,
      dropped: undefined,
      code: undefined,
    };
    // A throw (a payload msgpack cannot carry) is finished by runTraced, then rejects the call.
    const result = runTraced(tracing.eventPublish, message, () => this.#publish(topic, payload));
    message.queued = result.queued;
    message.dropped = result.dropped;
    finishTraced(tracing.eventPublish, message);
    return result;
  }

  /** publish() itself: synchronous (the result is known when the event is queued for each peer). */
  #publish(topic: string, payload: unknown): PublishResult {
    const bytes = encodeEnvelope({ k: Kind.Event, m: topic, p: payload });
    let queued = 0;
    let dropped = 0;
    for (const peer of this.#peers) {
      if (!peer.wants(topic)) continue;
      const outcome = peer.queueEvent(bytes);
      if (outcome === 'queued') queued++;
      else if (outcome === 'over') {
        dropped++;
        this.#overflow(peer, topic, bytes.byteLength);
      }
    }
    return { queued, dropped };
  }

  #overflow(peer: RpcPeer, topic: string, bytes: number): void {
    const action = this.#options.eventOverflow ?? 'drop';
    const queuedBytes = peer.queuedEventBytes;
    if (this.listenerCount('eventDropped') > 0)
      this.emit('eventDropped', {
        peerId: peer.peerId,
        topic,
        bytes,
        queuedBytes,
        dropped: peer.droppedEvents,
        action,
        at: Date.now(),
      });
    if (action === 'disconnect')
      void peer.close(
        createError(
          'SIPC_ERR_BUSY',
          `The subscriber fell behind: ${queuedBytes} bytes of events queued (maxQueuedEventBytes ${this.#options.maxQueuedEventBytes ?? DEFAULT_MAX_QUEUED_EVENT_BYTES})`,
        ),
      );
  }

  /**
   * Replace the policy (a configuration reload): channels served from now on, and every live one
   * from its next request, event or subscription, are authorized by `policy`; each live peer's
   * roles are given again, and the subscriptions a peer may no longer hold are dropped at once.
   * With an audit log, recorded as `policy.update` (docs/audit.md). Returns what it changed.
   */
  setPolicy(policy: Policy): PolicyUpdate {
    if (!(policy instanceof Policy))
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'setPolicy takes a Policy (createPolicy)');
    this.#policy = policy;
    let droppedSubscriptions = 0;
    for (const peer of this.#peers) droppedSubscriptions += peer.setPolicy(policy).length;
    const update: PolicyUpdate = { channels: this.#peers.size, droppedSubscriptions };
    this.#audit?.record('policy.update', { ...update });
    return update;
  }

  /**
   * A snapshot of every live channel (docs/observability.md, "Live introspection"): per channel
   * the peer's fingerprint and roles, the transport, protocol version, when it opened, the peer's
   * requests started / ok / failed, those running now, the bytes queued for its transport and
   * when its last request arrived. Versioned (`v`, {@link STATS_VERSION}); never a payload,
   * a parameter, a result or a key. The `$stats` built-in answers the same, to a peer the policy
   * grants `$stats` by its exact name.
   */
  stats(): ServerStats {
    const channels = [];
    for (const peer of this.#peers) channels.push(peer.stats());
    return { v: STATS_VERSION, at: Date.now(), channels };
  }

  /** The built-ins of a channel of a server that does not audit: `$stats`. */
  readonly #builtins: ReadonlyMap<string, Builtin> = new Map([[STATS, () => this.stats()]]);

  /** Serve one secure channel. */
  attach(channel: RpcChannel): RpcPeer {
    const audit = this.#audit;
    // Fail closed: a server that must audit and cannot takes no new channel.
    if (audit?.refusing === true) void channel.close(auditRefusal()).catch(() => {});
    const peer = new RpcPeer(channel, {
      handlers: this.#handlers,
      events: this.#events,
      policy: this.#policy,
      idempotency: this.#idempotency,
      maxIncoming: this.#options.maxIncoming,
      maxInFlight: this.#options.maxInFlight,
      maxQueuedReplyBytes: this.#options.maxQueuedReplyBytes,
      maxQueuedEventBytes: this.#options.maxQueuedEventBytes,
      wantsDecisions: () =>
        this.listenerCount('decision') > 0 ||
        diagnostics.policyDecision.hasSubscribers ||
        audit !== undefined,
      onDecision: (d) => {
        audit?.decision(channel.id, d);
        if (diagnostics.policyDecision.hasSubscribers) publishDecision(channel.id, d);
        if (this.listenerCount('decision') === 0) return;
        try {
          this.emit('decision', d);
        } catch (err) {
          reportListenerError(this, err);
        }
      },
      onHandlerError: (f) => {
        if (this.listenerCount('handlerError') === 0) return;
        try {
          this.emit('handlerError', f);
        } catch (err) {
          reportListenerError(this, err);
        }
      },
      onError: (err) => {
        if (this.listenerCount('error') > 0) this.emit('error', err);
      },
      builtins:
        audit === undefined ? this.#builtins : new Map([...this.#builtins, ...audit.witnessBuiltins()]),
      onCall: audit === undefined ? undefined : (c) => audit.call(c),
      auditGate: audit === undefined ? undefined : () => audit.gate(),
    });
    if (peer.closed) return peer;
    if (audit !== undefined) recordChannel(audit, channel, peer);
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
    this.#onChannel.set(source, onChannel);
    this.#sources.add(source);
    return this;
  }

  /**
   * Stop listening and close every peer session. With `drainMs` (default 0: close at once), drain
   * gracefully first (docs/protocol.md, "Kind 13, going away"): channels that arrive from now on
   * are closed at once; each peer on a version-3 channel gets kind 13 naming the highest of its
   * requests dispatched, and later ones are answered SIPC_ERR_UNAVAILABLE (SIPC_ERR_BUSY below
   * version 3); each channel closes once its running requests are answered, or `drainMs` after
   * the call (then their handlers' signals fire with SIPC_ERR_CONNECTION_CLOSED). The listeners
   * close after the channels. Resolves once every channel is closed. `drainMs` must be an
   * integer from 0 to 2^31-1, else SIPC_ERR_INVALID_ARGUMENT (nothing is closed).
   */
  async close(options: ServerCloseOptions = {}): Promise<void> {
    const drainMs = options.drainMs ?? 0;
    if (!(Number.isSafeInteger(drainMs) && drainMs >= 0 && drainMs <= MAX_TIMER_MS))
      throw createError(
        'SIPC_ERR_INVALID_ARGUMENT',
        'drainMs must be an integer from 0 to 2^31-1 milliseconds',
      );
    const sources = [...this.#sources];
    this.#sources.clear();
    if (drainMs > 0) {
      // Stop taking channels at once; a listener's close would also close the draining ones.
      for (const [source, onChannel] of this.#onChannel) {
        source.off('channel', onChannel);
        source.on('channel', closeAtOnce);
      }
      await Promise.allSettled([...this.#peers].map((p) => p.drain(drainMs)));
    }
    this.#onChannel.clear();
    await Promise.allSettled(sources.map((s) => s.close()));
    await Promise.allSettled([...this.#peers].map((p) => p.close()));
  }

  /** `await using server = await serve(...)`: stops listening and closes every session. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Create an RPC server typed by a service interface. */
export function createServer<S extends object = ServiceDefinition, E extends object = EventMap>(
  options: RpcServerOptions = {},
): RpcServer<S, E> {
  return new RpcServer<S, E>(options);
}
