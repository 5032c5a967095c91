/**
 * The caller side of an RPC session: our requests and events to the peer.
 *
 *   request() ─► slot free? ─yes─► #start: encode, pending map, timer, abort listener, send
 *                   │ no                          │
 *                   ▼                             ▼
 *              FIFO queue (requests and    onReply: response / error / stream items / end
 *              events behind them) ◄─ #pump ◄─ #free (slot freed when the peer answers)
 *
 * A request holds its slot from its send until the peer's answer arrives, also when the caller
 * already gave up (timeout, abort, a stream broken out of): giving up rejects at once and sends
 * a cancel, and the slot is freed by the peer's answer to it.
 */
import { MAX_TIMER_MS } from '../constants.js';
import {
  type ClientRequestMessage,
  type EventMessage,
  finishTraced,
  traced,
  tracePromiseOf,
  tracing,
} from '../diagnostics/tracing.js';
import {
  type EncodedEnvelope,
  encodeEnvelope,
  encodeEnvelopeSplit,
  joinEnvelope,
} from '../envelope/encode.js';
import {
  type Envelope,
  type EnvelopeHeaders,
  EnvelopeKind as Kind,
  type WireError,
} from '../envelope/types.js';
import { isTraceparent, isTracestate, MAX_ATTEMPT } from '../envelope/validate.js';
import { fromWireError } from '../envelope/wire-errors.js';
import { createError, type SecureIpcError } from '../errors.js';
import { Fifo } from './fifo.js';
import type { RequestOptions } from './service-types.js';
import { DEFAULT_MAX_IN_FLIGHT, noop, type Session } from './session.js';
import { DEFAULT_STREAM_WINDOW, InputSender, isAsyncIterable, RemoteStream } from './streams.js';

interface Pending {
  id: number;
  resolve: (value: unknown) => void;
  reject: (err: unknown) => void;
  /** Set once the caller has its answer (or gave up): later replies only free the slot. */
  settled: boolean;
  stream: RemoteStream<unknown> | undefined;
  /** The sender of a streamed input (params that are an async iterable; protocol version 2). */
  input: InputSender | undefined;
  timer: NodeJS.Timeout | undefined;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  /** The request's tracing message, when someone traces requests (diagnostics/tracing.ts). */
  trace: ClientRequestMessage | undefined;
}

/** A request waiting for a slot, or an event waiting behind such requests. */
interface Queued {
  usesSlot: boolean;
  /** Gave up while waiting (abort, timeout): skipped when its turn comes. */
  dropped: boolean;
  start: () => void;
  reject: (err: unknown) => void;
}

/**
 * `err` (the channel's close error) for a request that was never written to the channel:
 * `details.written === false`, so a caller knows nothing reached the peer (docs/protocol.md,
 * "What a caller may conclude"). A request that was written gets the close error as it is.
 */
function unsent(err: SecureIpcError): SecureIpcError {
  return createError(err.code, err.message, {
    cause: err.cause,
    details: { ...err.details, written: false },
  });
}

/** The local refusal of a request the peer will not run (it went away: kind 13). */
function notExecuted(written: boolean): SecureIpcError {
  return createError(
    'SIPC_ERR_UNAVAILABLE',
    'The peer is going away and did not run the request (not executed); it may be sent again',
    { details: written ? { notExecuted: true } : { notExecuted: true, written: false } },
  );
}

/** True for a valid `RequestOptions.attempt`: an integer from 2 to 255. */
function isAttempt(value: unknown): boolean {
  return Number.isSafeInteger(value) && (value as number) >= 2 && (value as number) <= MAX_ATTEMPT;
}

/** Our requests in flight and waiting, and the events queued behind them. */
export class Caller {
  readonly #session: Session;
  readonly #peerId: string;
  readonly #maxInFlight: number;
  readonly #pending = new Map<number, Pending>();
  readonly #queue = new Fifo<Queued>();
  #nextId = 1;
  /** The id of the peer's kind 13 (protocol version 3), once it arrived: no new request is sent. */
  #goneAway: number | undefined;

