/**
 * The secure channel's public shape: its options (the handshake's plus message size and rekey
 * thresholds), its events and the `SecureChannel` interface, and the validation of the options.
 */
import type { EventEmitter } from 'node:events';
import { MAX_TIMER_MS } from '../constants.js';
import { createError, type SecureIpcError } from '../errors.js';
import {
  assertPositive,
  type HandshakeOptions,
  type HandshakeRunOptions,
  validateHandshakeOptions,
} from '../handshake/options.js';
import type { AbortOptions, PeerInfo } from '../transport/contract.js';

/** Rekey thresholds per direction; whichever comes first. */
export interface RekeyOptions {
  /** Transport messages (frames) per sending key (default 2^20). */
  messages?: number;
  /** Plaintext bytes per sending key (default 1 GiB). */
  bytes?: number;
  /** Milliseconds per sending key (default 10 minutes). */
  intervalMs?: number;
}

/** Options of `secureConnect`, `secureAccept` and `secureListen`. */
export interface ChannelOptions extends HandshakeOptions {
  /** Largest message accepted and sent (default 16 MiB). */
  maxMessageSize?: number;
  /** Rekey thresholds (defaults 2^20 messages, 1 GiB, 10 minutes). */
  rekey?: RekeyOptions;
  /**
   * Most milliseconds a graceful `close()` takes, counted from the call (default 5,000): pending
   * sends, our end of the stream and the peer's end must fit in it; then the connection is
   * destroyed, whatever the peer does (a peer that does not read cannot hold a close open).
   */
  closeTimeoutMs?: number;
}

/** The channel options plus the handshake side and its internal knobs (the listener, tests). */
export type EstablishOptions = ChannelOptions &
  HandshakeRunOptions & {
    /**
     * Responder on a version-2 channel: do not send the acceptance (protocol 3.8) yet; the
     * caller (the listener, after its admission caps) sends it or the refusal.
     */
    deferAcceptance?: boolean | undefined;
  };

/**
 * Why a channel closed, coarsely: `clean` (a graceful close by either side; on a version-1 channel
 * also any end of the stream at a message boundary), `peer-vanished` (the peer's stream ended or
 * reset without a close: on version 2, a process that exited, crashed or was killed), `revoked`
 * and `expired` (decided here, or told by the peer on version 2), `protocol` (the peer broke the
 * protocol: bad frame, failed decryption, oversized message), `timeout` (a deadline here), `local`
 * (closed here with another error).
 */
export type CloseReason =
  | 'clean'
  | 'peer-vanished'
  | 'revoked'
  | 'expired'
  | 'protocol'
  | 'timeout'
  | 'local';

/** The second argument of a channel's (and an RPC client's) `close` event. */
export interface CloseInfo {
  /** The class of the close. */
  readonly reason: CloseReason;
  /** The error, undefined for a clean close (the same as the event's first argument). */
  readonly error: SecureIpcError | undefined;
}

const REASON_BY_CODE: Readonly<Record<string, CloseReason>> = {
  SIPC_ERR_CONNECTION_CLOSED: 'peer-vanished',
  SIPC_ERR_TRUNCATED: 'peer-vanished',
  SIPC_ERR_REVOKED: 'revoked',
  SIPC_ERR_CERT_EXPIRED: 'expired',
  SIPC_ERR_PROTOCOL: 'protocol',
  SIPC_ERR_DECRYPT_FAILED: 'protocol',
  SIPC_ERR_FRAME_EMPTY: 'protocol',
  SIPC_ERR_FRAME_TOO_LARGE: 'protocol',
  SIPC_ERR_MESSAGE_TOO_LARGE: 'protocol',
  SIPC_ERR_NONCE_EXHAUSTED: 'protocol',
  SIPC_ERR_BAD_ENVELOPE: 'protocol',
  SIPC_ERR_TIMEOUT: 'timeout',
  SIPC_ERR_HANDSHAKE_TIMEOUT: 'timeout',
};

