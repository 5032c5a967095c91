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

/** @internal The channel objects; publishers guard every publish with `hasSubscribers`. */
export const diagnostics = {
  channelOpen: channel(DIAGNOSTICS_CHANNELS.channelOpen),
  channelClose: channel(DIAGNOSTICS_CHANNELS.channelClose),
  policyDecision: channel(DIAGNOSTICS_CHANNELS.policyDecision),
} as const;

let lastChannelId = 0;

/** @internal The next process-wide channel id (1, 2, ...). */
export function nextChannelId(): number {
  lastChannelId += 1;
  return lastChannelId;
}
