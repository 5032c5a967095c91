/**
 * Bus names (docs/bus.md, section 3): their syntax, and the registry of well-known names with
 * D-Bus's `RequestName` / `ReleaseName` semantics (each name a queue whose head is the primary
 * owner; every entry keeps the ALLOW_REPLACEMENT and DO_NOT_QUEUE flags of its latest request).
 * Pure: no I/O, no policy, no quota; the broker authorizes first and applies the changes this
 * returns (who lost and who gained a name) in order.
 */
import { createError } from '@secure-ipc/core';

/** RequestName flags (docs/bus.md, as the D-Bus specification numbers them). */
export const NameFlag = {
  /** A later REPLACE_EXISTING request may take the name from this owner. */
  ALLOW_REPLACEMENT: 1,
  /** Take the name if its primary owner allowed replacement. */
  REPLACE_EXISTING: 2,
  /** Never wait in the queue: fail instead, and leave the queue when replaced. */
  DO_NOT_QUEUE: 4,
} as const;

/** RequestName replies. */
export const RequestNameReply = { PRIMARY_OWNER: 1, IN_QUEUE: 2, EXISTS: 3, ALREADY_OWNER: 4 } as const;
/** A RequestName reply as a number. */
export type RequestNameReplyCode = (typeof RequestNameReply)[keyof typeof RequestNameReply];

/** ReleaseName replies. */
export const ReleaseNameReply = { RELEASED: 1, NON_EXISTENT: 2, NOT_OWNER: 3 } as const;
/** A ReleaseName reply as a number. */
export type ReleaseNameReplyCode = (typeof ReleaseNameReply)[keyof typeof ReleaseNameReply];

/** The broker's own name: the sender of its signals; it and `bus.*` can never be owned. */
export const BROKER_NAME = 'bus';
/** The longest name or signal name, in bytes (ASCII). */
export const MAX_NAME_LENGTH = 255;
const ALL_FLAGS = NameFlag.ALLOW_REPLACEMENT | NameFlag.REPLACE_EXISTING | NameFlag.DO_NOT_QUEUE;
const UNIQUE_PREFIX = ':1.';

function isElementChar(c: number, first: boolean): boolean {
  const letter = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || c === 95 || c === 45; // A-Z a-z _ -
  return letter || (!first && c >= 48 && c <= 57);
}

/**
 * True for a well-known name: 1-255 ASCII bytes, two or more `.`-separated elements of
 * `A-Za-z0-9_-`, none starting with a digit. A character loop, never a RegExp over peer input.
 */
export function isWellKnownName(name: unknown): name is string {
  if (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH) return false;
  let elements = 1;
  let start = true;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c === 46) {
      if (start) return false; // empty element
      elements++;
      start = true;
      continue;
    }
    if (!isElementChar(c, start)) return false;
    start = false;
  }
  return !start && elements >= 2;
}

/** True for a unique connection name `:1.N` (N decimal, no leading zero). */
export function isUniqueName(name: unknown): name is string {
  if (typeof name !== 'string' || !name.startsWith(UNIQUE_PREFIX) || name.length > 24) return false;
  const digits = name.slice(UNIQUE_PREFIX.length);
  if (digits.length === 0 || (digits.length > 1 && digits[0] === '0')) return false;
  for (let i = 0; i < digits.length; i++) {
    const c = digits.charCodeAt(i);
    if (c < 48 || c > 57) return false;
  }
  return true;
}

/** The unique name of the `n`th connection. */
export function uniqueName(n: number): string {
  return `${UNIQUE_PREFIX}${n}`;
}

/** True for a name a peer may own: a well-known name other than `bus.*`. */
export function isOwnableName(name: string): boolean {
  return isWellKnownName(name) && !name.startsWith(`${BROKER_NAME}.`);
}

/** Throw SIPC_ERR_INVALID_ARGUMENT unless `name` is a well-known, unique or the broker's name. */
export function assertName(name: unknown, what = 'name'): asserts name is string {
  if (name === BROKER_NAME || isUniqueName(name) || isWellKnownName(name)) return;
  throw createError(
    'SIPC_ERR_INVALID_ARGUMENT',
    `${what} must be a bus name: a well-known name (two or more dot-separated elements of A-Za-z0-9_-, not starting with a digit, at most ${MAX_NAME_LENGTH} bytes), a unique name :1.N or bus`,
  );
}

