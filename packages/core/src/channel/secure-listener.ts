/**
 * A listener wrapper that runs the responder handshake on every inbound connection, caps the
 * handshakes in progress (in total and per OS identity) and the established channels (in total,
 * per OS identity and per static key), and tracks the live channels. Established channels are
 * independent of pending handshakes. When a pending cap is full the newcomer waits for a slot
 * (reading only its message 1); once its message 1 is here it takes a free slot, or the slot of a
 * stale handshake (idle or waiting for message 3 for half the message-1 deadline) of its own
 * identity (per-identity cap) or of the identity holding the most (total cap), judged after the
 * sockets were read (admission.ts). So a burst of one client's handshakes all get through, and a
 * flood of silent connections from one user cannot lock out another; every drop and refusal is a
 * `limit` decision event.
 */
import { EventEmitter } from 'node:events';
import {
  DEFAULT_HANDSHAKE_FIRST_MESSAGE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_IDENTITY,
  DEFAULT_MAX_CONNECTIONS_PER_KEY,
  DEFAULT_MAX_PENDING_HANDSHAKES,
  DEFAULT_MAX_PENDING_HANDSHAKES_PER_IDENTITY,
  REFUSED_BUSY,
} from '../constants.js';
import { createError, type ErrorCode, type SecureIpcError, toSecureIpcError } from '../errors.js';
import { presentedKeyFingerprint } from '../handshake/trust.js';
import { keyFingerprint } from '../keys/key-pair.js';
import type { Connection, Listener, PeerInfo } from '../transport/contract.js';
import { Admission, type AdmissionCaps, type AdmissionLimit, identityOf } from './admission.js';
import { type ChannelOptions, type SecureChannel, validateChannelOptions } from './options.js';
import { establishValidated, kAccept, kRefuse, type SecureChannelImpl } from './secure-channel.js';

export type { AdmissionLimit } from './admission.js';

/** Options of `secureListen`. */
export interface SecureListenerOptions extends ChannelOptions {
  /** Most handshakes in progress at once (default 64); when full, newcomers wait for a slot, and one whose message 1 arrived may displace a stale handshake of the identity holding the most. */
  maxPendingHandshakes?: number;
  /** Most handshakes in progress from one OS identity (default 32); when full, its newcomers wait for a slot, and one whose message 1 arrived may displace a stale handshake of that identity. */
  maxPendingHandshakesPerIdentity?: number;
  /** Most established channels (default 1,024); beyond it a new channel is refused with SIPC_ERR_BUSY. */
  maxConnections?: number;
  /** Most established channels from one OS identity (default 256). */
  maxConnectionsPerIdentity?: number;
  /** Most established channels with one peer static key (default 128). */
  maxConnectionsPerKey?: number;
}

/** A `limit` decision of a secure listener: a pending handshake dropped, or a connection refused. */
export interface LimitDecision {
  /** `dropped`: a pending handshake was closed to make room; `refused`: the newcomer was closed. */
  readonly action: 'dropped' | 'refused';
  /** The cap that was full. */
  readonly limit: AdmissionLimit;
  /** Its value. */
  readonly max: number;
  /** The OS identity of the peer acted on (`unknown` where the transport cannot tell). */
  readonly identity: string;
  /** The peer acted on. */
  readonly peer: PeerInfo | undefined;
  /** Its static key, for a refused channel (the handshake finished); undefined for handshakes. */
  readonly remoteStaticKey: Uint8Array | undefined;
  /** The typed error (SIPC_ERR_HANDSHAKE_LIMIT for handshakes, SIPC_ERR_BUSY for channels). */
  readonly error: SecureIpcError;
}

/**
 * A handshake that did not give a channel, as `handshakeFailed` reports it: never payload bytes
 * or keys, only the peer's OS information, the fingerprint of the static key it presented (when
 * the handshake got that far) and the reason.
 */
export interface HandshakeFailure {
  /** `refused`: the peer authenticated but was not let in (trust decision, revocation, expiry, a cap); `failed`: anything else (timeout, protocol, authentication, no common version, a dropped handshake). */
  readonly kind: 'refused' | 'failed';
  /** The error code, e.g. SIPC_ERR_UNTRUSTED_PEER, SIPC_ERR_BUSY, SIPC_ERR_HANDSHAKE_TIMEOUT. */
  readonly code: ErrorCode;
  /** The typed error (its message and `cause` are local only; the peer saw a closed connection, or REFUSED busy). */
  readonly error: SecureIpcError;
  /** What the transport says about the peer process. */
  readonly peer: PeerInfo | undefined;
  /** Fingerprint (`keyFingerprint`) of the static key the peer presented in message 3, when it got that far. */
  readonly fingerprint: string | undefined;
  /** When (ms since the epoch). */
  readonly at: number;
}

