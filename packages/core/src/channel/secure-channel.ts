/**
 * The secure channel: a Connection after a Noise_XX handshake, carrying whole messages in
 * encrypted, authenticated frames (1 flag byte + chunk per frame, chunked and reassembled),
 * with rekeying, flow control and a single 'close' event. Wire format: docs/protocol.md.
 */
import { EventEmitter } from 'node:events';
import {
  CLOSE_EXPIRED,
  CLOSE_NORMAL,
  CLOSE_REVOKED,
  CONTROL_ACCEPTED,
  CONTROL_CLOSE,
  CONTROL_REFUSED,
  DEFAULT_CLOSE_TIMEOUT_MS,
  DEFAULT_MAX_MESSAGE_SIZE,
  DEFAULT_REKEY,
  FLAG_CONTROL,
  MAX_CHUNK_SIZE,
  MAX_FRAME_SIZE,
  MAX_TIMER_MS,
  REFUSED_BUSY,
} from '../constants.js';
import {
  type ChannelCloseMessage,
  type ChannelOpenMessage,
  DIAGNOSTICS_VERSION,
  diagnostics,
  nextChannelId,
} from '../diagnostics/channels.js';
import { installDebugLog } from '../diagnostics/log.js';
import { type HandshakeMessage, traced, tracePromiseOf, tracing } from '../diagnostics/tracing.js';
import { createError, type SecureIpcError, toSecureIpcError } from '../errors.js';
import type { FrameReader, FrameReaderOwner } from '../framing.js';
import type { NoiseCipherState } from '../handshake/cipher-state.js';
import { type HandshakeResult, performHandshake } from '../handshake/perform-handshake.js';
import { keyFingerprint } from '../keys/key-pair.js';
import type { AbortOptions, Connection, PeerInfo } from '../transport/contract.js';
import {
  type ChannelEvents,
  type ChannelOptions,
  type CloseInfo,
  closeInfoOf,
  type EstablishOptions,
  type SecureChannel,
  validateChannelOptions,
} from './options.js';
import { CONTROL_FRAME, Reassembly } from './reassembly.js';
import { SendQueue } from './send-queue.js';

/** Open a channel as the initiator over an established connection. */
export async function secureConnect(connection: Connection, options: ChannelOptions): Promise<SecureChannel> {
  return establish(connection, { ...options, initiator: true });
}

/** Accept a channel as the responder over an inbound connection. */
export async function secureAccept(connection: Connection, options: ChannelOptions): Promise<SecureChannel> {
  return establish(connection, { ...options, initiator: false });
}

/** Run the handshake and wrap the connection (internal options allowed, for tests and the listener). */
export async function establish(
  connection: Connection,
  options: EstablishOptions,
): Promise<SecureChannelImpl> {
  validateChannelOptions(options);
  return establishValidated(connection, options);
}

/** `establish` with options already validated (the listener checks its options once, not per connection). */
export async function establishValidated(
  connection: Connection,
  options: EstablishOptions,
): Promise<SecureChannelImpl> {
  installDebugLog(); // NODE_DEBUG=secure-ipc, checked once per process
  if (!traced(tracing.handshake)) return openChannel(connection, options);
  const message: HandshakeMessage = {
    v: 1,
    role: options.initiator ? 'initiator' : 'responder',
    channelId: undefined,
    peer: undefined,
    protocolVersion: undefined,
    code: undefined,
  };
  const channel = await tracePromiseOf(tracing.handshake, message, async () => {
    const opened = await openChannel(connection, options);
    message.channelId = opened.id;
    message.peer = opened.fingerprint;
    message.protocolVersion = opened.version;
    return opened;
  });
  return channel;
}

async function openChannel(connection: Connection, options: EstablishOptions): Promise<SecureChannelImpl> {
  const result = await performHandshake(connection, options);
  const channel = new SecureChannelImpl(connection, result, options);
  // Version 2 (protocol 3.8): the initiator's channel is open only once the responder accepted it;
  // the responder accepts here unless its caller (the listener's admission caps) decides first.
  if (options.initiator) await channel[kAccepted];
  else if (options.deferAcceptance !== true) channel[kAccept]();
  return channel;
}

