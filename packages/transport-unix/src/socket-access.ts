/**
 * Who may reach a listening socket file, besides its owner (docs/deployment.md): the socket's
 * permission bits and group, like systemd's `SocketMode=` and `SocketGroup=`. The file permissions
 * only decide who can connect(); the kernel's peer credentials are still checked against
 * `allowedUids` / `allowedGids` on every accept, and the Noise handshake still authenticates the
 * key, so widening the socket widens nothing else.
 */
import { createError } from '@secure-ipc/core';

/** The socket file's access, for a service whose clients run as other users (`unix://` paths only). */
export interface UnixSocketAccess {
  /**
   * Permission bits of the socket file: 0o600 (default, owner only), 0o660 (owner and the socket's
   * group) or 0o666 (every local user; then only `allowedUids` / `allowedGids` and the keys decide).
   * Connecting needs write permission, so these are the only three.
   */
  socketMode?: number | undefined;
  /**
   * The group id the socket file is given (default: this process's group). The process must be
   * root or a member of it. A name is resolved by the caller (`getent group NAME`; the CLI does it).
   */
  socketGroup?: number | undefined;
}

const MODES = [0o600, 0o660, 0o666];

/** Check the access fields once, at construction or at listen, so a typo fails loudly. */
export function validateSocketAccess(access: UnixSocketAccess): void {
  const { socketMode, socketGroup } = access;
  if (socketMode !== undefined && !MODES.includes(socketMode))
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `socketMode must be 0o600, 0o660 or 0o666 (got ${describe(socketMode)})`,
    );
  if (
    socketGroup !== undefined &&
    !(Number.isInteger(socketGroup) && socketGroup >= 0 && socketGroup <= 0xfffffffe)
  )
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `socketGroup must be an integer group id (got ${describe(socketGroup)})`,
    );
}

function describe(value: unknown): string {
  return typeof value === 'number' && Number.isInteger(value) && value >= 0
    ? `0o${value.toString(8)}`
    : String(value);
}

/** Per-call fields over the transport's, field by field. */
export function mergeSocketAccess(base: UnixSocketAccess, override: UnixSocketAccess): UnixSocketAccess {
  return {
    socketMode: override.socketMode ?? base.socketMode,
    socketGroup: override.socketGroup ?? base.socketGroup,
  };
}

/** True when the socket is to be reachable by anyone but its owner. */
export function widened(access: UnixSocketAccess): boolean {
  return (access.socketMode ?? 0o600) !== 0o600;
}

/**
 * The mode of a socket directory this transport creates for `access`: 0700 for an owner-only
 * socket; 0710 when the socket's group may connect (the group may traverse, nobody may list);
 * 0711 when every user may.
 */
export function directoryModeFor(access: UnixSocketAccess): number {
  const mode = access.socketMode ?? 0o600;
  return mode === 0o666 ? 0o711 : mode === 0o660 ? 0o710 : 0o700;
}