  /** `peerId`: the peer's fingerprint; `maxInFlight`: most of our requests in flight at once (default 64). */
  constructor(session: Session, peerId: string, maxInFlight = DEFAULT_MAX_IN_FLIGHT) {
    this.#session = session;
    this.#peerId = peerId;
    this.#maxInFlight = maxInFlight;
  }

  /** Our requests in flight (answered slots are freed when the peer's reply arrives). */
  get inFlight(): number {
    return this.#pending.size;
  }

  /** Call `method`; resolves with the result, or an AsyncIterable if the peer answers with a stream. */
  request(method: string, params?: unknown, options: RequestOptions = {}): Promise<unknown> {
    if (!traced(tracing.clientRequest)) return this.#request(method, params, options, undefined);
    const message: ClientRequestMessage = {
      v: 1,
      channelId: this.#session.channel.id,
      peer: this.#peerId,
      method,
      attempt: isAttempt(options.attempt) ? (options.attempt as number) : 1,
      traceparent: options.traceparent,
      tracestate: options.tracestate,
      code: undefined,
    };
    // A streamed answer is finished by #settle, at the stream's end, not at its first item.
    return tracePromiseOf(
      tracing.clientRequest,
      message,
      () => this.#request(method, params, options, message),
      (value) => value instanceof RemoteStream,
    );
  }

