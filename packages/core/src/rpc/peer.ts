/**
 * The RPC engine on one secure channel. Symmetric: each side can call, answer, send events and
 * stream; the server and client wrappers only decide who registers handlers and who holds the
 * policy. Every incoming envelope is decoded and validated before anything is dispatched, and
 * dispatch is synchronous in arrival order (so a handler is *started* in the order the peer sent
 * its requests and events; see docs/protocol.md for what a handler may assume).
 *
 * Hot-path choices (measured by tools/bench, not asserted): no timer unless a timeout is set, one
 * msgpack encode per envelope, replies sent without awaiting (the transport keeps order), and
 * the policy decision object built only when someone listens for it.
 */
import type { EventEmitter } from 'node:events';
import { kTrySend } from '../channel/secure-channel.js';
import { MAX_TIMER_MS } from '../constants.js';
import { decodeEnvelope } from '../envelope/decode.js';
import { encodeEnvelope } from '../envelope/encode.js';
import {
  type Envelope,
  type EnvelopeHeaders,
  EnvelopeKind as Kind,
  type WireError,
} from '../envelope/types.js';
import { fromWireError, toWireError } from '../envelope/wire-errors.js';
import { createError, isSecureIpcError, type SecureIpcError } from '../errors.js';
import { keyFingerprint } from '../keys/key-pair.js';
import type { PeerInfo } from '../transport/contract.js';
import type { EventRouter } from './events.js';
import { Fifo } from './fifo.js';
import type { IdempotencyCache, IdempotentOutcome } from './idempotency.js';
import {
  compilePatterns,
  type NameMatcher,
  type Policy,
  type PolicyAction,
  type PolicyDecision,
} from './policy.js';
import type { EventContext, HandlerContext, RequestOptions } from './service-types.js';
import { CreditGate, DEFAULT_STREAM_WINDOW, RemoteStream } from './streams.js';

/** The part of a SecureChannel the RPC engine uses (structural, so any channel shape fits). */
export interface RpcChannel extends Pick<EventEmitter, 'on' | 'once' | 'off'> {
  /** The peer's authenticated static key. */
  readonly remoteStaticKey: Uint8Array;
  /** OS facts about the peer. */
  readonly peer: PeerInfo;
  /** Roles the trust step gave the peer. */
  readonly roles: readonly string[];
  /** True once closed. */
  readonly closed: boolean;
  /** Send one message; resolves when the transport accepted it. */
  send(message: Uint8Array, options?: { signal?: AbortSignal }): Promise<void>;
  /** Close (with an error: destroy). */
  close(error?: Error): Promise<void>;
  /** Stop reading from the peer. */
  pause(): void;
  /** Read again. */
  resume(): void;
}

/** A handler as stored (untyped). */
export type AnyHandler = (params: any, context: HandlerContext) => unknown;

/** Options of the engine. */
export interface RpcPeerOptions {
  /** Method → handler (the server's registry); without it only `$ping` is answered. */
  handlers?: ReadonlyMap<string, AnyHandler>;
  /** Where inbound events go. */
  events?: EventRouter;
  /** Authorization; without it every call, event and subscription from the peer is allowed. */
  policy?: Policy;
  /** Shared idempotency window (the server's, so it outlives a connection). */
  idempotency?: IdempotencyCache;
  /** Most of our requests in flight at once; more wait for a slot (default 64). */
  maxInFlight?: number;
  /** Most of the peer's requests we run at once; beyond it they are refused (default 64). */
  maxIncoming?: number;
  /** Most subscription patterns the peer may hold (default 256). */
  maxSubscriptions?: number;
  /** Told every authorization decision (who, what, verdict; never a payload). */
  onDecision?: (decision: PolicyDecision) => void;
  /** Asked before building each decision; false skips it (no listener, no cost). */
  wantsDecisions?: () => boolean;
  /** Told local failures that have no caller to reject: a throwing event listener, a bad peer. */
  onError?: (error: unknown) => void;
}

/** Default per-connection limit of requests in flight. */
export const DEFAULT_MAX_IN_FLIGHT = 64;

/** Queued answers beyond which a peer's requests stop being read (far above any slot limit). */
export const REPLY_HIGH_WATER = 1024;

