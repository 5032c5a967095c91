/**
 * The transport contract: types and tiny guards only. A transport package (unix, tcp, win, and
 * core's in-memory one) turns an address into reliable, ordered byte streams and says what the
 * OS knows about the other end. Everything above it (framing, handshake, channel, RPC) is
 * transport-agnostic and lives in core.
 */
import type { EventEmitter } from 'node:events';
import type { Duplex } from 'node:stream';

/** Brand that marks a transport; `Symbol.for` so duplicate installs of core still agree. */
export const TRANSPORT_BRAND: unique symbol = Symbol.for('@secure-ipc/transport') as never;

/** The executable image of a peer process, as the OS reports it (`PeerInfo.executable`). */
export interface PeerExecutable {
  /**
   * The image's full path as the OS names it: Linux `readlink /proc/PID/exe` (in the peer's mount
   * namespace, with ` (deleted)` appended once the file was removed), Windows
   * `QueryFullProcessImageNameW` (`C:\...`, case as the OS says it).
   */
  readonly path: string;
  /** SHA-256 of the image's bytes, 64 lower-case hex characters. */
  readonly sha256: string;
}

/** What the OS says about the other end of a connection; each field undefined where unknown. */
export interface PeerInfo {
  /** Name of the transport that produced this info (`unix`, `tcp`, `pipe`, `memory`). */
  readonly transport: string;
  /** Process id of the peer (Unix SO_PEERCRED / LOCAL_PEERPID, Windows GetNamedPipe*ProcessId). */
  readonly pid?: number | undefined;
  /** Effective user id of the peer (Unix). */
  readonly uid?: number | undefined;
  /** Effective group id of the peer (Unix). */
  readonly gid?: number | undefined;
  /** User SID of the peer process, e.g. `S-1-5-21-...` (Windows). */
  readonly sid?: string | undefined;
  /** Remote network address (TCP). */
  readonly address?: string | undefined;
  /** Remote network port (TCP). */
  readonly port?: number | undefined;
  /**
   * The peer's OS identity as the kernel reports it, `uid:1000` (Unix, and TCP loopback on Linux)
   * or `sid:S-1-5-...` (Windows); undefined where the OS cannot say (remote TCP, memory). The
   * listener's per-identity caps group peers by it; a peer cannot choose it.
   */
  readonly osIdentity?: string | undefined;
  /**
   * Read the peer process's executable (path and SHA-256), only when called: the hot path pays
   * nothing. Resolves undefined on any failure (no pid, the process gone or replaced by a reused
   * pid, no permission to read it, the connection closed), so a rule on it fails closed; never
   * rejects; one answer per connection. Absent where the transport cannot say (TCP, memory).
   * An interpreted program reports its interpreter (`node`, `python3`): see docs/identity.md.
   */
  readonly executable?: (() => Promise<PeerExecutable | undefined>) | undefined;
}

/** A connection: a Node Duplex of bytes plus what the OS says about the other end. */
export interface Connection extends Duplex {
  /** OS-level facts about the peer, read when the connection was established. */
  readonly peer: PeerInfo;
}

/** Options of anything that can wait. */
export interface AbortOptions {
  /** Abort the wait; the operation rejects with `SIPC_ERR_ABORTED`. */
  signal?: AbortSignal | undefined;
}

/** Events of a Listener. */
export interface ListenerEvents {
  /** A new inbound connection that passed the transport's own checks (OS credentials etc.). */
  connection: [connection: Connection];
  /** A connection was refused by the transport's checks, or accept failed; the listener keeps going. */
  reject: [error: Error, peer: PeerInfo | undefined];
  /** A fatal listener error; the listener is closed after it. */
  error: [error: Error];
  /** The listener has closed and released its address. */
  close: [];
}

/** A bound endpoint that accepts connections. */
export interface Listener extends EventEmitter<ListenerEvents> {
  /** The address as given to listen (for `tcp://host:0`, with the real port filled in). */
  readonly address: string;
  /** Stop accepting, release the address (remove the socket file), and destroy open connections. */
  close(): Promise<void>;
}

/** A transport: listen and connect on addresses of the schemes it handles. */
export interface Transport {
  /** The brand checked by `isTransport`. */
  readonly [TRANSPORT_BRAND]: true;
  /** Short name (`unix`, `tcp`, `pipe`, `memory`). */
  readonly name: string;
  /** URL schemes this transport handles on this OS, with the colon (`unix:`, `local:` ...). */
  readonly schemes: readonly string[];
  /** Bind `address` and accept connections (a transport's own options extend `AbortOptions`). */
  listen(address: string, options?: AbortOptions): Promise<Listener>;
  /** Open a connection to `address` (a transport's own options extend `AbortOptions`). */
  connect(address: string, options?: AbortOptions): Promise<Connection>;
}

/** True if `value` is a secure-ipc transport (from any copy of core). */
export function isTransport(value: unknown): value is Transport {
  return (
    typeof value === 'object' &&
    value !== null &&
    (value as Record<symbol, unknown>)[TRANSPORT_BRAND] === true
  );
}

/** The scheme of an address, with the colon (`unix:`), lower-cased; undefined if it has none. */
export function addressScheme(address: string): string | undefined {
  const m = /^([a-z][a-z0-9+.-]*):/i.exec(address);
  return m ? `${m[1]!.toLowerCase()}:` : undefined;
}

/** Pick the first transport that handles the address's scheme. */
export function selectTransport(address: string, transports: readonly Transport[]): Transport | undefined {
  const scheme = addressScheme(address);
  return scheme === undefined ? undefined : transports.find((t) => t.schemes.includes(scheme));
}
