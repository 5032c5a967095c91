/**
 * What a handshake needs from its caller (the channel and the listener extend these options),
 * and their validation: a bad option is a typed `SIPC_ERR_INVALID_ARGUMENT` at the call that
 * passed it, before any byte is sent.
 */
import { SUPPORTED_VERSIONS } from '../constants.js';
import { createError, type SecureIpcError } from '../errors.js';
import type { KeyPair } from '../keys/key-pair.js';
import type { AbortOptions } from '../transport/contract.js';
import { encodePayload } from './payloads.js';
import { buildPrologue } from './prologue.js';
import { type Trust, validateTrust } from './trust.js';
import type { EphemeralGenerator } from './xx.js';

/** Options of the Noise_XX handshake (part of `ChannelOptions`). */
export interface HandshakeOptions extends AbortOptions {
  /** This side's static key pair. */
  keyPair: KeyPair;
  /** Which remote keys to accept: required, there is no silent trust-on-first-use. */
  trust: Trust;
  /** Application id bound into the prologue; peers with different ids fail the handshake. */
  appId?: string;
  /** Optional admission secret bound into the prologue; both sides need the same one. */
  psk?: Uint8Array;
  /** Extra handshake payload fields this side sends (e.g. `{ cert }`). */
  payload?: Record<string, unknown>;
  /** Milliseconds allowed for the handshake (default 10 000). */
  handshakeTimeoutMs?: number;
  /**
   * Responder only: milliseconds from the start of the handshake to a complete message 1
   * (default 1,000), besides `handshakeTimeoutMs`; a silent or drip-feeding peer fails with
   * SIPC_ERR_HANDSHAKE_TIMEOUT.
   */
  handshakeFirstMessageTimeoutMs?: number;
  /**
   * Protocol versions this side speaks (default `[4, 3, 2, 1]`, every version this
   * implementation knows): a non-empty list of distinct supported versions. `[1]` makes a
   * version-1-only peer and `[3, 2, 1]` a peer without version 4's `h.tracestate`, e.g. to roll
   * out in steps or to test against old peers.
   */
  versions?: readonly number[];
}

/** The handshake options plus the side and the internal knobs (tests of negotiation and vectors). */
export interface HandshakeRunOptions extends HandshakeOptions {
  /** True for the side that sends message 1. */
  initiator: boolean;
  /** Fixed ephemeral keys (tests only). */
  generateEphemeral?: EphemeralGenerator | undefined;
  /**
   * Handed a function that stops this handshake with `reason` (the listener's drop): cheaper
   * than an AbortController per connection, which showed in the flood suite's profiles.
   */
  onCancelable?: ((cancel: (reason: SecureIpcError) => void) => void) | undefined;
  /** Told each time a handshake message from the peer arrived (1 or 3 for the responder, 2 for the initiator): the listener's notion of progress. */
  onPeerMessage?: ((message: 1 | 2 | 3) => void) | undefined;
  /**
   * Responder: called once message 1 has arrived, before the handshake state is made. A promise
   * returned holds the handshake there (reads paused, the deadlines running) until it resolves:
   * the listener's wait for a pending slot.
   */
  onMessageOne?: (() => Promise<void> | undefined) | undefined;
}

/** Throw `SIPC_ERR_INVALID_ARGUMENT` unless `value` is undefined or a positive finite number. */
export function assertPositive(name: string, value: unknown): void {
  if (value !== undefined && !(typeof value === 'number' && Number.isFinite(value) && value > 0))
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `${name} must be a positive number`);
}

/** Validate the options of every handshake; throws `SIPC_ERR_INVALID_ARGUMENT` (or `SIPC_ERR_BAD_KEY`). */
export function validateHandshakeOptions(options: HandshakeOptions): void {
  if (typeof options !== 'object' || options === null)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'channel options are required');
  const kp = options.keyPair;
  if (
    typeof kp !== 'object' ||
    kp === null ||
    !(kp.publicKey instanceof Uint8Array) ||
    !(kp.secretKey instanceof Uint8Array) ||
    kp.publicKey.byteLength !== 32 ||
    kp.secretKey.byteLength !== 32
  )
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'keyPair must hold a 32-byte publicKey and secretKey');
  validateTrust(options.trust);
  assertPositive('handshakeTimeoutMs', options.handshakeTimeoutMs);
  assertPositive('handshakeFirstMessageTimeoutMs', options.handshakeFirstMessageTimeoutMs);
  validateVersions(options.versions);
  buildPrologue(options.appId, options.psk);
  if (options.payload !== undefined) encodePayload({}, options.payload);
}

/** Throw `SIPC_ERR_INVALID_ARGUMENT` unless `versions` is undefined or distinct supported versions. */
function validateVersions(versions: unknown): void {
  if (versions === undefined) return;
  if (
    !Array.isArray(versions) ||
    versions.length === 0 ||
    new Set(versions).size !== versions.length ||
    !versions.every((v) => SUPPORTED_VERSIONS.includes(v))
  )
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `versions must be a non-empty list of distinct protocol versions from ${SUPPORTED_VERSIONS.join(', ')}`,
    );
}