/** Throw SIPC_ERR_INVALID_ARGUMENT unless `flags` is an integer made of the three flags. */
export function assertFlags(flags: unknown): asserts flags is number {
  if (typeof flags !== 'number' || !Number.isInteger(flags) || flags < 0 || (flags & ~ALL_FLAGS) !== 0)
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      'flags must be an integer of ALLOW_REPLACEMENT (1), REPLACE_EXISTING (2) and DO_NOT_QUEUE (4)',
    );
}

/** One entry of a name's queue. */
interface Entry {
  readonly owner: string;
  flags: number;
}

/** A change of a name's primary owner: what the broker tells (nameLost, nameAcquired, NameOwnerChanged). */
export interface OwnerChange {
  /** The name. */
  readonly name: string;
  /** The unique name that was the primary owner, or '' for none. */
  readonly oldOwner: string;
  /** The unique name that is the primary owner now, or '' for none. */
  readonly newOwner: string;
}

/** What happened to one connection's place in a name's queue (the `bus.name` audit record's `event`). */
export type NameEvent = 'acquired' | 'lost' | 'queued' | 'released';

/** One connection's {@link NameEvent} for one name. */
export interface QueueEvent {
  /** The connection's unique name. */
  readonly owner: string;
  /** What happened to its place. */
  readonly event: NameEvent;
}

/**
 * The events between two queues of one name (head first = primary owner; docs/bus.md section 9):
 * the old head `lost` (then `queued` if it stays in the queue, as a replaced owner does), the new
 * head `acquired`, an entry that left without having been the head `released`, a new entry that is
 * not the head `queued`. An entry that kept its place (flags updated) has none.
 */
export function queueEvents(before: readonly string[], after: readonly string[]): QueueEvent[] {
  const events: QueueEvent[] = [];
  const [oldHead, newHead] = [before[0], after[0]];
  if (oldHead !== newHead) {
    if (oldHead !== undefined) {
      events.push({ owner: oldHead, event: 'lost' });
      if (after.includes(oldHead)) events.push({ owner: oldHead, event: 'queued' });
    }
    if (newHead !== undefined) events.push({ owner: newHead, event: 'acquired' });
  }
  for (const owner of before.slice(1))
    if (owner !== newHead && !after.includes(owner)) events.push({ owner, event: 'released' });
  for (const owner of after.slice(1))
    if (owner !== oldHead && !before.includes(owner)) events.push({ owner, event: 'queued' });
  return events;
}

/** What a request or release did. */
export interface NameOutcome<R> {
  /** The reply for the caller. */
  readonly reply: R;
  /** The owner change it caused, if any. */
  readonly change: OwnerChange | undefined;
  /** Whether the caller now holds a place (owner or queued) for the name it did not hold before (+1), or left one (-1). */
  readonly held: -1 | 0 | 1;
}

/** The well-known names of one bus and their queues. */
export class NameRegistry {
  readonly #queues = new Map<string, Entry[]>();
  /** Unique name → the names it owns or queues for, in the order it got them. */
  readonly #held = new Map<string, Set<string>>();

  /** The primary owner of `name` (a well-known name), or undefined. */
  ownerOf(name: string): string | undefined {
    return this.#queues.get(name)?.[0]?.owner;
  }

