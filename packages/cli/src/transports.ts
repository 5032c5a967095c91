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

/** The transport for `address`, or a usage error naming the supported schemes. */
export function transportFor(address: string, options: CliTransportOptions = {}): Transport {
  const all: Transport[] =
    process.platform === 'win32'
      ? [pipeTransport(options.win), tcpTransport({ allowRemote: options.allowRemote === true })]
      : [unixTransport(options.unix), tcpTransport({ allowRemote: options.allowRemote === true })];
  const t = selectTransport(address, all);
  if (!t) {
    const schemes = all.flatMap((x) => x.schemes).join(', ');
    throw new CliError(
      `unsupported address ${JSON.stringify(address)}: use one of ${schemes}`,
      ExitCode.Usage,
    );
  }
  return t;
}