const REFUSAL_CODES: ReadonlySet<string> = new Set([
  'SIPC_ERR_UNTRUSTED_PEER',
  'SIPC_ERR_REVOKED',
  'SIPC_ERR_CERT_EXPIRED',
  'SIPC_ERR_BAD_CERTIFICATE',
  'SIPC_ERR_BUSY',
]);

/** Events of a secure listener. */
export interface SecureListenerEvents {
  /** A handshake succeeded. */
  channel: [channel: SecureChannel];
  /**
   * A handshake failed, or was dropped or refused by a cap (SIPC_ERR_HANDSHAKE_LIMIT), or its
   * channel was refused by a connection cap (SIPC_ERR_BUSY); the listener keeps going.
   */
  handshakeError: [error: SecureIpcError, peer: PeerInfo | undefined];
  /** The same handshakes as `handshakeError`, with the presented key's fingerprint and a kind: the feed for a server's log. */
  handshakeFailed: [failure: HandshakeFailure];
  /** A cap was full: who was dropped or refused, and why (also reported as `handshakeError`). */
  limit: [decision: LimitDecision];
  /** The transport listener failed (a fatal accept error, as `ListenerEvents.error`); it closes next. */
  error: [error: SecureIpcError];
  /** `update()` took new options (what it replaced, never a key or payload byte): the feed for an audit log. */
  update: [change: ListenerUpdate];
  /** The listener closed. */
  close: [];
}

/** What one `SecureListener.update()` replaced. */
export interface ListenerUpdate {
  /** Fingerprint of the new static key, when the key pair was replaced. */
  readonly key?: string;
  /** Fingerprint of the static key it replaced, when the key pair was replaced. */
  readonly previousKey?: string;
  /** True when the trust was replaced. */
  readonly trust: boolean;
  /** True when the handshake payload was replaced (a new certificate, say). */
  readonly payload: boolean;
  /** The new handshake payload, when it was replaced (for the server to read its certificate). */
  readonly newPayload?: Readonly<Record<string, unknown>> | undefined;
}

/** A listener that hands out authenticated channels. */
export interface SecureListener extends EventEmitter<SecureListenerEvents> {
  /** The transport listener's address. */
  readonly address: string;
  /** The live channels. */
  readonly channels: ReadonlySet<SecureChannel>;
  /** Replace key pair, payload or trust for new handshakes (rotation); live channels are untouched. */
  update(options: Partial<Pick<ChannelOptions, 'keyPair' | 'payload' | 'trust'>>): void;
  /** Stop listening and close every live channel. */
  close(): Promise<void>;
}

/** Wrap a transport listener: every inbound connection becomes a `SecureChannel` or is dropped. */
export function secureListen(listener: Listener, options: SecureListenerOptions): SecureListener {
  return new SecureListenerImpl(listener, options);
}

const CAP_DEFAULTS: AdmissionCaps = {
  maxPendingHandshakes: DEFAULT_MAX_PENDING_HANDSHAKES,
  maxPendingHandshakesPerIdentity: DEFAULT_MAX_PENDING_HANDSHAKES_PER_IDENTITY,
  maxConnections: DEFAULT_MAX_CONNECTIONS,
  maxConnectionsPerIdentity: DEFAULT_MAX_CONNECTIONS_PER_IDENTITY,
  maxConnectionsPerKey: DEFAULT_MAX_CONNECTIONS_PER_KEY,
};

function capsOf(options: SecureListenerOptions): AdmissionCaps {
  const caps = { ...CAP_DEFAULTS };
  for (const name of Object.keys(CAP_DEFAULTS) as AdmissionLimit[]) {
    const value = options[name];
    if (value === undefined) continue;
    if (!Number.isSafeInteger(value) || value < 1)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', `${name} must be a positive integer`);
    caps[name] = value;
  }
  return caps;
}

class SecureListenerImpl extends EventEmitter<SecureListenerEvents> implements SecureListener {
  readonly channels = new Set<SecureChannel>();
  private options: ChannelOptions;
  private readonly admission: Admission<Connection, SecureChannel>;
  /** How to stop each pending handshake (handed over by the handshake itself). */
  private readonly cancels = new Map<Connection, (reason: SecureIpcError) => void>();
  private closing: Promise<void> | undefined;
  private reviewQueued = false;
  private reviewTimer: NodeJS.Timeout | undefined;
  private readonly onConnection = (connection: Connection) => this.accept(connection);
  private readonly onListenerClose = () => {
    this.close().catch(() => {});
  };
  // A transport listener's 'error' with nobody listening would be thrown and crash the process:
  // forward it only to those who listen for it here; the transport closes itself after it.
  private readonly onListenerError = (err: Error) => {
    if (this.listenerCount('error') > 0) this.emit('error', toSecureIpcError(err, 'SIPC_ERR_LISTEN_FAILED'));
  };

