/**
 * @secure-ipc/transport-unix: the secure-ipc transport over Unix domain sockets (Linux, macOS),
 * hardened. Addresses: `unix:///absolute/path.sock`, `unix-abstract:NAME` (Linux only, weaker: no
 * file permissions protect it) and `local://APP-ID` (a per-user socket; see `resolveLocalPath`).
 * The socket directory is created 0700 or verified, the socket is owner-only, stale sockets are
 * cleaned up safely, and every connection carries the peer's pid/uid/gid from the kernel; by
 * default only peers of the same user are accepted, on both sides. `forwardAuditRecords` sends
 * core's audit records to journald or syslog over their Unix datagram sockets.
 *
 * @example
 * ```ts
 * import { unixTransport } from '@secure-ipc/transport-unix';
 *
 * const transport = unixTransport();
 * const listener = await transport.listen('local://my-app');
 * listener.on('connection', (conn) => {
 *   console.log('peer', conn.peer.pid, conn.peer.uid);
 *   conn.pipe(conn); // echo the bytes back
 * });
 * const conn = await transport.connect('local://my-app');
 * conn.end('hello');
 * for await (const chunk of conn) console.log(String(chunk)); // hello
 * await listener.close(); // removes the socket file
 * ```
 *
 * @packageDocumentation
 */
import { UnixTransport, type UnixTransportOptions } from './unix-transport.js';

export {
  type LocalDirectoryOptions,
  localDirectory,
  resolveLocalPath,
  socketPathLimit,
} from './address.js';
export {
  type AuditForwarder,
  type AuditForwardOptions,
  forwardAuditRecords,
  type SyslogFacility,
} from './audit-forwarder.js';
export type { UnixCredentialPolicy } from './credential-policy.js';
export type { UnixListener } from './listener.js';
export type { UnixPeerCredentials } from './peer-credentials.js';
export type { UnixSocketAccess } from './socket-access.js';
export {
  type UnixBusyOptions,
  type UnixConnectOptions,
  type UnixListenOptions,
  UnixTransport,
  type UnixTransportOptions,
} from './unix-transport.js';

/** Create a Unix domain socket transport; `options` sets the default credential policy of both sides. */
export function unixTransport(options: UnixTransportOptions = {}): UnixTransport {
  return new UnixTransport(options);
}
