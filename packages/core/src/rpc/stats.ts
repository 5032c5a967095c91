/**
 * Live introspection of a server (docs/observability.md, "Live introspection"): the shape
 * `server.stats()` returns and the `$stats` built-in answers, modelled on gRPC channelz's
 * ChannelData (calls started / succeeded / failed, last call started). Every value is an integer,
 * a string, `null`, an array or a plain object, so it crosses msgpack and JSON unchanged; nothing
 * in it is a payload, a parameter, a result or key material.
 */

/** The version of the `ServerStats` shape; a change to a field's meaning bumps it. */
export const STATS_VERSION = 1;

/** Requests of the peer, counted by how they were answered. */
export interface CallCounts {
  /** Requests the peer sent on this channel (every method, `$ping` and the built-ins included). */
  readonly started: number;
  /** Those answered with a response or the end of a stream. */
  readonly ok: number;
  /** Those answered with an error (refused, not found, busy, the handler's error, ...). */
  readonly failed: number;
}

/** One live channel of a server, as `server.stats()` and `$stats` report it. */
export interface ChannelStats {
  /** The channel's process-wide id (`SecureChannel.id`; null for a channel without one). */
  readonly id: number | null;
  /** The peer's key fingerprint (`SecureChannel.fingerprint`, `BLAKE2b:...`). */
  readonly peer: string;
  /** The roles the server's policy gave the peer (`RpcPeer.roles`). */
  readonly roles: readonly string[];
  /** The transport's name, as it reported the peer (`PeerInfo.transport`: `unix`, `tcp`, `pipe`, `memory`). */
  readonly transport: string;
  /** The channel's negotiated protocol version. */
  readonly protocolVersion: number;
  /** When the channel opened, ms since the epoch (null for a channel that does not say). */
  readonly openedAt: number | null;
  /** The peer's requests to this server, by outcome. */
  readonly calls: CallCounts;
  /** The peer's requests whose handler (or stream) runs now. */
  readonly inFlight: number;
  /** Bytes handed to the channel and not yet accepted by its transport (`SecureChannel.queuedBytes`). */
  readonly bytesQueued: number;
  /** When the peer's last request arrived, ms since the epoch; null before its first. */
  readonly lastCallAt: number | null;
}

/** A snapshot of a server's live channels (`server.stats()`, the `$stats` result). */
export interface ServerStats {
  /** {@link STATS_VERSION}. */
  readonly v: 1;
  /** When the snapshot was taken, ms since the epoch. */
  readonly at: number;
  /** Every live channel, in the order they were attached. */
  readonly channels: readonly ChannelStats[];
}
