/**
 * @secure-ipc/transport-win: the secure-ipc transport over Windows named pipes, hardened where Node
 * alone cannot be. Addresses: `pipe://NAME` (the pipe `\\.\pipe\NAME`), `local://APP-ID` (the
 * per-user pipe `\\.\pipe\secure-ipc-<user SID>-<APP-ID>`) and `local://system/APP-ID` (a service's
 * pipe for every user, `\\.\pipe\secure-ipc-system-<APP-ID>`, whose clients accept only a SYSTEM
 * server unless told otherwise).
 *
 * The package creates every server pipe instance itself through FFI (koffi): an explicit owner-only
 * DACL (this user and SYSTEM, plus client-only rights for the SIDs or well-known groups the policy
 * names; no Everyone, no Anonymous; NETWORK denied), FILE_FLAG_FIRST_PIPE_INSTANCE
 * plus a sole-instance check (a squatter makes listen fail with SIPC_ERR_ADDRESS_IN_USE), and
 * PIPE_REJECT_REMOTE_CLIENTS. Clients open the pipe with identification-only impersonation and check
 * that the server process runs as the expected user before sending anything. Every connection
 * carries `peer = { transport: 'pipe', pid, sid }`; by default only peers of the same user are
 * accepted, on both sides (`allowedSids` names other users or groups: a group matches a peer whose
 * token has it enabled, CheckTokenMembership). Connected handles are handed to Node (libuv), so a connection is a plain
 * `net.Socket` underneath.
 *
 * Windows semantics: `end()` on a named pipe closes both directions (the peer sees `end`, and data
 * it writes afterwards is lost); there is no file to clean up: the name disappears with the last
 * instance. The package imports on every OS; outside Windows `schemes` is empty and listen/connect
 * reject with `SIPC_ERR_UNSUPPORTED_PLATFORM` (koffi is loaded only on Windows, on first use).
 *
 * @example
 * ```ts
 * import { pipeTransport } from '@secure-ipc/transport-win';
 *
 * const transport = pipeTransport();
 * const listener = await transport.listen('local://my-app');
 * listener.on('connection', (conn) => {
 *   console.log('peer', conn.peer.pid, conn.peer.sid);
 *   conn.pipe(conn); // echo the bytes back
 * });
 * const conn = await transport.connect('local://my-app');
 * conn.write('hello');
 * conn.once('data', (chunk) => {
 *   console.log(String(chunk)); // hello
 *   conn.end(); // closes both directions on a named pipe
 *   void listener.close(); // nothing left behind: a pipe has no file
 * });
 * ```
 *
 * @packageDocumentation
 */
import { PipeTransport, type PipeTransportOptions } from './pipe-transport.js';

export {
  checkPipeName,
  localPipeName,
  MAX_PIPE_PATH_LENGTH,
  type PipeAddress,
  parsePipeAddress,
  SYSTEM_PREFIX,
  systemPipeName,
} from './address.js';
export { pipeSddl } from './hardening.js';
export type { PipeListener } from './listener.js';
export { windowsOwnerOnly } from './outbox-guard.js';
export type { PipeCredentialPolicy, PipePeerCredentials } from './peer-credentials.js';
export {
  type PipeConnectOptions,
  type PipeListenOptions,
  PipeTransport,
  type PipeTransportOptions,
  readPipeSecurityDescriptor,
} from './pipe-transport.js';
export { WELL_KNOWN_SIDS } from './sids.js';
export { currentUserSid } from './win32-ffi.js';

/** Create a Windows named-pipe transport; `options` sets the default credential policy of both sides. */
export function pipeTransport(options: PipeTransportOptions = {}): PipeTransport {
  return new PipeTransport(options);
}

/** The full pipe path an address stands for on this machine and user (for the CLI and logs to print). */
export { resolvePipePath } from './pipe-transport.js';
