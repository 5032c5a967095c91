/**
 * The RPC engine on one secure channel. Symmetric: each side can call, answer, send events and
 * stream; the server and client wrappers only decide who registers handlers and who holds the
 * policy. Every incoming envelope is decoded and validated before anything is dispatched, and
 * dispatch is synchronous in arrival order (so a handler is *started* in the order the peer sent
 * its requests and events; see docs/protocol.md for what a handler may assume).
 *
 * This file is the session: it decodes each envelope and routes it to one of three parts, which
 * share only the channel and its close state (./session.ts):
 * - ./caller.ts: our requests (slots, queue, timeouts, cancel) and the peer's replies to them;
 * - ./dispatcher.ts: the peer's requests and events (authorize, run handlers, answer);
 * - ./subscriptions.ts: what the peer subscribed to (`$subscribe`, `$unsubscribe`, `wants`).
 *
 * Hot-path choices (measured by tools/bench, not asserted): no timer unless a timeout is set, one
 * msgpack encode per envelope, replies sent without awaiting (the transport keeps order), and
 * the policy decision object built only when someone listens for it.
 */
import { traced, tracing } from '../diagnostics/tracing.js';
import { decodeEnvelope } from '../envelope/decode.js';
import { encodeEnvelope } from '../envelope/encode.js';
import { type Envelope, EnvelopeKind as Kind } from '../envelope/types.js';
import { createError, type SecureIpcError } from '../errors.js';
import { keyFingerprint } from '../keys/key-pair.js';
import { DEFAULT_MAX_QUEUED_EVENT_BYTES, QUEUED_MESSAGE_OVERHEAD } from './byte-budget.js';
import { Caller } from './caller.js';
import { Dispatcher, type DispatcherOptions } from './dispatcher.js';
import { isBuiltinMethod, isSubscriptionMethod } from './methods.js';
import type { Policy } from './policy.js';
import type { RequestOptions } from './service-types.js';
import { fastSend, noop, type RpcChannel, type Session } from './session.js';
import type { ChannelStats } from './stats.js';
import { Subscriptions } from './subscriptions.js';

/** Options of the engine. */
export interface RpcPeerOptions extends DispatcherOptions {
  /** Most of our requests in flight at once; more wait for a slot (default 64). */
  maxInFlight?: number;
  /** Most subscription patterns the peer may hold (default 256). */
  maxSubscriptions?: number;
  /** Bytes of events queued for the peer beyond which queueEvent() refuses more (default 4 MiB). */
  maxQueuedEventBytes?: number;
  /** Told local failures that have no caller to reject: a throwing event listener, a bad peer. */
  onError?: (error: unknown) => void;
  /**
   * Told when the peer sent kind 13 (protocol version 3): it runs none of our requests above
   * `lastId` (those failed with SIPC_ERR_UNAVAILABLE) and will close the channel.
   */
  onGoingAway?: (lastId: number) => void;
}

type Mutable<T> = { -readonly [K in keyof T]: T[K] };

/** One end of an RPC session over a secure channel. */
export class RpcPeer {
  /** The channel underneath. */
  readonly channel: RpcChannel;
  /** Fingerprint of the peer's static key. */
  readonly peerId: string;
  #roles: readonly string[];
  readonly #session: Mutable<Session>;
  readonly #caller: Caller;
  readonly #dispatcher: Dispatcher;
  readonly #subscriptions: Subscriptions;
  #closeError: SecureIpcError | undefined;
  /** The channel's protocol version: which kinds are valid (9-12 only on version 2). */
  readonly #version: number;
  readonly #maxEventBytes: number;
  #eventBytes = 0;
  #droppedEvents = 0;
  /** The highest id of the peer's requests dispatched so far (kind 13 names it). */
  #highestId = 0;
  /** Set once draining: the id of the kind 13 sent (version 3) or the highest id (below). */
  #drainId: number | undefined;
  readonly #onGoingAway: ((lastId: number) => void) | undefined;