  #request(
    method: string,
    params: unknown,
    options: RequestOptions,
    trace: ClientRequestMessage | undefined,
  ): Promise<unknown> {
    // A tracing subscriber's trace context (its span's), set at `start`, goes instead of the
    // caller's: its traceparent if valid, with its tracestate if valid (the two belong together).
    if (
      trace !== undefined &&
      (trace.traceparent !== options.traceparent || trace.tracestate !== options.tracestate) &&
      isTraceparent(trace.traceparent)
    )
      options = {
        ...options,
        traceparent: trace.traceparent,
        tracestate: isTracestate(trace.tracestate) ? trace.tracestate : undefined,
      };
    const { signal, timeoutMs } = options;
    if (
      timeoutMs !== undefined &&
      !(Number.isSafeInteger(timeoutMs) && timeoutMs > 0 && timeoutMs <= MAX_TIMER_MS)
    )
      return Promise.reject(
        createError(
          'SIPC_ERR_INVALID_ARGUMENT',
          'timeoutMs must be an integer from 1 to 2^31-1 milliseconds',
        ),
      );
    if (options.attempt !== undefined && !isAttempt(options.attempt))
      return Promise.reject(
        createError('SIPC_ERR_INVALID_ARGUMENT', 'attempt must be an integer from 2 to 255'),
      );
    // Checked on every version, though only version 4 sends it: the argument is wrong either way.
    if (options.tracestate !== undefined && !isTracestate(options.tracestate))
      return Promise.reject(
        createError(
          'SIPC_ERR_INVALID_ARGUMENT',
          'tracestate must be a W3C tracestate: at most 512 characters and 32 key=value members, no key twice',
        ),
      );
    const closed = this.#session.closeError;
    if (closed !== undefined) return Promise.reject(unsent(closed));
    if (this.#goneAway !== undefined) return Promise.reject(notExecuted(false));
    if (isAsyncIterable(params)) {
      // Checked before anything is sent: a version-1 peer would close the channel on kind 9.
      if ((this.#session.channel.version ?? 1) < 2)
        return Promise.reject(
          createError(
            'SIPC_ERR_VERSION_MISMATCH',
            'The peer speaks protocol version 1, which has no streamed input (client or bidirectional streams); it needs version 2',
          ),
        );
      if (options.idempotencyKey !== undefined)
        return Promise.reject(
          createError('SIPC_ERR_INVALID_ARGUMENT', 'A request with a streamed input cannot be idempotent'),
        );
    }
    if (signal?.aborted)
      return Promise.reject(createError('SIPC_ERR_ABORTED', undefined, { cause: signal.reason }));
    const deadline = timeoutMs === undefined ? undefined : Date.now() + timeoutMs;
    return new Promise((resolve, reject) => {
      if (this.#queue.size === 0 && this.#pending.size < this.#maxInFlight)
        return this.#start(method, params, options, deadline, trace, resolve, reject);
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
          this.#start(method, params, options, deadline, trace, resolve, reject);
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
      if (timeoutMs !== undefined)
        timer = setTimeout(
          () => drop(createError('SIPC_ERR_TIMEOUT', `Request timed out after ${timeoutMs} ms`)),
          timeoutMs,
        );
      this.#queue.push(queued);
    });
  }

  #start(
    method: string,
    params: unknown,
    options: RequestOptions,
    deadline: number | undefined,
    trace: ClientRequestMessage | undefined,
    resolve: (value: unknown) => void,
    reject: (err: unknown) => void,
  ): void {
    const closed = this.#session.closeError;
    if (closed !== undefined) {
      reject(unsent(closed));
      return;
    }
    if (this.#goneAway !== undefined) {
      reject(notExecuted(false));
      return;
    }
    // The API's names become the wire's header keys here (the dispatcher maps them back).
    let h: EnvelopeHeaders | undefined;
    const streamed = isAsyncIterable(params);
    if (
      deadline !== undefined ||
      options.idempotencyKey !== undefined ||
      options.traceparent !== undefined ||
      options.attempt !== undefined ||
      streamed
    ) {
      h = {};
      // The header carries what is left of the caller's budget after any wait for a slot.
      if (deadline !== undefined) h.timeout = Math.max(1, deadline - Date.now());
      if (options.idempotencyKey !== undefined) h.idem = options.idempotencyKey;
      if (options.traceparent !== undefined) h.trace = options.traceparent;
      if (streamed) h.stream = true;
      // Version 3 only: a lower-version peer would refuse the header (the attempt is not sent).
      if (options.attempt !== undefined && (this.#session.channel.version ?? 1) >= 3)
        h.attempt = options.attempt;
      // Version 4 only, and only with a traceparent (W3C); left out otherwise, the request still goes.
      if (
        options.tracestate !== undefined &&
        h.trace !== undefined &&
        (this.#session.channel.version ?? 1) >= 4
      )
        h.tracestate = options.tracestate;
    }
    const id = this.#nextId++;
    let bytes: EncodedEnvelope;
    try {
      bytes = encodeEnvelopeSplit({ k: Kind.Request, id, m: method, p: streamed ? undefined : params, h });
    } catch (err) {
      reject(err);
      return;
    }
    const { signal, timeoutMs } = options;
    const pending: Pending = {
      id,
      resolve,
      reject,
      settled: false,
      stream: undefined,
      input: undefined,
      timer: undefined,
      signal,
      onAbort: undefined,
      trace,
    };
    this.#pending.set(id, pending);
    if (h?.timeout !== undefined) {
      pending.timer = setTimeout(
        () =>
          this.#giveUp(pending, createError('SIPC_ERR_TIMEOUT', `Request timed out after ${timeoutMs} ms`)),
        h.timeout,
      );
    }
    if (signal !== undefined) {
      pending.onAbort = () =>
        this.#giveUp(pending, createError('SIPC_ERR_ABORTED', undefined, { cause: signal.reason }));
      signal.addEventListener('abort', pending.onAbort, { once: true });
    }
    this.#session.send(bytes)?.catch((err) => {
      // Not sent (closed, or too large for the channel): nothing to cancel remotely.
      this.#settle(pending, err);
      this.#free(pending);
      reject(err);
    });
    if (streamed && !pending.settled) pending.input = this.#sendInput(pending, params);
  }

  /** Send the items of a streamed input on credit (kinds 9, then 10), until the call is over. */
  #sendInput(pending: Pending, source: AsyncIterable<unknown>): InputSender {
    const { id } = pending;
    return new InputSender(
      source,
      (item) => this.#session.send(encodeEnvelope({ k: Kind.InputItem, id, p: item })),
      () => {
        this.#session.send(encodeEnvelope({ k: Kind.InputEnd, id }))?.catch(noop);
      },
      (err) =>
        this.#giveUp(
          pending,
          createError('SIPC_ERR_STREAM', "The request's input stream failed", { cause: err }),
        ),
    );
  }

  /** The peer grants `n` more input items for our request `id` (kind 11). */
  onInputCredit(id: number, n: number): void {
    this.#pending.get(id)?.input?.gate.grant(n);
  }

  /** The peer reads no more of our request `id`'s input (kind 12): stop pulling it. */
  onInputStop(id: number): void {
    this.#pending.get(id)?.input?.stop();
  }

  /** Send a one-way event (after any requests still waiting for a slot, to keep call order). */
  publish(topic: string, payload?: unknown): Promise<void> {
    if (!traced(tracing.eventPublish)) return this.#publish(topic, payload);
    const message: EventMessage = {
      v: 1,
      channelId: this.#session.channel.id,
      peer: this.#peerId,
      topic,
      queued: 1,
      dropped: 0,
      code: undefined,
    };
    return tracePromiseOf(tracing.eventPublish, message, () => this.#publish(topic, payload));
  }

  #publish(topic: string, payload: unknown): Promise<void> {
    let bytes: EncodedEnvelope;
    try {
      bytes = encodeEnvelopeSplit({ k: Kind.Event, m: topic, p: payload });
    } catch (err) {
      return Promise.reject(err);
    }
    return this.sendEncoded(bytes);
  }

  /** Send an already encoded event envelope (the server encodes a publish once for all peers). */
  sendEncoded(bytes: EncodedEnvelope): Promise<void> {
    return this.trySendEncoded(bytes) ?? Promise.resolve();
  }

  /** Like sendEncoded, but undefined when the event was written at once (the channel's fast path). */
  trySendEncoded(encoded: EncodedEnvelope): Promise<void> | undefined {
    const { channel, closeError } = this.#session;
    if (closeError !== undefined) return Promise.reject(closeError);
    if (this.#queue.size === 0) return this.#session.send(encoded);
    // Waits behind queued requests: joined now, so the bytes sent are the payload as it was.
    const bytes = joinEnvelope(encoded);
    return new Promise((resolve, reject) => {
      this.#queue.push({
        usesSlot: false,
        dropped: false,
        start: () => channel.send(bytes).then(resolve, reject),
        reject,
      });
    });
  }

  /** The caller stops waiting: reject now, tell the peer, keep the slot until the peer answers. */
  #giveUp(pending: Pending, err: SecureIpcError): void {
    if (pending.settled) return;
    this.#settle(pending, err);
    if (pending.stream !== undefined) pending.stream.fail(err, true);
    else pending.reject(err);
    if (this.#session.closeError === undefined)
      this.#session.channel.send(encodeEnvelope({ k: Kind.Cancel, id: pending.id })).catch(noop);
  }

  /** The call is over for its caller: answered, or failed with `error`. */
  #settle(pending: Pending, error?: unknown): void {
    pending.settled = true;
    if (pending.trace !== undefined) finishTraced(tracing.clientRequest, pending.trace, error);
    // The call is over (answered, given up, closed): its input, if any, stops with it.
    pending.input?.stop();
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

  /** A reply (kind 2, 3, 6 or 7) to one of our requests. */
  onReply(env: Envelope): void {
    const pending = this.#pending.get(env.id!);
    if (pending === undefined) return; // a late reply after close of the slot: nothing waits for it
    switch (env.k) {
      case Kind.Response:
        this.#free(pending);
        if (pending.settled) return;
        if (pending.stream !== undefined) {
          const err = createError('SIPC_ERR_PROTOCOL', 'The peer sent a response inside a stream');
          this.#settle(pending, err);
          pending.stream.fail(err);
        } else {
          this.#settle(pending);
          pending.resolve(env.p);
        }
        return;
      case Kind.Error: {
        this.#free(pending);
        if (pending.settled && pending.stream === undefined) return;
        const err = fromWireError(env.e as WireError);
        this.#settle(pending, err);
        if (pending.stream !== undefined) pending.stream.fail(err);
        else pending.reject(err);
        return;
      }
      case Kind.StreamItem: {
        if (pending.settled && pending.stream === undefined) return;
        const stream = this.#streamOf(pending);
        if (!stream.push(env.p)) {
          const err = createError('SIPC_ERR_PROTOCOL', 'The peer sent stream items beyond its credit');
          this.#session.onError(err);
          void this.#session.channel.close(err);
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

  /** A malformed reply to our request `id`: that request fails here, the peer is told to stop. */
  onInvalidReply(id: number, error: SecureIpcError): void {
    const pending = this.#pending.get(id);
    if (pending === undefined) return;
    this.#giveUp(pending, error);
    this.#free(pending);
  }

  #streamOf(pending: Pending): RemoteStream<unknown> {
    if (pending.stream !== undefined) return pending.stream;
    const id = pending.id;
    const stream = new RemoteStream<unknown>(
      DEFAULT_STREAM_WINDOW,
      (n) => {
        if (this.#session.closeError === undefined && this.#pending.get(id) === pending)
          this.#session.channel.send(encodeEnvelope({ k: Kind.Credit, id, p: n })).catch(noop);
      },
      () => this.#giveUp(pending, createError('SIPC_ERR_CANCELLED')),
    );
    pending.stream = stream;
    // The caller's promise resolves with the stream at its first item (or its end); the caller's
    // timeout and signal keep applying until the stream ends.
    pending.resolve(stream);
    return stream;
  }

  /** The channel closed with `err`: every request in flight or waiting, and every stream, fails. */
  close(err: SecureIpcError): void {
    for (const pending of this.#pending.values()) {
      if (!pending.settled || pending.stream !== undefined) {
        this.#settle(pending, err);
        if (pending.stream !== undefined) pending.stream.fail(err);
        else pending.reject(err);
      }
    }
    this.#pending.clear();
    const notWritten = unsent(err);
    for (const q of this.#queue.drain()) if (!q.dropped) q.reject(q.usesSlot ? notWritten : err);
  }

  /**
   * The peer's kind 13 (protocol version 3): it runs none of our requests above `lastId`. Those
   * fail here with SIPC_ERR_UNAVAILABLE (`details.notExecuted`), their answers are dropped as
   * answers to unknown ids, and no new request is sent on this channel (waiting ones fail, unsent).
   * False, and nothing changed, for a second kind 13 or an id above every id we sent (a protocol
   * error: the caller closes the channel).
   */
  onGoingAway(lastId: number): boolean {
    if (this.#goneAway !== undefined || lastId >= this.#nextId) return false;
    this.#goneAway = lastId;
    for (const pending of [...this.#pending.values()]) {
      if (pending.id <= lastId) continue;
      this.#pending.delete(pending.id);
      if (pending.settled && pending.stream === undefined) continue;
      const err = notExecuted(true);
      this.#settle(pending, err);
      if (pending.stream !== undefined) pending.stream.fail(err);
      else pending.reject(err);
    }
    for (const q of this.#queue.drain()) {
      if (q.dropped) continue;
      if (q.usesSlot) q.reject(notExecuted(false));
      else q.start(); // an event waiting behind a request: events still flow
    }
    return true;
  }
}