  constructor(
    private readonly listener: Listener,
    options: SecureListenerOptions,
  ) {
    super();
    validateChannelOptions(options);
    // A handshake is stale (a parked newcomer may take its slot) after half the message-1 deadline
    // idle or waiting for message 3: a client sends message 1 on connect and message 3 one round trip
    // after message 2, so only a silent, drip-feeding or stalled peer is that late.
    const firstMessageMs =
      options.handshakeFirstMessageTimeoutMs ?? DEFAULT_HANDSHAKE_FIRST_MESSAGE_TIMEOUT_MS;
    this.admission = new Admission(capsOf(options), firstMessageMs / 2);
    const {
      maxPendingHandshakes: _1,
      maxPendingHandshakesPerIdentity: _2,
      maxConnections: _3,
      maxConnectionsPerIdentity: _4,
      maxConnectionsPerKey: _5,
      ...channelOptions
    } = options;
    this.options = channelOptions;
    listener.on('connection', this.onConnection);
    listener.on('close', this.onListenerClose);
    listener.on('error', this.onListenerError);
  }

  get address(): string {
    return this.listener.address;
  }

  update(options: Partial<Pick<ChannelOptions, 'keyPair' | 'payload' | 'trust'>>): void {
    const next = { ...this.options };
    if (options.keyPair !== undefined) next.keyPair = options.keyPair;
    if (options.trust !== undefined) next.trust = options.trust;
    if ('payload' in options) next.payload = options.payload;
    validateChannelOptions(next);
    const previous = this.options.keyPair.publicKey;
    this.options = next;
    if (this.listenerCount('update') === 0) return;
    const change: ListenerUpdate = {
      ...(options.keyPair === undefined
        ? {}
        : { key: keyFingerprint(next.keyPair.publicKey), previousKey: keyFingerprint(previous) }),
      trust: options.trust !== undefined,
      payload: 'payload' in options,
      ...('payload' in options ? { newPayload: next.payload } : {}),
    };
    this.emit('update', change);
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.listener.off('connection', this.onConnection);
      this.listener.off('close', this.onListenerClose);
      this.listener.off('error', this.onListenerError);
      clearTimeout(this.reviewTimer);
      for (const cancel of this.cancels.values())
        cancel(createError('SIPC_ERR_ABORTED', 'The listener closed during the handshake'));
      // The channels' closes start first: each sends its CLOSE (protocol 7) before a transport
      // whose listener close also drops its connections (the memory transport's does) can cut it.
      const closes = [...this.channels].map((c) => c.close());
      await Promise.allSettled([this.listener.close(), ...closes]);
      this.emit('close');
    })();
    return this.closing;
  }

  // A handshake or parked connection ended: its slot may be a parked one's.
  private release(connection: Connection): void {
    const had = this.admission.pendingCount;
    this.admission.removePending(connection);
    if (this.admission.parkedCount > 0 && this.admission.pendingCount < had) this.scheduleReview();
  }

  /**
   * Review the parked connections after the event loop's poll phase (setImmediate): the sockets
   * that have bytes in the kernel were read by then, so a burst accepted in one turn is judged
   * by what its connections sent, not by the order in which they were accepted.
   */
  private scheduleReview(): void {
    if (this.reviewQueued || this.closing) return;
    this.reviewQueued = true;
    setImmediate(this.runReview);
  }

  private readonly runReview = () => {
    this.reviewQueued = false;
    clearTimeout(this.reviewTimer);
    this.reviewTimer = undefined;
    if (this.closing) return;
    const { drops, next } = this.admission.review(performance.now());
    for (const { victim, identity, limit } of drops) {
      // Forgotten already (its slot is the newcomer's), then stopped: its handshake rejects with
      // this decision's SIPC_ERR_HANDSHAKE_LIMIT, which the rejection handler leaves alone.
      const error = this.decide('dropped', limit, identity, victim.peer);
      reset(victim);
      this.cancels.get(victim)?.(error);
    }
    // A parked connection waits for a handshake to become stale: look again then.
    if (next !== undefined)
      this.reviewTimer = setTimeout(this.scheduleReviewNow, Math.max(1, Math.ceil(next - performance.now())));
  };

  private readonly scheduleReviewNow = () => {
    this.reviewTimer = undefined;
    this.scheduleReview();
  };

  private decide(
    action: 'dropped' | 'refused',
    limit: AdmissionLimit,
    identity: string,
    peer: PeerInfo | undefined,
    remoteStaticKey?: Uint8Array,
  ): SecureIpcError {
    const error = this.admission.error(limit, identity, action);
    const max = this.admission.caps[limit];
    this.emit('limit', { action, limit, max, identity, peer, remoteStaticKey, error });
    this.failed(error, peer, remoteStaticKey);
    return error;
  }

  // Every handshake that gave no channel: `handshakeError`, then `handshakeFailed` with more.
  private failed(error: SecureIpcError, peer: PeerInfo | undefined, remoteStaticKey?: Uint8Array): void {
    this.emit('handshakeError', error, peer);
    if (this.listenerCount('handshakeFailed') === 0) return;
    const presented = error.details?.fingerprint;
    this.emit('handshakeFailed', {
      kind: REFUSAL_CODES.has(error.code) ? 'refused' : 'failed',
      code: error.code,
      error,
      peer,
      fingerprint:
        remoteStaticKey !== undefined
          ? presentedKeyFingerprint(remoteStaticKey)
          : typeof presented === 'string'
            ? presented
            : undefined,
      at: Date.now(),
    });
  }

  private accept(connection: Connection): void {
    const peer = connection.peer;
    if (this.closing) {
      connection.destroy();
      return;
    }
    const identity = identityOf(peer);
    const admission = this.admission.admitHandshake(identity);
    if (admission.action === 'refuse') {
      connection.on('error', () => {});
      reset(connection);
      this.decide('refused', admission.limit, identity, peer);
      return;
    }
    // Over a pending cap the connection is parked: it reads its message 1 under the same
    // deadlines, then waits for a slot (review), holding no handshake state meanwhile.
    if (admission.action === 'park') this.admission.park(connection, identity);
    else this.admission.addPending(connection, identity, performance.now());
    const onPeerMessage = (message: 1 | 2 | 3) => {
      if (message === 3) this.admission.deciding(connection);
    };
    const onMessageOne = () => {
      const slot = this.admission.messageOneArrived(connection, performance.now());
      if (slot !== undefined) this.scheduleReview();
      return slot;
    };
    const onCancelable = (cancel: (reason: SecureIpcError) => void) => {
      this.cancels.set(connection, cancel);
    };
    establishValidated(connection, {
      ...this.options,
      initiator: false,
      onPeerMessage,
      onMessageOne,
      onCancelable,
      deferAcceptance: true,
    }).then(
      (channel: SecureChannelImpl) => {
        this.cancels.delete(connection);
        this.release(connection);
        if (this.closing) {
          channel.close().catch(() => {});
          return;
        }
        const key = Buffer.from(channel.remoteStaticKey).toString('hex');
        const limit = this.admission.channelLimit(identity, key);
        if (limit !== undefined) {
          // Version 2: the REFUSED control message says `busy`, then the channel ends (within
          // closeTimeoutMs). Version 1 has no such message: torn down at once, the peer sees its
          // connection close right after the handshake, before any message.
          const error = this.decide('refused', limit, identity, peer, channel.remoteStaticKey);
          channel[kRefuse](error, REFUSED_BUSY);
          return;
        }
        // Protocol 3.8: trusted and admitted, so the acceptance goes out before anything else.
        channel[kAccept]();
        this.admission.addChannel(channel, identity, key);
        this.channels.add(channel);
        channel.once('close', () => {
          this.channels.delete(channel);
          this.admission.removeChannel(channel);
        });
        this.emit('channel', channel);
      },
      (err: unknown) => {
        this.cancels.delete(connection);
        this.release(connection);
        // A dropped handshake (the only source of SIPC_ERR_HANDSHAKE_LIMIT here) was reported by its decision already.
        if (!isDrop(err)) this.failed(toSecureIpcError(err, 'SIPC_ERR_HANDSHAKE_FAILED'), peer);
      },
    );
  }
}

/**
 * Close a connection we refuse or drop with a reset where the stream has one (`net.Socket`'s
 * resetAndDestroy on TCP): no FIN exchange and no TIME_WAIT entry left behind per dropped
 * connection, which under a flood of thousands adds up. Other streams are destroyed.
 */
function reset(connection: Connection): void {
  const socket = connection as Connection & { resetAndDestroy?: () => void; _handle?: { reset?: unknown } };
  // Only a TCP handle can reset; asking another (a Unix socket, a pipe) throws, and an exception
  // per dropped connection is what a flood must not cost: look before calling.
  if (typeof socket.resetAndDestroy !== 'function' || typeof socket._handle?.reset !== 'function') {
    connection.destroy();
    return;
  }
  try {
    socket.resetAndDestroy();
  } catch {
    connection.destroy();
  }
}

function isDrop(reason: unknown): boolean {
  return (reason as { code?: unknown } | undefined)?.code === 'SIPC_ERR_HANDSHAKE_LIMIT';
}
