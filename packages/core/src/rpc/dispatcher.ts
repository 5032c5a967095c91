/**
 * The dispatcher side of an RPC session: the peer's requests and events.
 *
 *   request ─► authorize ─► look up handler ─► under the limit? ─► run (deadline timer, signal)
 *                                                                    │ idempotency key: the
 *                                                                    │ server's cache runs it once
 *                                                                    ▼
 *                       reply (response / error)  or  stream (items on credit, then end)
 *
 * Every answer goes through #reply, which charges the answers the transport has not accepted yet
 * (bytes + per-message overhead, ./byte-budget.ts): past maxQueuedReplyBytes the peer's requests
 * stop being read until it has read half of them; stream items wait for room in the same budget.
 */
import { randomUUID } from 'node:crypto';
import { MAX_TIMER_MS } from '../constants.js';
import {
  type EventMessage,
  finishTraced,
  runTraced,
  type ServerRequestMessage,
  traced,
  tracing,
} from '../diagnostics/tracing.js';
import { type EncodedEnvelope, encodeEnvelope, encodeEnvelopeSplit } from '../envelope/encode.js';
import {
  type Envelope,
  type EnvelopeHeaders,
  EnvelopeKind as Kind,
  type WireError,
} from '../envelope/types.js';
import { opaqueWireError, ownWireError, publicWireError } from '../envelope/wire-errors.js';
import { createError, isSecureIpcError, type SecureIpcError } from '../errors.js';
import { type AuditedCall, auditRefusal } from './audit.js';
import { ByteBudget, DEFAULT_MAX_QUEUED_REPLY_BYTES, QUEUED_MESSAGE_OVERHEAD } from './byte-budget.js';
import type { EventRouter } from './events.js';
import {
  type IdempotencyCache,
  type IdempotentAnswer,
  type IdempotentOutcome,
  isRefusal,
  requestFingerprint,
} from './idempotency.js';
import { type Builtin, isReservedMethod, PING } from './methods.js';
import type { Policy, PolicyAction, PolicyDecision } from './policy.js';
import { checkedItems, hasInputCheck } from './schema.js';
import type { EventContext, HandlerContext, RequestHeaders } from './service-types.js';
import { DEFAULT_MAX_IN_FLIGHT, noop, type Session } from './session.js';
import { CreditGate, DEFAULT_STREAM_WINDOW, isAsyncIterable, RemoteStream, windowTurn } from './streams.js';

/** A handler as stored (untyped). */
export type AnyHandler = (params: any, context: HandlerContext) => unknown;

/** The `$ping` handler: the payload back, unchanged. */
const echo: AnyHandler = (params) => params;

/** What the dispatcher serves and how it reports. */
export interface DispatcherOptions {
  /** Method → handler (the server's registry); without it only `$ping` is answered. */
  handlers?: ReadonlyMap<string, AnyHandler>;
  /** Where inbound events go. */
  events?: EventRouter;
  /** Authorization; without it every call, event and subscription from the peer is allowed. */
  policy?: Policy;
  /** Shared idempotency window (the server's, so it outlives a connection). */
  idempotency?: IdempotencyCache;
  /** Most of the peer's requests we run at once; beyond it they are refused (default 64). */
  maxIncoming?: number;
  /** Bytes of answers queued for the peer beyond which its reads pause (default 8 MiB). */
  maxQueuedReplyBytes?: number;
  /** Told every authorization decision (who, what, verdict; never a payload). */
  onDecision?: (decision: PolicyDecision) => void;
  /** Told every handler failure that crossed as SIPC_ERR_HANDLER, with its correlation id. */
  onHandlerError?: (failure: HandlerFailure) => void;
  /** Asked before building each decision; false skips it (no listener, no cost). */
  wantsDecisions?: () => boolean;
  /**
   * Told every call after its authorization (the server's audit, ./audit.ts); false refuses it
   * with SIPC_ERR_UNAVAILABLE, not executed (a `required` audit that cannot record).
   */
  onCall?: (call: AuditedCall) => boolean;
  /**
   * Asked before each request starts (the server's audit back-pressure, ./audit.ts): a promise
   * means wait for it, then start; undefined, start now.
   */
  auditGate?: () => Promise<void> | undefined;
  /**
   * The built-ins this end answers itself beyond `$ping` (`$stats`, the audit witness methods):
   * each takes the request's params and returns the answer at once; a SecureIpcError it throws
   * with SIPC_ERR_INVALID_ARGUMENT is answered with its message (written for the peer), anything
   * else as SIPC_ERR_HANDLER. A built-in not here is not a method (SIPC_ERR_NO_SUCH_METHOD once the
   * policy allowed it).
   */
  builtins?: ReadonlyMap<string, Builtin>;
}