  /** The queue of `name`, head (the primary owner) first; empty without owner. */
  queueOf(name: string): string[] {
    return (this.#queues.get(name) ?? []).map((e) => e.owner);
  }

  /** Every well-known name with an owner. */
  names(): string[] {
    return [...this.#queues.keys()];
  }

  /** The names `owner` is the primary owner of. */
  ownedBy(owner: string): string[] {
    return [...(this.#held.get(owner) ?? [])].filter((n) => this.ownerOf(n) === owner);
  }

  /** How many names `owner` owns or queues for (its `names` quota usage). */
  heldCount(owner: string): number {
    return this.#held.get(owner)?.size ?? 0;
  }

  /** RequestName (docs/bus.md section 3), for a name already validated and authorized. */
  request(owner: string, name: string, flags: number): NameOutcome<RequestNameReplyCode> {
    const queue = this.#queues.get(name);
    const wasHeld = this.#held.get(owner)?.has(name) === true;
    if (queue === undefined || queue.length === 0) {
      this.#queues.set(name, [{ owner, flags }]);
      this.#hold(owner, name);
      return {
        reply: RequestNameReply.PRIMARY_OWNER,
        change: { name, oldOwner: '', newOwner: owner },
        held: 1,
      };
    }
    const head = queue[0]!;
    if (head.owner === owner) {
      head.flags = flags;
      return { reply: RequestNameReply.ALREADY_OWNER, change: undefined, held: 0 };
    }
    const at = queue.findIndex((e) => e.owner === owner);
    let reply: RequestNameReplyCode;
    let change: OwnerChange | undefined;
    if ((head.flags & NameFlag.ALLOW_REPLACEMENT) !== 0 && (flags & NameFlag.REPLACE_EXISTING) !== 0) {
      if (at >= 0) queue.splice(at, 1);
      // The caller takes the head; the old owner is second (and leaves below if it asked not to queue).
      queue.unshift({ owner, flags });
      change = { name, oldOwner: head.owner, newOwner: owner };
      reply = RequestNameReply.PRIMARY_OWNER;
    } else if (at >= 0) {
      queue[at]!.flags = flags;
      reply = RequestNameReply.IN_QUEUE;
    } else if ((flags & NameFlag.DO_NOT_QUEUE) === 0) {
      queue.push({ owner, flags });
      reply = RequestNameReply.IN_QUEUE;
    } else {
      return { reply: RequestNameReply.EXISTS, change: undefined, held: 0 };
    }
    // Every entry but the head that asked not to queue leaves it.
    for (let i = queue.length - 1; i >= 1; i--) {
      const e = queue[i]!;
      if ((e.flags & NameFlag.DO_NOT_QUEUE) === 0) continue;
      queue.splice(i, 1);
      this.#release(e.owner, name);
      if (e.owner === owner) reply = RequestNameReply.EXISTS;
    }
    const isHeld = this.#held.get(owner)?.has(name) === true || queue.some((e) => e.owner === owner);
    if (isHeld) this.#hold(owner, name);
    return { reply, change, held: isHeld === wasHeld ? 0 : isHeld ? 1 : -1 };
  }

  /** ReleaseName (docs/bus.md section 3). */
  release(owner: string, name: string): NameOutcome<ReleaseNameReplyCode> {
    const queue = this.#queues.get(name);
    if (queue === undefined || queue.length === 0)
      return { reply: ReleaseNameReply.NON_EXISTENT, change: undefined, held: 0 };
    const at = queue.findIndex((e) => e.owner === owner);
    if (at < 0) return { reply: ReleaseNameReply.NOT_OWNER, change: undefined, held: 0 };
    queue.splice(at, 1);
    this.#release(owner, name);
    let change: OwnerChange | undefined;
    if (at === 0) change = { name, oldOwner: owner, newOwner: queue[0]?.owner ?? '' };
    if (queue.length === 0) this.#queues.delete(name);
    return { reply: ReleaseNameReply.RELEASED, change, held: -1 };
  }

  /** A connection left: every name and queue place it held, in the order it got them. */
  dropOwner(owner: string): OwnerChange[] {
    const changes: OwnerChange[] = [];
    for (const name of [...(this.#held.get(owner) ?? [])]) {
      const { change } = this.release(owner, name);
      if (change !== undefined) changes.push(change);
    }
    this.#held.delete(owner);
    return changes;
  }

  #hold(owner: string, name: string): void {
    let set = this.#held.get(owner);
    if (set === undefined) {
      set = new Set();
      this.#held.set(owner, set);
    }
    set.add(name);
  }

  #release(owner: string, name: string): void {
    const set = this.#held.get(owner);
    set?.delete(name);
    if (set?.size === 0) this.#held.delete(owner);
  }
}
