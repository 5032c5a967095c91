/** Parsing of `tcp://HOST:PORT` (IPv4, bracketed IPv6, names) and the loopback test. */
import { lookup } from 'node:dns/promises';
import net from 'node:net';
import { createError } from '@secure-ipc/core';
import { invalidAddress } from '@secure-ipc/core/transport';

/** A parsed `tcp://` address; `host` is unbracketed. */
export interface TcpAddress {
  /** Host name or IP literal, without IPv6 brackets. */
  readonly host: string;
  /** Port, 0..65535 (0 = any free port, listen only). */
  readonly port: number;
}

const TCP = /^tcp:\/\/(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/;

/** Parse `tcp://HOST:PORT`; an IPv6 literal must be bracketed (`tcp://[::1]:7000`). */
export function parseTcpAddress(address: string): TcpAddress {
  const m = typeof address === 'string' ? TCP.exec(address) : null;
  if (m === null)
    throw invalidAddress(String(address), 'expected tcp://HOST:PORT, with IPv6 as tcp://[ADDR]:PORT');
  const host = m[1] ?? m[2]!;
  if (m[1] !== undefined && net.isIPv6(host) === false)
    throw invalidAddress(address, 'not an IPv6 address in brackets');
  const port = Number(m[3]);
  if (port > 65535) throw invalidAddress(address, 'port out of range');
  return { host, port };
}

/** Format host and port back into an address, bracketing IPv6. */
export function formatTcpAddress(host: string, port: number): string {
  return `tcp://${net.isIPv6(host) ? `[${host}]` : host}:${port}`;
}

// BlockList parses the address, so every spelling of ::1 and IPv4-mapped 127.x match too.
const LOOPBACK = new net.BlockList();
LOOPBACK.addSubnet('127.0.0.0', 8, 'ipv4');
LOOPBACK.addAddress('::1', 'ipv6');

/** True for 127.0.0.0/8, ::1 (any spelling) and IPv4-mapped loopback (::ffff:127.x.y.z). */
export function isLoopback(ip: string): boolean {
  const family = net.isIP(ip);
  return family !== 0 && LOOPBACK.check(ip, family === 4 ? 'ipv4' : 'ipv6');
}

/**
 * Resolve `host` to the one IP address to bind, and refuse a non-loopback one unless allowed.
 * The check runs on the resolved address, and that same address is bound, so a name that
 * resolves elsewhere (or changes between check and bind) cannot widen the exposure.
 */
export async function resolveBindAddress(host: string, allowRemote: boolean): Promise<string> {
  let ip = host;
  if (net.isIP(host) === 0) {
    try {
      ip = (await lookup(host)).address;
    } catch (err) {
      throw createError('SIPC_ERR_LISTEN_FAILED', `Cannot resolve ${host}`, { cause: err });
    }
  }
  if (!allowRemote && !isLoopback(ip)) {
    throw createError(
      'SIPC_ERR_REMOTE_NOT_ALLOWED',
      `Refusing to listen on ${host} (${ip}), which is not a loopback address; pass allowRemote: true to expose it to the network`,
    );
  }
  return ip;
}
