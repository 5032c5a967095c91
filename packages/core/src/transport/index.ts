/**
 * @secure-ipc/core/transport: what a transport author needs. The contract (types, brand and
 * guard, scheme selection), the address rules and socket helpers every transport uses, and the in-memory
 * transport (the reference the conformance suite runs first). Applications import from
 * `@secure-ipc/core`; errors (`createError`, `isSecureIpcError`) are there too.
 */

export { LISTEN_BACKLOG } from '../constants.js';
export { invalidAddress, isLocalAppId, listenError, listenServer, localAppId } from './address-rules.js';
export {
  type AbortOptions,
  addressScheme,
  type Connection,
  isTransport,
  type Listener,
  type ListenerEvents,
  type PeerExecutable,
  type PeerInfo,
  selectTransport,
  TRANSPORT_BRAND,
  type Transport,
} from './contract.js';
export { type MemoryConnection, memoryPair, memoryTransport } from './memory-transport.js';
export { MAX_EXECUTABLE_BYTES, onceExecutable, sha256OfFile } from './peer-executable.js';
export { abortError, awaitConnect, socketConnection } from './socket-connection.js';
