/**
 * @secure-ipc/core: the transport contract, framing, the Noise_XX handshake, the secure channel,
 * the msgpack envelope, RPC and the authorization policy. No OS-specific code lives here; install
 * the transports you need (`@secure-ipc/transport-unix`, `-tcp`, `-win`) beside it.
 *
 * @packageDocumentation
 */

export * from './constants.js';
export * from './errors.js';
export * from './framing.js';
export * from './keys.js';
export * from './transport.js';
