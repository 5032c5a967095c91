/**
 * What every end-to-end contestant implements. The scenarios (scenarios.ts) only talk to this
 * interface, so each row runs exactly the same client loop and only the stack underneath differs.
 *
 * Message convention shared by all rows: byte 0 of a message says what the server does with it
 * (ECHO: send the same bytes back; SINK: count and drop). The payload sizes in the report include
 * that byte, so a "64-byte request" is 64 bytes of application data on every row.
 */

/** Byte 0 of a message the server must echo back. */
export const KIND_ECHO = 1;
/** Byte 0 of a one-way message the server counts and drops. */
export const KIND_SINK = 2;

/** Keys (or other per-run secrets) made by the parent and handed to one side over the IPC channel. */
export type SideSecrets = Record<string, unknown>;

/** Secrets for both sides of one row, generated fresh for every run (never written anywhere). */
export interface RunSecrets {
  server: SideSecrets;
  client: SideSecrets;
}

/** Where a server may put files (socket paths, certificates) for this run. */
export interface ServeContext {
  /** A private temporary directory for this row. */
  dir: string;
  /** The server side's secrets. */
  secrets: SideSecrets;
}

/** A running server. */
export interface BenchServer {
  /** What a client passes to `connect` (a socket path, a URL, ...). */
  address: string;
  close(): Promise<void>;
}

/** One client connection, authenticated and ready when `connect` resolves. */
export interface BenchClient {
  /** Send an ECHO message and resolve with the reply. Callers may keep up to 64 in flight. */
  request(message: Buffer): Promise<Buffer>;
  /** Send a SINK message; resolves when the caller may send the next one (back-pressure). */
  send(message: Buffer): Promise<void>;
  /** Resolves once the server has received every message sent before the call. */
  flush(): Promise<void>;
  close(): Promise<void>;
}

/** One end-to-end contestant: a stack over one transport. */
export interface Impl {
  /** Stable id, e.g. `raw-unix`, `sipc-tcp`. */
  id: string;
  /** Row label in the report. */
  label: string;
  /** Id of the raw row this one is divided by (a raw row names itself). */
  baseline: string;
  /** What the row protects: shown beside the numbers so nobody compares a plaintext row unawares. */
  security: string;
  /** npm packages whose versions the report lists for this row. */
  packages: string[];
  /** Fresh keys for one run (called in the parent). */
  secrets(): Promise<RunSecrets>;
  /** Start a server (called in the server process). */
  serve(ctx: ServeContext): Promise<BenchServer>;
  /** Open one authenticated connection (called in the client process). */
  connect(address: string, secrets: SideSecrets): Promise<BenchClient>;
}

/** A message of `size` bytes whose byte 0 is `kind`; the rest is a fixed non-zero pattern. */
export function makeMessage(kind: number, size: number): Buffer {
  const b = Buffer.alloc(size, 0xa5);
  b[0] = kind;
  return b;
}
