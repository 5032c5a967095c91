/**
 * secure-ipc → OpenTelemetry, from its diagnostics and tracing channels (docs/observability.md):
 * no patching, no wrapper around the library's objects. Spans for requests (CLIENT / SERVER) and
 * events (PRODUCER / CONSUMER); metrics for calls, connections, handshakes, policy decisions,
 * retries, breakers and outboxes. Nothing secure-ipc publishes carries a payload, so nothing here
 * can; every metric label comes from a bounded set (codes, roles, reasons) or is capped.
 */
import type { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe, tracingChannel, unsubscribe } from 'node:diagnostics_channel';
import { performance } from 'node:perf_hooks';
import {
  type Attributes,
  type Context,
  context,
  createTraceState,
  type MeterProvider,
  metrics,
  ROOT_CONTEXT,
  type Span,
  type SpanContext,
  SpanKind,
  SpanStatusCode,
  type TracerProvider,
  trace,
} from '@opentelemetry/api';
import type { LoggerProvider } from '@opentelemetry/api-logs';
import {
  type AuditAppendMessage,
  auditFieldText,
  auditSeverity,
  type BreakerStateMessage,
  type ChannelCloseMessage,
  type ChannelOpenMessage,
  type ClientRequestMessage,
  DIAGNOSTICS_CHANNELS,
  type EventMessage,
  type HandshakeMessage,
  type OutboxMessage,
  type PolicyDecisionMessage,
  type RetryMessage,
  type ServerRequestMessage,
  TRACING_CHANNELS,
} from '@secure-ipc/core';
import { busMetrics } from './bus.js';
import {
  ATTR_ERROR_TYPE,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_SYSTEM,
  ATTR_RPC_METHOD,
  ATTR_RPC_METHOD_ORIGINAL,
  ATTR_RPC_RESPONSE_STATUS_CODE,
  ATTR_RPC_SYSTEM_NAME,
  METRIC_RPC_CLIENT_CALL_DURATION,
  METRIC_RPC_SERVER_CALL_DURATION,
  OTHER,
  RPC_SYSTEM,
} from './semconv.js';

/** The instrumentation's name and version, as its tracer and meter report them. */
export const INSTRUMENTATION_NAME = '@secure-ipc/otel';
/** The version of this package. */
export const INSTRUMENTATION_VERSION = '0.1.0';

/**
 * Bucket boundaries (seconds) of every call and handshake duration: 10 µs to 10 s. OpenTelemetry's
 * default starts at 5 ms, and a secure-ipc round trip is about 30-100 µs.
 */
export const CALL_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.00001, 0.000025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
  0.5, 1, 2.5, 5, 10,
]);

/** Bucket boundaries (seconds) of connection durations: 10 ms to 1 day. */
export const CONNECTION_DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.01, 0.1, 1, 10, 60, 300, 900, 3600, 14_400, 86_400,
]);

/** Default of `maxMethods`. */
export const DEFAULT_MAX_METHODS = 256;
/** The most a `peerLabel.maxPeers` may be. */
export const MAX_PEER_LABELS = 10_000;

/** Options of {@link instrumentSecureIpc}. */
export interface SecureIpcInstrumentationOptions {
  /** Where spans go (default: the global tracer provider). */
  tracerProvider?: TracerProvider;
  /** Where metrics go (default: the global meter provider). */
  meterProvider?: MeterProvider;
  /**
   * The AsyncLocalStorage the context manager reads, bound to a served request's start so the
   * SERVER span is current in its handler (a handler's own calls become its children), and to a
   * received event's, so its CONSUMER span is current in the listeners. Default:
   * the global context manager's, when it is OpenTelemetry's AsyncLocalStorageContextManager;
   * `false`: do not bind (the spans are still made, with the caller as parent).
   */
  contextStorage?: AsyncLocalStorage<Context> | false;
  /**
   * The methods a server serves: `rpc.method` in metrics is one of them or `_OTHER`. Without it,
   * the first `maxMethods` distinct methods answered (not refused as unknown or forbidden) are
   * labels, and the rest `_OTHER`.
   */
  knownMethods?: readonly string[];
  /** Most distinct `rpc.method` values in metrics without `knownMethods` (default 256; 1 to 10,000). */
  maxMethods?: number;
  /**
   * Where audit records go as OpenTelemetry log records (an `@opentelemetry/api-logs`
   * LoggerProvider, e.g. sdk-logs'): every record an audit log in this process writes
   * (docs/audit.md), with its origin, index and leaf hash, so the receiver can ask the local log
   * for an inclusion proof. Without it, none are sent.
   */
  loggerProvider?: LoggerProvider;
  /**
   * Opt in to the peer's key fingerprint as the `secure_ipc.peer` label of call and connection
   * metrics, for the first `maxPeers` distinct peers (1 to 10,000; the rest `_OTHER`). Off by
   * default: one series per peer is what sinks a metrics backend.
   */
  peerLabel?: { maxPeers: number };
}

