/**
 * Admission of a secure listener: which pending handshake to drop when the pending caps are full,
 * and whether an established channel fits the connection caps. Pure bookkeeping, no I/O; the
 * listener acts on the answers.
 *
 *   inbound connection ──> admitHandshake ──> (victim dropped) ──> handshake ──> admitChannel ──> channel
 *                              │ cap full, nothing droppable              │ cap full
 *                              └─> refuse the newest                     └─> refuse (SIPC_ERR_BUSY)
 *
 * Peers are grouped by `PeerInfo.osIdentity` (the kernel's word, never the peer's); peers the
 * transport cannot identify share one group, `unknown`, so they cannot take every slot either.
 */
import { createError, type SecureIpcError } from '../errors.js';
import type { PeerInfo } from '../transport/contract.js';

/** The group of peers the OS cannot tell apart (remote TCP, memory). */
export const UNKNOWN_IDENTITY = 'unknown';

/** Where a pending handshake is, as far as admission cares. */
export type HandshakeStage =
  /** Waiting for message 1: the peer has done nothing yet (droppable first). */
  | 'idle'
  /** Message 2 sent, waiting for message 3 from the peer (droppable when no idle one is left). */
  | 'waiting'
  /** Message 3 arrived, the trust decision runs: the peer did its part; never dropped. */
  | 'deciding';

/** Which cap a decision is about. */
export type AdmissionLimit =
  | 'maxPendingHandshakes'
  | 'maxPendingHandshakesPerIdentity'
  | 'maxConnections'
  | 'maxConnectionsPerIdentity'
  | 'maxConnectionsPerKey';

/** The caps (validated positive integers). */
export interface AdmissionCaps {
  readonly maxPendingHandshakes: number;
  readonly maxPendingHandshakesPerIdentity: number;
  readonly maxConnections: number;
  readonly maxConnectionsPerIdentity: number;
  readonly maxConnectionsPerKey: number;
}

/** A pending handshake as admission tracks it. */
export interface PendingEntry {
  readonly identity: string;
  stage: HandshakeStage;
}

/** The group key of a peer. */
export function identityOf(peer: PeerInfo | undefined): string {
  return peer?.osIdentity ?? UNKNOWN_IDENTITY;
}

/** Counts per key, dropping a key at zero. */
class Tally {
  readonly #counts = new Map<string, number>();
  get(key: string): number {
    return this.#counts.get(key) ?? 0;
  }
  add(key: string, delta: number): void {
    const next = this.get(key) + delta;
    if (next <= 0) this.#counts.delete(key);
    else this.#counts.set(key, next);
  }
  /** The key with the highest count (the first reached among equals). */
  largest(): string | undefined {
    let best: string | undefined;
    let most = 0;
    for (const [key, count] of this.#counts)
      if (count > most) {
        best = key;
        most = count;
      }
    return best;
  }
}

/** What each cap counts, for messages. */
const WHAT: Record<AdmissionLimit, (max: number, identity: string) => string> = {
  maxPendingHandshakes: (max) => `${max} handshakes in progress`,
  maxPendingHandshakesPerIdentity: (max, identity) => `${max} handshakes in progress from ${identity}`,
  maxConnections: (max) => `${max} channels`,
  maxConnectionsPerIdentity: (max, identity) => `${max} channels from ${identity}`,
  maxConnectionsPerKey: (max) => `${max} channels with this peer's key`,
};

/** The answer for a new inbound connection. */
export type HandshakeAdmission<T> =
  | { readonly admit: true; readonly drop?: { readonly victim: T; readonly limit: AdmissionLimit } }
  | { readonly admit: false; readonly limit: AdmissionLimit };

/** Bookkeeping of pending handshakes (`T` is the listener's handle, e.g. the connection) and live channels. */
export class Admission<T, C> {
  /** Pending handshakes, oldest first (a Map keeps insertion order). */
  readonly #pending = new Map<T, PendingEntry>();
  readonly #pendingPerIdentity = new Tally();
  readonly #channels = new Map<C, { identity: string; key: string }>();
  readonly #channelsPerIdentity = new Tally();
  readonly #channelsPerKey = new Tally();

  constructor(readonly caps: AdmissionCaps) {}

