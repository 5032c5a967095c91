/**
 * @secure-ipc/core: the transport contract, framing, the Noise_XX handshake, the secure channel,
 * the msgpack envelope, RPC and the authorization policy. No OS-specific code lives here; install
 * the transports you need (`@secure-ipc/transport-unix`, `-tcp`, `-win`) beside it.
 *
 * @packageDocumentation
 */

export type { ChannelEvents, ChannelOptions, RekeyOptions, SecureChannel } from './channel/options.js';
export { secureAccept, secureConnect } from './channel/secure-channel.js';
export * from './channel/secure-listener.js';
export * from './constants.js';
export * from './envelope/decode.js';
export * from './envelope/encode.js';
export * from './envelope/types.js';
export { validateEnvelope } from './envelope/validate.js';
export * from './envelope/wire-errors.js';
export * from './errors.js';
export * from './framing.js';
export type { HandshakeOptions } from './handshake/options.js';
export type { Trust, TrustContext, TrustDecision } from './handshake/trust.js';
export * from './identity/index.js';
export * from './keys/key-file.js';
export * from './keys/key-pair.js';
export { decodeKey, encodeKey } from './keys/key-text.js';
export { createClient, type RpcClient, type RpcClientEvents, type RpcClientOptions } from './rpc/client.js';
export { type AnyHandler, REPLY_HIGH_WATER } from './rpc/dispatcher.js';
export * from './rpc/events.js';
export * from './rpc/idempotency.js';
export { ALWAYS_ALLOWED_METHODS } from './rpc/methods.js';
export { compilePatterns, type NameMatcher } from './rpc/patterns.js';
export * from './rpc/peer.js';
export {
  createPolicy,
  DENY_ALL,
  type Policy,
  type PolicyAction,
  type PolicyDecision,
  type PolicyOptions,
  type PolicySubject,
  type RoleGrant,
} from './rpc/policy.js';
export {
  type ConnectOptions,
  connect,
  type ListeningServer,
  type ServeOptions,
  serve,
  type TransportChoice,
} from './rpc/serve.js';
export {
  type ChannelSource,
  createServer,
  type RpcServer,
  type RpcServerEvents,
  type RpcServerOptions,
} from './rpc/server.js';
export * from './rpc/service-types.js';
export { DEFAULT_MAX_IN_FLIGHT, type RpcChannel } from './rpc/session.js';
export * from './rpc/streams.js';
export {
  invalidAddress,
  isLocalAppId,
  listenError,
  listenServer,
  localAppId,
} from './transport/address-rules.js';
export * from './transport/contract.js';
export { memoryPair, memoryTransport } from './transport/memory-transport.js';
export * from './transport/socket-connection.js';
