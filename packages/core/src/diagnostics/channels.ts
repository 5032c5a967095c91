/**
 * The `node:diagnostics_channel` channels secure-ipc publishes on (docs/observability.md).
 *
 * Zero dependencies: subscribers (an OpenTelemetry bridge, a logger, a test) attach with
 * `diagnostics_channel.subscribe(name, fn)`. Every publisher checks `hasSubscribers` first, so
 * nothing is built when nobody listens. Messages carry identities, names, counts and codes, never
 * a payload, a parameter, a result or key material.
 */
import { channel } from 'node:diagnostics_channel';

/** The version of the message shapes below; a change to a shape bumps it (docs/observability.md). */
export const DIAGNOSTICS_VERSION = 1;

/** The names of the channels, in one place. */
export const DIAGNOSTICS_CHANNELS = Object.freeze({
  /** A channel's handshake finished: {@link ChannelOpenMessage}. */
  channelOpen: 'secure-ipc:channel.open',
  /** A channel closed: {@link ChannelCloseMessage}. */
  channelClose: 'secure-ipc:channel.close',
  /** A server's policy decided: {@link PolicyDecisionMessage}. */
  policyDecision: 'secure-ipc:policy.decision',
  /** A reconnecting client is about to send a call again: {@link RetryMessage}. */
  retry: 'secure-ipc:retry',
  /** A circuit breaker changed state: {@link BreakerStateMessage}. */
  breakerState: 'secure-ipc:breaker.state',
  /** An outbox entry was added or ended: {@link OutboxMessage}. */
  outbox: 'secure-ipc:outbox',
  /** A record was written to an audit log: {@link AuditAppendMessage} (docs/audit.md). */
  auditAppend: 'secure-ipc:audit.append',
  /** A bus broker (@secure-ipc/bus) routed, refused, delivered or counted something: {@link BusMessage}. */
  bus: 'secure-ipc:bus',
} as const);

/** Published on `secure-ipc:channel.open` once a channel's handshake finished. */
export interface ChannelOpenMessage {
  /** {@link DIAGNOSTICS_VERSION}. */
  readonly v: 1;
  /** The process-wide id of the channel (`SecureChannel.id`). */
  readonly channelId: number;
  /** Which side of the handshake this process was. */
  readonly role: 'initiator' | 'responder';
  /** The peer's static key fingerprint (`keyFingerprint`). */
  readonly peer: string;
  /** The roles the peer's certificate granted (empty without certificates). */
  readonly roles: readonly string[];
  /** The negotiated protocol version. */
  readonly protocolVersion: number;
  /** Milliseconds since the epoch. */
  readonly at: number;
  /**
   * When the peer's credential expires (ms since the epoch), as the trust decision reported it:
   * a certificate's `notAfter` plus the clock-skew allowance (the channel closes then); undefined
   * when it does not expire.
   */
  readonly expiresAt?: number | undefined;
}

/** Published on `secure-ipc:channel.close` once, when a channel closed. */
export interface ChannelCloseMessage {
  /** {@link DIAGNOSTICS_VERSION}. */
  readonly v: 1;
  /** The id the open message carried. */
  readonly channelId: number;
  /** The peer's static key fingerprint. */
  readonly peer: string;
  /** The class of the close (`CloseInfo.reason`). */
  readonly reason: string;
  /** The `SIPC_ERR_*` code of the error that closed it; undefined for a clean close. */
  readonly code: string | undefined;
  /** How long the channel was open, in milliseconds. */
  readonly durationMs: number;
  /** Milliseconds since the epoch. */
  readonly at: number;
}

/** Published on `secure-ipc:policy.decision` for every authorization a server made. */
export interface PolicyDecisionMessage {
  /** {@link DIAGNOSTICS_VERSION}. */
  readonly v: 1;
  /** The channel the request came on; undefined when the channel has no id. */
  readonly channelId: number | undefined;
  /** The peer's static key fingerprint. */
  readonly peer: string;
  /** The roles the peer held for this decision. */
  readonly roles: readonly string[];
  /** `call`, `subscribe` or `publish`. */
  readonly action: string;
  /** The method or topic name. */
  readonly what: string;
  /** The verdict. */
  readonly allowed: boolean;
  /** Milliseconds since the epoch. */
  readonly at: number;
}

