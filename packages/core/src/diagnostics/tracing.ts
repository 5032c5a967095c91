/**
 * The `TracingChannel`s secure-ipc publishes on (docs/observability.md, "Tracing channels"): one
 * per operation with a duration (a request made, a request served, a handshake, an event sent or
 * received). Each publishes Node's five events on one shared, mutable message object:
 *
 *   start (the operation's code runs inside the stores bound to it) → end (its synchronous part
 *   returned) → [error, on a failure] → asyncStart → asyncEnd (its outcome is known: `code`)
 *
 * A subscriber binds an AsyncLocalStorage to `start` (`bindStore`) to make its span current for
 * everything the operation runs: the handler of a served request, the listener of a received
 * event. Messages never carry a payload, a result, an error's text or key material: unlike
 * `tracePromise`, which would put the operation's result in `message.result` and the thrown error
 * in `message.error`, these are published by hand and carry the outcome's code only.
 */
import { type TracingChannel, tracingChannel } from 'node:diagnostics_channel';

/** The names of the tracing channels (each is the prefix of five: `tracing:NAME:start`, ...). */
export const TRACING_CHANNELS = Object.freeze({
  /** A request this process made: {@link ClientRequestMessage}. */
  clientRequest: 'secure-ipc:rpc.client.request',
  /** A request this process served: {@link ServerRequestMessage}. */
  serverRequest: 'secure-ipc:rpc.server.request',
  /** A handshake, from the first byte to an open channel or a failure: {@link HandshakeMessage}. */
  handshake: 'secure-ipc:handshake',
  /** An event this process sent: to one peer, or a server's to every subscriber: {@link EventMessage}. */
  eventPublish: 'secure-ipc:event.publish',
  /** An event this process received and handed to its listeners: {@link EventMessage}. */
  eventReceive: 'secure-ipc:event.receive',
} as const);

/** What every traced operation's message ends with (set before `error` and `asyncStart`). */
export interface TracedOutcome {
  /**
   * `'OK'`, or the code it failed with: a `SIPC_ERR_*` code, or an application's own code of a
   * public error (`PublicError`) a handler threw; undefined until the outcome is known.
   */
  code: string | undefined;
}

/** Published on `secure-ipc:rpc.client.request`: a request this process made. */
export interface ClientRequestMessage extends TracedOutcome {
  /** The diagnostics version (`DIAGNOSTICS_VERSION`). */
  readonly v: 1;
  /** The channel it goes on (`SecureChannel.id`); undefined for a channel without one. */
  readonly channelId: number | undefined;
  /** The peer's static key fingerprint. */
  readonly peer: string;
  /** The method called. */
  readonly method: string;
  /** Which attempt of the call this is (1, or `RequestOptions.attempt`). */
  readonly attempt: number;
  /**
   * The W3C traceparent the request carries: the caller's, if it passed one. A `start` subscriber
   * may set it (its span's); a value that is not a valid traceparent is ignored.
   */
  traceparent: string | undefined;
  /** The W3C tracestate the request carries; a `start` subscriber may set it as `traceparent`. */
  tracestate: string | undefined;
}

/** Published on `secure-ipc:rpc.server.request`: a request this process served (or refused). */
export interface ServerRequestMessage extends TracedOutcome {
  /** The diagnostics version. */
  readonly v: 1;
  /** The channel it came on; undefined for a channel without one. */
  readonly channelId: number | undefined;
  /** The caller's static key fingerprint. */
  readonly peer: string;
  /** The caller's roles. */
  readonly roles: readonly string[];
  /** The method called. */
  readonly method: string;
  /** The caller's attempt number (`h.attempt`, 1 without it). */
  readonly attempt: number;
  /** The caller's W3C traceparent (`h.trace`), if it sent one. */
  readonly traceparent: string | undefined;
  /** The caller's W3C tracestate, if it sent one. */
  readonly tracestate: string | undefined;
}

/** Published on `secure-ipc:handshake`. */
export interface HandshakeMessage extends TracedOutcome {
  /** The diagnostics version. */
  readonly v: 1;
  /** Which side of the handshake this process is. */
  readonly role: 'initiator' | 'responder';
  /** Set on success, before `asyncStart`: the new channel's id. */
  channelId: number | undefined;
  /** Set on success: the peer's static key fingerprint. */
  peer: string | undefined;
  /** Set on success: the negotiated protocol version. */
  protocolVersion: number | undefined;
}