interface Pending {
  id: number;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  /** Set once the caller has its answer (or gave up): later replies only free the slot. */
  settled: boolean;
  stream: RemoteStream<unknown> | undefined;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
}

interface Incoming {
  controller: AbortController;
  timer: NodeJS.Timeout | undefined;
  gate: CreditGate | undefined;
  /** An idempotent execution belongs to its key, not the connection: a disconnect leaves it running. */
  detached: boolean;
  answered: boolean;
}

/** A request waiting for a slot, or an event waiting behind such requests. */
interface Queued {
  usesSlot: boolean;
  /** Gave up while waiting (abort, timeout): skipped when its turn comes. */
  dropped: boolean;
  start: () => void;
  reject: (err: unknown) => void;
}

const PING = '$ping';
const SUBSCRIBE = '$subscribe';
const UNSUBSCRIBE = '$unsubscribe';
const noop = () => {};

function isAsyncIterable(value: unknown): value is AsyncIterable<unknown> {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as Record<symbol, unknown>)[Symbol.asyncIterator] === 'function'
  );
}

/** One end of an RPC session over a secure channel. */
export class RpcPeer {
  /** The channel underneath. */
  readonly channel: RpcChannel;
  /** Fingerprint of the peer's static key. */
  readonly peerId: string;
  /** Roles the policy gave the peer (empty without a policy). */
  readonly roles: readonly string[];
  readonly #options: RpcPeerOptions;
  readonly #maxInFlight: number;
  readonly #maxIncoming: number;
  readonly #pending = new Map<number, Pending>();
  readonly #incoming = new Map<number, Incoming>();
  readonly #queue = new Fifo<Queued>();
  // Created on the first subscription: most peers never subscribe, and an empty Map with its hash
  // table is ~150 bytes per idle connection end (heap snapshot, 1,000 connections).
  #remoteSubs: Map<string, NameMatcher> | undefined;
  readonly #eventContext: EventContext;
  #nextId = 1;
  #queuedReplies = 0;
  #pausedForReplies = false;
  #closeError: SecureIpcError | undefined;

