/**
 * The RPC client: typed requests, streams, events and subscriptions over one secure channel.
 * `connect()` in ./serve.ts opens the transport connection and the channel for you.
 */
import { EventEmitter } from 'node:events';
import type { AuditWitness } from '../audit/witness.js';
import { type CloseInfo, closeInfoOf } from '../channel/options.js';
import { createError, type SecureIpcError } from '../errors.js';
import type { PeerInfo } from '../transport/contract.js';
import {
  type EventIterator,
  type EventIteratorOptions,
  eventIterator,
  type MatchedEvent,
} from './event-stream.js';
import { type EventListener, EventRouter, guardListener, reportListenerError } from './events.js';
import { PING, SUBSCRIBE, UNSUBSCRIBE } from './methods.js';
import { RpcPeer } from './peer.js';
import type {
  EventMap,
  EventPayloadOf,
  HandlerContext,
  MethodName,
  PatternCheck,
  PublishPayload,
  Received,
  RequestArgs,
  RequestOptions,
  ResultOf,
  ServiceDefinition,
} from './service-types.js';
import type { RpcChannel } from './session.js';
import { isSubscriptionPattern, PATTERN_RULE } from './subscriptions.js';
import { type WitnessRoundResult, witnessRound } from './witness.js';

/** Options of an RPC client. */
export interface RpcClientOptions {
  /** Most requests in flight at once; more wait for a slot (default 64). */
  maxInFlight?: number;
  /**
   * Methods this client answers when the server calls it (the RPC is symmetric, docs/protocol.md):
   * each handler gets the server's request as a server's handler gets a client's, with the same
   * limits (`maxIncoming`, 64 at once). Without it the client answers only `$ping`; a method not
   * here is SIPC_ERR_NO_SUCH_METHOD. No policy applies: the server is the peer this client
   * authenticated and chose. A bus client answers its broker's deliveries this way (docs/bus.md).
   */
  handlers?: ReadonlyMap<string, (params: any, context: HandlerContext) => unknown>;
}

/** Events of an RPC client. */
export interface RpcClientEvents {
  /**
   * The channel closed (error set when it did not close cleanly); `info.reason` tells a clean
   * close, a server that vanished (crashed, killed), revoked, expired, a protocol error apart.
   */
  close: [error: SecureIpcError | undefined, info: CloseInfo];
  /**
   * A local failure with no caller to tell: a throwing event listener (without an `error`
   * listener it is rethrown, see `reportListenerError`), a misbehaving server.
   */
  error: [error: unknown];
  /**
   * The server sent kind 13 (protocol version 3, docs/protocol.md "Kind 13, going away"): it is
   * draining and runs none of this client's requests above `lastId`. Those already failed with
   * SIPC_ERR_UNAVAILABLE (`details.notExecuted`); every later `request()` on this client rejects
   * at once with SIPC_ERR_UNAVAILABLE (`details: { notExecuted: true, written: false }`). Requests
   * at or below `lastId` are still answered; the server closes the channel after them.
   */
  goingAway: [info: GoingAwayInfo];
}

/** What the `goingAway` event tells. */
export interface GoingAwayInfo {
  /** The highest id of this client's requests the server dispatched (0: none). */
  readonly lastId: number;
}

/** A client typed by service `S` (methods) and `E` (event topics). */
export class RpcClient<
  S extends object = ServiceDefinition,
  E extends object = EventMap,