/** Who the peer is, as every handler and listener sees it. */
export interface PeerIdentity {
  /** Fingerprint of the peer's static key. */
  readonly peerId: string;
  /** Roles the policy gave the peer. */
  readonly roles: readonly string[];
}

/**
 * A handler failure the peer saw only as SIPC_ERR_HANDLER with `correlationId`: the real error,
 * for the server's own log (never the params).
 */
export interface HandlerFailure {
  /** The id the caller got in its error (`details.correlationId`). */
  readonly correlationId: string;
  /** The method called. */
  readonly method: string;
  /** Fingerprint of the caller's static key. */
  readonly peerId: string;
  /** The channel the request came on (`SecureChannel.id`), when it has one. */
  readonly channelId?: number | undefined;
  /** What the handler threw (or why its result could not be sent). */
  readonly error: unknown;
}

interface Incoming {
  /** The method called (for reporting a failure). */
  method: string;
  controller: AbortController;
  timer: NodeJS.Timeout | undefined;
  gate: CreditGate | undefined;
  /** The request's streamed input (`h.stream`, protocol version 2): the handler's params. */
  input: RemoteStream<unknown> | undefined;
  /** Set once the peer ended the input (kind 10): more input is a protocol violation. */
  inputEnded: boolean;
  /**
   * Set while this call runs a handler under an idempotency key: the execution belongs to the key,
   * not the connection, so a disconnect leaves it running (detached, within the cache's quota).
   */
  detachable: boolean;
  /** Set once detached: ends its accounting (and lifetime timer) in the cache. */
  undetach: (() => void) | undefined;
  answered: boolean;
}

const NO_HEADERS: RequestHeaders = Object.freeze({});

/** The wire's header keys (docs/protocol.md, `h`) as the API names them; only those sent. */
function requestHeaders(h: EnvelopeHeaders): RequestHeaders {
  const headers: { timeoutMs?: number; idempotencyKey?: string; traceparent?: string; tracestate?: string } =
    {};
  if (h.timeout !== undefined) headers.timeoutMs = h.timeout;
  if (h.idem !== undefined) headers.idempotencyKey = h.idem;
  if (h.trace !== undefined) headers.traceparent = h.trace;
  if (h.tracestate !== undefined) headers.tracestate = h.tracestate;
  return headers;
}

/** The outcome of an execution cut short: its signal's reason (always one of our own errors). */
function abortedOutcome(signal: AbortSignal): IdempotentOutcome {
  return { ok: false, error: ownWireError(signal.reason as SecureIpcError), transient: true };
}

/** Resolves with the transient outcome when `signal` fires. */
function whenAborted(signal: AbortSignal): Promise<IdempotentOutcome> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve(abortedOutcome(signal));
    else signal.addEventListener('abort', () => resolve(abortedOutcome(signal)), { once: true });
  });
}

const NOT_EXECUTED: IdempotentOutcome = Object.freeze({
  ok: false,
  error: Object.freeze({
    code: 'SIPC_ERR_UNAVAILABLE',
    message: createError('SIPC_ERR_UNAVAILABLE').message,
  }),
});

/** Runs the peer's requests and routes its events. */
export class Dispatcher {
  readonly #session: Session;
  readonly #identity: PeerIdentity;
  #options: DispatcherOptions;
  readonly #maxIncoming: number;
  /** Requests waiting on the audit gate, and whether the channel closed meanwhile. */
  #waiting = 0;
  #ended = false;
  readonly #incoming = new Map<number, Incoming>();
  #eventContext: EventContext;
  /** Version 3: refusals before dispatch are SIPC_ERR_UNAVAILABLE; `h.attempt` may arrive. */
  readonly #v3: boolean;
  #queuedReplies = 0;
  // Per-channel call counters (./stats.ts), plain integers so the hot path allocates nothing:
  // started when a request arrives (admit), ok / failed when its final answer goes (reply).
  #callsStarted = 0;
  #callsOk = 0;
  #callsFailed = 0;
  #lastCallAt = 0;
  /** Called (in a microtask, after the answer went out) when the last running request ends. */
  #idle: (() => void) | undefined;
  // Created when the first answer has to wait: most connections never queue one, and an idle
  // connection should cost as little heap as possible.
  #budget: ByteBudget | undefined;
  /** The tracing messages of the peer's requests not answered yet; made by the first traced one. */
  #traces: Map<number, ServerRequestMessage> | undefined;

