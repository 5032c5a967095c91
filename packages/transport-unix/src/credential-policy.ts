/**
 * Which OS users may be at the other end of a Unix socket. Deny by default: only the current
 * user, unless the caller names uids/gids or says any user will do. A policy that needs
 * credentials fails closed when they cannot be read.
 */
import { createError, type SecureIpcError } from '@secure-ipc/core';
import type { UnixPeerCredentials } from './peer-credentials.js';

/** Who may be the peer, by OS identity. */
export interface UnixCredentialPolicy {
  /** Peer user ids accepted. Default: only this process's effective uid. */
  allowedUids?: readonly number[] | undefined;
  /** Peer group ids also accepted (a peer matches by uid OR gid). Default: none. */
  allowedGids?: readonly number[] | undefined;
  /** Accept a peer of any user, and one whose credentials cannot be read (only the crypto protects you). */
  allowAnyUser?: boolean | undefined;
}

/** Merge per-call policy fields over the transport's, field by field. */
export function mergePolicy(
  base: UnixCredentialPolicy,
  override: UnixCredentialPolicy,
): UnixCredentialPolicy {
  return {
    allowedUids: override.allowedUids ?? base.allowedUids,
    allowedGids: override.allowedGids ?? base.allowedGids,
    allowAnyUser: override.allowAnyUser ?? base.allowAnyUser,
  };
}

/** Check a policy's fields once, at construction, so a typo fails loudly instead of denying everyone. */
export function validatePolicy(policy: UnixCredentialPolicy): void {
  for (const key of ['allowedUids', 'allowedGids'] as const) {
    const ids = policy[key];
    if (ids === undefined) continue;
    if (!Array.isArray(ids) || !ids.every((id) => Number.isInteger(id) && id >= 0 && id <= 0xffffffff)) {
      throw createError('SIPC_ERR_INVALID_ARGUMENT', `${key} must be an array of integer ids`);
    }
  }
  if (policy.allowAnyUser !== undefined && typeof policy.allowAnyUser !== 'boolean') {
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'allowAnyUser must be a boolean');
  }
}

/** The reason `creds` are not allowed by `policy` (a typed error), or undefined when they are. */
export function checkCredentials(
  policy: UnixCredentialPolicy,
  creds: UnixPeerCredentials,
  side: 'client' | 'server',
): SecureIpcError | undefined {
  if (policy.allowAnyUser === true) return undefined;
  if (creds.uid === undefined || creds.gid === undefined) {
    return createError(
      'SIPC_ERR_PEER_CREDENTIALS',
      `The ${side}'s OS credentials could not be read, and the policy needs them`,
      { cause: creds.failure },
    );
  }
  const uids = policy.allowedUids ?? [process.geteuid!()];
  const gids = policy.allowedGids ?? [];
  if (uids.includes(creds.uid) || gids.includes(creds.gid)) return undefined;
  return createError(
    'SIPC_ERR_PEER_CREDENTIALS',
    `The ${side} runs as uid ${creds.uid} gid ${creds.gid}, which the policy does not allow`,
    { details: { uid: creds.uid, gid: creds.gid, pid: creds.pid } },
  );
}