/** Published on `secure-ipc:retry` when a reconnecting client decided to send a call again. */
export interface RetryMessage {
  /** {@link DIAGNOSTICS_VERSION}. */
  readonly v: 1;
  /** The method. */
  readonly method: string;
  /** The failure that is retried: its `SIPC_ERR_*` code (an application's own code for a handler error). */
  readonly code: string;
  /** Milliseconds it waits before sending again (the backoff, or the server's pushback). */
  readonly delayMs: number;
  /** True for a transparent retry (unsent, or not executed once), which no policy counts. */
  readonly transparent: boolean;
  /** The number of the attempt that follows (its `h.attempt` if the call was written before). */
  readonly attempt: number;
  /** Milliseconds since the epoch. */
  readonly at: number;
}

/** Published on `secure-ipc:breaker.state` for every `stateChange` of a circuit breaker. */
export interface BreakerStateMessage {
  /** {@link DIAGNOSTICS_VERSION}. */
  readonly v: 1;
  /** The breaker's name, if it has one. */
  readonly name: string | undefined;
  /** `closed`, `open` or `half-open`: the state before. */
  readonly from: string;
  /** The state now. */
  readonly to: string;
  /** Why (`CircuitStateChange.reason`). */
  readonly reason: string;
  /** For `to: 'open'`: the open period, in milliseconds. */
  readonly openForMs: number | undefined;
  /** Milliseconds since the epoch. */
  readonly at: number;
}

/** Published on `secure-ipc:outbox` when an entry is added or ends. */
export interface OutboxMessage {
  /** {@link DIAGNOSTICS_VERSION}. */
  readonly v: 1;
  /** The outbox's directory. */
  readonly dir: string;
  /** `enqueued`, `delivered`, `failed`, `expired` or `quarantined`. */
  readonly event: 'enqueued' | 'delivered' | 'failed' | 'expired' | 'quarantined';
  /** The entry's id (undefined for a quarantined record, which has none that can be trusted). */
  readonly id: string | undefined;
  /** The method of an enqueued entry; undefined for the others. */
  readonly method: string | undefined;
  /** For `failed`: the `SIPC_ERR_*` (or application) code it failed with. */
  readonly code: string | undefined;
  /** Entries queued after the event (the outbox's `size`). */
  readonly depth: number;
  /** Milliseconds since the epoch. */
  readonly at: number;
}

/**
 * Published on `secure-ipc:audit.append` once a record is in an audit log's segment (written, not
 * yet fsynced): what a forwarder sends to a central system; its index and leaf hash let the
 * receiver ask the local log for an inclusion proof.
 */
export interface AuditAppendMessage {
  /** {@link DIAGNOSTICS_VERSION}. */
  readonly v: 1;
  /** The log's origin (its name in checkpoints). */
  readonly origin: string;
  /** The record's index. */
  readonly index: number;
  /** The record type (`epoch`, `rpc.call`, `channel.open`, ...). */
  readonly type: string;
  /** When it was written, ms since the epoch (the record's `at`). */
  readonly at: number;
  /** The record's fields, as recorded (a server's hold no payload: docs/audit.md). */
  readonly fields: Readonly<Record<string, unknown>>;
  /** The record's RFC 9162 leaf hash (32 bytes). */
  readonly leafHash: Uint8Array;
}

/**
 * Published on `secure-ipc:bus` by a bus broker (@secure-ipc/bus, docs/bus.md section 9), one of:
 * - `call`: a `bus.call` ended, routed or not (`outcome` `OK` or the code the caller got);
 * - `signal`: a signal was handed to one receiver (`routed`) or dropped at its bytes quota;
 * - `name`: a connection's place in a well-known name's queue changed (the `bus.name` audit event);
 * - `quota`: a quota diagnostic (docs/bus.md section 8);
 * - `peer`: a connection joined or left the bus.
 * Never a body, a name's params, a signal's name or a peer's key: metrics from it are bounded.
 */