/** Published on `secure-ipc:event.publish` and `secure-ipc:event.receive`. */
export interface EventMessage extends TracedOutcome {
  /** The diagnostics version. */
  readonly v: 1;
  /** The channel it goes on or came on; undefined for a server's publish to all its subscribers. */
  readonly channelId: number | undefined;
  /** The other end's static key fingerprint; undefined for a server's publish. */
  readonly peer: string | undefined;
  /** The topic. */
  readonly topic: string;
  /** A server's publish, at its end: the subscribers it was queued for (1 for one peer). */
  queued: number | undefined;
  /** A server's publish, at its end: the subscribers over their event budget, who did not get it. */
  dropped: number | undefined;
}

/** @internal The tracing channel objects. */
export const tracing = {
  clientRequest: tracingChannel<ClientRequestMessage>(TRACING_CHANNELS.clientRequest),
  serverRequest: tracingChannel<ServerRequestMessage>(TRACING_CHANNELS.serverRequest),
  handshake: tracingChannel<HandshakeMessage>(TRACING_CHANNELS.handshake),
  eventPublish: tracingChannel<EventMessage>(TRACING_CHANNELS.eventPublish),
  eventReceive: tracingChannel<EventMessage>(TRACING_CHANNELS.eventReceive),
} as const;

/**
 * @internal True when anyone listens on any of `tc`'s five channels (or bound a store to
 * `start`). `TracingChannel.hasSubscribers` does the same where it exists (Node 20.13+), but Bun
 * has no such getter.
 */
export function traced(tc: TracingChannel<object>): boolean {
  return (
    tc.start.hasSubscribers ||
    tc.end.hasSubscribers ||
    tc.asyncStart.hasSubscribers ||
    tc.asyncEnd.hasSubscribers ||
    tc.error.hasSubscribers
  );
}

/** The `SIPC_ERR_*` code of `error`, or `SIPC_ERR_INTERNAL` for anything that is not ours. */
function codeOf(error: unknown): string {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' && code.startsWith('SIPC_ERR_') ? code : 'SIPC_ERR_INTERNAL';
}

/**
 * @internal Run `fn` as the traced operation of `message` on `tc`: `start` (with `fn` inside the
 * bound stores), then `end`; throws what `fn` throws, after finishing the message with it.
 */
export function runTraced<M extends TracedOutcome, R>(tc: TracingChannel<M>, message: M, fn: () => R): R {
  let result: R;
  try {
    result = tc.start.runStores(message, fn);
  } catch (err) {
    tc.end.publish(message);
    finishTraced(tc, message, err);
    throw err;
  }
  tc.end.publish(message);
  return result;
}

/**
 * @internal The outcome of `message`'s operation: its `code` (`code`, else `error`'s, else `OK`),
 * `error` on a failure, then `asyncStart` and `asyncEnd`; once (a second call is ignored).
 */
export function finishTraced<M extends TracedOutcome>(
  tc: TracingChannel<M>,
  message: M,
  error?: unknown,
  code?: string,
): void {
  if (message.code !== undefined) return;
  message.code = code ?? (error === undefined ? 'OK' : codeOf(error));
  if (message.code !== 'OK') tc.error.publish(message);
  tc.asyncStart.publish(message);
  tc.asyncEnd.publish(message);
}

/**
 * @internal Trace a promise-returning operation: finished when the promise settles. The promise
 * returned is `fn`'s own (the caller's rejection handling is unchanged).
 */
export function tracePromiseOf<M extends TracedOutcome, R>(
  tc: TracingChannel<M>,
  message: M,
  fn: () => Promise<R>,
  settleLater?: (value: R) => boolean,
): Promise<R> {
  let promise: Promise<R>;
  try {
    promise = runTraced(tc, message, fn);
  } catch (err) {
    return Promise.reject(err);
  }
  promise.then(
    (value) => {
      if (settleLater?.(value) !== true) finishTraced(tc, message);
    },
    (err) => finishTraced(tc, message, err),
  );
  return promise;
}