  /** Handshakes in progress. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /**
   * May a new handshake from `identity` start? When a cap is full, the oldest droppable handshake
   * of the group holding the most (for the per-identity cap: the newcomer's own group) is named
   * as the victim; with none droppable, the newcomer is refused. So a flood from one identity
   * only ever displaces its own handshakes, and another identity's newcomer always gets in.
   */
  admitHandshake(identity: string): HandshakeAdmission<T> {
    const { maxPendingHandshakes, maxPendingHandshakesPerIdentity } = this.caps;
    let limit: AdmissionLimit | undefined;
    let group: string | undefined;
    if (this.#pendingPerIdentity.get(identity) >= maxPendingHandshakesPerIdentity) {
      limit = 'maxPendingHandshakesPerIdentity';
      group = identity;
    } else if (this.#pending.size >= maxPendingHandshakes) {
      limit = 'maxPendingHandshakes';
      group = this.#pendingPerIdentity.largest();
    }
    if (limit === undefined) return { admit: true };
    const victim = group === undefined ? undefined : this.#droppable(group);
    return victim === undefined ? { admit: false, limit } : { admit: true, drop: { victim, limit } };
  }

  /** Start tracking an admitted handshake (after its victim, if any, was removed). */
  addPending(handle: T, identity: string): PendingEntry {
    const entry: PendingEntry = { identity, stage: 'idle' };
    this.#pending.set(handle, entry);
    this.#pendingPerIdentity.add(identity, 1);
    return entry;
  }

  /** Stop tracking a handshake (finished, failed or dropped); idempotent. */
  removePending(handle: T): void {
    const entry = this.#pending.get(handle);
    if (entry === undefined) return;
    this.#pending.delete(handle);
    this.#pendingPerIdentity.add(entry.identity, -1);
  }

  /** Every pending handle (for close). */
  pendingHandles(): IterableIterator<T> {
    return this.#pending.keys();
  }

  /** The cap an established channel would exceed, most specific first; undefined if it fits. */
  channelLimit(identity: string, key: string): AdmissionLimit | undefined {
    const { maxConnections, maxConnectionsPerIdentity, maxConnectionsPerKey } = this.caps;
    if (this.#channelsPerKey.get(key) >= maxConnectionsPerKey) return 'maxConnectionsPerKey';
    if (this.#channelsPerIdentity.get(identity) >= maxConnectionsPerIdentity)
      return 'maxConnectionsPerIdentity';
    if (this.#channels.size >= maxConnections) return 'maxConnections';
    return undefined;
  }

  /** Count an established channel. */
  addChannel(channel: C, identity: string, key: string): void {
    this.#channels.set(channel, { identity, key });
    this.#channelsPerIdentity.add(identity, 1);
    this.#channelsPerKey.add(key, 1);
  }

  /** Stop counting a channel; idempotent. */
  removeChannel(channel: C): void {
    const entry = this.#channels.get(channel);
    if (entry === undefined) return;
    this.#channels.delete(channel);
    this.#channelsPerIdentity.add(entry.identity, -1);
    this.#channelsPerKey.add(entry.key, -1);
  }

  // The oldest idle handshake of the group, else its oldest one waiting for message 3.
  #droppable(group: string): T | undefined {
    let waiting: T | undefined;
    for (const [handle, entry] of this.#pending) {
      if (entry.identity !== group) continue;
      if (entry.stage === 'idle') return handle;
      if (entry.stage === 'waiting') waiting ??= handle;
    }
    return waiting;
  }

  /** The typed error of a decision, naming the cap, its value and the group. */
  error(limit: AdmissionLimit, identity: string, action: 'dropped' | 'refused'): SecureIpcError {
    const max = this.caps[limit];
    const pending = limit === 'maxPendingHandshakes' || limit === 'maxPendingHandshakesPerIdentity';
    const what = WHAT[limit](max, identity);
    const message =
      action === 'dropped'
        ? `Dropped the oldest idle handshake: ${what} (${limit})`
        : `Refused: already ${what} (${limit})`;
    // Without a stack trace: it would only ever show accept(), and capturing one per dropped
    // connection was a tenth of the listener's time under a flood (the handshake flood suite).
    const depth = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return createError(pending ? 'SIPC_ERR_HANDSHAKE_LIMIT' : 'SIPC_ERR_BUSY', message, {
        details: { limit, max, identity, action },
      });
    } finally {
      Error.stackTraceLimit = depth;
    }
  }
}