export type BusMessage =
  | BusCallMessage
  | BusSignalMessage
  | BusNameMessage
  | BusQuotaMessage
  | BusPeerMessage;

/** What every {@link BusMessage} has. */
interface BusMessageBase {
  /** {@link DIAGNOSTICS_VERSION}. */
  readonly v: 1;
  /** Milliseconds since the epoch. */
  readonly at: number;
}

/** `secure-ipc:bus`, kind `call`: a `bus.call` the broker ended, routed or not. */
export interface BusCallMessage extends BusMessageBase {
  /** The kind. */
  readonly kind: 'call';
  /** The method called (what the caller named, `''` when its params did not parse; cap it as a label). */
  readonly method: string;
  /** `OK`, or the code the caller was answered with (core's `SIPC_ERR_*` or a destination's public code). */
  readonly outcome: string;
  /** True for an end-to-end call (its body sealed for the callee, docs/bus.md section 7). */
  readonly e2e: boolean;
  /** The call's body size in bytes. */
  readonly bytesIn: number;
  /** The answer's body size in bytes (0 when there was none). */
  readonly bytesOut: number;
  /** From the broker reading the call to its answer or refusal, in milliseconds. */
  readonly durationMs: number;
}

/** `secure-ipc:bus`, kind `signal`: a signal handed to one receiver, or dropped at its bytes quota. */
export interface BusSignalMessage extends BusMessageBase {
  /** The kind. */
  readonly kind: 'signal';
  /** `routed` or `dropped`. */
  readonly outcome: 'routed' | 'dropped';
  /** The signal's body size in bytes. */
  readonly bytes: number;
}

/** `secure-ipc:bus`, kind `name`: a connection's place in a well-known name's queue changed. */
export interface BusNameMessage extends BusMessageBase {
  /** The kind. */
  readonly kind: 'name';
  /** As the `bus.name` audit record's event. */
  readonly event: 'acquired' | 'lost' | 'queued' | 'released';
}

/** `secure-ipc:bus`, kind `quota`: a quota diagnostic (docs/bus.md section 8). */
export interface BusQuotaMessage extends BusMessageBase {
  /** The kind. */
  readonly kind: 'quota';
  /** `names`, `matches`, `pendingReplies` or `bytes`. */
  readonly quota: string;
  /** `peer` or `identity`. */
  readonly scope: string;
  /** `refused`, `dropped` or `disconnected`. */
  readonly action: string;
  /** By how much the request was over the limit. */
  readonly over: number;
}

/** `secure-ipc:bus`, kind `peer`: a connection joined or left the bus. */
export interface BusPeerMessage extends BusMessageBase {
  /** The kind. */
  readonly kind: 'peer';
  /** `joined` or `left`. */
  readonly event: 'joined' | 'left';
}

/** @internal The channel objects; publishers guard every publish with `hasSubscribers`. */
export const diagnostics = {
  channelOpen: channel(DIAGNOSTICS_CHANNELS.channelOpen),
  channelClose: channel(DIAGNOSTICS_CHANNELS.channelClose),
  policyDecision: channel(DIAGNOSTICS_CHANNELS.policyDecision),
  retry: channel(DIAGNOSTICS_CHANNELS.retry),
  breakerState: channel(DIAGNOSTICS_CHANNELS.breakerState),
  outbox: channel(DIAGNOSTICS_CHANNELS.outbox),
  auditAppend: channel(DIAGNOSTICS_CHANNELS.auditAppend),
} as const;

let lastChannelId = 0;

/** @internal The next process-wide channel id (1, 2, ...). */
export function nextChannelId(): number {
  lastChannelId += 1;
  return lastChannelId;
}
