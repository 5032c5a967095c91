/**
 * Who is at the other end of a pipe: the peer's process id from the pipe file system
 * (GetNamedPipeClientProcessId / GetNamedPipeServerProcessId), the user SID of the peer's token and
 * its memberships in the groups the policy names (peer-token.ts); and the policy deciding which
 * SIDs are accepted. Deny by default: only the current user.
 */
import { createError, type PeerInfo, type SecureIpcError } from '@secure-ipc/core';
import { impersonationToken, processIdentityToken, tokenMemberships } from './peer-token.js';
import { resolveSids } from './sids.js';
import { type Handle, processUserSid, tokenUserSid, type Win32, win32Error } from './win32-ffi.js';

/** Which OS users may be the peer, by SID. */
export interface PipeCredentialPolicy {
  /**
   * SIDs accepted as the peer, as SID strings or well-known names (`interactive`,
   * `authenticated-users`, `system`, `administrators`, `local-service`, `network-service`). An entry
   * matches a peer whose token user it is or whose token has it as an enabled group. Default: only
   * the SID of the user this process runs as (a client of `local://system/APP`: only SYSTEM).
   */
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
  /** The SIDs asked about (other than the user) whose group the peer's token has enabled. */
  readonly memberOf?: readonly string[] | undefined;
  /** Why the group memberships could not be read (then no group entry matches: fail closed). */
  readonly membershipFailure?: Error | undefined;
}

/**
 * Check the policy fields once and resolve well-known names to SIDs, so a typo fails loudly
 * (SIPC_ERR_INVALID_ARGUMENT) instead of denying (or admitting) everyone.
 */
export function normalizePolicy(policy: PipeCredentialPolicy): PipeCredentialPolicy {
  if (policy.allowAnyUser !== undefined && typeof policy.allowAnyUser !== 'boolean') {
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'allowAnyUser must be a boolean');
  }
  if (policy.allowedSids === undefined) return { allowAnyUser: policy.allowAnyUser };
  return { allowedSids: resolveSids(policy.allowedSids), allowAnyUser: policy.allowAnyUser };
}

/** Merge per-call policy fields (already normalized) over the transport's, field by field. */
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
 * The token that identifies the peer: on a server instance the client's own (impersonation, which
 * also works for a service account that may not open the client's process), else the client
 * process's token. A client reads the server process's token only when the policy names groups;
 * otherwise TOKEN_QUERY on it is all it needs (undefined: read the user alone).
 */
function peerToken(w: Win32, h: Handle, end: 'server' | 'client', pid: number, groups: boolean) {
  if (end === 'server') {
    const imp = impersonationToken(w, h);
    if ('token' in imp) return imp;
    return processIdentityToken(w, pid);
  }
  return groups ? processIdentityToken(w, pid) : undefined;
}

/**
 * Read the peer's pid, SID and its memberships among `sids` (the policy's entries; none: no
 * membership is read). `end` says which end `h` is: on a server instance we ask for the client's
 * pid, on a client handle for the server's. The pid is recorded by the pipe file system at connect
 * time; a client's token is the one it opened the pipe with, a server's is read from its process
 * right after, so a server that exits in between and whose pid is reused could be misattributed:
 * the window is the few microseconds between the two calls, and the cryptographic handshake above
 * is what authenticates the peer.
 */
export function readPeerCredentials(
  w: Win32,
  h: Handle,
  end: 'server' | 'client',
  sids: readonly string[] = [],
): PipePeerCredentials {
  const pid = [0];
  const ok = end === 'server' ? w.GetNamedPipeClientProcessId(h, pid) : w.GetNamedPipeServerProcessId(h, pid);
  if (!ok) {
    const call = end === 'server' ? 'GetNamedPipeClientProcessId' : 'GetNamedPipeServerProcessId';
    return { failure: win32Error(call, w.GetLastError()) };
  }
  const peerPid = pid[0]!;
  const tok = peerToken(w, h, end, peerPid, sids.length > 0);
  if (tok === undefined || 'failure' in tok) {
    // The user alone may still be readable (TOKEN_QUERY without TOKEN_DUPLICATE).
    const sid = processUserSid(w, peerPid);
    if (sid === undefined) {
      return {
        pid: peerPid,
        failure: win32Error('OpenProcess/OpenProcessToken/GetTokenInformation', w.GetLastError()),
      };
    }
    return tok === undefined || sids.length === 0
      ? { pid: peerPid, sid }
      : { pid: peerPid, sid, membershipFailure: tok.failure };
  }
  try {
    const sid = tokenUserSid(w, tok.token);
    if (sid === undefined)
      return { pid: peerPid, failure: win32Error('GetTokenInformation', w.GetLastError()) };
    const groups = sids.filter((s) => s !== sid);
    if (groups.length === 0) return { pid: peerPid, sid, memberOf: [] };
    const m = tokenMemberships(w, tok.token, groups);
    return 'failure' in m
      ? { pid: peerPid, sid, membershipFailure: m.failure }
      : { pid: peerPid, sid, memberOf: m.memberOf };
  } finally {
    w.CloseHandle(tok.token);
  }
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
  if (creds.memberOf?.some((group) => allowed.includes(group)) === true) return undefined;
  const unknown = creds.membershipFailure === undefined ? '' : ' (its group memberships could not be read)';
  return createError(code, `The ${who} is ${creds.sid}, which the policy does not allow${unknown}`, {
    cause: creds.membershipFailure,
    details: { sid: creds.sid, pid: creds.pid, allowed },
  });
}

/** The SIDs whose membership must be read to decide `policy` (none with allowAnyUser or the default). */
export function membershipQuery(policy: PipeCredentialPolicy): readonly string[] {
  return policy.allowAnyUser === true ? [] : (policy.allowedSids ?? []);
}
