/**
 * A listener wrapper that runs the responder handshake on every inbound connection, caps the
 * handshakes in progress, and tracks the live channels. Established channels are independent of
 * pending handshakes: a flood of silent connections is refused beyond the cap and times out,
 * while established traffic keeps flowing.
 */
import { EventEmitter } from 'node:events';
import { DEFAULT_MAX_PENDING_HANDSHAKES } from '../constants.js';
import { createError, type SecureIpcError, toSecureIpcError } from '../errors.js';
import type { Connection, Listener, PeerInfo } from '../transport/contract.js';
import { type ChannelOptions, type SecureChannel, validateChannelOptions } from './options.js';
import { establish } from './secure-channel.js';

/** Options of `secureListen`. */
export interface SecureListenerOptions extends ChannelOptions {
  /** Most handshakes in progress at once; beyond it new connections are refused (default 64). */
  maxPendingHandshakes?: number;
}

/** Events of a secure listener. */
export interface SecureListenerEvents {
  /** A handshake succeeded. */
  channel: [channel: SecureChannel];
  /** A handshake failed or was refused (the reason in `cause`); the listener keeps going. */
  handshakeError: [error: SecureIpcError, peer: PeerInfo | undefined];
  /** The transport listener failed (a fatal accept error, as `ListenerEvents.error`); it closes next. */
  error: [error: SecureIpcError];
  /** The listener closed. */
  close: [];
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

class SecureListenerImpl extends EventEmitter<SecureListenerEvents> implements SecureListener {
  readonly channels = new Set<SecureChannel>();
  private options: SecureListenerOptions;
  private readonly maxPending: number;
  private readonly pending = new Map<Connection, AbortController>();
  private closing: Promise<void> | undefined;
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
    const max = options.maxPendingHandshakes ?? DEFAULT_MAX_PENDING_HANDSHAKES;
    if (!Number.isInteger(max) || max < 1)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'maxPendingHandshakes must be a positive integer');
    this.maxPending = max;
    this.options = { ...options };
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
    this.options = next;
  }

  close(): Promise<void> {
    this.closing ??= (async () => {
      this.listener.off('connection', this.onConnection);
      this.listener.off('close', this.onListenerClose);
      this.listener.off('error', this.onListenerError);
      for (const controller of this.pending.values()) controller.abort();
      await Promise.allSettled([this.listener.close(), ...[...this.channels].map((c) => c.close())]);
      this.emit('close');
    })();
    return this.closing;
  }

  private accept(connection: Connection): void {
    const peer = connection.peer;
    if (this.closing) {
      connection.destroy();
      return;
    }
    if (this.pending.size >= this.maxPending) {
      connection.on('error', () => {});
      connection.destroy();
      this.emit(
        'handshakeError',
        createError('SIPC_ERR_HANDSHAKE_LIMIT', `${this.maxPending} handshakes already in progress`),
        peer,
      );
      return;
    }
    const controller = new AbortController();
    this.pending.set(connection, controller);
    const { maxPendingHandshakes: _, signal: outer, ...options } = this.options;
    const signal = outer === undefined ? controller.signal : AbortSignal.any([outer, controller.signal]);
    establish(connection, { ...options, signal, initiator: false }).then(
      (channel) => {
        this.pending.delete(connection);
        if (this.closing) {
          channel.close().catch(() => {});
          return;
        }
        this.channels.add(channel);
        channel.once('close', () => this.channels.delete(channel));
        this.emit('channel', channel);
      },
      (err: unknown) => {
        this.pending.delete(connection);
        this.emit('handshakeError', toSecureIpcError(err, 'SIPC_ERR_HANDSHAKE_FAILED'), peer);
      },
    );
  }
}
