/** The Windows named-pipe transport: `pipe://NAME` and `local://APP-ID` addresses. */
import { setTimeout as sleep } from 'node:timers/promises';
import { type Connection, createError, type Transport } from '@secure-ipc/core';
import { type AbortOptions, abortError, socketConnection, TRANSPORT_BRAND } from '@secure-ipc/core/transport';
import { parsePipeAddress } from './address.js';
import { CLIENT_ACCESS, pipeSddl, readSecurityDescriptor, SecurityDescriptor } from './hardening.js';
import { handleToSocket, PipeListener } from './listener.js';
import {
  checkCredentials,
  membershipQuery,
  mergePolicy,
  normalizePolicy,
  type PipeCredentialPolicy,
  pipePeer,
  readPeerCredentials,
} from './peer-credentials.js';
import { withExecutable } from './peer-executable.js';
import { SYSTEM_SID } from './sids.js';
import {
  currentUserSid,
  type Handle,
  isInvalidHandle,
  Win,
  WinError,
  win32,
  win32Error,
} from './win32-ffi.js';

/** Options of `pipeTransport()`: the credential policy of both sides, and the busy-pipe wait. */
export interface PipeTransportOptions extends PipeCredentialPolicy {
  /** How long connect retries while every server instance is busy (ERROR_PIPE_BUSY); default 5000 ms. */
  busyTimeoutMs?: number | undefined;
}

/** Options of `listen`: the policy applied to connecting clients (and the DACL), overriding the transport's. */
export interface PipeListenOptions extends AbortOptions, PipeCredentialPolicy {}

/** Options of `connect`: the policy the server's process owner must satisfy, overriding the transport's. */
export interface PipeConnectOptions extends AbortOptions, PipeCredentialPolicy {
  /** How long to retry while every server instance is busy; overrides the transport's. */
  busyTimeoutMs?: number | undefined;
}

/**
 * A system endpoint's server must be SYSTEM: unless the caller named who may serve (allowedSids,
 * e.g. `local-service` or the service's SID, or allowAnyUser), a client of `local://system/APP`
 * accepts only a server process owned by LocalSystem, whatever its own account (transport-unix's
 * uid-0 rule).
 */
function systemServerPolicy(system: boolean | undefined, policy: PipeCredentialPolicy): PipeCredentialPolicy {
  if (system !== true || policy.allowedSids !== undefined || policy.allowAnyUser === true) return policy;
  return { ...policy, allowedSids: [SYSTEM_SID] };
}

/** Default wait for a busy pipe; libuv waits up to 30 s, but a local server that busy is stuck. */
const DEFAULT_BUSY_TIMEOUT_MS = 5000;

function validateBusyTimeout(ms: unknown): void {
  if (ms !== undefined && (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0)) {
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'busyTimeoutMs must be a non-negative number');
  }
}

/**
 * Client open flags: overlapped (libuv drives the I/O on its completion port) and
 * SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION, so a server can identify the client's token but
 * never act as the client (without SQOS the default is SecurityImpersonation).
 */
export const CLIENT_OPEN_FLAGS =
  Win.FILE_FLAG_OVERLAPPED | Win.SECURITY_SQOS_PRESENT | Win.SECURITY_IDENTIFICATION;

/** Listens and connects on Windows named pipes, hardened (see the package README). */
export class PipeTransport implements Transport {
  /** Brand checked by core's `isTransport`. */
  readonly [TRANSPORT_BRAND] = true as const;
  /** Transport name reported in `PeerInfo.transport`. */
  readonly name = 'pipe';
  /** Schemes handled on this OS: none outside Windows. */
  readonly schemes: readonly string[] = process.platform === 'win32' ? ['pipe:', 'local:'] : [];
  readonly #options: PipeTransportOptions;

  /** Build a transport; options are validated here (this works on every OS, nothing native loads). */
  constructor(options: PipeTransportOptions = {}) {
    const policy = normalizePolicy(options);
    validateBusyTimeout(options.busyTimeoutMs);
    this.#options = { ...options, ...policy };
  }

