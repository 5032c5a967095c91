/**
 * `certificateTrust(...)`: a `Trust` function for secure channels that accepts a peer by its
 * certificate (in the handshake payload under `cert`) instead of a pinned key. Every refusal
 * throws the typed error from `verifyCertificate`; the handshake reports it to the local caller
 * as the `cause` of SIPC_ERR_UNTRUSTED_PEER, and to the remote side as one generic failure.
 */

import { bytesEqual } from '../crypto/sodium.js';
import { createError } from '../errors.js';
import type { TrustContext, TrustDecision } from '../handshake/trust.js';
import { toKey } from '../keys/key-text.js';
import {
  type Certificate,
  DEFAULT_CLOCK_SKEW_MS,
  type RevocationCheck,
  verifyCertificate,
} from './certificate.js';

/** Options of `certificateTrust`. */
export interface CertificateTrustOptions {
  /** Trusted authority public keys (Ed25519, raw or base64); at least one. */
  authorities: ReadonlyArray<Uint8Array | string>;
  /** Revoked serials and keys (a `RevocationList` or a watched one); checked on every handshake. */
  revocations?: RevocationCheck | undefined;
  /** Tolerated clock skew at both ends of the validity window (default 30 s). */
  clockSkewMs?: number | undefined;
  /** Clock, ms epoch (default Date.now); for tests. */
  now?: (() => number) | undefined;
  /**
   * Static keys also accepted WITHOUT a certificate (roles then come from the policy only), for a
   * migration from pinned keys; revocation of such a key still applies.
   */
  pinnedKeys?: ReadonlyArray<Uint8Array | string> | undefined;
}

/** What the function returns: a `TrustDecision` that grants the certificate's roles until it expires. */
export interface CertificateTrustDecision extends TrustDecision {
  /** Always true (refusals throw). */
  readonly allow: true;
  /** The certificate's roles (empty for a pinned key without certificate). */
  readonly roles: readonly string[];
  /** notAfter + clock skew: the channel closes then (undefined for a pinned key without certificate). */
  readonly expiresAt: number | undefined;
  /** The verified certificate, if the peer sent one. */
  readonly certificate: Certificate | undefined;
}

/** Build a trust function that accepts peers holding a valid certificate from a trusted authority. */
export function certificateTrust(
  options: CertificateTrustOptions,
): (ctx: Pick<TrustContext, 'remoteStaticKey' | 'payload'>) => CertificateTrustDecision {
  if (!Array.isArray(options.authorities) || options.authorities.length === 0)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'certificateTrust needs at least one authority key');
  const authorities = options.authorities.map((a) => toKey(a, 'An authority key', 'SIPC_ERR_BAD_KEY'));
  const pinned = (options.pinnedKeys ?? []).map((k) => toKey(k, 'A pinned key', 'SIPC_ERR_BAD_KEY'));
  const skew = options.clockSkewMs ?? DEFAULT_CLOCK_SKEW_MS;
  const clock = options.now ?? Date.now;
  return (ctx) => {
    const raw = ctx.payload.cert;
    if (raw === undefined) {
      let match = false;
      for (const key of pinned) if (bytesEqual(key, ctx.remoteStaticKey)) match = true;
      if (!match)
        throw createError('SIPC_ERR_BAD_CERTIFICATE', 'The peer sent no certificate', {
          details: { reason: 'missing' },
        });
      const revoked = options.revocations?.check({ subjectKey: ctx.remoteStaticKey });
      if (revoked !== undefined)
        throw createError('SIPC_ERR_REVOKED', 'The peer key is revoked', { details: { reason: revoked } });
      return { allow: true, roles: [], expiresAt: undefined, certificate: undefined };
    }
    if (!(raw instanceof Uint8Array))
      throw createError('SIPC_ERR_BAD_CERTIFICATE', 'The payload field cert must be binary', {
        details: { reason: 'malformed' },
      });
    const certificate = verifyCertificate(raw, {
      authorities,
      now: clock(),
      clockSkewMs: skew,
      // The binding that makes a stolen certificate useless: it names the key that must have
      // just proven possession of its secret in this very Noise handshake.
      subjectKey: ctx.remoteStaticKey,
      revocations: options.revocations,
    });
    return { allow: true, roles: certificate.roles, expiresAt: certificate.notAfter + skew, certificate };
  };
}