/** The `CloseInfo` of a close with `error` (undefined: clean). */
export function closeInfoOf(error: SecureIpcError | undefined): CloseInfo {
  if (error === undefined) return CLEAN;
  return { reason: REASON_BY_CODE[error.code] ?? 'local', error };
}
const CLEAN: CloseInfo = Object.freeze({ reason: 'clean', error: undefined });

/** Events of a secure channel. */
export interface ChannelEvents {
  /** One whole message from the peer. */
  message: [message: Uint8Array];
  /**
   * The channel closed: `undefined` for a graceful end, else the reason; `info` classifies it
   * (clean, peer vanished, revoked, expired, protocol error, ...). Emitted once.
   */
  close: [error: SecureIpcError | undefined, info: CloseInfo];
}

/** An authenticated, encrypted message channel. */
export interface SecureChannel extends EventEmitter<ChannelEvents> {
  /** Which side of the handshake this end was. */
  readonly role: 'initiator' | 'responder';
  /** This side's static public key. */
  readonly localStaticKey: Uint8Array;
  /** The peer's static public key, authenticated by the handshake. */
  readonly remoteStaticKey: Uint8Array;
  /** The 64-byte handshake hash, equal on both ends, for channel binding. */
  readonly handshakeHash: Uint8Array;
  /** What the transport says about the peer process. */
  readonly peer: PeerInfo;
  /** The peer's handshake payload (validated map). */
  readonly remotePayload: Readonly<Record<string, unknown>>;
  /** Roles from the trust decision (empty if none). */
  readonly roles: readonly string[];
  /** The negotiated protocol version. */
  readonly version: number;
  /** This channel's process-wide id (1, 2, ...), the `channelId` of its diagnostics messages. */
  readonly id: number;
  /**
   * The peer's key fingerprint, `keyFingerprint(remoteStaticKey)` (`BLAKE2b:` and the unpadded
   * base64 of a BLAKE2b-256 digest): computed once, on the first read, and shared by everything that names
   * the peer (the RPC session's `peerId`, diagnostics messages, enforcement decisions, stats).
   */
  readonly fingerprint: string;
  /** When the channel opened: the end of its handshake, in ms since the epoch. */
  readonly openedAt: number;
  /** True once closing started; sends are refused from then on. */
  readonly closed: boolean;
  /** Send one message; resolves once the transport accepted it (waits on backpressure). */
  send(message: Uint8Array, options?: AbortOptions): Promise<void>;
  /** Stop reading from the transport (the peer's sends back up). */
  pause(): void;
  /** Restart reading. */
  resume(): void;
  /** Bytes handed to `send()` and not yet accepted by the transport (waiting on backpressure). */
  readonly queuedBytes: number;
  /**
   * Graceful end after pending sends, or with an error an immediate teardown; 'close' fires once.
   * Settles within `closeTimeoutMs` of the call: past it the connection is destroyed, and if sends
   * were still pending the 'close' event carries SIPC_ERR_TIMEOUT (they reject with
   * SIPC_ERR_CHANNEL_CLOSED). Never rejects.
   */
  close(error?: Error): Promise<void>;
  /** `await using channel = await secureConnect(...)`: the graceful `close()` at the end of the scope. */
  [Symbol.asyncDispose](): Promise<void>;
}

/** Validate channel options; throws `SIPC_ERR_INVALID_ARGUMENT` (or `SIPC_ERR_BAD_KEY`). */
export function validateChannelOptions(options: ChannelOptions): void {
  validateHandshakeOptions(options);
  assertPositive('maxMessageSize', options.maxMessageSize);
  assertPositive('rekey.messages', options.rekey?.messages);
  assertPositive('rekey.bytes', options.rekey?.bytes);
  assertPositive('rekey.intervalMs', options.rekey?.intervalMs);
  const closeTimeoutMs = options.closeTimeoutMs;
  if (
    closeTimeoutMs !== undefined &&
    !(Number.isSafeInteger(closeTimeoutMs) && closeTimeoutMs > 0 && closeTimeoutMs <= MAX_TIMER_MS)
  )
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      'closeTimeoutMs must be an integer from 1 to 2^31-1 milliseconds',
    );
}
