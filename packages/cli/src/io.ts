/**
 * Exit codes, user-facing errors and output for the `secure-ipc` command. User errors print one
 * clear line on stderr (`secure-ipc COMMAND: <message> (<code>; caused by ...)`), never a stack
 * trace; with `--json`, one `{"error":{...}}` object on stdout instead (errorJSON).
 */
import { type ErrorCode, isSecureIpcError, type RemoteError } from '@secure-ipc/core';
import { toJSONValue } from './json-values.js';

/** Documented exit codes (also in the package README). */
export const ExitCode = {
  /** Success. */
  Ok: 0,
  /** The command ran but failed: a ping failed, the channel closed early. */
  Failed: 1,
  /** Bad usage: unknown command or option, missing or malformed argument. */
  Usage: 2,
  /** A key, certificate or file problem: unreadable, malformed, insecure permissions. */
  KeyOrFile: 3,
  /** Cannot listen or connect: address, hardening refusal, nothing answering. */
  Address: 4,
  /** Authentication failed: handshake failure, untrusted or revoked peer. */
  Auth: 5,
  /** The server answered the request with an error (`call`: forbidden, no such method, the handler's error). */
  Remote: 6,
  /** `audit witness`: the server's audit log forked (SIPC_ERR_AUDIT_FORK). */
  Fork: 7,
} as const;

/** Where a command writes; tests pass their own. */
export interface CliIo {
  /** Standard output (results). */
  readonly stdout: NodeJS.WritableStream;
  /** Standard error (diagnostics). */
  readonly stderr: NodeJS.WritableStream;
  /** Standard input (for `pubkey` without `--key`). */
  readonly stdin: NodeJS.ReadableStream;
}

/** A user error with the exit code to use; `cause`, when given, is printed after the message. */
export class CliError extends Error {
  /** The process exit code. */
  readonly exitCode: number;
  constructor(message: string, exitCode: number = ExitCode.Usage, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'CliError';
    this.exitCode = exitCode;
  }
}

const EXIT_BY_CODE: Partial<Record<ErrorCode, number>> = {
  SIPC_ERR_INVALID_ARGUMENT: ExitCode.Usage,
  SIPC_ERR_INVALID_ADDRESS: ExitCode.Usage,
  SIPC_ERR_BAD_KEY: ExitCode.KeyOrFile,
  SIPC_ERR_INSECURE_KEY_FILE: ExitCode.KeyOrFile,
  SIPC_ERR_INSECURE_FILE: ExitCode.KeyOrFile,
  SIPC_ERR_BAD_CERTIFICATE: ExitCode.KeyOrFile,
  SIPC_ERR_KEYSTORE: ExitCode.KeyOrFile,
  SIPC_ERR_UNSUPPORTED_PLATFORM: ExitCode.Address,
  SIPC_ERR_CONNECT_FAILED: ExitCode.Address,
  SIPC_ERR_ADDRESS_IN_USE: ExitCode.Address,
  SIPC_ERR_LISTEN_FAILED: ExitCode.Address,
  SIPC_ERR_INSECURE_DIRECTORY: ExitCode.Address,
  SIPC_ERR_NOT_A_SOCKET: ExitCode.Address,
  SIPC_ERR_PATH_TOO_LONG: ExitCode.Address,
  SIPC_ERR_REMOTE_NOT_ALLOWED: ExitCode.Address,
  SIPC_ERR_PEER_CREDENTIALS: ExitCode.Address,
  SIPC_ERR_PIPE_SECURITY: ExitCode.Address,
  SIPC_ERR_HANDSHAKE_FAILED: ExitCode.Auth,
  SIPC_ERR_HANDSHAKE_TIMEOUT: ExitCode.Auth,
  SIPC_ERR_UNTRUSTED_PEER: ExitCode.Auth,
  SIPC_ERR_REFUSED: ExitCode.Auth,
  SIPC_ERR_VERSION_MISMATCH: ExitCode.Auth,
  SIPC_ERR_CERT_EXPIRED: ExitCode.Auth,
  SIPC_ERR_REVOKED: ExitCode.Auth,
  SIPC_ERR_AUDIT_FORK: ExitCode.Fork,
};

