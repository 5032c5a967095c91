/**
 * A listening TCP socket: tracks open connections so close() can destroy them, and on Linux fills
 * a loopback peer's `osIdentity` (`uid:N`) from /proc/net/tcp* before handing the connection out.
 */
import { EventEmitter } from 'node:events';
import type { Server, Socket } from 'node:net';
import { type Connection, type Listener, toSecureIpcError } from '@secure-ipc/core';
import { type ListenerEvents, socketConnection } from '@secure-ipc/core/transport';
import { LoopbackUidResolver } from './peer-identity.js';

/** Keep-alive probe delay: a dead peer (cable pulled, host gone) is noticed without application traffic. */
const KEEP_ALIVE_MS = 30_000;

/** One resolver per process: its reads of /proc are shared by every listener. */
const uids = new LoopbackUidResolver();

/**
 * Tune a connected socket and turn it into a Connection with the remote address and port as
 * `peer`, plus `osIdentity` when the uid is known (accepted loopback connections on Linux).
 */
export function toConnection(socket: Socket, uid?: number): Connection {
  // Small RPC messages must not wait for Nagle's algorithm to coalesce them.
  socket.setNoDelay(true);
  socket.setKeepAlive(true, KEEP_ALIVE_MS);
  return socketConnection(socket, {
    transport: 'tcp',
    address: socket.remoteAddress,
    port: socket.remotePort,
    ...(uid === undefined ? {} : { osIdentity: `uid:${uid}` }),
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
      // Its uid first (loopback on Linux; undefined elsewhere, at once); meanwhile the socket may
      // close or the listener shut down: then nobody sees it.
      void uids.lookup(socket).then((uid) => {
        if (this.#closing !== undefined || socket.destroyed) {
          socket.destroy();
          return;
        }
        this.emit('connection', toConnection(socket, uid));
      });
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
