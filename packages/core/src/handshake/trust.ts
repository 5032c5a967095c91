/**
 * Trust evaluation: pinned keys compared in constant time, or the caller's decision function.
 * Anything unexpected (a throw, a non-boolean, an expired decision) denies: fail closed.
 */

import { sodium } from '../crypto/sodium.js';
import { createError, isSecureIpcError, type SecureIpcError } from '../errors.js';
import { keyFingerprint } from '../keys/key-pair.js';
import { toKey } from '../keys/key-text.js';
import type { PeerInfo } from '../transport/contract.js';

/** What a trust function sees: the authenticated key, the OS peer info and the peer's handshake payload. */
export interface TrustContext {
  /** The peer's static public key, authenticated by the handshake. */
  remoteStaticKey: Uint8Array;
  /** What the transport says about the peer process. */
  peer: PeerInfo;
  /** The peer's handshake payload (validated msgpack map). */
  payload: Readonly<Record<string, unknown>>;
}

/** A trust decision; `allow` must be true to proceed. */
export interface TrustDecision {
  /** Admit the peer. */
  allow: boolean;
  /** Roles granted to the peer (exposed as `channel.roles`). */
  roles?: readonly string[];
  /** Why (used in the local error when denied; never sent to the peer). */
  reason?: string;
  /** When the admission ends (ms epoch, e.g. certificate expiry): the channel closes then. */
  expiresAt?: number;
}

/** Either pinned keys (Uint8Array or base64) or a function; a decision may carry roles. */
export type Trust =
  | {
      /** The peers' static public keys: 32 bytes each, or their 44-character base64 (`encodeKey`). */
      keys: ReadonlyArray<Uint8Array | string>;
    }
  | ((ctx: TrustContext) => boolean | TrustDecision | Promise<boolean | TrustDecision>);

/** A trust decision after validation: allowed, with roles and an optional expiry. */
export interface TrustVerdict {
  /** Roles granted to the peer (empty if none). */
  readonly roles: readonly string[];
  /** When the channel must close (ms epoch), if the decision expires. */
  readonly expiresAt: number | undefined;
}

/** Check that `trust` is usable (throws `SIPC_ERR_INVALID_ARGUMENT`): no silent trust-on-first-use. */
export function validateTrust(trust: Trust | undefined): void {
  if (typeof trust === 'function') return;
  if (typeof trust !== 'object' || trust === null || !Array.isArray(trust.keys))
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      'trust is required: { keys: [...] } or a function (there is no trust-on-first-use)',
    );
  pinnedKeys(trust.keys);
}

// Decoding once per evaluation keeps the listener's update() simple; a pinned list is short.
function pinnedKeys(keys: ReadonlyArray<Uint8Array | string>): Uint8Array[] {
  return keys.map((k) => toKey(k, 'A pinned key'));
}

/**
 * Decide whether the authenticated peer is trusted; resolves the verdict or rejects
 * `SIPC_ERR_UNTRUSTED_PEER` (or `SIPC_ERR_CERT_EXPIRED`) naming the presented key's fingerprint
 * in its message and `details.fingerprint`.
 */
export async function evaluateTrust(trust: Trust, ctx: TrustContext): Promise<TrustVerdict> {
  try {
    return await decide(trust, ctx);
  } catch (err) {
    if (!isSecureIpcError(err, 'SIPC_ERR_UNTRUSTED_PEER') && !isSecureIpcError(err, 'SIPC_ERR_CERT_EXPIRED'))
      throw err;
    const fingerprint = presentedKeyFingerprint(ctx.remoteStaticKey);
    throw createError(err.code, `${err.message} (presented key ${fingerprint})`, {
      cause: err.cause,
      details: { ...err.details, fingerprint },
    });
  }
}

/** How errors and events name a key a peer presented: its `keyFingerprint` (`BLAKE2b:...`). */
export function presentedKeyFingerprint(remoteStaticKey: Uint8Array): string {
  return keyFingerprint(remoteStaticKey);
}

async function decide(trust: Trust, ctx: TrustContext): Promise<TrustVerdict> {
  if (typeof trust !== 'function') {
    let match = false;
    // Compare against every pinned key (no early exit) with sodium_memcmp (constant time).
    for (const key of pinnedKeys(trust.keys))
      if (sodium.sodium_memcmp(key, ctx.remoteStaticKey)) match = true;
    if (!match) throw untrusted('The peer static key is not among the pinned keys');
    return { roles: [], expiresAt: undefined };
  }
  let result: boolean | TrustDecision;
  try {
    result = await trust(ctx);
  } catch (err) {
    throw untrusted('The trust function threw', err);
  }
  if (result === true) return { roles: [], expiresAt: undefined };
  if (typeof result !== 'object' || result === null || result.allow !== true)
    throw untrusted(
      typeof result === 'object' && result !== null && typeof result.reason === 'string'
        ? `The peer is not trusted: ${result.reason}`
        : undefined,
    );
  const roles = result.roles ?? [];
  if (!Array.isArray(roles) || !roles.every((r) => typeof r === 'string'))
    throw untrusted('The trust decision has malformed roles');
  const { expiresAt } = result;
  if (expiresAt !== undefined) {
    if (typeof expiresAt !== 'number' || Number.isNaN(expiresAt))
      throw untrusted('The trust decision has a malformed expiresAt');
    if (expiresAt <= Date.now())
      throw createError('SIPC_ERR_CERT_EXPIRED', 'The trust decision has already expired');
  }
  return { roles: Object.freeze([...roles]), expiresAt };
}

function untrusted(message?: string, cause?: unknown): SecureIpcError {
  return createError('SIPC_ERR_UNTRUSTED_PEER', message, cause === undefined ? undefined : { cause });
}
