/**
 * What the soak's processes tell each other (over stdin/stdout lines for the server, Node's IPC
 * channel for the client processes). Keys never travel here: every process reads its secret key
 * from a 0600 key file, and the server its trust list from a file, so a restarted server keeps
 * its identity and its trust.
 */

/** The soak's one method: records its execution in the ledger and returns `seq`. */
export interface SoakApi {
  'ledger.apply'(p: { client: number; seq: number }): number;
}

/** The server process's config, the first line of its stdin. */
export interface SoakServerConfig {
  /** The address the server listens on (`unix://...`). */
  address: string;
  /** Its secret key file (0600). */
  keyFile: string;
  /** Its trust file: the clients' public keys, one per line. */
  trustFile: string;
  /** The ledger: one line appended per execution. */
  ledgerFile: string;
  /** This server lifetime's number (0 for the first process, +1 per restart). */
  life: number;
}

/** The config a client process gets (its first IPC message). */
export interface SoakClientConfig {
  /** The address clients connect to (the fault proxy). */
  address: string;
  /** This process's secret key file (every client of the process uses that key). */
  keyFile: string;
  /** The server's public key (text). */
  serverKey: string;
  /** The client ids this process runs. */
  clients: number[];
  /** Requests per client. */
  requests: number;
  /** Requests in flight per client. */
  window: number;
  /** Each call's deadline (`timeoutMs`, covering every attempt and wait). */
  callTimeoutMs: number;
  /** Prefix of every idempotency key (unique per run). */
  run: string;
  /** How often RSS is sampled, ms. */
  rssEveryMs: number;
}

/** One RSS sample: ms since the process started its clients, bytes. */
export type RssSample = [atMs: number, rss: number];

/** What a client process reports when all its calls settled. */
export interface SoakClientReport {
  type: 'done';
  /** Calls that resolved with their own seq. */
  ok: number;
  /** Calls that rejected, by error code (untyped ones under `untyped`). */
  errors: Record<string, number>;
  /** Calls that resolved with something else than their seq (must be 0). */
  wrong: number;
  /** Calls still unsettled at the process's own backstop (deadline + grace): lost (must be 0). */
  lost: number;
  /** The idempotency keys of the calls that succeeded. */
  okKeys: string[];
  /** Epoch ms of every transition to ready, per client id. */
  ready: Record<number, number[]>;
  /** Clients whose reconnecting client ended in shutdown before close(), by the terminal failure's code. */
  shutdown: Record<string, number>;
  /** unhandledRejection / uncaughtException seen (messages only, never payloads). */
  faults: string[];
  rss: RssSample[];
}

/** Progress a client process reports now and then (calls settled so far). */
export interface SoakProgress {
  type: 'progress';
  settled: number;
}
