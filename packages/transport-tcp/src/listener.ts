/** A listening TCP socket: tracks open connections so close() can destroy them. */
import { EventEmitter } from 'node:events';
import type { Server, Socket } from 'node:net';
import { type Connection, type Listener, toSecureIpcError } from '@secure-ipc/core';
import { type ListenerEvents, socketConnection } from '@secure-ipc/core/transport';

/** Keep-alive probe delay: a dead peer (cable pulled, host gone) is noticed without application traffic. */
const KEEP_ALIVE_MS = 30_000;

/** Tune a connected socket and turn it into a Connection with the remote address and port as `peer`. */
export function toConnection(socket: Socket): Connection {
  // Small RPC messages must not wait for Nagle's algorithm to coalesce them.
  socket.setNoDelay(true);
  socket.setKeepAlive(true, KEEP_ALIVE_MS);
  return socketConnection(socket, {
    transport: 'tcp',
    address: socket.remoteAddress,
    port: socket.remotePort,
  });
}

/** A bound TCP socket that accepts connections. */
export class TcpListener extends EventEmitter<ListenerEvents> implements Listener {
  /** The address as given to listen, with the real port when 0 was asked for. */
  readonly address: string;
  readonly #server: Server;
  readonly #connections = new Set<Socket>();
  #closing: Promise<void> | undefined;

  /** Wrap a listening `server` bound at `address`. */
  constructor(address: string, server: Server) {
    super();
    this.address = address;
    this.#server = server;
    server.on('connection', (socket) => {
      if (this.#closing !== undefined || socket.remoteAddress === undefined) {
        // Closing, or the client already reset the connection: nothing to hand out.
        socket.destroy();
        return;
      }
      this.#connections.add(socket);
      socket.once('close', () => this.#connections.delete(socket));
      this.emit('connection', toConnection(socket));
    });
    server.on('error', (err) => {
      if (this.listenerCount('error') > 0)
        this.emit('error', toSecureIpcError(err, 'SIPC_ERR_LISTEN_FAILED'));
      void this.close();
    });
  }

  /** Stop accepting and destroy open connections; idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      for (const socket of this.#connections) socket.destroy();
      await closed;
      this.emit('close');
    })();
    return this.#closing;
  }
}
