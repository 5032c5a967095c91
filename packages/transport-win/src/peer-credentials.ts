/**
 * Who is at the other end of a pipe: the peer's process id from the pipe file system
 * (GetNamedPipeClientProcessId / GetNamedPipeServerProcessId) and the user SID of that process's
 * token; and the policy deciding which SIDs are accepted. Deny by default: only the current user.
 */
import { createError, type PeerInfo, type SecureIpcError } from '@secure-ipc/core';
import { isSidString } from './address.js';
import { type Handle, processUserSid, type Win32, win32Error } from './win32-ffi.js';

/** Which OS users may be the peer, by SID. */
export interface PipeCredentialPolicy {
  /** SIDs accepted as the peer. Default: only the SID of the user this process runs as. */
  allowedSids?: readonly string[] | undefined;
  /** Accept a peer of any user, and one whose SID cannot be read (only the crypto protects you). */
  allowAnyUser?: boolean | undefined;
}

/** What the OS says about the peer of a pipe handle; `failure` says why a field is missing. */
export interface PipePeerCredentials {
  /** The peer's process id. */
  readonly pid?: number | undefined;
  /** The user SID of the peer process's token. */
  readonly sid?: string | undefined;
  /** Why pid or sid could not be read. */
  readonly failure?: Error | undefined;
}

/** Check policy fields once, so a typo fails loudly instead of denying (or admitting) everyone. */
export function validatePolicy(policy: PipeCredentialPolicy): void {
  if (policy.allowedSids !== undefined) {
    if (!Array.isArray(policy.allowedSids) || !policy.allowedSids.every(isSidString)) {
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'allowedSids must be an array of SID strings (S-1-...)');
    }
  }
  if (policy.allowAnyUser !== undefined && typeof policy.allowAnyUser !== 'boolean') {
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'allowAnyUser must be a boolean');
  }
}

/** Merge per-call policy fields over the transport's, field by field. */
export function mergePolicy(
  base: PipeCredentialPolicy,
  override: PipeCredentialPolicy,
): PipeCredentialPolicy {
  return {
    allowedSids: override.allowedSids ?? base.allowedSids,
    allowAnyUser: override.allowAnyUser ?? base.allowAnyUser,
  };
}

/**
 * Read the peer's pid and SID. `end` says which end `h` is: on a server instance we ask for the
 * client's pid, on a client handle for the server's. The pid is recorded by the pipe file system
 * at connect time; the SID is read from that process right after, so a peer that exits in between
 * and whose pid is reused could be misattributed: the window is the few microseconds between the
 * two calls, and the cryptographic handshake above is what authenticates the peer.
 */
export function readPeerCredentials(w: Win32, h: Handle, end: 'server' | 'client'): PipePeerCredentials {
  const pid = [0];
  const ok = end === 'server' ? w.GetNamedPipeClientProcessId(h, pid) : w.GetNamedPipeServerProcessId(h, pid);
  if (!ok) {
    const call = end === 'server' ? 'GetNamedPipeClientProcessId' : 'GetNamedPipeServerProcessId';
    return { failure: win32Error(call, w.GetLastError()) };
  }
  const peerPid = pid[0]!;
  const sid = processUserSid(w, peerPid);
  if (sid === undefined) {
    return {
      pid: peerPid,
      failure: win32Error('OpenProcess/OpenProcessToken/GetTokenInformation', w.GetLastError()),
    };
  }
  return { pid: peerPid, sid };
}

/** The connection's `peer` for these credentials. */
export function pipePeer(creds: PipePeerCredentials): PeerInfo {
  // osIdentity from the client token's user SID, which the pipe server already looked up.
  return {
    transport: 'pipe',
    pid: creds.pid,
    sid: creds.sid,
    ...(creds.sid === undefined ? {} : { osIdentity: `sid:${creds.sid}` }),
  };
}

/**
 * The reason `creds` are not allowed by `policy`, or undefined when they are. A server refusing a
 * client says SIPC_ERR_PEER_CREDENTIALS; a client refusing the server (wrong owner: a squatter, or
 * an owner it could not read) says SIPC_ERR_PIPE_SECURITY, before a single byte is sent.
 */
export function checkCredentials(
  policy: PipeCredentialPolicy,
  creds: PipePeerCredentials,
  ownSid: () => string,
  side: 'client' | 'server',
): SecureIpcError | undefined {
  if (policy.allowAnyUser === true) return undefined;
  const code = side === 'server' ? 'SIPC_ERR_PIPE_SECURITY' : 'SIPC_ERR_PEER_CREDENTIALS';
  const who = side === 'server' ? "pipe server's process owner" : "client's user";
  if (creds.sid === undefined) {
    return createError(code, `The ${who} could not be read, and the policy needs it`, {
      cause: creds.failure,
      details: { pid: creds.pid },
    });
  }
  const allowed = policy.allowedSids ?? [ownSid()];
  if (allowed.includes(creds.sid)) return undefined;
  return createError(code, `The ${who} is ${creds.sid}, which the policy does not allow`, {
    details: { sid: creds.sid, pid: creds.pid, allowed },
  });
}
