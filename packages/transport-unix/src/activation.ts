/**
 * Socket activation: a listening socket handed over by the service manager instead of bound here.
 * systemd's protocol (sd_listen_fds(3)): the listening sockets are file descriptors 3, 4, ...;
 * `LISTEN_FDS` says how many, `LISTEN_PID` which process they are for (so a child that inherits
 * the environment does not take them), `LISTEN_FDNAMES` their names (`FileDescriptorName=` in the
 * `.socket` unit), colon-separated. Addresses: `systemd:NAME`, or `systemd:` for the only one.
 */
import { createError } from '@secure-ipc/core';
import { invalidAddress } from '@secure-ipc/core/transport';

/** The first descriptor systemd passes (SD_LISTEN_FDS_START). */
export const LISTEN_FDS_START = 3;

/** The sockets handed over to this process, read once. */
export interface HandedOver {
  /** The descriptors, from LISTEN_FDS_START on, with their names ('unknown' where none was given). */
  readonly fds: readonly { readonly fd: number; readonly name: string }[];
  /** Why there are none, when there are none. */
  readonly missing?: string | undefined;
}

/** Names allowed by systemd's FileDescriptorName= (at most 255 characters, printable ASCII, no colon). */
const NAME = /^[\x21-\x39\x3b-\x7e]{1,255}$/;

/** Read the LISTEN_* variables for process `pid` (pure: for the tests, and for `takeHandedOver`). */
export function readHandedOver(env: NodeJS.ProcessEnv, pid: number): HandedOver {
  const { LISTEN_PID, LISTEN_FDS, LISTEN_FDNAMES } = env;
  if (LISTEN_PID === undefined || LISTEN_FDS === undefined)
    return { fds: [], missing: 'no socket was handed over (LISTEN_PID and LISTEN_FDS are not set)' };
  if (!/^\d{1,10}$/.test(LISTEN_PID) || Number(LISTEN_PID) !== pid)
    return {
      fds: [],
      missing: `the sockets handed over are for process ${LISTEN_PID}, not this one (${pid})`,
    };
  if (!/^\d{1,4}$/.test(LISTEN_FDS) || Number(LISTEN_FDS) < 1)
    return { fds: [], missing: `LISTEN_FDS is not a count of sockets: ${JSON.stringify(LISTEN_FDS)}` };
  const count = Number(LISTEN_FDS);
  const names = LISTEN_FDNAMES === undefined || LISTEN_FDNAMES === '' ? [] : LISTEN_FDNAMES.split(':');
  return {
    fds: Array.from({ length: count }, (_, i) => ({ fd: LISTEN_FDS_START + i, name: names[i] ?? 'unknown' })),
  };
}

let handedOver: HandedOver | undefined;

/**
 * The sockets handed over to this process. Read once; the variables are then removed from
 * `process.env`, as sd_listen_fds(1) does, so child processes do not inherit them.
 */
export function takeHandedOver(): HandedOver {
  if (handedOver !== undefined) return handedOver;
  handedOver = readHandedOver(process.env, process.pid);
  delete process.env.LISTEN_PID;
  delete process.env.LISTEN_FDS;
  delete process.env.LISTEN_FDNAMES;
  return handedOver;
}

const taken = new Set<number>();

/** The descriptor of `systemd:NAME` (or of the only one for `systemd:`), once per process; throws typed errors. */
export function handedOverFd(address: string, name: string, over: HandedOver = takeHandedOver()): number {
  const failed = (why: string) =>
    createError('SIPC_ERR_LISTEN_FAILED', `Cannot listen on ${address}: ${why}`, { details: { address } });
  if (over.missing !== undefined) throw failed(over.missing);
  let entry: { fd: number; name: string } | undefined;
  if (name === '') {
    if (over.fds.length !== 1)
      throw failed(
        `${over.fds.length} sockets were handed over (${over.fds.map((f) => f.name).join(', ')}); name one: systemd:NAME`,
      );
    entry = over.fds[0];
  } else {
    entry = over.fds.find((f) => f.name === name);
    if (entry === undefined)
      throw failed(
        `no socket named ${name} was handed over (names: ${over.fds.map((f) => f.name).join(', ')})`,
      );
  }
  if (taken.has(entry!.fd)) throw failed(`the socket ${entry!.name} (fd ${entry!.fd}) is already listening`);
  taken.add(entry!.fd);
  return entry!.fd;
}

/** Check a `systemd:` name; returns it ('' for the only socket). */
export function activationName(address: string): string {
  const name = address.slice('systemd:'.length);
  if (name !== '' && !NAME.test(name))
    throw invalidAddress(address, "a socket name is 1-255 printable ASCII characters without ':'");
  return name;
}
