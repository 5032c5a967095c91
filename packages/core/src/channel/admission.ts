/**
 * Admission of a secure listener: who waits for a slot when the pending caps are full, which
 * stale pending handshake such a newcomer displaces once its message 1 arrived, and whether an
 * established channel fits the connection caps. Pure bookkeeping, no I/O; the listener acts on
 * the answers.
 *
 *   inbound connection ──> admitHandshake ──> handshake ─────────────────────────> channelLimit ──> channel
 *                              │ cap full             ^ slot (a stale one dropped)        │ cap full
 *                              v                      │                                   └─> refuse (SIPC_ERR_BUSY)
 *                            park: read message 1 ──> review (after the sockets were read)
 *                              │ too many parked
 *                              └─> refuse the newest
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
  /** Message 1 has not completely arrived (droppable once stale). */
  | 'idle'
  /** Message 2 sent, waiting for message 3 from the peer (droppable once stale, for a newcomer of another identity, when no stale idle one is left). */
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
interface PendingEntry {
  readonly identity: string;
  stage: HandshakeStage;
  /** When it entered its stage (ms, the listener's clock). */
  since: number;
}

/** A connection over a pending cap: it reads message 1 (nothing else) and waits for a slot. */
interface ParkedEntry {
  readonly identity: string;
  /** Set once its message 1 has arrived: it now waits for a slot (and may displace a stale handshake). */
  admit: (() => void) | undefined;
}

/** How many connections may wait for a slot, as a multiple of the pending cap they wait for. */
export const PARKED_PER_PENDING = 8;

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
export type HandshakeAdmission =
  /** A slot is free: the handshake starts. */
  | { readonly action: 'start' }
  /** A pending cap is full: the connection may read its message 1, then waits for a slot (`park`). */
  | { readonly action: 'park'; readonly limit: AdmissionLimit }
  /** So many connections already wait that this one is refused. */
  | { readonly action: 'refuse'; readonly limit: AdmissionLimit };

/** A drop that `review` decided: the listener resets `victim` (already forgotten here). */
export interface AdmissionDrop<T> {
  readonly victim: T;
  readonly identity: string;
  readonly limit: AdmissionLimit;
}

/** Bookkeeping of pending handshakes (`T` is the listener's handle, e.g. the connection) and live channels. */
export class Admission<T, C> {
  /** Pending handshakes (those holding a slot), oldest first (a Map keeps insertion order). */
  readonly #pending = new Map<T, PendingEntry>();
  readonly #pendingPerIdentity = new Tally();
  /** Connections waiting for a slot, oldest first. */
  readonly #parked = new Map<T, ParkedEntry>();
  readonly #parkedPerIdentity = new Tally();
  readonly #channels = new Map<C, { identity: string; key: string }>();
  readonly #channelsPerIdentity = new Tally();
  readonly #channelsPerKey = new Tally();

  /**
   * @param staleAfterMs how long a handshake may stay idle (message 1 incomplete) or wait for
   *   message 3 before a connection waiting for its slot may displace it.
   */
  constructor(
    readonly caps: AdmissionCaps,
    readonly staleAfterMs: number,
  ) {}

  /** Handshakes holding a slot. */
  get pendingCount(): number {
    return this.#pending.size;
  }

  /** Connections waiting for a slot. */
  get parkedCount(): number {
    return this.#parked.size;
  }

  /**
   * May a new connection from `identity` start its handshake? With a pending cap full it is
   * parked instead: nobody is displaced at accept time, when no socket of the burst has been read
   * yet (a parked connection that never completes message 1 displaces nobody); `review` decides
   * once its message 1 is here. Refused only when too many already wait.
   */
  admitHandshake(identity: string): HandshakeAdmission {
    const limit = this.#fullLimit(identity);
    if (limit === undefined) return { action: 'start' };
    const { maxPendingHandshakes, maxPendingHandshakesPerIdentity } = this.caps;
    if (
      this.#parkedPerIdentity.get(identity) >= maxPendingHandshakesPerIdentity * PARKED_PER_PENDING ||
      this.#parked.size >= maxPendingHandshakes * PARKED_PER_PENDING
    )
      return { action: 'refuse', limit };
    return { action: 'park', limit };
  }

  /** Start tracking a handshake that holds a slot (`admitHandshake` said `start`). */
  addPending(handle: T, identity: string, now: number): void {
    this.#pending.set(handle, { identity, stage: 'idle', since: now });
    this.#pendingPerIdentity.add(identity, 1);
  }

  /** Track a connection waiting for a slot (`admitHandshake` said `park`). */
  park(handle: T, identity: string): void {
    this.#parked.set(handle, { identity, admit: undefined });
    this.#parkedPerIdentity.add(identity, 1);
  }

  /**
   * Message 1 of `handle` arrived. Holding a slot: undefined, go on. Parked: a promise that
   * resolves when `review` gives it a slot (the listener then reviews).
   */
  messageOneArrived(handle: T, now: number): Promise<void> | undefined {
    const pending = this.#pending.get(handle);
    if (pending !== undefined) {
      pending.stage = 'waiting';
      pending.since = now;
      return undefined;
    }
    const parked = this.#parked.get(handle);
    if (parked === undefined) return undefined;
    return new Promise<void>((resolve) => {
      parked.admit = resolve;
    });
  }

