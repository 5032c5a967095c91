/**
 * Small helpers every socket-based transport (unix, tcp, win) needs, kept in one place: wrap a
 * connected `node:net` socket as a `Connection`, wait for a socket to connect while honouring an
 * AbortSignal, and build the typed abort error. Nothing here is OS-specific; the OS-specific
 * hardening stays in each transport package.
 */
import type { Socket } from 'node:net';
import { createError, type SecureIpcError } from '../errors.js';
import type { AbortOptions, Connection, PeerInfo } from './contract.js';

/** The typed error for an aborted wait (`SIPC_ERR_ABORTED`, the signal's reason as `cause`). */
export function abortError(options: AbortOptions): SecureIpcError {
  return createError('SIPC_ERR_ABORTED', undefined, { cause: options.signal?.reason });
}

/** Attach `peer` (frozen) to a connected socket and return it as a Connection. */
export function socketConnection(socket: Socket, peer: PeerInfo): Connection {
  // The consumer (the secure channel) listens for 'error' itself; this no-op only keeps an error
  // nobody listens to from being thrown as an uncaught exception and crashing the process.
  socket.on('error', () => {});
  Object.defineProperty(socket, 'peer', { value: Object.freeze({ ...peer }), enumerable: true });
  return socket as unknown as Connection;
}

/**
 * Resolve once `socket` (just created by `net.connect`) is connected. An abort destroys it and
 * rejects with `SIPC_ERR_ABORTED`; a socket error rejects with `SIPC_ERR_CONNECT_FAILED` naming
 * the address and the OS error code, the OS error as `cause`.
 */
export function awaitConnect(socket: Socket, address: string, options: AbortOptions = {}): Promise<Socket> {
  return new Promise<Socket>((resolve, reject) => {
    const { signal } = options;
    if (signal?.aborted) {
      socket.destroy();
      reject(abortError(options));
      return;
    }
    const onAbort = () => {
      socket.destroy();
      reject(abortError(options));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => {
      signal?.removeEventListener('abort', onAbort);
      resolve(socket);
    });
    socket.once('error', (err: NodeJS.ErrnoException) => {
      signal?.removeEventListener('abort', onAbort);
      reject(
        createError(
          'SIPC_ERR_CONNECT_FAILED',
          `Could not connect to ${address}: ${err.code ?? err.message}`,
          {
            cause: err,
          },
        ),
      );
    });
  });
}