/** Internal (the listener): send the acceptance of a version-2 channel (protocol 3.8); no-op on version 1. */
export const kAccept: unique symbol = Symbol('accept');
/**
 * Internal (the listener): refuse the channel with `error` (locally) and, on version 2, the REFUSED
 * control message with a public reason byte (REFUSED_BUSY), then end it; version 1 is torn down.
 */
export const kRefuse: unique symbol = Symbol('refuse');
/** Internal: the initiator's wait for the acceptance (resolved at once on version 1). */
const kAccepted: unique symbol = Symbol('accepted');

/** Options of `sendChunked`. */
export interface SendChunkedOptions {
  /** Bytes of the message per frame, 1 to 65,518 (the most a frame carries). */
  chunkSize: number;
  /**
   * Mark the last frame as the message's last (default true). With false the message stays
   * unfinished: the peer keeps reassembling, and the next send continues the same message.
   */
  final?: boolean;
}

/**
 * Send `bytes` on `channel` as frames of `chunkSize`-byte chunks, as a peer that chunks its
 * messages differently would: for tests of a receiver's limits (the conformance suite's abuse
 * cases send one-byte chunks that never finish a message). Applications use `send()`, which
 * picks the largest chunks. This grants nothing a peer lacks (any peer chunks its own messages
 * as it likes, within the protocol); the receiver's `maxMessageSize` is deliberately not checked
 * here, only by the receiver. Resolves once the transport accepted every frame. Rejects
 * `SIPC_ERR_INVALID_ARGUMENT` on a bad chunk size, `SIPC_ERR_CHANNEL_CLOSED` once closing, and
 * `SIPC_ERR_BUSY` if other sends are still queued (await them first).
 */
export function sendChunked(
  channel: SecureChannel,
  bytes: Uint8Array,
  options: SendChunkedOptions,
): Promise<void> {
  const { chunkSize, final = true } = options;
  if (!(channel instanceof SecureChannelImpl))
    return Promise.reject(createError('SIPC_ERR_INVALID_ARGUMENT', 'channel must be a secure channel'));
  if (!(bytes instanceof Uint8Array))
    return Promise.reject(createError('SIPC_ERR_INVALID_ARGUMENT', 'bytes must be a Uint8Array'));
  if (!(Number.isSafeInteger(chunkSize) && chunkSize >= 1 && chunkSize <= MAX_CHUNK_SIZE))
    return Promise.reject(
      createError('SIPC_ERR_INVALID_ARGUMENT', `chunkSize must be an integer from 1 to ${MAX_CHUNK_SIZE}`),
    );
  return channel[kSendChunked](bytes, chunkSize, final);
}

const kSendChunked: unique symbol = Symbol('sendChunked');

/** The public reason a REFUSED control message gives, by its reason byte (others: unspecified). */
function refusedByServer(reason: number | undefined): SecureIpcError {
  if (reason === REFUSED_BUSY)
    return createError(
      'SIPC_ERR_REFUSED',
      'The server refused the channel: busy (over a limit on connections); retry later',
      { details: { reason: 'busy', retryable: true }, cause: createError('SIPC_ERR_BUSY') },
    );
  return createError('SIPC_ERR_REFUSED', 'The server refused the channel (no reason given)', {
    details: { reason: 'unspecified', retryable: false },
  });
}

/** Why a version-2 channel ended before the responder accepted it (protocol 3.8), for `connect()`. */
function notAccepted(error: SecureIpcError | undefined): SecureIpcError {
  if (error !== undefined && PASSED_THROUGH.has(error.code)) return error;
  if (error === undefined || CLOSED_CODES.has(error.code))
    return createError(
      'SIPC_ERR_REFUSED',
      'The server closed the connection before accepting this client: usually it does not trust ' +
        "this client's key (or the key or its certificate is revoked or expired), or it is shutting down",
      { details: { reason: 'closed', retryable: false }, cause: error },
    );
  return createError(
    'SIPC_ERR_REFUSED',
    `The server sent something other than the acceptance of the channel: ${error.message}`,
    { details: { reason: 'protocol', retryable: false }, cause: error },
  );
}
const PASSED_THROUGH = new Set(['SIPC_ERR_REFUSED', 'SIPC_ERR_HANDSHAKE_TIMEOUT', 'SIPC_ERR_ABORTED']);
const CLOSED_CODES = new Set(['SIPC_ERR_CONNECTION_CLOSED', 'SIPC_ERR_TRUNCATED', 'SIPC_ERR_CHANNEL_CLOSED']);