  constructor(session: Session, identity: PeerIdentity, options: DispatcherOptions) {
    this.#session = session;
    this.#identity = identity;
    this.#options = options;
    this.#maxIncoming = options.maxIncoming ?? DEFAULT_MAX_IN_FLIGHT;
    const { channel } = session;
    this.#v3 = (channel.version ?? 1) >= 3;
    this.#eventContext = {
      topic: '',
      remoteStaticKey: channel.remoteStaticKey,
      peerId: identity.peerId,
      roles: identity.roles,
      peer: channel.peer,
    };
  }

  /**
   * Authorize from now on with `policy` (the server's replaced policy); the peer's roles are
   * read again from its identity, which the caller has updated.
   */
  setPolicy(policy: Policy): void {
    this.#options = { ...this.#options, policy };
    this.#eventContext = { ...this.#eventContext, roles: this.#identity.roles };
  }

  /** The peer's requests running now (handlers, streams). */
  get running(): number {
    return this.#incoming.size;
  }

  /** Call `listener` whenever no request of the peer runs any more (undefined: stop); a drain's. */
  onIdle(listener: (() => void) | undefined): void {
    this.#idle = listener;
  }

  /** Answers handed to the channel and not yet accepted by the transport (diagnostics). */
  get queuedReplies(): number {
    return this.#queuedReplies;
  }

  /** What those answers are charged against maxQueuedReplyBytes (bytes + per-message overhead). */
  get queuedReplyBytes(): number {
    return this.#budget?.used ?? 0;
  }

  // A peer that writes requests but never reads the answers would make them pile up: over the
  // budget we stop reading it (its requests wait in its own socket) until it has read half.
  get #answers(): ByteBudget {
    this.#budget ??= new ByteBudget(
      this.#options.maxQueuedReplyBytes ?? DEFAULT_MAX_QUEUED_REPLY_BYTES,
      this.#session.channel,
    );
    return this.#budget;
  }

  /** The peer's requests: started, answered ok, answered with an error (see ./stats.ts). */
  get calls(): { started: number; ok: number; failed: number } {
    return { started: this.#callsStarted, ok: this.#callsOk, failed: this.#callsFailed };
  }

  /** When the peer's last request arrived (ms since the epoch), 0 before the first. */
  get lastCallAt(): number {
    return this.#lastCallAt;
  }

  /** Count a request of the peer as started (one that failed validation too: it is answered). */
  countStarted(): void {
    this.#callsStarted++;
    this.#lastCallAt = Date.now();
  }

  /**
   * Admit request `id` (and count it as started); false (and the channel closed) if the peer
   * reused the id of one in flight.
   */
  admit(id: number): boolean {
    this.countStarted();
    if (!this.#incoming.has(id)) return true;
    this.#violation('The peer reused the id of a request in flight');
    return false;
  }

  #violation(message: string): void {
    const err = createError('SIPC_ERR_PROTOCOL', message);
    this.#session.onError(err);
    void this.#session.channel.close(err);
  }

  /** Decide (and report) whether the peer may do `action` on `what`. */
  authorize(action: PolicyAction, what: string): boolean {
    const { policy, onDecision } = this.#options;
    const { peerId, roles } = this.#identity;
    const allowed = policy === undefined || policy.allows(roles, action, what);
    if (onDecision !== undefined && this.#options.wantsDecisions?.() !== false) {
      try {
        onDecision({ who: peerId, roles, action, what, allowed, at: Date.now() });
      } catch (err) {
        // An audit listener that throws must not take the dispatch (and the channel) down.
        this.#session.onError(err);
      }
    }
    return allowed;
  }

  /**
   * Dispatch request `env` with `dispatch` as a traced operation (`secure-ipc:rpc.server.request`):
   * everything it runs, the handler included, runs inside the stores bound to `start`; the
   * outcome is the answer (see #traceAnswer) or the channel's close.
   */
  traceRequest(env: Envelope, dispatch: () => void): void {
    const { peerId, roles } = this.#identity;
    const message: ServerRequestMessage = {
      v: 1,
      channelId: this.#session.channel.id,
      peer: peerId,
      roles,
      method: env.m!,
      attempt: env.h?.attempt ?? 1,
      traceparent: env.h?.trace,
      tracestate: env.h?.tracestate,
      code: undefined,
    };
    this.#traces ??= new Map();
    this.#traces.set(env.id!, message);
    runTraced(tracing.serverRequest, message, dispatch);
  }

  /** The answer to request `id` is going out: its trace, if any, ends with it. */
  #traceAnswer(id: number, envelope: Envelope): void {
    const message = this.#traces!.get(id);
    if (message === undefined) return;
    this.#traces!.delete(id);
    const code = envelope.k === Kind.Error ? (envelope.e as WireError).code : 'OK';
    finishTraced(tracing.serverRequest, message, undefined, code);
  }

  /**
   * A request for `$ping` or an application method (the subscriptions answer their own). While
   * the audit's backlog gates calls, one without a streamed input waits (in arrival order) and
   * then starts as if it had just come; over `maxIncoming` waiting, it is refused as over the limit.
   */
  onRequest(env: Envelope): void {
    const auditGate = this.#options.auditGate;
    const gate = auditGate === undefined || env.h?.stream === true ? undefined : auditGate();
    if (gate !== undefined) {
      if (this.#waiting >= this.#maxIncoming) {
        this.#overLimit(env.id!);
        return;
      }
      this.#waiting++;
      void gate.then(() => {
        this.#waiting--;
        if (!this.#ended) this.onRequest(env);
      });
      return;
    }
    const id = env.id!;
    const method = env.m!;
    if (method === PING) {
      // `p` arrives as its own bytes (envelope/decode.ts), echoed as they are. With an
      // idempotency key it runs like any method, so a repeat gets the first payload back.
      if (!this.authorize('call', method)) return;
      if (!this.#audited(id, env, method, true)) return;
      if (env.h?.idem === undefined || this.#options.idempotency === undefined)
        this.reply(id, { k: Kind.Response, id, p: env.p });
      else if (this.#incoming.size >= this.#maxIncoming) this.#overLimit(id);
      else this.#run(id, method, echo, env);
      return;
    }
    // Authorize before looking the method up, so a peer cannot probe which methods exist.
    if (!this.authorize('call', method)) {
      this.#audited(id, env, method, false);
      this.replyError(id, 'SIPC_ERR_FORBIDDEN');
      return;
    }
    if (!this.#audited(id, env, method, true)) return;
    const builtin = isReservedMethod(method) ? this.#options.builtins?.get(method) : undefined;
    if (builtin !== undefined) {
      // Answered at once: the idempotency key and deadline do not apply.
      let answer: unknown;
      try {
        answer = builtin(env.p, { peerId: this.#identity.peerId, channelId: this.#session.channel.id });
      } catch (err) {
        if (isSecureIpcError(err) && err.code === 'SIPC_ERR_INVALID_ARGUMENT')
          this.replyError(id, err.code, err.message);
        else this.replyError(id, 'SIPC_ERR_HANDLER');
        return;
      }
      this.reply(id, { k: Kind.Response, id, p: answer }, method);
      return;
    }
    const handler = this.#options.handlers?.get(method);
    if (handler === undefined) {
      this.replyError(id, 'SIPC_ERR_NO_SUCH_METHOD', `No such method: ${method}`);
      return;
    }
    if (this.#incoming.size >= this.#maxIncoming) {
      this.#overLimit(id);
      return;
    }
    if (env.h?.stream === true && env.h.idem !== undefined) {
      this.replyError(
        id,
        'SIPC_ERR_INVALID_ARGUMENT',
        'A request with a streamed input cannot be idempotent',
      );
      return;
    }
    this.#run(id, method, handler, env);
  }

  /**
   * Tell the audit about call `env` (if the server audits); false, and the call refused with
   * SIPC_ERR_UNAVAILABLE (not executed), when an allowed call cannot be recorded.
   */
  #audited(id: number, env: Envelope, method: string, allowed: boolean): boolean {
    const onCall = this.#options.onCall;
    if (onCall === undefined) return true;
    const recorded = onCall({
      channelId: this.#session.channel.id,
      peer: this.#identity.peerId,
      method,
      allowed,
      params: env.p,
      streamed: env.h?.stream === true,
    });
    if (recorded || !allowed) return true;
    this.reply(id, { k: Kind.Error, id, e: ownWireError(auditRefusal()) });
    return false;
  }

  /**
   * Refuse request `id` before dispatch, over the running-requests limit: SIPC_ERR_UNAVAILABLE
   * (not executed) on a version-3 channel, SIPC_ERR_BUSY below (docs/protocol.md, codes table).
   */
  #overLimit(id: number): void {
    if (this.#v3) this.replyError(id, 'SIPC_ERR_UNAVAILABLE');
    else this.replyError(id, 'SIPC_ERR_BUSY', 'Too many requests in flight');
  }

  /** An event from the peer: dropped (and recorded) unless the policy lets it publish on `topic`. */
  onEvent(topic: string, payload: unknown): void {
    if (!traced(tracing.eventReceive)) {
      this.#onEvent(topic, payload);
      return;
    }
    const message: EventMessage = {
      v: 1,
      channelId: this.#session.channel.id,
      peer: this.#identity.peerId,
      topic,
      queued: undefined,
      dropped: undefined,
      code: undefined,
    };
    const allowed = runTraced(tracing.eventReceive, message, () => this.#onEvent(topic, payload));
    finishTraced(tracing.eventReceive, message, undefined, allowed ? 'OK' : 'SIPC_ERR_FORBIDDEN');
  }

  /** Route the peer's event to the listeners; false if the policy dropped it. */
  #onEvent(topic: string, payload: unknown): boolean {
    if (!this.authorize('publish', topic)) return false;
    const router = this.#options.events;
    if (router === undefined) return true;
    const context: EventContext = { ...this.#eventContext, topic };
    router.dispatch(topic, payload, context, (err) => this.#session.onError(err));
    return true;
  }

  /** The peer grants `n` more stream items for its request `id`. */
  onCredit(id: number, n: number): void {
    this.#incoming.get(id)?.gate?.grant(n);
  }

  /** One item of the streamed input of the peer's request `id` (kind 9). */
  onInputItem(id: number, item: unknown): void {
    const call = this.#incoming.get(id);
    if (call === undefined) return; // answered or refused already: the item crossed the answer
    if (call.input === undefined || call.inputEnded)
      this.#violation('The peer sent input items for a request without a streamed input, or after its end');
    // Once the handler stopped reading, items in flight are dropped (push accepts them).
    else if (!call.input.push(item)) this.#violation('The peer sent input items beyond its credit');
  }

  /** The streamed input of the peer's request `id` ended (kind 10). */
  onInputEnd(id: number): void {
    const call = this.#incoming.get(id);
    if (call === undefined) return;
    if (call.input === undefined || call.inputEnded)
      this.#violation('The peer ended an input that a request did not announce, or twice');
    else {
      call.inputEnded = true;
      call.input.end();
    }
  }

  /** The peer cancels its request `id`. */
  onCancel(id: number): void {
    const call = this.#incoming.get(id);
    if (call === undefined) return; // already answered: the cancel crossed our reply
    const err = createError('SIPC_ERR_CANCELLED');
    call.controller.abort(err);
    call.gate?.close();
    this.#finish(id, call, { ok: false, error: ownWireError(err) });
  }

  /** Answer request `id` with an error of `code`. */
  replyError(id: number, code: SecureIpcError['code'], message?: string): void {
    this.reply(id, { k: Kind.Error, id, e: { code, message: message ?? createError(code).message } });
  }

  /**
   * Send one answer to the peer, charged against maxQueuedReplyBytes until the transport takes it;
   * one that cannot be encoded (a handler's result msgpack cannot carry) goes as an opaque error
   * of `method`.
   */
  reply(id: number, envelope: Envelope, method = ''): void {
    if (this.#traces !== undefined) this.#traceAnswer(id, envelope);
    let bytes: EncodedEnvelope;
    let failed = envelope.k === Kind.Error;
    try {
      bytes = encodeEnvelopeSplit(envelope);
    } catch (err) {
      bytes = encodeEnvelope({ k: Kind.Error, id, e: this.#opaque(err, method) });
      failed = true;
    }
    if (failed) this.#callsFailed++;
    else this.#callsOk++;
    const sending = this.#session.send(bytes);
    if (sending === undefined) return; // written at once: nothing queued, nothing charged
    // Charged after the send, which queued it synchronously: over budget, the channel stops
    // reading the peer before the next of its messages is dispatched.
    const cost = bytes.byteLength + QUEUED_MESSAGE_OVERHEAD;
    this.#queuedReplies++;
    this.#answers.charge(cost);
    const sent = () => {
      this.#queuedReplies--;
      this.#answers.release(cost);
    };
    // Not `envelope` itself in the closure: its payload (often a view of the request) would stay
    // alive as long as the answer waits, doubling what a queued answer really holds.
    const wasError = failed;
    sending.then(sent, (err) => {
      sent();
      // Too large for the channel: the caller still gets an answer, as an error.
      if (isSecureIpcError(err, 'SIPC_ERR_MESSAGE_TOO_LARGE') && !wasError) {
        this.#callsOk--;
        this.#callsFailed++;
        this.#session.channel.send(encodeEnvelope({ k: Kind.Error, id, e: ownWireError(err) })).catch(noop);
      }
    });
  }

  #run(id: number, method: string, handler: AnyHandler, env: Envelope): void {
    const wire = env.h;
    const headers = wire === undefined ? NO_HEADERS : requestHeaders(wire);
    const idem = headers.idempotencyKey;
    const call: Incoming = {
      method,
      controller: new AbortController(),
      timer: undefined,
      gate: undefined,
      input: undefined,
      inputEnded: false,
      detachable: false,
      undetach: undefined,
      answered: false,
    };
    this.#incoming.set(id, call);
    // setTimeout cannot wait longer than 2^31-1 ms (it would fire at once): a longer budget is
    // as good as none.
    if (headers.timeoutMs !== undefined && headers.timeoutMs <= MAX_TIMER_MS) {
      call.timer = setTimeout(() => {
        const err = createError('SIPC_ERR_TIMEOUT', 'The request passed its deadline');
        call.controller.abort(err);
        this.#finish(id, call, { ok: false, error: ownWireError(err) });
      }, headers.timeoutMs);
    }
    const { channel } = this.#session;
    const context: HandlerContext = {
      method,
      remoteStaticKey: channel.remoteStaticKey,
      peerId: this.#identity.peerId,
      roles: this.#identity.roles,
      peer: channel.peer,
      channelId: channel.id,
      headers,
      attempt: wire?.attempt ?? 1,
      signal: call.controller.signal,
    };
    const cache = this.#options.idempotency;
    if (cache !== undefined && idem !== undefined) {
      // The closure holds the params only until it runs (at most once, see #runIdempotent), never
      // the envelope: a request waiting for its reply does not keep the request alive.
      let params: unknown = env.p;
      void this.#runIdempotent(cache, idem, id, call, requestFingerprint(method, params), () => {
        const p = params;
        params = undefined;
        return this.#execute(id, handler, p, context, call, true);
      });
      return;
    }
    let run = handler;
    let params: unknown = env.p;
    if (wire?.stream === true) {
      params = this.#input(id, call);
      // A params schema checks each input item as the handler pulls it (docs/protocol.md,
      // "Validation errors"): the first invalid one ends the call.
      if (hasInputCheck(handler)) {
        run = handler.withInput;
        params = checkedItems(params as RemoteStream<unknown>, handler.checkInput, (err) =>
          this.#inputInvalid(id, call, err),
        );
      }
    }
    void this.#execute(id, run, params, context, call, false).then((outcome) => {
      if (outcome !== undefined) this.#finish(id, call, outcome);
    });
  }

  /**
   * The streamed input of request `id`, as the handler's params: credit goes back (kind 11) as the
   * handler reads; a handler that stops reading sends kind 12; cancel, deadline and disconnect
   * end the handler's iteration with the signal's reason.
   */
  #input(id: number, call: Incoming): RemoteStream<unknown> {
    const send = (envelope: Envelope) => {
      if (this.#session.closeError === undefined && this.#incoming.get(id) === call)
        this.#session.send(encodeEnvelope(envelope))?.catch(noop);
    };
    const input = new RemoteStream<unknown>(
      DEFAULT_STREAM_WINDOW,
      (n) => send({ k: Kind.InputCredit, id, p: n }),
      () => send({ k: Kind.InputStop, id }),
    );
    call.input = input;
    const { signal } = call.controller;
    signal.addEventListener('abort', () => input.fail(signal.reason, true), { once: true });
    return input;
  }

  /**
   * An input item failed the method's params schema (or the schema threw): the call ends at once
   * with that error (public SIPC_ERR_INVALID_ARGUMENT, or opaque), which ends the input for both
   * ends; the handler's signal fires with it and its iteration throws it.
   */
  #inputInvalid(id: number, call: Incoming, err: unknown): void {
    if (call.answered) return;
    call.controller.abort(err);
    this.#finish(id, call, { ok: false, error: this.#wireError(err, call.method) });
  }

  async #runIdempotent(
    cache: IdempotencyCache,
    key: string,
    id: number,
    call: Incoming,
    fingerprint: Uint8Array,
    execute: () => Promise<IdempotentOutcome | undefined>,
  ): Promise<void> {
    let mine = false;
    const run = () => {
      mine = true;
      call.detachable = true;
      const done = execute().then(
        (o): IdempotentOutcome =>
          o ?? { ok: false, error: { code: 'SIPC_ERR_HANDLER', message: 'No outcome' }, transient: true },
      );
      // The entry settles when the signal fires (cancel, deadline, detached lifetime), whether or
      // not the handler heeds it: a handler that never returns cannot pin the peer's quota.
      return Promise.race([done, whenAborted(call.controller.signal)]);
    };
    const { peerId } = this.#identity;
    let outcome = this.#answered(await cache.run(peerId, key, fingerprint, run));
    // The first execution was cut short by its own caller: a waiting repeat runs it again.
    while (!mine && !outcome.ok && outcome.transient === true && !call.controller.signal.aborted)
      outcome = this.#answered(await cache.run(peerId, key, fingerprint, run));
    call.undetach?.();
    this.#finish(id, call, outcome);
  }

  /**
   * The cache's answer as the peer gets it. A refusal (nothing ran, nothing kept) is certified
   * not executed on a version-3 channel: SIPC_ERR_UNAVAILABLE (docs/protocol.md); below, it stays
   * SIPC_ERR_BUSY. An outcome, a handler's BUSY replayed too, goes as it is.
   */
  #answered(answer: IdempotentAnswer): IdempotentOutcome {
    return this.#v3 && isRefusal(answer) ? NOT_EXECUTED : answer;
  }

  /**
   * Run a handler; a stream result is streamed here and yields no outcome. The handler is called
   * here and awaited in #settle, which never sees the params: an async function keeps every
   * argument alive until it returns, so awaiting here would pin the decoded request (a large one
   * too) until the reply was written. The handler keeps what it needs.
   */
  #execute(
    id: number,
    handler: AnyHandler,
    params: unknown,
    context: HandlerContext,
    call: Incoming,
    idempotent: boolean,
  ): Promise<IdempotentOutcome | undefined> {
    let result: unknown;
    try {
      result = handler(params, context);
    } catch (err) {
      return Promise.resolve(this.#failed(err, call));
    }
    return this.#settle(id, result, call, idempotent);
  }

  async #settle(
    id: number,
    pending: unknown,
    call: Incoming,
    idempotent: boolean,
  ): Promise<IdempotentOutcome | undefined> {
    try {
      const result = await pending;
      if (isAsyncIterable(result)) {
        if (idempotent) {
          await (result as AsyncGenerator).return?.(undefined);
          return {
            ok: false,
            error: { code: 'SIPC_ERR_INVALID_ARGUMENT', message: 'A stream result cannot be idempotent' },
          };
        }
        await this.#stream(id, call, result);
        return undefined;
      }
      return { ok: true, value: result };
    } catch (err) {
      return this.#failed(err, call);
    }
  }

  /**
   * A handler's failure as an outcome. Cut short by cancel, deadline or disconnect: answered
   * already (or no one to answer), and a repeat under the same key may run again.
   */
  #failed(err: unknown, call: Incoming): IdempotentOutcome {
    const { signal } = call.controller;
    if (signal.aborted) return abortedOutcome(signal);
    return { ok: false, error: this.#wireError(err, call.method) };
  }

  async #stream(id: number, call: Incoming, source: AsyncIterable<unknown>): Promise<void> {
    const gate = new CreditGate(DEFAULT_STREAM_WINDOW);
    call.gate = gate;
    if (call.controller.signal.aborted) gate.close();
    let end: Envelope | undefined;
    try {
      let sent = 0;
      for await (const item of source) {
        const loopTurn = windowTurn(sent++);
        if (loopTurn !== undefined) await loopTurn;
        if (!(await gate.take())) break;
        // Room in the peer's answer budget before encoding: a stream waiting for it holds no
        // encoded item, and streams never queue past the budget (one item over it at most).
        const turn = this.#answers.turn();
        if (turn !== undefined) await turn;
        let cost = 0;
        try {
          if (call.controller.signal.aborted) break;
          const bytes = encodeEnvelope({ k: Kind.StreamItem, id, p: item });
          cost = bytes.byteLength + QUEUED_MESSAGE_OVERHEAD;
          this.#answers.take(cost);
          await this.#session.channel.send(bytes);
        } finally {
          if (cost === 0) this.#answers.pass();
          else this.#answers.release(cost);
        }
      }
      if (!call.controller.signal.aborted) end = { k: Kind.StreamEnd, id };
    } catch (err) {
      if (!call.controller.signal.aborted) end = { k: Kind.Error, id, e: this.#wireError(err, call.method) };
    }
    // Free the slot before answering: over an in-memory transport the answer can reach the
    // caller, free its slot and bring its next request back here before reply() returns.
    this.#release(id, call);
    if (end !== undefined && !call.answered) {
      call.answered = true;
      this.reply(id, end, call.method);
    }
  }

  #finish(id: number, call: Incoming, outcome: IdempotentOutcome): void {
    if (call.answered) return;
    call.answered = true;
    this.#release(id, call); // before the reply, for the reason given in #stream
    if (this.#session.closeError === undefined) {
      if (outcome.ok) this.reply(id, { k: Kind.Response, id, p: outcome.value }, call.method);
      else this.reply(id, { k: Kind.Error, id, e: outcome.error }, call.method);
    }
  }

  /** A handler's failure as the peer may see it: public errors as they are, anything else opaque. */
  #wireError(err: unknown, method: string): WireError {
    return publicWireError(err) ?? this.#opaque(err, method);
  }

  /** SIPC_ERR_HANDLER with a fresh correlation id; the real error is reported locally under it. */
  #opaque(error: unknown, method: string): WireError {
    const correlationId = randomUUID();
    const report = this.#options.onHandlerError;
    if (report !== undefined) {
      try {
        report({
          correlationId,
          method,
          peerId: this.#identity.peerId,
          channelId: this.#session.channel.id,
          error,
        });
      } catch (err) {
        this.#session.onError(err); // a throwing log listener must not take the answer down
      }
    }
    return opaqueWireError(correlationId);
  }

  #release(id: number, call: Incoming): void {
    if (call.timer !== undefined) clearTimeout(call.timer);
    call.gate?.close();
    // Answered: input still buffered is dropped, nothing more is granted or read.
    if (call.input !== undefined && !call.input.done)
      call.input.fail(
        createError('SIPC_ERR_STREAM', 'The request was answered before its input ended'),
        true,
      );
    if (this.#incoming.get(id) === call) this.#incoming.delete(id);
    // Released before its answer is sent (see #stream): the drain looks once the answer is out.
    if (this.#idle !== undefined && this.#incoming.size === 0) queueMicrotask(this.#afterRelease);
  }

  readonly #afterRelease = (): void => {
    if (this.#incoming.size === 0) this.#idle?.();
  };

  /**
   * The channel closed with `err`: running handlers are told, except idempotent executions the
   * cache lets run on detached (its quota and lifetime; docs/limits.md).
   */
  close(err: SecureIpcError): void {
    this.#ended = true;
    this.#budget?.close();
    if (this.#traces !== undefined) {
      // Requests the channel's close left unanswered: their traces end with the close.
      for (const message of this.#traces.values()) finishTraced(tracing.serverRequest, message, err);
      this.#traces.clear();
    }
    const cache = this.#options.idempotency;
    const { peerId } = this.#identity;
    for (const call of this.#incoming.values()) {
      call.gate?.close();
      if (call.detachable && cache !== undefined) {
        call.undetach = cache.detach(peerId, (reason) => call.controller.abort(reason));
        if (call.undetach !== undefined) continue;
      }
      if (call.timer !== undefined) clearTimeout(call.timer);
      call.controller.abort(err);
    }
    this.#incoming.clear();
  }
}