> extends EventEmitter<RpcClientEvents> {
  readonly #peer: RpcPeer;
  readonly #events = new EventRouter();
  /** Pattern → the server's answer to its `$subscribe`. */
  readonly #confirmations = new Map<string, Promise<void>>();
  /** The event iterators' close callbacks (a Set, not `close` listeners: no max-listeners warning). */
  readonly #closeWatchers = new Set<(error: SecureIpcError | undefined) => void>();

  /** Start an RPC session on a secure channel (as `secureConnect` returns). */
  constructor(channel: RpcChannel, options: RpcClientOptions = {}) {
    super();
    this.#peer = new RpcPeer(channel, {
      events: this.#events,
      maxInFlight: options.maxInFlight,
      handlers: options.handlers,
      onError: (err) => {
        if (this.listenerCount('error') > 0) this.emit('error', err);
      },
      onGoingAway: (lastId) => {
        try {
          this.emit('goingAway', { lastId });
        } catch (err) {
          reportListenerError(this, err);
        }
      },
    });
    channel.once('close', (error?: SecureIpcError, info?: CloseInfo) => {
      this.emit('close', error, info ?? closeInfoOf(error));
      for (const watcher of [...this.#closeWatchers]) watcher(error);
      this.#closeWatchers.clear();
    });
  }

  /** The server's authenticated static key. */
  get remoteStaticKey(): Uint8Array {
    return this.#peer.channel.remoteStaticKey;
  }

  /** What the OS says about the server process. */
  get peer(): PeerInfo {
    return this.#peer.channel.peer;
  }

  /** True once the channel closed. */
  get closed(): boolean {
    return this.#peer.closed;
  }

  /** Requests in flight now. */
  get inFlight(): number {
    return this.#peer.inFlight;
  }

  /**
   * Call `method`; for a stream method the result is an AsyncIterable (breaking out of it
   * cancels). A method that takes no params (or accepts `undefined`) is called without them:
   * `request('status')`, `request('status', undefined, { timeoutMs })`.
   */
  request<M extends MethodName<S>>(method: M, ...args: RequestArgs<S, M>): Promise<Received<ResultOf<S, M>>> {
    const [params, options] = args as unknown as [unknown, RequestOptions | undefined];
    return this.#peer.request(method, params, options) as Promise<Received<ResultOf<S, M>>>;
  }

  /**
   * One audit witness round (docs/audit.md, "Witnesses"): ask the server for the update `witness`
   * needs (`$audit.checkpoint`), verify it, and give the cosigned checkpoint back
   * (`$audit.cosign`). Rejects with SIPC_ERR_AUDIT_FORK when the server's log contradicts what
   * the witness holds (the evidence in `details`), SIPC_ERR_AUDIT_CORRUPT when the update does not
   * verify, SIPC_ERR_FORBIDDEN when the server's policy does not grant both methods by name.
   */
  witnessAudit(witness: AuditWitness, options?: RequestOptions): Promise<WitnessRoundResult> {
    return witnessRound((m, p, o) => this.#peer.request(m, p, o), witness, options);
  }

  /** Ask the server to echo `payload` (every server answers `$ping`). */
  ping<T>(payload?: T, options?: RequestOptions): Promise<T> {
    return this.#peer.request(PING, payload, options) as Promise<T>;
  }

  /** Send a one-way event to the server (the server's policy needs `publish` on the topic). */
  publish<T extends Extract<keyof E, string>>(topic: T, payload: PublishPayload<E, T>): Promise<void> {
    return this.#peer.publish(topic, payload);
  }

  /**
   * Subscribe to server events on `pattern` (a topic or a wildcard like `files.*`, typed by the
   * topics it can match); resolves, once the server accepted (SIPC_ERR_FORBIDDEN if its policy
   * refuses), with the unsubscriber. A listener that throws does not stop the others: its
   * exception is emitted as `error`, or rethrown without an `error` listener.
   */
  subscribe<P extends string>(
    pattern: P & PatternCheck<E, P>,
    listener: EventListener<EventPayloadOf<E, P>>,
  ): Promise<() => Promise<void>>;
  subscribe(pattern: string, listener: EventListener<any>): Promise<() => Promise<void>> {
    return this.#subscribe(pattern, listener);
  }

  async #subscribe(pattern: string, listener: EventListener<any>): Promise<() => Promise<void>> {
    // Checked here as the server would: a pattern it must refuse is never sent.
    if (!isSubscriptionPattern(pattern)) throw createError('SIPC_ERR_INVALID_ARGUMENT', PATTERN_RULE);
    const first = this.#events.count(pattern) === 0;
    const remove = this.#events.add(
      pattern,
      guardListener(listener, (err) => reportListenerError(this, err)),
    );
    // A second subscriber to the same pattern waits for the first one's answer: if the server
    // refuses the pattern, both are refused.
    let confirmed = first ? undefined : this.#confirmations.get(pattern);
    if (first) {
      confirmed = this.#peer.request(SUBSCRIBE, pattern).then(() => {});
      this.#confirmations.set(pattern, confirmed);
      confirmed.catch(() => {
        if (this.#confirmations.get(pattern) === confirmed) this.#confirmations.delete(pattern);
      });
    }
    try {
      await confirmed;
    } catch (err) {
      remove();
      throw err;
    }
    let removed = false;
    return async () => {
      if (removed) return;
      removed = true;
      remove();
      if (this.#events.count(pattern) === 0) {
        this.#confirmations.delete(pattern);
        if (!this.#peer.closed) await this.#peer.request(UNSUBSCRIBE, pattern);
      }
    };
  }

  /**
   * The server's events on `pattern` as an async iterable, typed by the topics the pattern can
   * match: `for await (const e of client.events('files.*')) e.topic, e.payload`. Subscribes at
   * once (events published after this call are not missed; a refused subscription rejects the
   * first `next()`), unsubscribes when the loop ends. At most `maxBuffered` (256) events wait for
   * a slow consumer: beyond, the oldest is dropped and counted in `dropped` (or, with
   * `overflow: 'error'`, the iteration fails with SIPC_ERR_BUSY). The iteration ends when the
   * session closes cleanly and fails with SIPC_ERR_CONNECTION_CLOSED when it does not.
   */
  events<P extends string>(
    pattern: P & PatternCheck<E, P>,
    options?: EventIteratorOptions,
  ): EventIterator<MatchedEvent<E, P>> {
    const iterator = eventIterator(
      (listener) => this.#subscribe(pattern, listener),
      (listener) => {
        const onClose = (error: SecureIpcError | undefined) =>
          listener(
            error === undefined
              ? undefined
              : createError('SIPC_ERR_CONNECTION_CLOSED', undefined, { cause: error }),
          );
        this.#closeWatchers.add(onClose);
        return () => this.#closeWatchers.delete(onClose);
      },
      options,
    );
    return iterator as EventIterator<any>;
  }

  /** Close the session (with an error: destroy the channel). */
  close(error?: Error): Promise<void> {
    return this.#peer.close(error);
  }

  /** `await using client = await connect(...)`: closes the session at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

/** Start a typed client on a secure channel. */
export function createClient<S extends object = ServiceDefinition, E extends object = EventMap>(
  channel: RpcChannel,
  options?: RpcClientOptions,
): RpcClient<S, E> {
  return new RpcClient<S, E>(channel, options);
}
