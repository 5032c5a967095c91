/**
 * Channel-level helpers: key pairs, a secure echo server (in this process or a child), secure
 * clients, and waiting for messages and closes. Everything is released in the test's teardown.
 */
import { once } from 'node:events';
import {
  type ChannelOptions,
  encodeKey,
  generateKeyPair,
  type KeyPair,
  type SecureChannel,
  type SecureIpcError,
  type SecureListener,
  type SecureListenerOptions,
  secureConnect,
  secureListen,
} from '@secure-ipc/core';
import type { ExecutionContext } from 'ava';
import type { SecureFixtureArgs } from './fixture-channel.js';
import { listen } from './harness.js';
import type { ConformanceOptions } from './options.js';
import { type Fixture, startFixture } from './spawn.js';

/** A server and a client identity that trust each other. */
export interface Identities {
  /** The server's key pair. */
  readonly server: KeyPair;
  /** The client's key pair. */
  readonly client: KeyPair;
}

/** Fresh key pairs for one test. */
export function identities(): Identities {
  return { server: generateKeyPair(), client: generateKeyPair() };
}

/** Channel options for `self` trusting exactly `peer`'s public key. */
export function trusting(self: KeyPair, peer: KeyPair, extra: Partial<ChannelOptions> = {}): ChannelOptions {
  return { keyPair: self, trust: { keys: [peer.publicKey] }, ...extra };
}

/** A secure listener in this process whose channels echo every message; closed at teardown. */
export async function secureEchoServer(
  t: ExecutionContext,
  o: ConformanceOptions,
  ids: Identities,
  extra: Partial<SecureListenerOptions> = {},
): Promise<SecureListener> {
  const secure = secureListen(
    await listen(t, o.transport, o.address()),
    trusting(ids.server, ids.client, extra),
  );
  t.teardown(() => secure.close());
  secure.on('channel', (channel) => {
    channel.on('message', (m) => void channel.send(m).catch(() => {}));
  });
  return secure;
}

/** Start a secure fixture process (channel echo or RPC server) trusting the client key; the secret key goes in its environment. */
export function startSecureFixture(
  t: ExecutionContext,
  o: ConformanceOptions,
  ids: Identities,
  role: 'channel-echo-server' | 'rpc-server',
  limits?: SecureFixtureArgs['limits'],
): Promise<Fixture> {
  const args: SecureFixtureArgs = { trust: [encodeKey(ids.client.publicKey)] };
  if (limits !== undefined) args.limits = limits;
  return startFixture(t, o.child!, role, o.address(), {
    args: { ...args },
    env: { SIPC_FIXTURE_SECRET_KEY: encodeKey(ids.server.secretKey) },
  });
}

/** A secure echo server in a child process when the transport can cross processes, else in this one; its address. */
export async function remoteSecureEchoServer(
  t: ExecutionContext,
  o: ConformanceOptions,
  ids: Identities,
  limits?: SecureFixtureArgs['limits'],
): Promise<string> {
  if (o.child === undefined) return (await secureEchoServer(t, o, ids, limits)).address;
  return (await startSecureFixture(t, o, ids, 'channel-echo-server', limits)).address;
}

/** Connect and run the initiator handshake; the channel is closed at teardown. */
export async function secureClient(
  t: ExecutionContext,
  o: ConformanceOptions,
  address: string,
  ids: Identities,
  extra: Partial<ChannelOptions> = {},
): Promise<SecureChannel> {
  const conn = await o.transport.connect(address);
  t.teardown(() => void conn.destroy());
  const channel = await secureConnect(conn, trusting(ids.client, ids.server, extra));
  // Torn down, not closed gracefully: a graceful close waits for the peer, which may be gone.
  t.teardown(() => channel.close(new Error('test over')).catch(() => {}));
  return channel;
}

/** A connected pair of channels over the transport, both ends in this process. */
export async function channelPair(
  t: ExecutionContext,
  o: ConformanceOptions,
  ids: Identities,
): Promise<{ client: SecureChannel; server: SecureChannel }> {
  const secure = secureListen(await listen(t, o.transport, o.address()), trusting(ids.server, ids.client));
  t.teardown(() => secure.close());
  const accepted = once(secure, 'channel') as Promise<[SecureChannel]>;
  const client = await secureClient(t, o, secure.address, ids);
  const [server] = await accepted;
  return { client, server };
}

/** The next message on `channel`. */
export async function nextMessage(channel: SecureChannel): Promise<Uint8Array> {
  const [message] = (await once(channel, 'message')) as [Uint8Array];
  return message;
}

/** Resolves with the close reason of `channel` (undefined for a graceful close). */
export async function channelClosed(channel: SecureChannel): Promise<SecureIpcError | undefined> {
  const [error] = (await once(channel, 'close')) as [SecureIpcError | undefined];
  return error;
}
