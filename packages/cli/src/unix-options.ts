/**
 * The Unix-only options of `serve` and `ping`: who may be at the other end by OS identity
 * (`--allow-uid`, `--allow-gid`, repeatable) and, for `serve`, who may reach the socket file
 * (`--socket-mode`, `--socket-group`). They map onto transport-unix's `allowedUids`,
 * `allowedGids`, `socketMode` and `socketGroup` (its README, "A service other users connect to").
 */
import { readFileSync } from 'node:fs';
import type { UnixTransportOptions } from '@secure-ipc/transport-unix';
import { CliError } from './io.js';

/** parseArgs specs of the credential options (both commands). */
export const unixPeerOptions = {
  'allow-uid': { type: 'string', multiple: true },
  'allow-gid': { type: 'string', multiple: true },
} as const;

/** parseArgs specs of the socket file options (`serve`). */
export const unixSocketOptions = {
  'socket-mode': { type: 'string' },
  'socket-group': { type: 'string' },
} as const;

/** What the options parsed to, as strings. */
export interface UnixOptionValues {
  'allow-uid'?: string[] | undefined;
  'allow-gid'?: string[] | undefined;
  'socket-mode'?: string | undefined;
  'socket-group'?: string | undefined;
}

const ID = /^\d{1,10}$/;

function id(text: string, option: string): number {
  const n = Number(text);
  if (!ID.test(text) || n > 0xfffffffe)
    throw new CliError(`--${option} must be a numeric id (got ${JSON.stringify(text)})`);
  return n;
}

/** `0660`, `660` or `0o660` as a number; the transport decides which modes it allows. */
export function parseMode(text: string): number {
  const digits = text.startsWith('0o') ? text.slice(2) : text;
  if (!/^[0-7]{3,4}$/.test(digits))
    throw new CliError(`--socket-mode must be an octal mode such as 0660 (got ${JSON.stringify(text)})`);
  return Number.parseInt(digits, 8);
}

/**
 * A group id from a number or a group name looked up in `groupFile` (`/etc/group`: `name:x:gid:...`).
 * A name the file does not list is a usage error that says to give the id instead.
 */
export function resolveGroup(text: string, groupFile = '/etc/group'): number {
  if (ID.test(text)) return id(text, 'socket-group');
  let lines: string[];
  try {
    lines = readFileSync(groupFile, 'utf8').split('\n');
  } catch (err) {
    throw new CliError(
      `--socket-group ${text}: cannot read ${groupFile} (${(err as NodeJS.ErrnoException).code ?? String(err)}); give the numeric group id`,
    );
  }
  for (const line of lines) {
    const [name, , gid] = line.split(':');
    if (name === text && gid !== undefined && ID.test(gid)) return Number(gid);
  }
  throw new CliError(`--socket-group ${text}: no such group in ${groupFile}; give the numeric group id`);
}

/** The names of the Unix-only options. */
const UNIX_OPTION_NAMES = Object.keys({
  ...unixPeerOptions,
  ...unixSocketOptions,
}) as (keyof UnixOptionValues)[];

/**
 * The transport-unix options the values ask for; on Windows any of them is a usage error. `values`
 * may be a command's whole parse result: only the Unix options are looked at.
 */
export function unixOptionsFrom(values: UnixOptionValues, platform = process.platform): UnixTransportOptions {
  const given = UNIX_OPTION_NAMES.filter((name) => {
    const v = values[name];
    return v !== undefined && !(Array.isArray(v) && v.length === 0);
  });
  if (given.length === 0) return {};
  if (platform === 'win32')
    throw new CliError(`--${given[0]} is for Unix sockets; named pipes have no uid, gid or file mode`);
  const options: UnixTransportOptions = {};
  if (values['allow-uid']?.length) options.allowedUids = values['allow-uid'].map((u) => id(u, 'allow-uid'));
  if (values['allow-gid']?.length) options.allowedGids = values['allow-gid'].map((g) => id(g, 'allow-gid'));
  if (values['socket-mode'] !== undefined) options.socketMode = parseMode(values['socket-mode']);
  if (values['socket-group'] !== undefined) options.socketGroup = resolveGroup(values['socket-group']);
  return options;
}
