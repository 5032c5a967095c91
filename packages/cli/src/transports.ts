/**
 * The transports the CLI knows, picked by the address's scheme: `unix:`, `unix-abstract:` and (on
 * Linux/macOS) `local:` → transport-unix; `tcp:` → transport-tcp; `pipe:` and (on Windows) `local:`
 * → transport-win.
 */
import type { Transport } from '@secure-ipc/core';
import { selectTransport } from '@secure-ipc/core/transport';
import { tcpTransport } from '@secure-ipc/transport-tcp';
import { type UnixTransportOptions, unixTransport } from '@secure-ipc/transport-unix';
import { type PipeTransportOptions, pipeTransport } from '@secure-ipc/transport-win';
import { CliError, ExitCode } from './io.js';
import { type UnixOptionValues, unixOptionsFrom, unixPeerOptions } from './unix-options.js';
import { type WinOptionValues, winOptionsFrom, winPeerOptions } from './win-options.js';

/** Options that change how transports bind. */
export interface CliTransportOptions {
  /** Let TCP bind a non-loopback address (`--allow-remote`). */
  allowRemote?: boolean;
  /** transport-unix's options (`--allow-uid`, `--allow-gid`, `--socket-mode`, `--socket-group`). */
  unix?: UnixTransportOptions;
  /** transport-win's options (`--allow-sid`). */
  win?: PipeTransportOptions;
}

/**
 * parseArgs specs of the options that say who may be at the other end by OS identity, on every
 * command that listens or connects: `--allow-uid` / `--allow-gid` (Unix), `--allow-sid` (Windows).
 */
export const peerCredentialOptions = { ...unixPeerOptions, ...winPeerOptions } as const;

/** The transport options the OS identity options ask for; each OS's options are a usage error on the other. */
export function credentialOptionsFrom(
  values: UnixOptionValues & WinOptionValues,
): Pick<CliTransportOptions, 'unix' | 'win'> {
  return { unix: unixOptionsFrom(values), win: winOptionsFrom(values) };
}

/** True when `options` carry anything the OS identity or socket file options asked for. */
function osOptionsGiven(options: CliTransportOptions): boolean {
  return Object.keys(options.unix ?? {}).length > 0 || Object.keys(options.win ?? {}).length > 0;
}

/**
 * The transport for `address`, or a usage error naming the supported schemes. OS identity and
 * socket file options on a `tcp://` address are a usage error too: transport-tcp checks no uid or
 * SID (a loopback peer's uid only groups it for fairness), and ignoring them would let a user
 * believe the server is narrower than it is.
 */
export function transportFor(address: string, options: CliTransportOptions = {}): Transport {
  const tcp = tcpTransport({ allowRemote: options.allowRemote === true });
  const all: Transport[] =
    process.platform === 'win32' ? [pipeTransport(options.win), tcp] : [unixTransport(options.unix), tcp];
  const t = selectTransport(address, all);
  if (!t) {
    const schemes = all.flatMap((x) => x.schemes).join(', ');
    throw new CliError(
      `unsupported address ${JSON.stringify(address)}: use one of ${schemes}`,
      ExitCode.Usage,
    );
  }
  if (t === tcp && osOptionsGiven(options))
    throw new CliError(
      `${address}: tcp:// checks no OS credentials; --allow-uid, --allow-gid, --socket-mode, --socket-group and --allow-sid are for local sockets and named pipes`,
      ExitCode.Usage,
    );
  return t;
}