/** A running instrumentation. */
export interface SecureIpcInstrumentation {
  /** Unsubscribe from every channel and unbind the context storage; spans still open are ended. */
  stop(): void;
}

/** A label from a capped set: the value while fewer than `max` were seen (or it was), else `_OTHER`. */
class CappedLabels {
  readonly #seen = new Set<string>();
  readonly #max: number;

  constructor(max: number) {
    this.#max = max;
  }

  label(value: string): string {
    if (this.#seen.has(value)) return value;
    if (this.#seen.size >= this.#max) return OTHER;
    this.#seen.add(value);
    return value;
  }
}

function cap(name: string, value: unknown, fallback: number, max: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || (value as number) < 1 || (value as number) > max)
    throw new TypeError(`${name} must be an integer from 1 to ${max}`);
  return value as number;
}

/** The AsyncLocalStorage of the global context manager, when it has one (see `contextStorage`). */
function globalContextStorage(): AsyncLocalStorage<Context> | undefined {
  // OpenTelemetry's API has no public accessor yet (opentelemetry-js issue 6088); its
  // AsyncLocalStorageContextManager keeps the storage in `_asyncLocalStorage`.
  const api = context as unknown as { _getContextManager?: () => unknown };
  const manager = api._getContextManager?.() as { _asyncLocalStorage?: unknown } | undefined;
  const storage = manager?._asyncLocalStorage;
  return storage !== undefined && typeof (storage as AsyncLocalStorage<Context>).run === 'function'
    ? (storage as AsyncLocalStorage<Context>)
    : undefined;
}

/** The remote span context of a W3C traceparent core validated (`00-trace-parent-flags`). */
function remoteContext(traceparent: string | undefined, tracestate: string | undefined): Context {
  if (traceparent === undefined) return ROOT_CONTEXT;
  const parts = traceparent.split('-');
  const spanContext: SpanContext = {
    traceId: parts[1]!,
    spanId: parts[2]!,
    traceFlags: Number.parseInt(parts[3]!, 16) & 1,
    isRemote: true,
  };
  if (tracestate !== undefined) spanContext.traceState = createTraceState(tracestate);
  return trace.setSpanContext(ROOT_CONTEXT, spanContext);
}

/** The W3C traceparent of `span` (undefined for a span without a valid context). */
function traceparentOf(span: Span): string | undefined {
  const sc = span.spanContext();
  if (!trace.isSpanContextValid(sc)) return undefined;
  return `00-${sc.traceId}-${sc.spanId}-0${(sc.traceFlags & 1).toString(16)}`;
}

/** An audit field as a log attribute: scalars and string arrays as they are, else core's text form. */
function auditValue(value: unknown): string | number | boolean | string[] {
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean') return value;
  if (Array.isArray(value) && value.every((v) => typeof v === 'string')) return value as string[];
  return auditFieldText(value);
}

/** A request span's attributes at its start (both sides). */
function rpcSpanAttributes(m: ClientRequestMessage | ServerRequestMessage): Attributes {
  const attributes: Attributes = {
    [ATTR_RPC_SYSTEM_NAME]: RPC_SYSTEM,
    [ATTR_RPC_METHOD]: m.method,
    'secure_ipc.peer': m.peer,
  };
  if (m.channelId !== undefined) attributes['secure_ipc.channel_id'] = m.channelId;
  if (m.attempt > 1) attributes['secure_ipc.attempt'] = m.attempt;
  return attributes;
}

/** A call duration's attributes: system, method label, status code, and error.type on a failure. */
function callAttributes(method: string, code: string): Attributes {
  const attributes: Attributes = {
    [ATTR_RPC_SYSTEM_NAME]: RPC_SYSTEM,
    [ATTR_RPC_METHOD]: method,
    [ATTR_RPC_RESPONSE_STATUS_CODE]: code,
  };
  if (code !== 'OK') attributes[ATTR_ERROR_TYPE] = code;
  return attributes;
}

interface Open {
  readonly span: Span;
  readonly started: number;
}

/**
 * Subscribe OpenTelemetry to secure-ipc's channels in this process. Throws TypeError on a bad
 * option. Call once per process (each call subscribes again: spans would be made twice).
 */
export function instrumentSecureIpc(options: SecureIpcInstrumentationOptions = {}): SecureIpcInstrumentation {
  const maxMethods = cap('maxMethods', options.maxMethods, DEFAULT_MAX_METHODS, MAX_PEER_LABELS);
  const peers =
    options.peerLabel === undefined
      ? undefined
      : new CappedLabels(cap('peerLabel.maxPeers', options.peerLabel.maxPeers, 0, MAX_PEER_LABELS));
  const known = options.knownMethods === undefined ? undefined : new Set(options.knownMethods);
  const clientMethods = new CappedLabels(maxMethods);
  const serverMethods = new CappedLabels(maxMethods);
  const breakerNames = new CappedLabels(maxMethods);
  const outboxDirs = new CappedLabels(maxMethods);
  const busMethods = new CappedLabels(maxMethods);

  const tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(
    INSTRUMENTATION_NAME,
    INSTRUMENTATION_VERSION,
  );
  const meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(
    INSTRUMENTATION_NAME,
    INSTRUMENTATION_VERSION,
  );
  const seconds = (name: string, description: string, buckets: readonly number[]) =>
    meter.createHistogram(name, {
      description,
      unit: 's',
      advice: { explicitBucketBoundaries: [...buckets] },
    });
  const clientDuration = seconds(
    METRIC_RPC_CLIENT_CALL_DURATION,
    'Duration of requests this process made, until the answer (or the end of a streamed one)',
    CALL_DURATION_BUCKETS,
  );
  const serverDuration = seconds(
    METRIC_RPC_SERVER_CALL_DURATION,
    'Duration of requests this process served, from arrival to the answer handed to the channel',
    CALL_DURATION_BUCKETS,
  );
  const handshakeDuration = seconds(
    'secure_ipc.handshake.duration',
    'Duration of handshakes, by outcome',
    CALL_DURATION_BUCKETS,
  );
  const connectionDuration = seconds(
    'secure_ipc.connection.duration',
    'How long channels were open, by close reason',
    CONNECTION_DURATION_BUCKETS,
  );
  const activeConnections = meter.createUpDownCounter('secure_ipc.connection.active', {
    description: 'Channels open now',
    unit: '{connection}',
  });
  const decisions = meter.createCounter('secure_ipc.policy.decisions', {
    description: 'Authorizations a server made, by action and verdict',
    unit: '{decision}',
  });
  const retries = meter.createCounter('secure_ipc.client.retries', {
    description: 'Calls a reconnecting client sent again',
    unit: '{retry}',
  });
  const sentEvents = meter.createCounter('messaging.client.sent.messages', {
    description: 'Events sent (a server publish counts once)',
    unit: '{message}',
  });
  const breakerStates = new Map<string, number>();
  const outboxDepths = new Map<string, number>();
  const breakerGauge = meter.createObservableGauge('secure_ipc.breaker.state', {
    description: 'Circuit breaker state: 0 closed, 1 half-open, 2 open',
  });
  const outboxGauge = meter.createObservableGauge('secure_ipc.outbox.depth', {
    description: 'Entries queued in an outbox',
    unit: '{entry}',
  });
  const observeBreakers = (result: { observe(value: number, attributes: Attributes): void }) => {
    for (const [name, state] of breakerStates) result.observe(state, { 'secure_ipc.breaker.name': name });
  };
  const observeOutboxes = (result: { observe(value: number, attributes: Attributes): void }) => {
    for (const [dir, depth] of outboxDepths) result.observe(depth, { 'secure_ipc.outbox.dir': dir });
  };
  // The open channels' soonest credential expiry, per side: a certificate about to lapse (the
  // channel closes then) shows here before it does. Bounded: one series per role.
  const expiryGauge = meter.createObservableGauge('secure_ipc.peer.credential.time_to_expiry', {
    description: "Seconds until the soonest expiry of an open channel's peer certificate",
    unit: 's',
  });
  const observeExpiry = (result: { observe(value: number, attributes: Attributes): void }) => {
    const soonest = new Map<string, number>();
    for (const { role, expiresAt } of roles.values()) {
      if (expiresAt === undefined) continue;
      const was = soonest.get(role);
      if (was === undefined || expiresAt < was) soonest.set(role, expiresAt);
    }
    const now = Date.now();
    for (const [role, at] of soonest) result.observe((at - now) / 1000, { 'secure_ipc.role': role });
  };
  breakerGauge.addCallback(observeBreakers);
  outboxGauge.addCallback(observeOutboxes);
  expiryGauge.addCallback(observeExpiry);

  const withPeer = (attributes: Attributes, peer: string | undefined): Attributes => {
    if (peers !== undefined && peer !== undefined) attributes['secure_ipc.peer'] = peers.label(peer);
    return attributes;
  };
  const open = new WeakMap<object, Open>();
  /** Every span not ended yet, so stop() can end them. */
  const live = new Set<Span>();
  const begin = (message: object, span: Span): Open => {
    const state = { span, started: performance.now() };
    open.set(message, state);
    live.add(span);
    return state;
  };
  const end = (message: object, code: string | undefined): number | undefined => {
    const state = open.get(message);
    if (state === undefined) return undefined;
    open.delete(message);
    live.delete(state.span);
    const { span } = state;
    const failed = code !== 'OK';
    if (failed) {
      span.setAttribute(ATTR_ERROR_TYPE, code ?? 'SIPC_ERR_INTERNAL');
      span.setStatus({ code: SpanStatusCode.ERROR });
    }
    span.end();
    return (performance.now() - state.started) / 1000;
  };

  // Requests made: a CLIENT span, child of the caller's context (or of the traceparent it passed).
  const clientTc = tracingChannel<ClientRequestMessage>(TRACING_CHANNELS.clientRequest);
  const client = {
    start(m: ClientRequestMessage) {
      const parent =
        m.traceparent === undefined ? context.active() : remoteContext(m.traceparent, m.tracestate);
      const span = tracer.startSpan(
        m.method,
        {
          kind: SpanKind.CLIENT,
          attributes: rpcSpanAttributes(m),
        },
        parent,
      );
      begin(m, span);
      const traceparent = traceparentOf(span);
      if (traceparent !== undefined) {
        m.traceparent = traceparent;
        m.tracestate = span.spanContext().traceState?.serialize() || undefined;
      }
    },
    end() {},
    asyncStart() {},
    error() {},
    asyncEnd(m: ClientRequestMessage) {
      const state = open.get(m);
      state?.span.setAttribute(ATTR_RPC_RESPONSE_STATUS_CODE, m.code ?? 'SIPC_ERR_INTERNAL');
      const duration = end(m, m.code);
      if (duration === undefined) return;
      const attributes = callAttributes(clientMethods.label(m.method), m.code ?? 'SIPC_ERR_INTERNAL');
      clientDuration.record(duration, withPeer(attributes, m.peer));
    },
  };

  // Requests served: a SERVER span, child of the caller's traceparent; current in the handler.
  const serverTc = tracingChannel<ServerRequestMessage>(TRACING_CHANNELS.serverRequest);
  const serverSpan = (m: ServerRequestMessage): Open =>
    open.get(m) ??
    begin(
      m,
      tracer.startSpan(
        m.method,
        {
          kind: SpanKind.SERVER,
          attributes: rpcSpanAttributes(m),
        },
        remoteContext(m.traceparent, m.tracestate),
      ),
    );
  const storage =
    options.contextStorage === false ? undefined : (options.contextStorage ?? globalContextStorage());
  const bindTransform = (m: ServerRequestMessage): Context =>
    trace.setSpan(remoteContext(m.traceparent, m.tracestate), serverSpan(m).span);
  const bindEvent = (m: EventMessage): Context => trace.setSpan(ROOT_CONTEXT, eventSpan(m, 'process').span);
  const server = {
    start(m: ServerRequestMessage) {
      serverSpan(m);
    },
    end() {},
    asyncStart() {},
    error() {},
    asyncEnd(m: ServerRequestMessage) {
      const code = m.code ?? 'SIPC_ERR_INTERNAL';
      // A method the server does not have, or would not reveal, is not one it knows (semantic
      // conventions: `_OTHER`, the name the peer sent kept in rpc.method_original on the span).
      const unknown =
        code === 'SIPC_ERR_NO_SUCH_METHOD' ||
        code === 'SIPC_ERR_FORBIDDEN' ||
        (known !== undefined && !known.has(m.method));
      const method = unknown ? OTHER : serverMethods.label(m.method);
      const state = open.get(m);
      if (state !== undefined) {
        state.span.setAttribute(ATTR_RPC_RESPONSE_STATUS_CODE, code);
        if (method === OTHER) {
          state.span.setAttribute(ATTR_RPC_METHOD, OTHER);
          state.span.setAttribute(ATTR_RPC_METHOD_ORIGINAL, m.method);
          state.span.updateName(RPC_SYSTEM);
        }
      }
      const duration = end(m, code);
      if (duration === undefined) return;
      serverDuration.record(duration, withPeer(callAttributes(method, code), m.peer));
    },
  };

  // Events: PRODUCER spans for what is sent, CONSUMER spans (current in the listeners) for what arrives.
  const eventSpan = (m: EventMessage, operation: 'send' | 'process'): Open =>
    open.get(m) ??
    begin(
      m,
      tracer.startSpan(`${operation} ${m.topic}`, {
        kind: operation === 'send' ? SpanKind.PRODUCER : SpanKind.CONSUMER,
        attributes: {
          [ATTR_MESSAGING_SYSTEM]: RPC_SYSTEM,
          [ATTR_MESSAGING_OPERATION_NAME]: operation,
          [ATTR_MESSAGING_OPERATION_TYPE]: operation,
          [ATTR_MESSAGING_DESTINATION_NAME]: m.topic,
          ...(m.peer === undefined ? {} : { 'secure_ipc.peer': m.peer }),
        },
      }),
    );
  const publishTc = tracingChannel<EventMessage>(TRACING_CHANNELS.eventPublish);
  const receiveTc = tracingChannel<EventMessage>(TRACING_CHANNELS.eventReceive);
  const published = {
    start: (m: EventMessage) => eventSpan(m, 'send'),
    end() {},
    asyncStart() {},
    error() {},
    asyncEnd(m: EventMessage) {
      const state = open.get(m);
      if (m.queued !== undefined) state?.span.setAttribute('secure_ipc.event.queued', m.queued);
      if (m.dropped !== undefined) state?.span.setAttribute('secure_ipc.event.dropped', m.dropped);
      end(m, m.code);
      const attributes: Attributes = {
        [ATTR_MESSAGING_SYSTEM]: RPC_SYSTEM,
        [ATTR_MESSAGING_OPERATION_NAME]: 'send',
      };
      if (m.code !== 'OK') attributes[ATTR_ERROR_TYPE] = m.code ?? 'SIPC_ERR_INTERNAL';
      sentEvents.add(1, attributes);
    },
  };
  const received = {
    start: (m: EventMessage) => eventSpan(m, 'process'),
    end() {},
    asyncStart() {},
    error() {},
    asyncEnd: (m: EventMessage) => end(m, m.code),
  };

  // Handshakes: duration by role and outcome (the code: a bounded set).
  const handshakeTc = tracingChannel<HandshakeMessage>(TRACING_CHANNELS.handshake);
  const handshakeStarts = new WeakMap<object, number>();
  const handshakes = {
    start: (m: HandshakeMessage) => handshakeStarts.set(m, performance.now()),
    end() {},
    asyncStart() {},
    error() {},
    asyncEnd(m: HandshakeMessage) {
      const started = handshakeStarts.get(m);
      if (started === undefined) return;
      handshakeStarts.delete(m);
      handshakeDuration.record((performance.now() - started) / 1000, {
        'secure_ipc.role': m.role,
        'secure_ipc.handshake.outcome': m.code ?? 'SIPC_ERR_INTERNAL',
      });
    },
  };

  // Connections: the open ones by role (the close message has no role: kept from the open).
  const roles = new Map<number, { role: string; peer: string; expiresAt: number | undefined }>();
  const onOpen = (raw: unknown) => {
    const m = raw as ChannelOpenMessage;
    roles.set(m.channelId, { role: m.role, peer: m.peer, expiresAt: m.expiresAt });
    activeConnections.add(1, withPeer({ 'secure_ipc.role': m.role }, m.peer));
  };
  const onClose = (raw: unknown) => {
    const m = raw as ChannelCloseMessage;
    const opened = roles.get(m.channelId);
    if (opened === undefined) return; // opened before the instrumentation started
    roles.delete(m.channelId);
    activeConnections.add(-1, withPeer({ 'secure_ipc.role': opened.role }, opened.peer));
    connectionDuration.record(
      m.durationMs / 1000,
      withPeer({ 'secure_ipc.role': opened.role, 'secure_ipc.close.reason': m.reason }, opened.peer),
    );
  };
  const onDecision = (raw: unknown) => {
    const m = raw as PolicyDecisionMessage;
    decisions.add(1, { 'secure_ipc.policy.action': m.action, 'secure_ipc.policy.allowed': m.allowed });
  };
  const onRetry = (raw: unknown) => {
    const m = raw as RetryMessage;
    retries.add(1, {
      [ATTR_RPC_METHOD]: clientMethods.label(m.method),
      [ATTR_ERROR_TYPE]: m.code,
      'secure_ipc.retry.transparent': m.transparent,
    });
  };
  const auditLogger = options.loggerProvider?.getLogger(INSTRUMENTATION_NAME, INSTRUMENTATION_VERSION);
  const onAudit = (raw: unknown) => {
    if (auditLogger === undefined) return;
    const m = raw as AuditAppendMessage;
    const attributes: Attributes = {
      'secure_ipc.audit.origin': m.origin,
      'secure_ipc.audit.index': m.index,
      'secure_ipc.audit.type': m.type,
      'secure_ipc.audit.leaf_hash': Buffer.from(m.leafHash).toString('base64'),
    };
    for (const [key, value] of Object.entries(m.fields))
      attributes[`secure_ipc.audit.f.${key}`] = auditValue(value);
    const warn = auditSeverity(m) === 'warn';
    auditLogger.emit({
      timestamp: m.at,
      severityNumber: warn ? 13 : 9, // WARN, INFO
      severityText: warn ? 'WARN' : 'INFO',
      body: `audit ${m.type}`,
      attributes,
    });
  };
  const STATE = { closed: 0, 'half-open': 1, open: 2 } as Record<string, number>;
  const onBreaker = (raw: unknown) => {
    const m = raw as BreakerStateMessage;
    breakerStates.set(breakerNames.label(m.name ?? ''), STATE[m.to] ?? 0);
  };
  const onOutbox = (raw: unknown) => {
    const m = raw as OutboxMessage;
    outboxDepths.set(outboxDirs.label(m.dir), m.depth);
  };

  if (storage !== undefined) {
    serverTc.start.bindStore(storage as never, bindTransform as never);
    receiveTc.start.bindStore(storage as never, bindEvent as never);
  }
  clientTc.subscribe(client);
  serverTc.subscribe(server);
  publishTc.subscribe(published);
  receiveTc.subscribe(received);
  handshakeTc.subscribe(handshakes);
  const plain: [string, (m: unknown) => void][] = [
    [DIAGNOSTICS_CHANNELS.channelOpen, onOpen],
    [DIAGNOSTICS_CHANNELS.channelClose, onClose],
    [DIAGNOSTICS_CHANNELS.policyDecision, onDecision],
    [DIAGNOSTICS_CHANNELS.retry, onRetry],
    [DIAGNOSTICS_CHANNELS.breakerState, onBreaker],
    [DIAGNOSTICS_CHANNELS.outbox, onOutbox],
    [DIAGNOSTICS_CHANNELS.auditAppend, onAudit],
    [
      DIAGNOSTICS_CHANNELS.bus,
      busMetrics(meter, (m) => (m === '' ? OTHER : busMethods.label(m)), CALL_DURATION_BUCKETS),
    ],
  ];
  for (const [name, fn] of plain) subscribe(name, fn);

  let stopped = false;
  return {
    stop() {
      if (stopped) return;
      stopped = true;
      clientTc.unsubscribe(client);
      serverTc.unsubscribe(server);
      publishTc.unsubscribe(published);
      receiveTc.unsubscribe(received);
      handshakeTc.unsubscribe(handshakes);
      if (storage !== undefined) {
        serverTc.start.unbindStore(storage as never);
        receiveTc.start.unbindStore(storage as never);
      }
      for (const [name, fn] of plain) unsubscribe(name, fn);
      breakerGauge.removeCallback(observeBreakers);
      outboxGauge.removeCallback(observeOutboxes);
      expiryGauge.removeCallback(observeExpiry);
      for (const span of live) span.end();
      live.clear();
    },
  };
}
