/**
 * Revocation and expiry on LIVE channels. `enforceRevocation` re-checks every tracked channel on
 * each change of the revocation list (an API call or a reload of the watched file) and closes
 * those whose peer key or certificate serial is now revoked, synchronously within the change
 * event. Expiry is armed per channel by the channel itself from `TrustDecision.expiresAt` (which
 * `certificateTrust` sets to notAfter + skew); the enforcer records those closes too. Each cut
 * is emitted as a `decision` event (who, what, never a payload) for the audit log.
 * `refuseRevoked` applies the same list at the handshake, whatever the trust: a revoked peer never
 * gets a channel in the first place (`serve({ revocations })` uses both).
 */
import { EventEmitter } from 'node:events';
import type { SecureChannel } from '../channel/options.js';
import type { SecureListener } from '../channel/secure-listener.js';
import { createError, isSecureIpcError } from '../errors.js';
import { evaluateTrust, type Trust, validateTrust } from '../handshake/trust.js';
import { type Certificate, decodeCertificate, type RevocationCheck } from './certificate.js';
import type { RevocationList } from './revocation.js';

/** Why the enforcer cut a channel. */
export type LifecycleReason = 'revoked-key' | 'revoked-serial' | 'expired';

/** One lifecycle decision: a live channel was closed. Shaped like RPC policy decisions. */
export interface LifecycleDecision {
  /** Fingerprint of the peer's static key. */
  who: string;
  /** Certificate subject name, if the peer presented a certificate. */
  name: string | undefined;
  /** Certificate serial, if the peer presented a certificate. */
  serial: number | undefined;
  /** The roles the channel held. */
  roles: readonly string[];
  /** Always 'channel': the decision is about keeping a channel open. */
  action: 'channel';
  /** Why it was cut. */
  what: LifecycleReason;
  /** Always false: the channel was closed. */
  allowed: false;
  /** Milliseconds since the epoch. */
  at: number;
}

/** Events of a `RevocationEnforcer`. */
export interface RevocationEnforcerEvents {
  /** A live channel was closed because of revocation or expiry. */
  decision: [decision: LifecycleDecision];
}

/** Options of `enforceRevocation`. */
export interface EnforceRevocationOptions {
  /** The list to enforce: every change re-checks the live channels. */
  revocations: RevocationList;
  /** Watch this listener's live and future channels (without one, `track` channels yourself). */
  listener?: SecureListener;
}

interface Tracked {
  certificate: Certificate | undefined;
  onClose: (err: Error | undefined) => void;
}

/** Closes tracked channels whose peer gets revoked, and records expiry closes. */
export class RevocationEnforcer extends EventEmitter<RevocationEnforcerEvents> {
  readonly #revocations: RevocationList;
  readonly #tracked = new Map<SecureChannel, Tracked>();
  readonly #onChange = () => this.check();
  readonly #onChannel = (channel: SecureChannel) => this.track(channel);
  #listener: SecureListener | undefined;

  /** Use `enforceRevocation`. */
  constructor(options: EnforceRevocationOptions) {
    super();
    const { revocations, listener } = options;
    this.#revocations = revocations;
    revocations.on('change', this.#onChange);
    if (listener !== undefined) {
      this.#listener = listener;
      listener.on('channel', this.#onChannel);
      for (const channel of listener.channels) this.track(channel);
    }
  }

  /** Live channels being watched. */
  get size(): number {
    return this.#tracked.size;
  }

  /** Watch a channel (e.g. a client's); it is checked at once, then on every list change. */
  track(channel: SecureChannel): void {
    if (this.#tracked.has(channel) || channel.closed) return;
    const certificate = certificateIn(channel.remotePayload);
    const onClose = (err: Error | undefined): void => {
      this.#tracked.delete(channel);
      if (isSecureIpcError(err, 'SIPC_ERR_CERT_EXPIRED')) this.#decide(channel, certificate, 'expired');
    };
    this.#tracked.set(channel, { certificate, onClose });
    channel.once('close', onClose);
    this.#checkOne(channel, certificate);
  }

  /** Re-check every tracked channel now; returns how many were closed. */
  check(): number {
    let closed = 0;
    for (const [channel, { certificate }] of [...this.#tracked])
      if (this.#checkOne(channel, certificate)) closed++;
    return closed;
  }

  #checkOne(channel: SecureChannel, certificate: Certificate | undefined): boolean {
    const reason = this.#revocations.check({
      serial: certificate?.serial,
      subjectKey: channel.remoteStaticKey,
    });
    if (reason === undefined) return false;
    const tracked = this.#tracked.get(channel);
    if (tracked !== undefined) channel.off('close', tracked.onClose);
    this.#tracked.delete(channel);
    this.#decide(channel, certificate, reason);
    channel
      .close(createError('SIPC_ERR_REVOKED', 'The peer was revoked', { details: { reason } }))
      .catch(() => {});
    return true;
  }

  #decide(channel: SecureChannel, certificate: Certificate | undefined, what: LifecycleReason): void {
    this.emit('decision', {
      who: channel.fingerprint,
      name: certificate?.name,
      serial: certificate?.serial,
      roles: channel.roles,
      action: 'channel',
      what,
      allowed: false,
      at: Date.now(),
    });
  }

  /** Stop enforcing (channels stay open). */
  close(): void {
    this.#revocations.off('change', this.#onChange);
    this.#listener?.off('channel', this.#onChannel);
    this.#listener = undefined;
    for (const [channel, { onClose }] of this.#tracked) channel.off('close', onClose);
    this.#tracked.clear();
  }
}

/**
 * Enforce `revocations` on the live channels of `listener` (and on any channel passed to
 * `track`): a revoked peer's channels close at once with SIPC_ERR_REVOKED when the list changes.
 */
export function enforceRevocation(options: EnforceRevocationOptions): RevocationEnforcer {
  return new RevocationEnforcer(options);
}

/**
 * `trust`, refusing first any peer whose static key, or the serial of the certificate in its
 * payload, is in `revocations`: the handshake fails with SIPC_ERR_UNTRUSTED_PEER whose `cause`
 * is SIPC_ERR_REVOKED, as `certificateTrust({ revocations })` already does for certificates.
 */
export function refuseRevoked(trust: Trust, revocations: RevocationCheck): Trust {
  validateTrust(trust); // a missing or malformed trust is the caller's error now, not a refusal later
  return async (ctx) => {
    const reason = revocations.check({
      serial: certificateIn(ctx.payload)?.serial,
      subjectKey: ctx.remoteStaticKey,
    });
    if (reason !== undefined)
      throw createError('SIPC_ERR_REVOKED', 'The peer is revoked', { details: { reason } });
    if (typeof trust === 'function') return trust(ctx);
    // Pinned keys grant no roles and never expire: the check passing is the whole decision.
    await evaluateTrust(trust, ctx);
    return true;
  };
}

/** The certificate a peer sent under `cert`, structurally decoded (not verified), if any. */
function certificateIn(payload: Readonly<Record<string, unknown>>): Certificate | undefined {
  const raw = payload.cert;
  if (!(raw instanceof Uint8Array)) return undefined;
  try {
    return decodeCertificate(raw);
  } catch {
    // A peer admitted without certificate trust may carry anything under `cert`; its static key
    // is still checked.
    return undefined;
  }
}
