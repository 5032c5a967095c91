/**
 * The high-level entry: `serve()` listens on an address, runs the Noise handshake on every
 * connection and serves RPC with a policy; `connect()` opens a connection, authenticates the
 * server and returns a typed client. Both take any transport (unix, tcp, pipe, memory).
 */
import type { ChannelOptions } from '../channel/options.js';
import { secureConnect } from '../channel/secure-channel.js';
import { secureListen } from '../channel/secure-listener.js';
import { createError } from '../errors.js';
import { selectTransport, type Transport } from '../transport/contract.js';
import { RpcClient, type RpcClientOptions } from './client.js';
import { RpcServer, type RpcServerOptions } from './server.js';
import type { EventMap, ServiceDefinition } from './service-types.js';

/** Where to listen or connect: one transport, or several to choose from by the address's scheme. */
export interface TransportChoice {
  /** The transport(s); with several, the first whose schemes include the address's is used. */
  transport: Transport | readonly Transport[];
  /** The address, e.g. `unix:///run/app.sock`, `tcp://127.0.0.1:0`, `memory://name`. */
  address: string;
}

/** Options of `serve`. */
export interface RpcServeOptions extends TransportChoice, ChannelOptions, RpcServerOptions {
  /** Most handshakes in progress at once (default 64). */
  maxPendingHandshakes?: number;
}

/** Options of `connect`. */
export interface RpcConnectOptions extends TransportChoice, ChannelOptions, RpcClientOptions {}

function pick(choice: TransportChoice): Transport {
  const { transport, address } = choice;
  const found = Array.isArray(transport)
    ? selectTransport(address, transport as readonly Transport[])
    : (transport as Transport);
  if (found === undefined) throw createError('SIPC_ERR_INVALID_ADDRESS', `No transport handles ${address}`);
  return found;
}

/**
 * Listen on `address` and serve RPC to every peer that passes `trust`, with `policy` deciding
 * what each may do (deny by default). Register handlers on the result right away: no request can
 * arrive before the first handshake, which takes several event loop turns.
 */
export async function serve<S extends object = ServiceDefinition, E extends object = EventMap>(
  options: RpcServeOptions,
): Promise<RpcServer<S, E>> {
  const transport = pick(options);
  const server = new RpcServer<S, E>(options);
  const listener = await transport.listen(options.address, { signal: options.signal });
  try {
    server.listen(secureListen(listener, options));
  } catch (err) {
    await listener.close();
    throw err;
  }
  return server;
}

/** Connect to `address`, authenticate the server against `trust`, and return a typed client. */
export async function connect<S extends object = ServiceDefinition, E extends object = EventMap>(
  options: RpcConnectOptions,
): Promise<RpcClient<S, E>> {
  const transport = pick(options);
  const connection = await transport.connect(options.address, { signal: options.signal });
  try {
    return new RpcClient<S, E>(await secureConnect(connection, options), options);
  } catch (err) {
    connection.destroy();
    throw err;
  }
}