const ACCEPTED_MESSAGE = Uint8Array.of(CONTROL_ACCEPTED);

/** The CLOSE reason byte a local close with `error` sends (protocol 7): revoked and expired are told. */
function closeReasonByte(error: SecureIpcError | undefined): number {
  if (error?.code === 'SIPC_ERR_REVOKED') return CLOSE_REVOKED;
  if (error?.code === 'SIPC_ERR_CERT_EXPIRED') return CLOSE_EXPIRED;
  return CLOSE_NORMAL;
}

/** What the peer's CLOSE reason means here: undefined for a normal close. */
function peerCloseError(reason: number): SecureIpcError | undefined {
  if (reason === CLOSE_REVOKED)
    return createError(
      'SIPC_ERR_REVOKED',
      "The peer closed the channel: it revoked this side's key or certificate",
      {
        details: { by: 'peer' },
      },
    );
  if (reason === CLOSE_EXPIRED)
    return createError(
      'SIPC_ERR_CERT_EXPIRED',
      "The peer closed the channel: this side's admission (its certificate) expired",
      { details: { by: 'peer' } },
    );
  return undefined;
}

/** Frames opened per `pump` call at most before yielding the event loop (see `pump`). */
const FRAMES_PER_TURN = 1024;

/**
 * Internal fast send used by the RPC layer: like `send()`, but returns `undefined` instead of a
 * resolved promise when the message was written at once, so a request or reply costs no promise,
 * no reaction closure and no microtask. Not part of the public API.
 */
export const kTrySend: unique symbol = Symbol.for('@secure-ipc/core/channel.trySend');

/**
 * Internal, the RPC layer: `kTrySend` of the message `head` followed by `tail` (an envelope and
 * its binary payload), each copied once into the frames instead of being joined first. Joined
 * (copied now) when the send must wait, so a queued message never depends on the caller's buffer.
 */
export const kTrySendSplit: unique symbol = Symbol.for('@secure-ipc/core/channel.trySendSplit');