  /** Attach to `channel`; the peer's roles are computed once, from the channel's identity only. */
  constructor(channel: RpcChannel, options: RpcPeerOptions = {}) {
    this.channel = channel;
    this.#options = options;
    this.#maxInFlight = options.maxInFlight ?? DEFAULT_MAX_IN_FLIGHT;
    this.#maxIncoming = options.maxIncoming ?? DEFAULT_MAX_IN_FLIGHT;
    this.peerId = keyFingerprint(channel.remoteStaticKey);
    this.roles =
      options.policy?.rolesOf({ remoteStaticKey: channel.remoteStaticKey, channelRoles: channel.roles }) ??
      channel.roles;
    this.#eventContext = {
      topic: '',
      remoteStaticKey: channel.remoteStaticKey,
      peerId: this.peerId,
      roles: this.roles,
      peer: channel.peer,
    };
    channel.on('message', (message: Uint8Array) => this.#onMessage(message));
    channel.on('close', (error?: SecureIpcError) => this.#onClose(error));
    if (channel.closed) this.#onClose(undefined);
  }

  /** True once the channel closed. */
  get closed(): boolean {
    return this.#closeError !== undefined;
  }

  /** Our requests in flight (answered slots are freed when the peer's reply arrives). */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Call `method`; resolves with the result, or an AsyncIterable if the peer answers with a stream. */
  request(method: string, params?: unknown, options: RequestOptions = {}): Promise<unknown> {
    const { signal, timeout } = options;
    if (timeout !== undefined && !(Number.isSafeInteger(timeout) && timeout > 0 && timeout <= MAX_TIMER_MS))
      return Promise.reject(
        createError('SIPC_ERR_INVALID_ARGUMENT', 'timeout must be an integer from 1 to 2^31-1 milliseconds'),
      );
    if (this.#closeError !== undefined) return Promise.reject(this.#closeError);
    if (signal?.aborted)
      return Promise.reject(createError('SIPC_ERR_ABORTED', undefined, { cause: signal.reason }));
    const deadline = timeout === undefined ? undefined : Date.now() + timeout;
    return new Promise((resolve, reject) => {
      if (this.#queue.size === 0 && this.#pending.size < this.#maxInFlight)
        return this.#start(method, params, options, deadline, resolve, reject);
      // No slot: wait in line (FIFO with events, so everything leaves in call order).
      let timer: NodeJS.Timeout | undefined;
      const cleanup = () => {
        if (timer !== undefined) clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      const queued: Queued = {
        usesSlot: true,
        dropped: false,
        start: () => {
          cleanup();
          this.#start(method, params, options, deadline, resolve, reject);
        },
        reject: (err) => {
          cleanup();
          reject(err);
        },
      };
      const drop = (err: unknown) => {
        // Left in the line, marked: #pump skips it (removing from the middle would be O(n)).
        queued.dropped = true;
        queued.reject(err);
        this.#pump();
      };
      const onAbort = () => drop(createError('SIPC_ERR_ABORTED', undefined, { cause: signal?.reason }));
      signal?.addEventListener('abort', onAbort, { once: true });
      if (timeout !== undefined)
        timer = setTimeout(
          () => drop(createError('SIPC_ERR_TIMEOUT', `Request timed out after ${timeout} ms`)),
          timeout,
        );
      this.#queue.push(queued);
    });
  }

  #start(
    method: string,
    params: unknown,
    options: RequestOptions,
    deadline: number | undefined,
    resolve: (value: unknown) => void,
    reject: (err: unknown) => void,
  ): void {
    if (this.#closeError !== undefined) {
      reject(this.#closeError);
      return;
    }
    let h: EnvelopeHeaders | undefined;
    if (deadline !== undefined || options.idempotencyKey !== undefined || options.traceparent !== undefined) {
      h = {};
      // The header carries what is left of the caller's budget after any wait for a slot.
      if (deadline !== undefined) h.timeout = Math.max(1, deadline - Date.now());
      if (options.idempotencyKey !== undefined) h.idem = options.idempotencyKey;
      if (options.traceparent !== undefined) h.trace = options.traceparent;
    }
    const id = this.#nextId++;
    let bytes: Uint8Array;
    try {
      bytes = encodeEnvelope({ k: Kind.Request, id, m: method, p: params, h });
    } catch (err) {
      reject(err);
      return;
    }
    const { signal, timeout } = options;
    const pending: Pending = {
      id,
      resolve,
      reject,
      settled: false,
      stream: undefined,
      timer: undefined,
      signal,
      onAbort: undefined,
    };
    this.#pending.set(id, pending);
    if (h?.timeout !== undefined) {
      pending.timer = setTimeout(
        () => this.#giveUp(pending, createError('SIPC_ERR_TIMEOUT', `Request timed out after ${timeout} ms`)),
        h.timeout,
      );
    }
    if (signal !== undefined) {
      pending.onAbort = () =>
        this.#giveUp(pending, createError('SIPC_ERR_ABORTED', undefined, { cause: signal.reason }));
      signal.addEventListener('abort', pending.onAbort, { once: true });
    }
    this.#send(bytes)?.catch((err) => {
      // Not sent (closed, or too large for the channel): nothing to cancel remotely.
      this.#settle(pending);
      this.#free(pending);
      reject(err);
    });
  }

  // The secure channel's internal fast send skips a promise, a closure and a microtask per
  // message when the write is accepted at once; any other RpcChannel goes through send().
  #send(bytes: Uint8Array): Promise<void> | undefined {
    const channel = this.channel as RpcChannel & {
      [kTrySend]?: (m: Uint8Array) => Promise<void> | undefined;
    };
    return channel[kTrySend] !== undefined ? channel[kTrySend](bytes) : channel.send(bytes);
  }

  /** Send a one-way event (after any requests still waiting for a slot, to keep call order). */
  emit(topic: string, payload?: unknown): Promise<void> {
    let bytes: Uint8Array;
    try {
      bytes = encodeEnvelope({ k: Kind.Event, m: topic, p: payload });
    } catch (err) {
      return Promise.reject(err);
    }
    return this.sendEncoded(bytes);
  }

  /** Send an already encoded event envelope (the server encodes a publish once for all peers). */
  sendEncoded(bytes: Uint8Array): Promise<void> {
    if (this.#closeError !== undefined) return Promise.reject(this.#closeError);
    if (this.#queue.size === 0) return this.channel.send(bytes);
    return new Promise((resolve, reject) => {
      this.#queue.push({
        usesSlot: false,
        dropped: false,
        start: () => this.channel.send(bytes).then(resolve, reject),
        reject,
      });
    });
  }

  /** True if the peer subscribed to a pattern that matches `topic`. */
  wants(topic: string): boolean {
    if (this.#remoteSubs === undefined) return false;
    for (const match of this.#remoteSubs.values()) if (match(topic)) return true;
    return false;
  }

  /** Close the channel (with an error: destroy it). */
  close(error?: Error): Promise<void> {
    return this.channel.close(error);
  }

  /** The caller stops waiting: reject now, tell the peer, keep the slot until the peer answers. */
  #giveUp(pending: Pending, err: SecureIpcError): void {
    if (pending.settled) return;
    this.#settle(pending);
    if (pending.stream !== undefined) pending.stream.fail(err, true);
    else pending.reject(err);
    if (this.#closeError === undefined)
      this.channel.send(encodeEnvelope({ k: Kind.Cancel, id: pending.id })).catch(noop);
  }

  #settle(pending: Pending): void {
    pending.settled = true;
    if (pending.timer !== undefined) clearTimeout(pending.timer);
    if (pending.onAbort !== undefined) pending.signal?.removeEventListener('abort', pending.onAbort);
  }

  #free(pending: Pending): void {
    if (this.#pending.get(pending.id) !== pending) return;
    this.#pending.delete(pending.id);
    this.#pump();
  }

  #pump(): void {
    for (let next = this.#queue.peek(); next !== undefined; next = this.#queue.peek()) {
      if (next.dropped) {
        this.#queue.shift();
        continue;
      }
      if (next.usesSlot && this.#pending.size >= this.#maxInFlight) return;
      this.#queue.shift();
      next.start();
    }
  }

  #onMessage(message: Uint8Array): void {
    if (this.#closeError !== undefined) return;
    const decoded = decodeEnvelope(message);
    if (!decoded.ok) {
      this.#onInvalid(decoded.error, decoded.id, decoded.kind);
      return;
    }
    const env = decoded.envelope;
    switch (env.k) {
      case Kind.Request:
        this.#onRequest(env);
        return;
      case Kind.Response:
      case Kind.Error:
      case Kind.StreamItem:
      case Kind.StreamEnd:
        this.#onReply(env);
        return;
      case Kind.Event:
        this.#onEvent(env.m!, env.p);
        return;
      case Kind.Cancel:
        this.#onCancel(env.id!);
        return;
      case Kind.Credit:
        this.#incoming.get(env.id!)?.gate?.grant(env.p as number);
        return;
    }
  }

  #onInvalid(error: SecureIpcError, id: number | undefined, kind: number | undefined): void {
    const isReply =
      kind === Kind.Response || kind === Kind.Error || kind === Kind.StreamItem || kind === Kind.StreamEnd;
    if (id === undefined) {
      // Nothing to answer to: the peer is broken or hostile, and the channel is no longer trusted.
      this.#options.onError?.(error);
      void this.channel.close(error);
      return;
    }
    if (isReply) {
      // A malformed reply to one of our requests: that request fails here, the peer is told to stop.
      const pending = this.#pending.get(id);
      if (pending !== undefined) {
        this.#giveUp(pending, error);
        this.#free(pending);
      }
      return;
    }
    this.#reply(id, { k: Kind.Error, id, e: { code: error.code, message: error.message } });
  }

  #reply(id: number, envelope: Envelope): void {
    let bytes: Uint8Array;
    try {
      bytes = encodeEnvelope(envelope);
    } catch (err) {
      bytes = encodeEnvelope({ k: Kind.Error, id, e: toWireError(err) });
    }
    // A peer that writes requests but never reads the answers would make them pile up here.
    // Past the high-water mark we stop reading its requests until it reads; a compliant peer
    // (at most its slot limit in flight) never gets near it, so two compliant ends cannot
    // deadlock on each other.
    if (++this.#queuedReplies === REPLY_HIGH_WATER && !this.#pausedForReplies) {
      this.#pausedForReplies = true;
      this.channel.pause();
    }
    const sending = this.#send(bytes);
    if (sending === undefined) {
      this.#replySent();
      return;
    }
    sending.then(this.#replySent, (err) => {
      this.#replySent();
      // Too large for the channel: the caller still gets an answer, as an error.
      if (isSecureIpcError(err, 'SIPC_ERR_MESSAGE_TOO_LARGE') && envelope.k !== Kind.Error)
        this.channel.send(encodeEnvelope({ k: Kind.Error, id, e: toWireError(err) })).catch(noop);
    });
  }

  readonly #replySent = (): void => {
    if (--this.#queuedReplies <= REPLY_HIGH_WATER >> 1 && this.#pausedForReplies) {
      this.#pausedForReplies = false;
      if (this.#closeError === undefined) this.channel.resume();
    }
  };

  /** Answers handed to the channel and not yet accepted by the transport (diagnostics). */
  get queuedReplies(): number {
    return this.#queuedReplies;
  }

  #authorize(action: PolicyAction, what: string): boolean {
    const policy = this.#options.policy;
    const allowed = policy === undefined || policy.allows(this.roles, action, what);
    const onDecision = this.#options.onDecision;
    if (onDecision !== undefined && this.#options.wantsDecisions?.() !== false) {
      try {
        onDecision({ who: this.peerId, roles: this.roles, action, what, allowed, at: Date.now() });
      } catch (err) {
        // An audit listener that throws must not take the dispatch (and the channel) down.
        this.#options.onError?.(err);
      }
    }
    return allowed;
  }

  #onRequest(env: Envelope): void {
    const id = env.id!;
    const method = env.m!;
    if (this.#incoming.has(id)) {
      const err = createError('SIPC_ERR_PROTOCOL', 'The peer reused the id of a request in flight');
      this.#options.onError?.(err);
      void this.channel.close(err);
      return;
    }
    if (method === SUBSCRIBE || method === UNSUBSCRIBE) {
      this.#onSubscribe(id, method, env.p);
      return;
    }
    if (method === PING) {
      if (this.#authorize('call', method)) this.#reply(id, { k: Kind.Response, id, p: env.p });
      return;
    }
    // Authorize before looking the method up, so a peer cannot probe which methods exist.
    if (!this.#authorize('call', method)) {
      this.#replyError(id, 'SIPC_ERR_FORBIDDEN');
      return;
    }
    const handler = this.#options.handlers?.get(method);
    if (handler === undefined) {
      this.#replyError(id, 'SIPC_ERR_NO_SUCH_METHOD', `No such method: ${method}`);
      return;
    }
    if (this.#incoming.size >= this.#maxIncoming) {
      this.#replyError(id, 'SIPC_ERR_PROTOCOL', 'Too many requests in flight');
      return;
    }
    this.#run(id, method, handler, env);
  }

  #replyError(id: number, code: SecureIpcError['code'], message?: string): void {
    this.#reply(id, { k: Kind.Error, id, e: { code, message: message ?? createError(code).message } });
  }

  #run(id: number, method: string, handler: AnyHandler, env: Envelope): void {
    const headers = env.h ?? {};
    const idem = headers.idem;
    const call: Incoming = {
      controller: new AbortController(),
      timer: undefined,
      gate: undefined,
      detached: idem !== undefined && this.#options.idempotency !== undefined,
      answered: false,
    };
    this.#incoming.set(id, call);
    // setTimeout cannot wait longer than 2^31-1 ms (it would fire at once): a longer budget is
    // as good as none.
    if (headers.timeout !== undefined && headers.timeout <= MAX_TIMER_MS) {
      call.timer = setTimeout(() => {
        const err = createError('SIPC_ERR_TIMEOUT', 'The request passed its deadline');
        call.controller.abort(err);
        this.#finish(id, call, { ok: false, error: toWireError(err) });
      }, headers.timeout);
    }
    const context: HandlerContext = {
      method,
      remoteStaticKey: this.channel.remoteStaticKey,
      peerId: this.peerId,
      roles: this.roles,
      peer: this.channel.peer,
      headers,
      signal: call.controller.signal,
    };
    const cache = this.#options.idempotency;
    if (call.detached && cache !== undefined && idem !== undefined) {
      void this.#runIdempotent(cache, idem, id, call, method, () =>
        this.#execute(id, handler, env.p, context, call, true),
      );
      return;
    }
    void this.#execute(id, handler, env.p, context, call, false).then((outcome) => {
      if (outcome !== undefined) this.#finish(id, call, outcome);
    });
  }

  async #runIdempotent(
    cache: IdempotencyCache,
    key: string,
    id: number,
    call: Incoming,
    method: string,
    execute: () => Promise<IdempotentOutcome | undefined>,
  ): Promise<void> {
    let mine = false;
    const run = () => {
      mine = true;
      return execute().then(
        (o): IdempotentOutcome =>
          o ?? { ok: false, error: { code: 'SIPC_ERR_HANDLER', message: 'No outcome' }, transient: true },
      );
    };
    let outcome = await cache.run(this.peerId, key, method, run);
    // The first execution was cut short by its own caller: a waiting repeat runs it again.
    while (!mine && !outcome.ok && outcome.transient === true && !call.controller.signal.aborted)
      outcome = await cache.run(this.peerId, key, method, run);
    this.#finish(id, call, outcome);
  }

  /** Run a handler; a stream result is streamed here and yields no outcome. */
  async #execute(
    id: number,
    handler: AnyHandler,
    params: unknown,
    context: HandlerContext,
    call: Incoming,
    idempotent: boolean,
  ): Promise<IdempotentOutcome | undefined> {
    try {
      const result = await handler(params, context);
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
      // Cut short by cancel, deadline or disconnect: a repeat under the same key may run again.
      const transient = call.controller.signal.aborted;
      return { ok: false, error: toWireError(err), transient };
    }
  }

  async #stream(id: number, call: Incoming, source: AsyncIterable<unknown>): Promise<void> {
    const gate = new CreditGate(DEFAULT_STREAM_WINDOW);
    call.gate = gate;
    if (call.controller.signal.aborted) gate.close();
    let end: Envelope | undefined;
    try {
      for await (const item of source) {
        if (!(await gate.take())) break;
        await this.channel.send(encodeEnvelope({ k: Kind.StreamItem, id, p: item }));
      }
      if (!call.controller.signal.aborted) end = { k: Kind.StreamEnd, id };
    } catch (err) {
      if (!call.controller.signal.aborted) end = { k: Kind.Error, id, e: toWireError(err) };
    }
    // Free the slot before answering: over an in-memory transport the answer can reach the
    // caller, free its slot and bring its next request back here before reply() returns.
    this.#release(id, call);
    if (end !== undefined && !call.answered) {
      call.answered = true;
      this.#reply(id, end);
    }
  }

  #finish(id: number, call: Incoming, outcome: IdempotentOutcome): void {
    if (call.answered) return;
    call.answered = true;
    this.#release(id, call); // before the reply, for the reason given in #stream
    if (this.#closeError === undefined) {
      if (outcome.ok) this.#reply(id, { k: Kind.Response, id, p: outcome.value });
      else this.#reply(id, { k: Kind.Error, id, e: outcome.error });
    }
  }

  #release(id: number, call: Incoming): void {
    if (call.timer !== undefined) clearTimeout(call.timer);
    call.gate?.close();
    if (this.#incoming.get(id) === call) this.#incoming.delete(id);
  }

  #onCancel(id: number): void {
    const call = this.#incoming.get(id);
    if (call === undefined) return; // already answered: the cancel crossed our reply
    const err = createError('SIPC_ERR_CANCELLED');
    call.controller.abort(err);
    call.gate?.close();
    this.#finish(id, call, { ok: false, error: toWireError(err) });
  }

  #onReply(env: Envelope): void {
    const pending = this.#pending.get(env.id!);
    if (pending === undefined) return; // a late reply after close of the slot: nothing waits for it
    switch (env.k) {
      case Kind.Response:
        this.#free(pending);
        if (pending.settled) return;
        this.#settle(pending);
        if (pending.stream !== undefined)
          pending.stream.fail(this.#protocolError('a response inside a stream'));
        else pending.resolve(env.p);
        return;
      case Kind.Error: {
        this.#free(pending);
        if (pending.settled && pending.stream === undefined) return;
        this.#settle(pending);
        const err = fromWireError(env.e as WireError);
        if (pending.stream !== undefined) pending.stream.fail(err);
        else pending.reject(err);
        return;
      }
      case Kind.StreamItem: {
        if (pending.settled && pending.stream === undefined) return;
        const stream = this.#streamOf(pending);
        if (!stream.push(env.p)) {
          const err = createError('SIPC_ERR_PROTOCOL', 'The peer sent stream items beyond its credit');
          this.#options.onError?.(err);
          void this.channel.close(err);
        }
        return;
      }
      case Kind.StreamEnd: {
        this.#free(pending);
        if (pending.settled && pending.stream === undefined) return;
        this.#settle(pending);
        this.#streamOf(pending).end();
        return;
      }
    }
  }

  #streamOf(pending: Pending): RemoteStream<unknown> {
    if (pending.stream !== undefined) return pending.stream;
    const id = pending.id;
    const stream = new RemoteStream<unknown>(
      DEFAULT_STREAM_WINDOW,
      (n) => {
        if (this.#closeError === undefined && this.#pending.get(id) === pending)
          this.channel.send(encodeEnvelope({ k: Kind.Credit, id, p: n })).catch(noop);
      },
      () => this.#giveUp(pending, createError('SIPC_ERR_CANCELLED')),
    );
    pending.stream = stream;
    // The caller's promise resolves with the stream at its first item (or its end); the caller's
    // timeout and signal keep applying until the stream ends.
    pending.resolve(stream);
    return stream;
  }

  #protocolError(what: string): SecureIpcError {
    return createError('SIPC_ERR_PROTOCOL', `The peer sent ${what}`);
  }

  #onSubscribe(id: number, method: string, pattern: unknown): void {
    if (typeof pattern !== 'string' || pattern.length === 0 || pattern.length > 256) {
      this.#replyError(id, 'SIPC_ERR_BAD_ENVELOPE', 'A subscription pattern must be a non-empty string');
      return;
    }
    if (method === UNSUBSCRIBE) {
      this.#remoteSubs?.delete(pattern);
      this.#reply(id, { k: Kind.Response, id, p: true });
      return;
    }
    // The requested pattern is checked as a name against the granted patterns: a `*` in it can only
    // fall where a granted pattern has one, so it can never reach beyond the grant.
    if (!this.#authorize('subscribe', pattern)) {
      this.#replyError(id, 'SIPC_ERR_FORBIDDEN');
      return;
    }
    this.#remoteSubs ??= new Map();
    const subs = this.#remoteSubs;
    if (!subs.has(pattern) && subs.size >= (this.#options.maxSubscriptions ?? 256)) {
      this.#replyError(id, 'SIPC_ERR_INVALID_ARGUMENT', 'Too many subscriptions');
      return;
    }
    subs.set(pattern, compilePatterns([pattern]));
    this.#reply(id, { k: Kind.Response, id, p: true });
  }

  #onEvent(topic: string, payload: unknown): void {
    if (!this.#authorize('publish', topic)) return;
    const router = this.#options.events;
    if (router === undefined) return;
    const context: EventContext = { ...this.#eventContext, topic };
    router.dispatch(topic, payload, context, (err) => this.#options.onError?.(err));
  }

  #onClose(error: SecureIpcError | undefined): void {
    if (this.#closeError !== undefined) return;
    const err = createError('SIPC_ERR_CONNECTION_CLOSED', undefined, error ? { cause: error } : undefined);
    this.#closeError = err;
    for (const pending of this.#pending.values()) {
      if (!pending.settled || pending.stream !== undefined) {
        this.#settle(pending);
        if (pending.stream !== undefined) pending.stream.fail(err);
        else pending.reject(err);
      }
    }
    this.#pending.clear();
    for (const q of this.#queue.drain()) if (!q.dropped) q.reject(err);
    for (const call of this.#incoming.values()) {
      if (call.timer !== undefined && !call.detached) clearTimeout(call.timer);
      call.gate?.close();
      if (!call.detached) call.controller.abort(err);
    }
    this.#incoming.clear();
    this.#remoteSubs?.clear();
  }
}