  /**
   * Create the pipe (a DACL of this account, SYSTEM and the policy's SIDs; first-instance; remote
   * clients rejected) and accept clients whose user or group the policy allows.
   */
  async listen(address: string, options: PipeListenOptions = {}): Promise<PipeListener> {
    const w = win32();
    const own = normalizePolicy(options);
    if (options.signal?.aborted) throw abortError(options);
    const parsed = parsePipeAddress(address, currentUserSid);
    const policy = mergePolicy(this.#options, own);
    // The DACL admits exactly whom the policy admits; the SID check on accept enforces it again
    // (and is all there is where DACLs are not enforced, as under Wine).
    const sddl = pipeSddl(currentUserSid(), {
      extraClientSids: policy.allowAnyUser === true ? [] : policy.allowedSids,
      anyAuthenticatedUser: policy.allowAnyUser,
    });
    const sd = new SecurityDescriptor(w, sddl);
    return new PipeListener(w, address, parsed.path, sd, policy);
  }

  /**
   * Open the pipe with identification-only impersonation, check that the server process runs as an
   * allowed user (default: this user; SYSTEM for `local://system/`) before anything is sent, and
   * return the connection.
   */
  async connect(address: string, options: PipeConnectOptions = {}): Promise<Connection> {
    const w = win32();
    const own = normalizePolicy(options);
    validateBusyTimeout(options.busyTimeoutMs);
    if (options.signal?.aborted) throw abortError(options);
    const parsed = parsePipeAddress(address, currentUserSid);
    const policy = systemServerPolicy(parsed.system, mergePolicy(this.#options, own));
    const busyMs = options.busyTimeoutMs ?? this.#options.busyTimeoutMs ?? DEFAULT_BUSY_TIMEOUT_MS;
    const deadline = Date.now() + busyMs;
    let delay = 2;
    let h: Handle;
    for (;;) {
      h = w.CreateFileW(parsed.path, CLIENT_ACCESS, 0, null, Win.OPEN_EXISTING, CLIENT_OPEN_FLAGS, null);
      if (!isInvalidHandle(w, h)) break;
      const errno = w.GetLastError();
      if (errno === WinError.PIPE_BUSY && Date.now() < deadline) {
        // Every instance is taken: the server replaces them as it accepts. libuv would block a
        // thread-pool thread in WaitNamedPipe; a short back-off keeps threads free.
        try {
          await sleep(delay, undefined, { signal: options.signal });
        } catch {
          throw abortError(options);
        }
        delay = Math.min(delay * 2, 50);
        continue;
      }
      throw connectError(address, errno);
    }
    const creds = readPeerCredentials(w, h, 'client', membershipQuery(policy));
    const refusal = checkCredentials(policy, creds, currentUserSid, 'server');
    if (refusal !== undefined) {
      w.CloseHandle(h);
      throw refusal;
    }
    if (options.signal?.aborted) {
      w.CloseHandle(h);
      throw abortError(options);
    }
    const socket = handleToSocket(w, h);
    return socketConnection(socket, withExecutable(pipePeer(creds), w, socket));
  }
}

function connectError(address: string, errno: number): Error {
  const cause = win32Error('CreateFileW', errno);
  switch (errno) {
    case WinError.FILE_NOT_FOUND:
      return createError('SIPC_ERR_CONNECT_FAILED', `No server at ${address} (ENOENT)`, { cause });
    case WinError.ACCESS_DENIED:
      return createError('SIPC_ERR_CONNECT_FAILED', `The pipe's DACL denies access to ${address}`, {
        cause,
      });
    case WinError.PIPE_BUSY:
      return createError('SIPC_ERR_CONNECT_FAILED', `Every instance of ${address} stayed busy`, { cause });
    case WinError.INVALID_NAME:
    case WinError.BAD_PATHNAME:
      return createError('SIPC_ERR_INVALID_ADDRESS', `Windows rejects the pipe name of ${address}`, {
        cause,
      });
    default:
      return createError('SIPC_ERR_CONNECT_FAILED', `Could not connect to ${address}`, { cause });
  }
}

/**
 * The owner, group and DACL of a live pipe as SDDL (`O:…G:…D:…`), as the pipe file system stored
 * them (GetSecurityInfo on a client handle): what `secure-ipc doctor pipe://NAME` judges. The pipe
 * is opened as a client would open it, so one server instance is taken and at once released (its
 * server sees a connection that sends nothing); nothing is written. No server:
 * SIPC_ERR_CONNECT_FAILED; outside Windows SIPC_ERR_UNSUPPORTED_PLATFORM.
 */
export function readPipeSecurityDescriptor(address: string): string {
  const w = win32();
  const parsed = parsePipeAddress(address, currentUserSid);
  const h = w.CreateFileW(parsed.path, CLIENT_ACCESS, 0, null, Win.OPEN_EXISTING, CLIENT_OPEN_FLAGS, null);
  if (isInvalidHandle(w, h)) throw connectError(address, w.GetLastError());
  try {
    return readSecurityDescriptor(w, h);
  } finally {
    w.CloseHandle(h);
  }
}

/** The full pipe path (`\\.\pipe\...`) an address stands for; `local://` needs Windows (the user SID). */
export function resolvePipePath(address: string): string {
  return parsePipeAddress(address, currentUserSid).path;
}