  /** Attach to `channel`; the peer's roles are computed once, from the channel's identity only. */
  constructor(channel: RpcChannel, options: RpcPeerOptions = {}) {
    this.channel = channel;
    this.#version = channel.version ?? 1;
    // The channel's own fingerprint (computed once per channel, shared with its diagnostics).
    this.peerId = channel.fingerprint ?? keyFingerprint(channel.remoteStaticKey);
    this.#roles = this.#rolesBy(options.policy);
    // A data property, set on close (a getter in the literal put every session object into
    // dictionary mode: ~400 bytes more per RPC session, heap snapshot of 300 connections).
    const session: Mutable<Session> = {
      channel,
      closeError: undefined,
      send: (bytes) => fastSend(channel, bytes),
      onError: (err) => options.onError?.(err),
    };
    this.#session = session;
    this.#maxEventBytes = options.maxQueuedEventBytes ?? DEFAULT_MAX_QUEUED_EVENT_BYTES;
    this.#onGoingAway = options.onGoingAway;
    this.#caller = new Caller(session, this.peerId, options.maxInFlight);
    this.#dispatcher = new Dispatcher(session, this, options);
    this.#subscriptions = new Subscriptions(this.#dispatcher, options.maxSubscriptions);
    channel.on('message', (message: Uint8Array) => this.#onMessage(message));
    channel.on('close', (error?: SecureIpcError) => this.#onClose(error));
    if (channel.closed) this.#onClose(undefined);
  }

  /** Roles the policy gave the peer (empty without a policy); a replaced policy gives them again. */
  get roles(): readonly string[] {
    return this.#roles;
  }

  #rolesBy(policy: Policy | undefined): readonly string[] {
    return (
      policy?.rolesOf({
        remoteStaticKey: this.channel.remoteStaticKey,
        channelRoles: this.channel.roles,
        fingerprint: this.peerId,
      }) ?? this.channel.roles
    );
  }

  /**
   * @internal The server replaced its policy: the peer's roles are given again, its requests and
   * events from now on are authorized by `policy`, and the subscriptions it no longer may hold are
   * dropped (returned).
   */
  setPolicy(policy: Policy): string[] {
    this.#roles = this.#rolesBy(policy);
    this.#dispatcher.setPolicy(policy);
    return this.#subscriptions.retain((pattern) => policy.allows(this.#roles, 'subscribe', pattern));
  }

  /** True once the channel closed. */
  get closed(): boolean {
    return this.#closeError !== undefined;
  }

  /** Our requests in flight (answered slots are freed when the peer's reply arrives). */
  get inFlight(): number {
    return this.#caller.inFlight;
  }

  /** Answers handed to the channel and not yet accepted by the transport (diagnostics). */
  get queuedReplies(): number {
    return this.#dispatcher.queuedReplies;
  }

  /** Those answers (replies and stream items) as charged against `maxQueuedReplyBytes`. */
  get queuedReplyBytes(): number {
    return this.#dispatcher.queuedReplyBytes;
  }

  /** Bytes of events queued for the peer (each + 512 overhead), counted against maxQueuedEventBytes. */
  get queuedEventBytes(): number {
    return this.#eventBytes;
  }

  /** This channel as `server.stats()` reports it (./stats.ts); never a payload. */
  stats(): ChannelStats {
    const { channel } = this;
    const lastCallAt = this.#dispatcher.lastCallAt;
    return {
      id: channel.id ?? null,
      peer: this.peerId,
      roles: this.roles,
      transport: channel.peer.transport,
      protocolVersion: this.#version,
      openedAt: channel.openedAt ?? null,
      calls: this.#dispatcher.calls,
      inFlight: this.#dispatcher.running,
      bytesQueued: channel.queuedBytes ?? 0,
      lastCallAt: lastCallAt === 0 ? null : lastCallAt,
    };
  }

  /** Events dropped for this peer because it was over its event budget. */
  get droppedEvents(): number {
    return this.#droppedEvents;
  }

  /** Call `method`; resolves with the result, or an AsyncIterable if the peer answers with a stream. */
  request(method: string, params?: unknown, options?: RequestOptions): Promise<unknown> {
    return this.#caller.request(method, params, options);
  }

  /** Send a one-way event (after any requests still waiting for a slot, to keep call order). */
  publish(topic: string, payload?: unknown): Promise<void> {
    return this.#caller.publish(topic, payload);
  }

  /** Send an already encoded event envelope (the server encodes a publish once for all peers). */
  sendEncoded(bytes: Uint8Array): Promise<void> {
    return this.#caller.sendEncoded(bytes);
  }

  /**
   * Queue an encoded event for the peer without waiting for its transport: `over` (and counted in
   * droppedEvents) if the events already queued for it plus this one would pass its budget, so
   * one peer that does not read never holds up the others. A peer with nothing queued always
   * takes one event, whatever its size.
   */
  queueEvent(bytes: Uint8Array): 'queued' | 'over' | 'closed' {
    if (this.#closeError !== undefined) return 'closed';
    const cost = bytes.byteLength + QUEUED_MESSAGE_OVERHEAD;
    if (this.#eventBytes > 0 && this.#eventBytes + cost > this.#maxEventBytes) {
      this.#droppedEvents++;
      return 'over';
    }
    const sending = this.#caller.trySendEncoded(bytes);
    if (sending === undefined) return 'queued';
    this.#eventBytes += cost;
    const sent = () => {
      this.#eventBytes -= cost;
    };
    sending.then(sent, sent);
    return 'queued';
  }

  /**
   * Encode an event on `topic` and queue it as queueEvent does (within the peer's event budget,
   * never waiting for the transport): how a broker sends one peer its own event. Throws
   * SIPC_ERR_INVALID_ARGUMENT for a payload that cannot cross.
   */
  queuePublish(topic: string, payload?: unknown): 'queued' | 'over' | 'closed' {
    return this.queueEvent(encodeEnvelope({ k: Kind.Event, m: topic, p: payload }));
  }

  /** True if the peer subscribed to a pattern that matches `topic`. */
  wants(topic: string): boolean {
    return this.#subscriptions.wants(topic);
  }

  /** Close the channel (with an error: destroy it). */
  close(error?: Error): Promise<void> {
    return this.channel.close(error);
  }

  /** True once drain() started: the peer's new requests are refused. */
  get draining(): boolean {
    return this.#drainId !== undefined;
  }

  /**
   * Graceful drain (docs/protocol.md, "Kind 13, going away"): on a version-3 channel send kind 13
   * with the highest id of the peer's requests dispatched so far and answer every later one with
   * SIPC_ERR_UNAVAILABLE; below version 3 answer every new request with SIPC_ERR_BUSY. The channel
   * closes once the requests already running are answered, or `drainMs` after the call, whichever
   * comes first (then running handlers' signals fire with SIPC_ERR_CONNECTION_CLOSED). Resolves
   * once the channel closed. A second call only waits for the close (the first deadline holds).
   */
  drain(drainMs: number): Promise<void> {
    if (this.#closeError !== undefined) return Promise.resolve();
    let timer: NodeJS.Timeout | undefined;
    const closed = new Promise<void>((resolve) =>
      this.channel.once('close', () => {
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      }),
    );
    if (this.#drainId !== undefined) return closed;
    this.#drainId = this.#highestId;
    if (this.#version >= 3)
      this.channel.send(encodeEnvelope({ k: Kind.GoingAway, id: this.#drainId })).catch(noop);
    const end = () => {
      if (timer !== undefined) clearTimeout(timer);
      this.#dispatcher.onIdle(undefined);
      void this.channel.close().catch(noop);
    };
    if (this.#dispatcher.running === 0 || drainMs === 0) end();
    else {
      timer = setTimeout(end, drainMs);
      this.#dispatcher.onIdle(end);
    }
    return closed;
  }

  /** A request that arrives while draining: refused before dispatch (never run). */
  #refuseDraining(id: number): void {
    if (this.#version >= 3) this.#dispatcher.replyError(id, 'SIPC_ERR_UNAVAILABLE');
    else this.#dispatcher.replyError(id, 'SIPC_ERR_BUSY', 'The peer is shutting down');
  }

  #onMessage(message: Uint8Array): void {
    if (this.#closeError !== undefined) return;
    const decoded = decodeEnvelope(message, undefined, this.#version);
    if (!decoded.ok) {
      this.#onInvalid(decoded.error, decoded.id, decoded.kind);
      return;
    }
    const env = decoded.envelope;
    switch (env.k) {
      case Kind.Request: {
        const id = env.id!;
        if (!this.#dispatcher.admit(id)) return;
        if (traced(tracing.serverRequest)) this.#dispatcher.traceRequest(env, () => this.#onRequest(env));
        else this.#onRequest(env);
        return;
      }
      case Kind.GoingAway:
        this.#goingAway(env.id!);
        return;
      case Kind.Response:
      case Kind.Error:
      case Kind.StreamItem:
      case Kind.StreamEnd:
        this.#caller.onReply(env);
        return;
      case Kind.Event:
        this.#dispatcher.onEvent(env.m!, env.p);
        return;
      case Kind.Cancel:
        this.#dispatcher.onCancel(env.id!);
        return;
      case Kind.Credit:
        this.#dispatcher.onCredit(env.id!, env.p as number);
        return;
      case Kind.InputItem:
        this.#dispatcher.onInputItem(env.id!, env.p);
        return;
      case Kind.InputEnd:
        this.#dispatcher.onInputEnd(env.id!);
        return;
      case Kind.InputCredit:
        this.#caller.onInputCredit(env.id!, env.p as number);
        return;
      case Kind.InputStop:
        this.#caller.onInputStop(env.id!);
        return;
    }
  }

  /** The peer's request `env` (admitted): refused while draining, else to its part of the session. */
  #onRequest(env: Envelope): void {
    const id = env.id!;
    if (this.#drainId !== undefined && (this.#version < 3 || id > this.#drainId)) {
      this.#refuseDraining(id);
      return;
    }
    if (id > this.#highestId) this.#highestId = id;
    // Built-ins take one value (a pattern, a payload to echo), never a streamed input: refused
    // before the policy (a streamed request has no pattern to authorize); the answer ends the
    // input at the requester, and items that follow are dropped as for any answered request.
    if (env.h?.stream === true && isBuiltinMethod(env.m!))
      this.#dispatcher.replyError(id, 'SIPC_ERR_INVALID_ARGUMENT', `${env.m} takes no streamed input`);
    else if (isSubscriptionMethod(env.m!)) this.#subscriptions.onRequest(id, env.m!, env.p);
    else this.#dispatcher.onRequest(env);
  }

  /** The peer's kind 13: our requests above `lastId` fail unsent-equivalent; a second one closes. */
  #goingAway(lastId: number): void {
    if (!this.#caller.onGoingAway(lastId)) {
      const err = createError(
        'SIPC_ERR_PROTOCOL',
        'The peer sent a second going away, or one above every request id sent to it',
      );
      this.#session.onError(err);
      void this.channel.close(err);
      return;
    }
    this.#onGoingAway?.(lastId);
  }

  #onInvalid(error: SecureIpcError, id: number | undefined, kind: number | undefined): void {
    if (id === undefined || kind === Kind.Event || (kind === Kind.GoingAway && this.#version >= 3)) {
      // Nothing to answer to (an event is never answered, even one that carries an id): the peer
      // is broken or hostile, and the channel is no longer trusted.
      this.#session.onError(error);
      void this.channel.close(error);
      return;
    }
    if (
      kind === Kind.Response ||
      kind === Kind.Error ||
      kind === Kind.StreamItem ||
      kind === Kind.StreamEnd ||
      (this.#version >= 2 && (kind === Kind.InputCredit || kind === Kind.InputStop))
    )
      this.#caller.onInvalidReply(id, error);
    else {
      if (kind === Kind.Request) this.#dispatcher.countStarted();
      this.#dispatcher.reply(id, { k: Kind.Error, id, e: { code: error.code, message: error.message } });
    }
  }

  #onClose(error: SecureIpcError | undefined): void {
    if (this.#closeError !== undefined) return;
    const err = createError('SIPC_ERR_CONNECTION_CLOSED', undefined, error ? { cause: error } : undefined);
    this.#closeError = err;
    this.#session.closeError = err;
    this.#caller.close(err);
    this.#dispatcher.close(err);
    this.#subscriptions.clear();
  }
}
