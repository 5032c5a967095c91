/**
 * @secure-ipc/transport-tcp: the secure-ipc transport over TCP, for when the peers cannot share a
 * Unix socket or a named pipe (containers, VMs). Addresses: `tcp://127.0.0.1:7000`,
 * `tcp://[::1]:7000`, `tcp://localhost:0` (port 0 = pick a free one, see `listener.address`).
 * It binds loopback only unless `allowRemote: true`; it sets TCP_NODELAY and keep-alive; each
 * connection's `peer` carries the remote address and port (TCP knows no OS user: rely on keys).
 *
 * @example
 * ```ts
 * import { tcpTransport } from '@secure-ipc/transport-tcp';
 *
 * const transport = tcpTransport();
 * const listener = await transport.listen('tcp://127.0.0.1:0');
 * listener.on('connection', (conn) => conn.pipe(conn)); // echo
 * const conn = await transport.connect(listener.address);
 * conn.end('hello');
 * for await (const chunk of conn) console.log(String(chunk)); // hello
 * await listener.close();
 * ```
 *
 * @packageDocumentation
 */
import { TcpTransport, type TcpTransportOptions } from './tcp-transport.js';

export { formatTcpAddress, isLoopback, parseTcpAddress, type TcpAddress } from './address.js';
export type { TcpListener } from './listener.js';
export { type TcpListenOptions, TcpTransport, type TcpTransportOptions } from './tcp-transport.js';

/** Create a TCP transport; `allowRemote: true` permits binding non-loopback addresses. */
export function tcpTransport(options: TcpTransportOptions = {}): TcpTransport {
  return new TcpTransport(options);
}
