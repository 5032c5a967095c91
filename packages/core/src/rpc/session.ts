/**
 * What the parts of one RPC session share: the channel they send on, whether it has closed, and
 * where local failures with no caller go. `RpcPeer` (./peer.ts) owns it; the caller side
 * (./caller.ts), the dispatcher side (./dispatcher.ts) and the subscriptions (./subscriptions.ts)
 * each get it at construction and never hold one another's state.
 */
import type { EventEmitter } from 'node:events';
import { kTrySend, kTrySendSplit } from '../channel/secure-channel.js';
import { type EncodedEnvelope, joinEnvelope } from '../envelope/encode.js';
import type { SecureIpcError } from '../errors.js';
import type { PeerInfo } from '../transport/contract.js';

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
  /** The negotiated protocol version (absent: 1); streamed input needs 2. */
  readonly version?: number;
  /** The channel's process-wide id (`SecureChannel.id`), carried by diagnostics messages. */
  readonly id?: number;
  /** The peer's key fingerprint, computed once by the channel (`SecureChannel.fingerprint`). */
  readonly fingerprint?: string;
  /** When the channel opened, ms since the epoch (`SecureChannel.openedAt`), for stats. */
  readonly openedAt?: number;
  /** Bytes handed to send() and not yet accepted by the transport (`SecureChannel.queuedBytes`). */
  readonly queuedBytes?: number;
  /** Send one message; resolves when the transport accepted it. */
  send(message: Uint8Array, options?: { signal?: AbortSignal }): Promise<void>;
  /** Close (with an error: destroy). */
  close(error?: Error): Promise<void>;
  /** Stop reading from the peer. */
  pause(): void;
  /** Read again. */
  resume(): void;
}

/** Default per-connection limit of requests in flight, in each direction. */
export const DEFAULT_MAX_IN_FLIGHT = 64;

/** One session's shared state, as the parts see it. */
export interface Session {
  /** The channel underneath. */
  readonly channel: RpcChannel;
  /** Set once the channel closed: what every later call rejects with. */
  readonly closeError: SecureIpcError | undefined;
  /** Send an envelope on the fast path where the channel has one (requests and replies). */
  send(bytes: EncodedEnvelope): Promise<void> | undefined;
  /** Report a local failure that has no caller to reject. */
  onError(error: unknown): void;
}

/**
 * The secure channel's internal fast send skips a promise, a closure and a microtask per message
 * when the write is accepted at once; any other RpcChannel goes through send().
 */
export function fastSend(channel: RpcChannel, bytes: EncodedEnvelope): Promise<void> | undefined {
  const fast = channel as RpcChannel & {
    [kTrySend]?: (m: Uint8Array) => Promise<void> | undefined;
    [kTrySendSplit]?: (head: Uint8Array, tail: Uint8Array) => Promise<void> | undefined;
  };
  if (!(bytes instanceof Uint8Array)) {
    // A split envelope (a large binary payload, not copied yet): the secure channel copies both
    // parts straight into its frames; any other channel gets them joined.
    if (fast[kTrySendSplit] !== undefined) return fast[kTrySendSplit](bytes.head, bytes.body);
    return channel.send(joinEnvelope(bytes));
  }
  return fast[kTrySend] !== undefined ? fast[kTrySend](bytes) : channel.send(bytes);
}

/** For sends whose failure nobody waits for (the channel reports its own close). */
export const noop = (): void => {};