/** The channel implementation (exported for tests; use the `SecureChannel` interface). */
export class SecureChannelImpl
  extends EventEmitter<ChannelEvents>
  implements SecureChannel, FrameReaderOwner
{
  readonly role: 'initiator' | 'responder';
  readonly localStaticKey: Uint8Array;
  readonly remoteStaticKey: Uint8Array;
  readonly handshakeHash: Uint8Array;
  readonly peer: PeerInfo;
  readonly remotePayload: Readonly<Record<string, unknown>>;
  readonly roles: readonly string[];
  readonly version: number;
  readonly id = nextChannelId();
  readonly openedAt = Date.now();
  #fingerprint: string | undefined;

  private readonly connection: Connection;
  private readonly reassembly: Reassembly;
  private readonly reader: FrameReader;
  private readonly maxMessageSize: number;
  private readonly closeTimeoutMs: number;

  private backlog: Uint8Array[] = [];
  private userPaused = false;
  private remoteEnded = false;
  private connectionClosed = false;
  private started = false;
  /** Our side of the stream was ended (every send before close() was handed to the transport). */
  private ended = false;

  private readonly sends: SendQueue;

  private state: 'open' | 'closing' | 'closed' = 'open';
  private closePromise: Promise<void> | undefined;
  private closeResolve: (() => void) | undefined;
  private expiryTimer: NodeJS.Timeout | undefined;
  private closeTimer: NodeJS.Timeout | undefined;
  private turnScheduled = false;
  /** Why this side refused the channel, or the peer's CLOSE reason (the 'close' event reports it). */
  private closeReason: SecureIpcError | undefined;
  /** Version 2: this side sent its CLOSE (or REFUSED); nothing more goes out. */
  private closeSent = false;
  /** Version 2: the reason byte of the peer's CLOSE, once it arrived; no frame may follow it. */
  private peerClosed: number | undefined;
  /** Tearing down after a CLOSE with a reason: our end is sent and reads are discarded until the peer goes. */
  private lingering = false;
  /**
   * Version 2: the initiator waiting for the responder's acceptance (protocol 3.8), or the
   * responder that has not sent it yet; undefined once accepted (and always on version 1).
   */
  private acceptance:
    | {
        readonly resolve: () => void;
        readonly reject: (e: SecureIpcError) => void;
        readonly stop: () => void;
      }
    | 'unsent'
    | undefined;
  /** The initiator's wait for the acceptance: resolved once accepted (at once on version 1). */
  readonly [kAccepted]: Promise<void>;

  /** Wrap a connection whose handshake just finished. */
  constructor(connection: Connection, result: HandshakeResult, options: EstablishOptions) {
    super();
    this.role = options.initiator ? 'initiator' : 'responder';
    this.localStaticKey = Buffer.from(options.keyPair.publicKey);
    this.remoteStaticKey = result.remoteStaticKey;
    this.handshakeHash = result.handshakeHash;
    this.peer = connection.peer;
    this.remotePayload = result.remotePayload;
    this.roles = result.roles;
    this.version = result.version;
    this.connection = connection;
    const rekey = {
      messages: options.rekey?.messages ?? DEFAULT_REKEY.messages,
      bytes: options.rekey?.bytes ?? DEFAULT_REKEY.bytes,
      intervalMs: options.rekey?.intervalMs ?? DEFAULT_REKEY.intervalMs,
    };
    this.sends = new SendQueue(connection, result.tx, rekey);
    this.reader = result.reader;
    this.reader.limit = MAX_FRAME_SIZE;
    this.maxMessageSize = options.maxMessageSize ?? DEFAULT_MAX_MESSAGE_SIZE;
    this.closeTimeoutMs = options.closeTimeoutMs ?? DEFAULT_CLOSE_TIMEOUT_MS;
    this.reassembly = new Reassembly(result.rx, this.maxMessageSize, this.version);
    this.remoteEnded = result.ended;
    this[kAccepted] =
      this.version >= 2 && this.role === 'initiator'
        ? this.awaitAcceptance(result.deadline, options.signal)
        : Promise.resolve();
    if (this.version >= 2 && this.role === 'responder') this.acceptance = 'unsent';

    this.reader.handTo(this);
    if (diagnostics.channelOpen.hasSubscribers) this.publishOpen(result.expiresAt);
    if (result.expiresAt !== undefined) this.armExpiry(result.expiresAt);
    // Start reading after the caller's `await` continuation ran, so it can attach 'message' first;
    // messages that still find no listener wait in the backlog (reading pauses meanwhile).
    (this as EventEmitter).on('newListener', (event: string | symbol) => {
      if (event === 'message') setImmediate(() => this.pump());
    });
    setImmediate(() => {
      this.started = true;
      // The transport may have closed already (the peer sent message 3, data and its end at once):
      // deliver what the decoder holds, then finish without waiting for a 'close' that has passed.
      if (connection.destroyed) {
        this.remoteEnded = true;
        this.connectionClosed = true;
      }
      this.pump();
    });
  }

  /** FrameReaderOwner: bytes arrived, or the peer ended its side. */
  onReadable(): void {
    if (this.reader.ended) this.remoteEnded = true;
    this.pump();
  }

  /** FrameReaderOwner: the connection closed. */
  onClose(): void {
    this.connectionClosed = true;
    if (this.state === 'closing') this.finalize(undefined);
    // After a clean end the decoder may still hold frames (a paused reader): deliver them first;
    // onRemoteEnd finishes the close once they are read.
    else if (this.remoteEnded) this.pump();
    // The peer said CLOSE, then its stream reset rather than ended: it closed all the same.
    else if (this.peerClosed !== undefined) this.finalize(undefined);
    else this.destroy(createError('SIPC_ERR_CONNECTION_CLOSED', this.vanishedMessage()));
  }

  private vanishedMessage(): string | undefined {
    return this.version >= 2
      ? 'The peer went away without closing the channel (its process exited, crashed or was killed, or the connection broke)'
      : undefined;
  }

  // Version 2: announce the end of the channel (protocol 7), once, if the acceptance is behind us.
  private sendClose(reason: number): void {
    if (this.version < 2 || this.closeSent || this.acceptance !== undefined) return;
    this.closeSent = true;
    this.sends
      .writeNow(Uint8Array.of(CONTROL_CLOSE, reason), MAX_CHUNK_SIZE, true, FLAG_CONTROL)
      ?.catch(() => {});
  }

  /** FrameReaderOwner: the connection failed. */
  onFailure(error: SecureIpcError): void {
    // After the peer's CLOSE a reset is how its end may arrive (a listener close destroys its
    // connections): the channel was closed all the same, for the reason the CLOSE gave.
    if (this.peerClosed !== undefined && error.code === 'SIPC_ERR_CONNECTION_CLOSED')
      this.finalize(undefined);
    else this.destroy(error);
  }

  /** True once closing started. */
  get closed(): boolean {
    return this.state !== 'open';
  }

  // A getter, so TypeScript does not narrow it away across calls that may close the channel.
  private get finalized(): boolean {
    return this.state === 'closed';
  }

  /** Bytes handed to send() and not yet accepted by the transport (see SendQueue.queuedBytes). */
  get queuedBytes(): number {
    return this.sends.queuedBytes;
  }

  /** The transport cipher states (tests check they are wiped on close). */
  get cipherStates(): { tx: NoiseCipherState; rx: NoiseCipherState } {
    return { tx: this.sends.writer.tx, rx: this.reassembly.rx };
  }

  send(message: Uint8Array, options?: AbortOptions): Promise<void> {
    if (!(message instanceof Uint8Array))
      return Promise.reject(createError('SIPC_ERR_INVALID_ARGUMENT', 'message must be a Uint8Array'));
    if (this.state !== 'open') return Promise.reject(createError('SIPC_ERR_CHANNEL_CLOSED'));
    if (message.byteLength > this.maxMessageSize)
      return Promise.reject(
        createError(
          'SIPC_ERR_MESSAGE_TOO_LARGE',
          `Message of ${message.byteLength} bytes exceeds ${this.maxMessageSize}`,
        ),
      );
    const signal = options?.signal;
    if (signal?.aborted)
      return Promise.reject(createError('SIPC_ERR_ABORTED', undefined, { cause: signal.reason }));
    // Fast path: nothing queued, no backpressure: encrypt and write now, no promise chain.
    if (this.sends.idle) return this.sends.writeNow(message) ?? Promise.resolve();
    return this.sends.enqueue(message, signal);
  }

  /** See `kTrySend`: the checks of `send()` without a signal; undefined once written at once. */
  [kTrySend](message: Uint8Array): Promise<void> | undefined {
    if (
      this.state === 'open' &&
      this.sends.idle &&
      message instanceof Uint8Array &&
      message.byteLength <= this.maxMessageSize
    )
      return this.sends.writeNow(message);
    return this.send(message);
  }

  /** See `kTrySendSplit`. */
  [kTrySendSplit](head: Uint8Array, tail: Uint8Array): Promise<void> | undefined {
    if (this.state === 'open' && this.sends.idle && head.byteLength + tail.byteLength <= this.maxMessageSize)
      return this.sends.writeNow(head, MAX_CHUNK_SIZE, true, 0, tail);
    return this.send(Buffer.concat([head, tail]));
  }

  /** See `sendChunked` (arguments checked there). */
  [kSendChunked](bytes: Uint8Array, chunkSize: number, final: boolean): Promise<void> {
    if (this.state !== 'open') return Promise.reject(createError('SIPC_ERR_CHANNEL_CLOSED'));
    if (!this.sends.idle)
      return Promise.reject(createError('SIPC_ERR_BUSY', 'sendChunked needs a channel with no send queued'));
    return this.sends.writeNow(bytes, chunkSize, final) ?? Promise.resolve();
  }

  pause(): void {
    // A closing channel keeps reading (and discarding) until the peer's end: see close().
    if (this.state !== 'open') return;
    this.userPaused = true;
    this.connection.pause();
  }

  resume(): void {
    this.userPaused = false;
    this.pump();
  }

  /** `await using channel = await secureConnect(...)`: closes the channel at the end of the scope. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  close(error?: Error): Promise<void> {
    if (error !== undefined) {
      this.destroy(toSecureIpcError(error, 'SIPC_ERR_CHANNEL_CLOSED'));
      return this.closed$();
    }
    if (this.state !== 'open') return this.closed$();
    this.state = 'closing';
    // The deadline is armed now, not once the pending sends are out: a peer that does not read
    // would otherwise keep them (and this promise) pending forever. Not unref'd: the close promise
    // must settle even if the peer never answers.
    this.closeTimer = setTimeout(() => this.onCloseDeadline(), this.closeTimeoutMs);
    // From here on incoming messages are read and discarded (not delivered), whatever pause() or
    // a waiting backlog said: the peer's end-of-stream must be seen for the close to complete.
    this.backlog = [];
    this.pump();
    const end = () => {
      if (this.state === 'closed') return;
      this.sendClose(CLOSE_NORMAL);
      this.ended = true;
      this.connection.end();
      // Keep reading until the peer ends too (or the deadline), so no reset hits data in flight.
      if (this.remoteEnded) this.pump();
    };
    this.sends.afterAll(end);
    return this.closed$();
  }

  // The close deadline passed: tear the connection down. Clean if everything was sent and only
  // the peer's end was missing; otherwise what was still queued is lost, and the close says so.
  private onCloseDeadline(): void {
    if (this.state === 'closed') return;
    const unsent = this.sends.queuedBytes;
    this.destroy(
      this.ended
        ? undefined
        : createError(
            'SIPC_ERR_TIMEOUT',
            `The close did not finish within ${this.closeTimeoutMs} ms (closeTimeoutMs): the peer did not read; ${unsent} bytes were not sent`,
          ),
    );
  }

  private closed$(): Promise<void> {
    if (this.state === 'closed') return Promise.resolve();
    this.closePromise ??= new Promise<void>((resolve) => {
      this.closeResolve = resolve;
    });
    return this.closePromise;
  }

  // Decrypts and delivers every complete frame while reading is allowed, at most FRAMES_PER_TURN
  // per call: past that the connection pauses (so the transport stops reading too) and the rest
  // is opened on the next event-loop turn, after other connections had theirs. A peer sending
  // one-byte frames puts ~3,300 of them in each 64 KiB socket read, and libuv hands up to 32
  // reads of one socket to us in a row: 100,000 frames blocked the event loop for 0.6-1.1 s under
  // load, and every other peer waited (conformance suite, abuse row 2: legitimate p99 1.3 s;
  // 0.08 s with the cap). Normal traffic never reaches it: a 16 MiB message is 257 frames, and a
  // 64 KiB read of 100-byte requests about 550.
  private pump(): void {
    if (!this.started || this.state === 'closed') return;
    this.flushBacklog();
    let frames = 0;
    while (this.canRead()) {
      if (++frames > FRAMES_PER_TURN) {
        this.nextTurn();
        return;
      }
      let message: Uint8Array | undefined;
      try {
        const frame = this.reader.next();
        if (frame === undefined) break;
        const opened = this.reassembly.open(frame);
        if (opened === CONTROL_FRAME) {
          this.onControl(this.reassembly.control!);
          if (this.finalized) return;
          continue;
        }
        if (this.peerClosed !== undefined)
          throw createError('SIPC_ERR_PROTOCOL', 'A frame arrived after the peer closed the channel');
        if (this.acceptance !== undefined)
          throw createError(
            'SIPC_ERR_PROTOCOL',
            this.role === 'initiator'
              ? 'The responder sent a transport frame before accepting the channel'
              : 'A frame arrived before this side accepted the channel',
          );
        message = opened;
      } catch (err) {
        this.destroy(toSecureIpcError(err, 'SIPC_ERR_PROTOCOL'));
        return;
      }
      if (message !== undefined) this.deliver(message);
    }
    if (this.finalized) return;
    if (this.remoteEnded && this.canRead()) {
      this.onRemoteEnd();
      return;
    }
    if (this.canRead()) this.connection.resume();
    else this.connection.pause();
  }

  // Out of frames for this turn: stop the transport reading, and pump again on the next turn.
  private nextTurn(): void {
    this.connection.pause();
    if (this.turnScheduled) return;
    this.turnScheduled = true;
    setImmediate(() => {
      this.turnScheduled = false;
      this.pump();
    });
  }

  private canRead(): boolean {
    if (this.state === 'closing') return true;
    return this.state === 'open' && !this.userPaused && this.backlog.length === 0;
  }

  private deliver(message: Uint8Array): void {
    // After close() started, late messages are read (to let the peer finish) but not delivered.
    if (this.state !== 'open') return;
    if (this.listenerCount('message') === 0) {
      this.backlog.push(message);
      return;
    }
    this.emitMessage(message);
  }

  private flushBacklog(): void {
    while (
      this.backlog.length > 0 &&
      !this.userPaused &&
      this.listenerCount('message') > 0 &&
      this.state === 'open'
    )
      this.emitMessage(this.backlog.shift()!);
    if (this.state !== 'open') this.backlog = [];
  }

  private emitMessage(message: Uint8Array): void {
    try {
      this.emit('message', message);
    } catch (err) {
      // A throwing listener is the application's bug: surface it as usual, keep the channel consistent.
      process.nextTick(() => {
        throw err;
      });
    }
  }

  // The initiator's wait for ACCEPTED, bounded by the handshake deadline and its signal.
  private awaitAcceptance(deadline: number, signal: AbortSignal | undefined): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () =>
          this.destroy(
            createError(
              'SIPC_ERR_HANDSHAKE_TIMEOUT',
              'The server completed the handshake but did not accept the channel within the handshake timeout',
              { details: { waiting: 'acceptance' } },
            ),
          ),
        Math.min(Math.max(deadline - Date.now(), 0), MAX_TIMER_MS),
      );
      const onAbort = () =>
        this.destroy(createError('SIPC_ERR_ABORTED', undefined, { cause: signal?.reason }));
      const stop = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
      };
      this.acceptance = { resolve, reject, stop };
      if (signal?.aborted) queueMicrotask(onAbort);
      else signal?.addEventListener('abort', onAbort, { once: true });
    });
  }

  // A control frame (version 2 only; the reassembly refuses the flag on version 1).
  private onControl(body: Uint8Array): void {
    const waiting = this.acceptance;
    if (waiting === undefined) {
      // Accepted: the only control message now is the peer's CLOSE, once.
      if (body.length === 2 && body[0] === CONTROL_CLOSE && this.peerClosed === undefined) {
        this.peerClosed = body[1]!;
        this.closeReason = peerCloseError(body[1]!);
        return;
      }
      this.destroy(createError('SIPC_ERR_PROTOCOL', 'Unexpected control frame'));
      return;
    }
    if (this.role === 'responder' || waiting === 'unsent') {
      this.destroy(createError('SIPC_ERR_PROTOCOL', 'Unexpected control frame'));
      return;
    }
    if (body.length === 1 && body[0] === CONTROL_ACCEPTED) {
      this.acceptance = undefined;
      waiting.stop();
      waiting.resolve();
      return;
    }
    if (body.length === 2 && body[0] === CONTROL_REFUSED) {
      this.destroy(refusedByServer(body[1]));
      return;
    }
    this.destroy(createError('SIPC_ERR_PROTOCOL', 'Malformed control message'));
  }

  /** See `kAccept`. */
  [kAccept](): void {
    if (this.acceptance !== 'unsent' || this.state !== 'open') return;
    this.acceptance = undefined;
    this.sends.writeNow(ACCEPTED_MESSAGE, MAX_CHUNK_SIZE, true, FLAG_CONTROL)?.catch(() => {});
  }

  /** See `kRefuse`: `reason` is the public reason byte of the REFUSED message. */
  [kRefuse](error: SecureIpcError, reason: number): void {
    if (this.acceptance !== 'unsent' || this.state !== 'open') {
      this.destroy(error);
      return;
    }
    this.acceptance = undefined;
    this.sends
      .writeNow(Uint8Array.of(CONTROL_REFUSED, reason), MAX_CHUNK_SIZE, true, FLAG_CONTROL)
      ?.catch(() => {});
    // Ended gracefully (reading and discarding until the initiator's end, within closeTimeoutMs),
    // so that the refusal is not lost to a reset; nothing the initiator sent is delivered.
    this.closeReason = error;
    this.closeSent = true;
    this.close().catch(() => {});
  }

  private onRemoteEnd(): void {
    if (this.reader.partial || this.reassembly.partial) {
      this.destroy(createError('SIPC_ERR_TRUNCATED', 'The peer ended the stream inside a frame or message'));
      return;
    }
    if (this.state === 'open' && this.version >= 2 && this.peerClosed === undefined) {
      // Version 2 announces every close: an end without CLOSE is a peer that went away.
      this.destroy(createError('SIPC_ERR_CONNECTION_CLOSED', this.vanishedMessage()));
      return;
    }
    // The transport is already gone (a close right after the end): nothing left to flush.
    if (this.connectionClosed) {
      this.finalize(undefined);
      return;
    }
    if (this.state === 'open') {
      // The peer finished: finish our pending sends, end our side, close gracefully.
      this.close().catch(() => {});
      return;
    }
    if (this.state === 'closing' && this.connection.writableEnded) this.finalize(undefined);
  }

  private armExpiry(expiresAt: number): void {
    const delay = expiresAt - Date.now();
    this.expiryTimer = setTimeout(
      () => {
        if (Date.now() >= expiresAt)
          this.destroy(
            createError('SIPC_ERR_CERT_EXPIRED', 'The peer admission expired (certificate validity)'),
          );
        else this.armExpiry(expiresAt);
      },
      Math.min(Math.max(delay, 0), MAX_TIMER_MS),
    );
    this.expiryTimer.unref?.();
  }

  private destroy(error: SecureIpcError | undefined): void {
    if (this.state === 'closed') return;
    const reason = closeReasonByte(error);
    if (reason !== CLOSE_NORMAL && this.version >= 2 && !this.closeSent && this.acceptance === undefined) {
      // Revoked or expired here: tell the peer (CLOSE with the reason) and end our stream rather
      // than reset it, so the CLOSE is not lost; what the peer still sends is discarded.
      this.sendClose(reason);
      this.sends.writer.uncork();
      this.linger();
      this.finalize(error);
      return;
    }
    // Hand what this tick wrote to the transport first, as an uncorked write would have.
    this.sends.writer.uncork();
    this.connection.destroy();
    this.finalize(error);
  }

  // End our stream and discard input until the peer closes, at most closeTimeoutMs.
  private linger(): void {
    this.lingering = true;
    const connection = this.connection;
    this.reader.detach();
    connection.on('data', () => {});
    connection.on('error', () => {});
    const timer = setTimeout(() => connection.destroy(), this.closeTimeoutMs);
    timer.unref?.();
    connection.once('close', () => clearTimeout(timer));
    connection.end();
    connection.resume();
  }

  // Single exit: wipe keys, fail pending work, emit 'close' once.
  private finalize(error: SecureIpcError | undefined): void {
    if (this.state === 'closed') return;
    this.state = 'closed';
    clearTimeout(this.expiryTimer);
    clearTimeout(this.closeTimer);
    this.sends.writer.uncork();
    if (!this.connection.destroyed && !this.lingering) this.connection.destroy();
    this.reader.detach(); // late errors after teardown are expected, not uncaught
    this.sends.writer.tx.destroy();
    this.reassembly.rx.destroy();
    this.reassembly.clear();
    this.backlog = [];
    this.sends.close(error);
    const waiting = this.acceptance;
    if (waiting !== undefined && waiting !== 'unsent') {
      this.acceptance = undefined;
      waiting.stop();
      waiting.reject(notAccepted(error));
    }
    const reported = error ?? this.closeReason;
    const info = closeInfoOf(reported);
    if (diagnostics.channelClose.hasSubscribers) this.publishClose(info);
    this.emit('close', reported, info);
    this.closeResolve?.();
  }

  /** See `SecureChannel.fingerprint`: computed on the first read, then kept. */
  get fingerprint(): string {
    this.#fingerprint ??= keyFingerprint(this.remoteStaticKey);
    return this.#fingerprint;
  }

  private publishOpen(expiresAt: number | undefined): void {
    const message: ChannelOpenMessage = {
      v: DIAGNOSTICS_VERSION,
      channelId: this.id,
      role: this.role,
      peer: this.fingerprint,
      roles: this.roles,
      protocolVersion: this.version,
      at: this.openedAt,
      expiresAt,
    };
    diagnostics.channelOpen.publish(message);
  }

  private publishClose(info: CloseInfo): void {
    const at = Date.now();
    const message: ChannelCloseMessage = {
      v: DIAGNOSTICS_VERSION,
      channelId: this.id,
      peer: this.fingerprint,
      reason: info.reason,
      code: info.error?.code,
      durationMs: at - this.openedAt,
      at,
    };
    diagnostics.channelClose.publish(message);
  }
}
