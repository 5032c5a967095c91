/** The TCP transport: `tcp://HOST:PORT`, loopback only unless `allowRemote`. */
import net from 'node:net';
import { type Connection, createError, type Listener, type Transport } from '@secure-ipc/core';
import {
  type AbortOptions,
  abortError,
  awaitConnect,
  listenServer,
  TRANSPORT_BRAND,
} from '@secure-ipc/core/transport';
import { formatTcpAddress, parseTcpAddress, resolveBindAddress } from './address.js';
import { TcpListener, toConnection } from './listener.js';

/** Options of `tcpTransport()`. */
export interface TcpTransportOptions {
  /** Allow listening on a non-loopback address (exposes the endpoint to the network). Default false. */
  allowRemote?: boolean | undefined;
}

/** Options of `listen`, overriding the transport's. */
export interface TcpListenOptions extends AbortOptions {
  /** Allow a non-loopback bind for this listener. */
  allowRemote?: boolean | undefined;
}

/** Listens and connects over TCP (IPv4 and IPv6). */
export class TcpTransport implements Transport {
  /** Brand checked by core's `isTransport`. */
  readonly [TRANSPORT_BRAND] = true as const;
  /** Transport name reported in `PeerInfo.transport`. */
  readonly name = 'tcp';
  /** Schemes handled. */
  readonly schemes: readonly string[] = ['tcp:'];
  readonly #allowRemote: boolean;

  /** Build a transport. */
  constructor(options: TcpTransportOptions = {}) {
    if (options.allowRemote !== undefined && typeof options.allowRemote !== 'boolean') {
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'allowRemote must be a boolean');
    }
    this.#allowRemote = options.allowRemote === true;
  }

  /** Bind `address` (port 0 picks a free port, reported in `listener.address`). */
  async listen(address: string, options: TcpListenOptions = {}): Promise<Listener> {
    if (options.signal?.aborted) throw abortError(options);
    const { host, port } = parseTcpAddress(address);
    const ip = await resolveBindAddress(host, options.allowRemote ?? this.#allowRemote);
    if (options.signal?.aborted) throw abortError(options);
    const server = net.createServer();
    // exclusive: never share the port with another process's listener (cluster round-robin).
    await listenServer(server, { host: ip, port, exclusive: true }, address);
    const bound = (server.address() as net.AddressInfo).port;
    const listener = new TcpListener(formatTcpAddress(host, bound), server);
    if (options.signal?.aborted) {
      await listener.close();
      throw abortError(options);
    }
    return listener;
  }

  /** Connect to `address`; the connection's `peer` has the remote address and port. */
  async connect(address: string, options: AbortOptions = {}): Promise<Connection> {
    if (options.signal?.aborted) throw abortError(options);
    const { host, port } = parseTcpAddress(address);
    if (port === 0) throw createError('SIPC_ERR_INVALID_ADDRESS', `Cannot connect to port 0: ${address}`);
    const socket = await awaitConnect(net.connect({ host, port }), address, options);
    return toConnection(socket);
  }
}