  /** Message 3 of `handle` arrived: its trust decision runs, it is never dropped from now on. */
  deciding(handle: T): void {
    const pending = this.#pending.get(handle);
    if (pending !== undefined) pending.stage = 'deciding';
  }

  /** Stop tracking a handshake or a parked connection (finished, failed or dropped); idempotent. */
  removePending(handle: T): void {
    const entry = this.#pending.get(handle);
    if (entry !== undefined) {
      this.#pending.delete(handle);
      this.#pendingPerIdentity.add(entry.identity, -1);
      return;
    }
    const parked = this.#parked.get(handle);
    if (parked === undefined) return;
    this.#parked.delete(handle);
    this.#parkedPerIdentity.add(parked.identity, -1);
  }

  /** Every pending and parked handle (for close). */
  *pendingHandles(): IterableIterator<T> {
    yield* this.#pending.keys();
    yield* this.#parked.keys();
  }

  /**
   * Give slots to parked connections whose message 1 arrived, oldest first: a free slot, else the
   * slot of a stale handshake (the oldest stale idle one of the group holding the most, for the
   * per-identity cap the newcomer's own group; else, of another group than the newcomer's, its
   * oldest stale one waiting for message 3),
   * which is forgotten here and returned for the listener to reset. Run it only after the
   * sockets were read (the listener defers it with setImmediate, after the event loop's poll):
   * "idle" is then what was read, not what was not yet looked at. `next` is when a handshake
   * that is not stale yet becomes so, if a parked connection waits for that.
   */
  review(now: number): { drops: AdmissionDrop<T>[]; next: number | undefined } {
    const drops: AdmissionDrop<T>[] = [];
    let next: number | undefined;
    for (const [handle, parked] of this.#parked) {
      const admit = parked.admit;
      if (admit === undefined) continue;
      const limit = this.#fullLimit(parked.identity);
      if (limit !== undefined) {
        const group =
          limit === 'maxPendingHandshakesPerIdentity' ? parked.identity : this.#pendingPerIdentity.largest();
        const choice = group === undefined ? undefined : this.#stale(group, now, group === parked.identity);
        if (choice?.victim === undefined) {
          if (choice?.next !== undefined && (next === undefined || choice.next < next)) next = choice.next;
          continue;
        }
        const victim = this.#pending.get(choice.victim)!;
        this.removePending(choice.victim);
        drops.push({ victim: choice.victim, identity: victim.identity, limit });
      }
      this.removePending(handle);
      this.#pending.set(handle, { identity: parked.identity, stage: 'waiting', since: now });
      this.#pendingPerIdentity.add(parked.identity, 1);
      admit();
    }
    return { drops, next };
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

  // The pending cap a new handshake of `identity` would exceed (per identity first).
  #fullLimit(identity: string): AdmissionLimit | undefined {
    if (this.#pendingPerIdentity.get(identity) >= this.caps.maxPendingHandshakesPerIdentity)
      return 'maxPendingHandshakesPerIdentity';
    if (this.#pending.size >= this.caps.maxPendingHandshakes) return 'maxPendingHandshakes';
    return undefined;
  }

  // The group's oldest stale idle handshake, else (for a newcomer of another group only) its
  // oldest stale one waiting for message 3; with neither, when the first of them becomes stale.
  // A newcomer never displaces a handshake of its own group that got past message 1: in a burst,
  // those wait for the client's message 3, which a busy client may send late (its DH for every
  // message 2 of the burst runs first); a stalled flood of one identity only delays that identity.
  #stale(group: string, now: number, ownGroup: boolean): { victim?: T; next?: number } {
    let waiting: T | undefined;
    let next: number | undefined;
    for (const [handle, entry] of this.#pending) {
      if (entry.identity !== group || entry.stage === 'deciding') continue;
      if (ownGroup && entry.stage === 'waiting') continue;
      const staleAt = entry.since + this.staleAfterMs;
      if (staleAt > now) {
        if (next === undefined || staleAt < next) next = staleAt;
        continue;
      }
      if (entry.stage === 'idle') return { victim: handle };
      waiting ??= handle;
    }
    return waiting === undefined ? { next } : { victim: waiting };
  }

  /** The typed error of a decision, naming the cap, its value and the group. */
  error(limit: AdmissionLimit, identity: string, action: 'dropped' | 'refused'): SecureIpcError {
    const max = this.caps[limit];
    const pending = limit === 'maxPendingHandshakes' || limit === 'maxPendingHandshakesPerIdentity';
    const what = WHAT[limit](max, identity);
    const message =
      action === 'dropped'
        ? `Dropped a stale handshake for a newcomer whose message 1 arrived: ${what} (${limit})`
        : `Refused: already ${what}, and ${PARKED_PER_PENDING} times as many waiting for a slot (${limit})`;
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
