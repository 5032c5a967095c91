/**
 * A listening Unix socket: checks every inbound connection's OS credentials against the policy
 * before anyone sees it, tracks open connections so close() can destroy them, and removes its
 * socket file on close (only if it is still ours).
 */
import { EventEmitter } from 'node:events';
import type { Server, Socket } from 'node:net';
import { type Listener, type PeerInfo, toSecureIpcError } from '@secure-ipc/core';
import { type ListenerEvents, onceExecutable, socketConnection } from '@secure-ipc/core/transport';
import { checkCredentials, type UnixCredentialPolicy } from './credential-policy.js';
import { readPeerCredentials, type UnixPeerCredentials } from './peer-credentials.js';
import { readPeerExecutable } from './peer-executable.js';

/** Peer info of a Unix socket connection from what the kernel reported about `socket`'s peer. */
export function unixPeer(creds: UnixPeerCredentials, socket: Socket): PeerInfo {
  const { pid } = creds;
  return Object.freeze({
    transport: 'unix',
    pid: creds.pid,
    uid: creds.uid,
    gid: creds.gid,
    // The kernel's uid (SO_PEERCRED / getpeereid): what the listener's per-identity caps group by.
    ...(creds.uid === undefined ? {} : { osIdentity: `uid:${creds.uid}` }),
    // Read through /proc only when asked (Linux; pid 0: the peer is outside our pid namespace).
    ...(process.platform === 'linux' && pid !== undefined && pid > 0
      ? { executable: onceExecutable(() => readPeerExecutable(socket, pid)) }
      : {}),
  });
}

/** A bound Unix socket that accepts connections from allowed OS users. */
export class UnixListener extends EventEmitter<ListenerEvents> implements Listener {
  /** The address as given to listen. */
  readonly address: string;
  readonly #server: Server;
  readonly #policy: UnixCredentialPolicy;
  readonly #release: () => Promise<void>;
  readonly #connections = new Set<Socket>();
  #closing: Promise<void> | undefined;

  /** Wrap a listening `server`; `release` removes the socket file (a no-op for abstract sockets). */
  constructor(address: string, server: Server, policy: UnixCredentialPolicy, release: () => Promise<void>) {
    super();
    this.address = address;
    this.#server = server;
    this.#policy = policy;
    this.#release = release;
    server.on('connection', (socket) => this.#accept(socket));
    server.on('error', (err) => {
      const error = toSecureIpcError(err, 'SIPC_ERR_LISTEN_FAILED');
      // A fatal error nobody listens for must not crash the process: the close event still tells.
      if (this.listenerCount('error') > 0) this.emit('error', error);
      void this.close();
    });
  }

  #accept(socket: Socket): void {
    if (this.#closing !== undefined) {
      socket.destroy();
      return;
    }
    const creds = readPeerCredentials(socket);
    const peer = unixPeer(creds, socket);
    const refusal = checkCredentials(this.#policy, creds, 'client');
    if (refusal !== undefined) {
      socket.destroy();
      this.emit('reject', refusal, peer);
      return;
    }
    this.#connections.add(socket);
    socket.once('close', () => this.#connections.delete(socket));
    this.emit('connection', socketConnection(socket, peer));
  }

  /** Stop accepting, remove the socket file if still ours, destroy open connections; idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      // Remove the name first so no new client reaches a server that is going away.
      await this.#release();
      const closed = new Promise<void>((resolve) => this.#server.close(() => resolve()));
      for (const socket of this.#connections) socket.destroy();
      await closed;
      this.emit('close');
    })();
    return this.#closing;
  }
}
