/**
 * @secure-ipc/core: the transport contract, framing, the Noise_XX handshake, the secure channel,
 * the msgpack envelope, RPC and the authorization policy. No OS-specific code lives here; install
 * the transports you need (`@secure-ipc/transport-unix`, `-tcp`, `-win`) beside it.
 *
 * @packageDocumentation
 */

export {
  type ChannelEvents,
  type ChannelOptions,
  type RekeyOptions,
  type SecureChannel,
  secureAccept,
  secureConnect,
  type Trust,
  type TrustContext,
  type TrustDecision,
} from './channel.js';
export * from './constants.js';
export * from './envelope.js';
export * from './errors.js';
export * from './framing.js';
export * from './identity/index.js';
export * from './keys.js';
export { memoryPair, memoryTransport } from './memory-transport.js';
export * from './policy.js';
export * from './rpc/client.js';
export * from './rpc/events.js';
export * from './rpc/idempotency.js';
export * from './rpc/peer.js';
export * from './rpc/serve.js';
export * from './rpc/server.js';
export * from './rpc/service-types.js';
export * from './rpc/streams.js';
export * from './secure-listener.js';
export * from './socket-connection.js';
export {
  invalidAddress,
  isLocalAppId,
  listenError,
  listenServer,
  localAppId,
} from './transport/address-rules.js';
export * from './transport.js';
