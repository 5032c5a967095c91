/**
 * The Windows-only option of `serve`, `ping` and `call`: who may be at the other end of a named
 * pipe by OS identity (`--allow-sid SID|NAME`, repeatable). It maps onto transport-win's
 * `allowedSids` (its README, "Who may be the peer"): on `serve` the clients accepted (each entry
 * also gets a client-only ACE in the pipe's DACL, and the accept-time check matches the client's
 * user or an enabled group); on `ping` / `call` the accounts (or groups) the server process may
 * run as, in place of the default (this user; SYSTEM for `local://system/APP`).
 */
import { isSecureIpcError } from '@secure-ipc/core';
import { type PipeTransportOptions, pipeTransport, WELL_KNOWN_SIDS } from '@secure-ipc/transport-win';
import { CliError } from './io.js';

/** parseArgs spec of the credential option (`serve`, `ping`, `call`). */
export const winPeerOptions = {
  'allow-sid': { type: 'string', multiple: true },
} as const;

/** What the option parsed to, as strings. */
export interface WinOptionValues {
  'allow-sid'?: string[] | undefined;
}

/**
 * transport-win's own validation of the entries (it runs on every OS: nothing native loads), its
 * SIPC_ERR_INVALID_ARGUMENT turned into a usage error naming the `--allow-sid` entry, so the CLI
 * accepts exactly what the transport does.
 */
function checkSids(entries: readonly string[]): void {
  try {
    pipeTransport({ allowedSids: entries });
  } catch (err) {
    if (!isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT')) throw err;
    const index = err.details?.index;
    const entry = typeof index === 'number' ? entries[index] : undefined;
    throw new CliError(
      `--allow-sid ${JSON.stringify(entry ?? entries.join(' '))} is not a SID (S-1-...) or one of ${Object.keys(WELL_KNOWN_SIDS).join(', ')}`,
    );
  }
}

/** The transport-win options the values ask for; outside Windows `--allow-sid` is a usage error. */
export function winOptionsFrom(values: WinOptionValues, platform = process.platform): PipeTransportOptions {
  const entries = values['allow-sid'] ?? [];
  if (entries.length === 0) return {};
  if (platform !== 'win32')
    throw new CliError(
      '--allow-sid is for Windows named pipes; Unix sockets take --allow-uid and --allow-gid',
    );
  checkSids(entries);
  return { allowedSids: entries };
}
