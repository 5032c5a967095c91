/**
 * Exit codes, user-facing errors and output for the `secure-ipc` command. User errors print one
 * clear line on stderr (`secure-ipc: <message>`), never a stack trace.
 */
import { type ErrorCode, isSecureIpcError } from '@secure-ipc/core';

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

/** A user error with the exit code to use. */
export class CliError extends Error {
  /** The process exit code. */
  readonly exitCode: number;
  constructor(message: string, exitCode: number = ExitCode.Usage) {
    super(message);
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
};

/** The exit code for an error thrown by a command. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof CliError) return err.exitCode;
  if (isSecureIpcError(err)) return EXIT_BY_CODE[err.code] ?? ExitCode.Failed;
  return ExitCode.Failed;
}

/** One line describing an error for a user: the typed code, the message, and the OS cause if any. */
export function describeError(err: unknown): string {
  if (err instanceof CliError) return err.message;
  if (isSecureIpcError(err)) {
    const cause = err.cause as { code?: string; message?: string } | undefined;
    const why = cause?.code === err.code ? undefined : (cause?.code ?? cause?.message);
    return `${err.message} (${err.code}${why ? `; ${why}` : ''})`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** Write one line. */
export function println(stream: NodeJS.WritableStream, line: string): void {
  stream.write(`${line}\n`);
}