// A file that cannot be opened (missing, unreadable, a directory, a link) is reported by core as
// SIPC_ERR_INVALID_ARGUMENT caused by the OS error of the call (it has a `syscall`) or naming the
// file in `details.path`: for the CLI that is a file problem (exit 3), like a malformed or
// insecure file, whatever the command.
function isFileAccessError(err: unknown): boolean {
  if (!isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT')) return false;
  return (
    typeof (err.cause as { syscall?: unknown } | undefined)?.syscall === 'string' ||
    typeof err.details?.path === 'string'
  );
}

/** True for an error the peer answered with (`details.remote`), as opposed to a local failure. */
function isRemoteAnswer(err: unknown): boolean {
  return isSecureIpcError(err) && err.details?.remote === true;
}

/** The exit code for an error thrown by a command. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  // A deadline is the caller's, whichever end noticed it first: the caller's own timer, or the
  // server enforcing the `h.timeout` it was sent (an answer, so remote) a moment earlier.
  if (isSecureIpcError(err, 'SIPC_ERR_TIMEOUT')) return ExitCode.Failed;
  if (isRemoteAnswer(err)) return ExitCode.Remote;
  if (isFileAccessError(err)) return ExitCode.KeyOrFile;
  if (isSecureIpcError(err)) return EXIT_BY_CODE[err.code] ?? ExitCode.Failed;
  return ExitCode.Failed;
}

/** One link of an error's cause chain: its code when it has one (`SIPC_ERR_...`, `ENOENT`), and its message. */
export interface CauseJSON {
  code?: string;
  message: string;
}

// Deep enough for every chain core builds (at most three links); a longer or cyclic one is cut.
const MAX_CAUSES = 8;

function link(err: unknown): CauseJSON {
  const code = (err as { code?: unknown } | null)?.code;
  const message = err instanceof Error ? err.message : String(err);
  return typeof code === 'string' ? { code, message } : { message };
}

/**
 * The causes below `err` (`err.cause`, its cause, ...), outermost first; a link that repeats the
 * one above it (same code and message) is left out.
 */
export function causesOf(err: unknown): CauseJSON[] {
  const out: CauseJSON[] = [];
  const seen = new Set<unknown>([err]);
  let above = link(err);
  let next = (err as { cause?: unknown } | null)?.cause;
  while (next !== undefined && next !== null && !seen.has(next) && out.length < MAX_CAUSES) {
    seen.add(next);
    const here = link(next);
    if (here.code !== above.code || here.message !== above.message) out.push(here);
    above = here;
    next = (next as { cause?: unknown }).cause;
  }
  return out;
}

// Messages can come from the peer (a remote error's message and data): control characters are
// escaped so that no peer can write terminal escape sequences to the user's screen.
// biome-ignore lint/suspicious/noControlCharactersInRegex: matching them is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/** `text` with every control character written as `\uXXXX`. */
export function printable(text: string): string {
  return text.replace(CONTROL, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

// `ENOENT: ENOENT: no such file` would say the code twice: Node's messages often start with it.
function causeLine(c: CauseJSON): string {
  return c.code === undefined || c.message.startsWith(`${c.code}:`) ? c.message : `${c.code}: ${c.message}`;
}

function describeRemote(err: RemoteError): string {
  const data = err.data === undefined ? '' : `; data ${JSON.stringify(toJSONValue(err.data))}`;
  return `${err.remoteCode}${data}`;
}

/**
 * One line describing an error for a user: the message, the typed code (for an application error
 * of the peer, its own code and data), and every cause below it (`caused by CODE: message`), so
 * that "The trust function threw" says what it threw.
 */
export function describeError(err: unknown): string {
  const facts: string[] = [];
  if (isSecureIpcError(err))
    facts.push(isSecureIpcError(err, 'SIPC_ERR_REMOTE') ? `${err.code} ${describeRemote(err)}` : err.code);
  for (const c of causesOf(err)) facts.push(`caused by ${causeLine(c)}`);
  const message = err instanceof Error ? err.message : String(err);
  return printable(facts.length === 0 ? message : `${message} (${facts.join('; ')})`);
}

/**
 * The `--json` form of a failure, `{"error":{...}}`: the command, the typed code when a
 * secure-ipc error is the failure or its first typed cause (absent for a usage error), the
 * message, the exit code, the cause chain, and for an answer of the peer `remote: true` with an
 * application error's `remoteCode` and `data` (package README, "JSON output").
 */
export function errorJSON(err: unknown, command: string): { error: Record<string, unknown> } {
  const causes = causesOf(err);
  const typed = isSecureIpcError(err) ? err.code : causes.find((c) => c.code?.startsWith('SIPC_ERR_'))?.code;
  const error: Record<string, unknown> = {
    command,
    ...(typed === undefined ? {} : { code: typed }),
    message: err instanceof Error ? err.message : String(err),
    exitCode: exitCodeOf(err),
    causes,
  };
  if (isRemoteAnswer(err)) error.remote = true;
  if (isSecureIpcError(err, 'SIPC_ERR_REMOTE')) {
    error.remoteCode = err.remoteCode;
    if (err.data !== undefined) error.data = toJSONValue(err.data);
  }
  return { error };
}

/**
 * Create FILE with `write`, one of core's secret file writers (0600, O_EXCL): an existing file is
 * never overwritten (it may be someone's key) and is named in a file error (exit 3); any other
 * failure is core's own (a file problem too).
 */
export async function createSecretFile(out: string, write: () => Promise<void>): Promise<void> {
  try {
    await write();
  } catch (err) {
    if ((err as { cause?: { code?: unknown } }).cause?.code !== 'EEXIST') throw err;
    throw new CliError(`cannot create ${out}: the file exists (never overwritten)`, ExitCode.KeyOrFile, {
      cause: err,
    });
  }
}

/** Write one line. */
export function println(stream: NodeJS.WritableStream, line: string): void {
  stream.write(`${line}\n`);
}

/** Write one JSON object as one line. */
export function printJSON(stream: NodeJS.WritableStream, value: Record<string, unknown>): void {
  println(stream, JSON.stringify(value));
}

/**
 * How a command reports one result or event: with `--json`, `record` as one JSON line on stdout;
 * without, `text` (when there is one) as a line on `to` (stdout for results, stderr for a
 * server's diagnostics).
 */
export type Report = (record: Record<string, unknown>, text?: string, to?: 'stdout' | 'stderr') => void;

/** The `Report` of a command run with (`json`) or without `--json`. */
export function reporter(io: CliIo, json: boolean | undefined): Report {
  return (record, text, to = 'stdout') => {
    if (json === true) printJSON(io.stdout, record);
    else if (text !== undefined) println(io[to], text);
  };
}
