/**
 * The transport each side uses: on Windows a named pipe (@secure-ipc/transport-win: `pipe://NAME`,
 * `local://system/APP`), elsewhere a Unix domain socket (@secure-ipc/transport-unix:
 * `local://system/APP`, `unix:///path`); a `pipe://` address off Windows goes to the pipe transport
 * too, which then says SIPC_ERR_UNSUPPORTED_PLATFORM. The OS-level gate is set here: which users
 * may connect and which are accepted at accept (the kernel's uid on Unix, the client's token on
 * Windows). A Unix option for a pipe, or the reverse, is refused rather than ignored. Each
 * transport package is imported only when needed, so a Linux install never loads the Windows one
 * (nor the reverse).
 */
import { createError, type Transport } from '@secure-ipc/core';
import type { AppConfig, DaemonConfig } from './config.js';

const SOCKET_MODES = { '0600': 0o600, '0660': 0o660, '0666': 0o666 } as const;

const isPipe = (address: string) => address.startsWith('pipe://') || process.platform === 'win32';

/** Refuse the fields of the other OS's transport: a config meant for Linux must not half-apply on Windows. */
function refuseForeign(address: string, config: object, unixOnly: string[], windowsOnly: string[]): void {
  const foreign = isPipe(address) ? unixOnly : windowsOnly;
  const given = foreign.filter((name) => (config as Record<string, unknown>)[name] !== undefined);
  if (given.length > 0)
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `Not for ${isPipe(address) ? 'named pipes' : 'Unix sockets'}: ${given.join(', ')} (${address})`,
    );
}

/** The daemon's transport: who may connect and who is accepted, from daemon.json. */
export async function daemonTransport(config: DaemonConfig): Promise<Transport> {
  refuseForeign(
    config.address,
    config,
    ['allowedUids', 'socketMode', 'socketGroup', 'systemDirectory'],
    ['allowedSids'],
  );
  if (isPipe(config.address)) {
    const { pipeTransport } = await import('@secure-ipc/transport-win');
    return pipeTransport({ allowedSids: config.allowedSids });
  }
  const { unixTransport } = await import('@secure-ipc/transport-unix');
  return unixTransport({
    allowedUids: config.allowedUids,
    socketMode: config.socketMode === undefined ? undefined : SOCKET_MODES[config.socketMode],
    socketGroup: config.socketGroup,
    systemDirectory: config.systemDirectory,
  });
}

/** The app's transport: which OS user the daemon must run as, from app.json. */
export async function appTransport(config: AppConfig): Promise<Transport> {
  refuseForeign(config.address, config, ['serverUids', 'systemDirectory'], ['serverSids']);
  if (isPipe(config.address)) {
    const { pipeTransport } = await import('@secure-ipc/transport-win');
    return pipeTransport({ allowedSids: config.serverSids });
  }
  const { unixTransport } = await import('@secure-ipc/transport-unix');
  // For local://system/ the default is already "root only"; serverUids overrides it.
  return unixTransport({ allowedUids: config.serverUids, systemDirectory: config.systemDirectory });
}
