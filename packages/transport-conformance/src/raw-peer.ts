/**
 * Abusive peers for the abuse sub-suite, built from core's public pieces only: a peer that
 * completes the handshake (`secureConnect`) and then writes frames no well-behaved sender would
 * (`sendChunked`: one-byte chunks that never finish a message) or stops reading its transport
 * (`SecureChannel.pause()`: what the server sends backs up in the peer's socket, then in the
 * server). Framing and encryption are core's own; nothing here parses or builds a frame.
 */
import {
  createClient,
  type KeyPair,
  type RpcClient,
  type SecureChannel,
  type SecureIpcError,
  sendChunked,
} from '@secure-ipc/core';
import type { ExecutionContext } from 'ava';
import type { ConformanceOptions } from './options.js';
import { channelClosed, secureClient } from './secure.js';

/** A peer past the handshake, for misbehaving at the frame or flow-control level. */
export interface RawPeer {
  /** Its secure channel. */
  readonly channel: SecureChannel;
  /** Resolves with the channel's close reason (undefined for a graceful close). */
  readonly closed: Promise<SecureIpcError | undefined>;
  /** Send `bytes` as frames of `chunkSize`-byte chunks, none marked last: the message never finishes. */
  sendUnfinished(bytes: Uint8Array, chunkSize: number): Promise<void>;
}

/** Connect as `keyPair` to the server at `address` (trusting `serverKey`); torn down with the test. */
export async function rawPeer(
  t: ExecutionContext,
  o: ConformanceOptions,
  address: string,
  keyPair: KeyPair,
  serverKey: KeyPair,
): Promise<RawPeer> {
  const channel = await secureClient(t, o, address, { client: keyPair, server: serverKey });
  const closed = channelClosed(channel);
  return {
    channel,
    closed,
    sendUnfinished: (bytes, chunkSize) => sendChunked(channel, bytes, { chunkSize, final: false }),
  };
}

/** An RPC client over a raw peer's channel (any number of requests in flight). */
export function rawClient(peer: RawPeer): RpcClient {
  return createClient(peer.channel, { maxInFlight: 100_000 });
}

const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/**
 * With `peer` not reading, send `$ping`s of `size` bytes until one is not taken by the transport
 * within `stallMs` (the server stopped reading us), at most `max`. Returns the pings sent (each
 * rejects or resolves later; none is awaited here).
 */
export async function pingUntilStalled(
  peer: RawPeer,
  client: RpcClient,
  size: number,
  max: number,
  stallMs = 1000,
): Promise<Promise<unknown>[]> {
  peer.channel.pause();
  const payload = new Uint8Array(size).fill(1);
  const pings: Promise<unknown>[] = [];
  while (pings.length < max) {
    const ping = client.ping(payload, { timeoutMs: 120_000 });
    ping.catch(() => {});
    pings.push(ping);
    const end = Date.now() + stallMs;
    while (peer.channel.queuedBytes > 0 && Date.now() < end) await sleep(10);
    if (peer.channel.queuedBytes > 0) break;
  }
  return pings;
}
