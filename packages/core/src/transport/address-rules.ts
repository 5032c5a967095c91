/**
 * Address rules every transport shares, OS-independent: the typed error for a malformed address,
 * the application id of a `local://APP-ID` address (transport-unix maps it to a socket in a
 * per-user directory, transport-win to a per-user pipe name: the id itself follows one rule), and
 * how an OS refusal to listen maps to the typed errors.
 */
import type { ListenOptions as NetListenOptions, Server } from 'node:net';
import { LISTEN_BACKLOG } from '../constants.js';
import { createError, type SecureIpcError } from '../errors.js';

/**
 * Characters allowed in a `local://` application id: a safe file-name subset (it becomes part of a
 * socket file name or a pipe name), starting with a letter or digit, 1 to 64 of them.
 */
const LOCAL_APP_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const LOCAL_PREFIX = 'local://';

/** `SIPC_ERR_INVALID_ADDRESS` saying which address and why: `Invalid address "x": why`. */
export function invalidAddress(address: string, why: string): SecureIpcError {
  return createError('SIPC_ERR_INVALID_ADDRESS', `Invalid address ${JSON.stringify(address)}: ${why}`);
}

/** True if `id` may follow `local://`: 1-64 characters of A-Z a-z 0-9 . _ -, the first a letter or digit. */
export function isLocalAppId(id: unknown): id is string {
  return typeof id === 'string' && LOCAL_APP_ID.test(id);
}

/** The application id of `local://APP-ID`; anything else throws `SIPC_ERR_INVALID_ADDRESS`. */
export function localAppId(address: string): string {
  if (typeof address !== 'string' || !address.startsWith(LOCAL_PREFIX)) {
    throw invalidAddress(String(address), 'expected local://APP-ID');
  }
  const id = address.slice(LOCAL_PREFIX.length);
  if (!isLocalAppId(id)) {
    throw invalidAddress(
      address,
      'the application id must be 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit',
    );
  }
  return id;
}

/**
 * The typed error for an OS refusal to listen on `address`: EADDRINUSE gives
 * `SIPC_ERR_ADDRESS_IN_USE`, anything else `SIPC_ERR_LISTEN_FAILED`; the message names the address
 * and the OS code, and the OS error is the `cause`.
 */
export function listenError(address: string, err: unknown): SecureIpcError {
  const code = (err as NodeJS.ErrnoException | null | undefined)?.code;
  return createError(
    code === 'EADDRINUSE' ? 'SIPC_ERR_ADDRESS_IN_USE' : 'SIPC_ERR_LISTEN_FAILED',
    `Cannot listen on ${address}: ${code ?? String(err)}`,
    { cause: err },
  );
}

/**
 * `server.listen(options)`, resolved once the server is bound; an OS refusal rejects with
 * `listenError(address, err)`. The one-shot 'error' listener is removed either way.
 */
export function listenServer(server: Server, options: NetListenOptions, address: string): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    const onError = (err: Error) => reject(listenError(address, err));
    server.once('error', onError);
    server.listen({ backlog: LISTEN_BACKLOG, ...options }, () => {
      server.off('error', onError);
      resolve();
    });
  });
}
