/**
 * Quotas (docs/bus.md section 8): every resource a peer can make the broker hold, counted against
 * the peer's budget and its OS identity's (all channels of one uid or SID; a peer without one
 * counts under its key fingerprint), checked before anything changes. Defaults: dbus-daemon's
 * system-bus limits per connection, dbus-broker's per-user limits per identity.
 */
import { createError, PublicError } from '@secure-ipc/core';

/** The quotas. */
export type QuotaName = 'names' | 'matches' | 'pendingReplies' | 'bytes';
/** Whose budget. */
export type QuotaScope = 'peer' | 'identity';

/** Limits of one scope. */
export type QuotaLimits = Readonly<Record<QuotaName, number>>;

/** The limits per peer and per identity (each may be partial; the rest are the defaults). */
export interface QuotaOptions {
  /** Per peer (its channel). */
  readonly peer?: Partial<QuotaLimits>;
  /** Per OS identity (uid / SID; key fingerprint without one). */
  readonly identity?: Partial<QuotaLimits>;
}

/** Per peer: dbus-daemon's system bus (512 names, 512 rules, 128 pending replies), 4 MiB. */
export const DEFAULT_PEER_QUOTAS: QuotaLimits = {
  names: 512,
  matches: 512,
  pendingReplies: 128,
  bytes: 4 * 1024 * 1024,
};
/** Per identity: dbus-broker's per-user limits (10,240 objects and matches, 16 MiB). */
export const DEFAULT_IDENTITY_QUOTAS: QuotaLimits = {
  names: 10_240,
  matches: 10_240,
  pendingReplies: 10_240,
  bytes: 16 * 1024 * 1024,
};

const QUOTAS: readonly QuotaName[] = ['names', 'matches', 'pendingReplies', 'bytes'];

/** A quota diagnostic: which peer exceeded which quota, by how much, and what the broker did. */
export interface QuotaDiagnostic {
  /** Milliseconds since the epoch. */
  readonly at: number;
  /** The peer's unique name. */
  readonly peer: string;
  /** The peer's key fingerprint. */
  readonly peerId: string;
  /** The peer's OS identity, if its transport reported one. */
  readonly osIdentity: string | undefined;
  /** The quota. */
  readonly quota: QuotaName;
  /** Whose budget it passed. */
  readonly scope: QuotaScope;
  /** The limit. */
  readonly limit: number;
  /** In use before the request. */
  readonly used: number;
  /** What the request asked for. */
  readonly requested: number;
  /** used + requested - limit. */
  readonly over: number;
  /** What the broker did. */
  readonly action: 'refused' | 'dropped' | 'disconnected';
}

/** Usage and limit of one quota. */
export interface QuotaUsage {
  /** In use. */
  readonly used: number;
  /** The limit. */
  readonly limit: number;
}

/** What `bus.quota` answers: the caller's own usage. */
export type QuotaReport = Readonly<Record<QuotaScope, Readonly<Record<QuotaName, QuotaUsage>>>>;

/** One budget's counters. */
class Counters {
  readonly used: Record<QuotaName, number> = { names: 0, matches: 0, pendingReplies: 0, bytes: 0 };
  /** Peers sharing it (identity counters are dropped at zero). */
  peers = 0;
}

/** Who is charged: a peer and its identity. */
export interface QuotaAccount {
  /** The peer's unique name. */
  readonly peer: string;
  /** The peer's key fingerprint. */
  readonly peerId: string;
  /** The OS identity (or undefined). */
  readonly osIdentity: string | undefined;
}

function checkLimits(limits: Partial<QuotaLimits> | undefined, what: string): void {
  for (const [k, v] of Object.entries(limits ?? {})) {
    if (!QUOTAS.includes(k as QuotaName))
      throw createError('SIPC_ERR_INVALID_ARGUMENT', `${what}: unknown quota ${JSON.stringify(k)}`);
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 1)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', `${what}.${k} must be a positive integer`);
  }
}

/** The quota ledger of one broker. */
export class QuotaLedger {
  readonly #peerLimits: QuotaLimits;
  readonly #identityLimits: QuotaLimits;
  readonly #peers = new Map<string, Counters>();
  readonly #identities = new Map<string, Counters>();
  readonly #report: (d: QuotaDiagnostic) => void;

  /** Limits validated here (SIPC_ERR_INVALID_ARGUMENT); `report` is told every diagnostic. */
  constructor(options: QuotaOptions = {}, report: (d: QuotaDiagnostic) => void = () => {}) {
    checkLimits(options.peer, 'quotas.peer');
    checkLimits(options.identity, 'quotas.identity');
    this.#peerLimits = { ...DEFAULT_PEER_QUOTAS, ...options.peer };
    this.#identityLimits = { ...DEFAULT_IDENTITY_QUOTAS, ...options.identity };
    this.#report = report;
  }

  static #identityKey(a: QuotaAccount): string {
    return a.osIdentity ?? a.peerId;
  }

  /** Start counting a peer. */
  open(a: QuotaAccount): void {
    this.#peers.set(a.peer, new Counters());
    const key = QuotaLedger.#identityKey(a);
    let id = this.#identities.get(key);
    if (id === undefined) {
      id = new Counters();
      this.#identities.set(key, id);
    }
    id.peers++;
  }

  /** A peer left: whatever it still held is given back (its identity's share too). */
  close(a: QuotaAccount): void {
    const mine = this.#peers.get(a.peer);
    if (mine === undefined) return;
    this.#peers.delete(a.peer);
    const key = QuotaLedger.#identityKey(a);
    const id = this.#identities.get(key);
    if (id === undefined) return;
    for (const q of QUOTAS) id.used[q] -= mine.used[q];
    if (--id.peers === 0) this.#identities.delete(key);
  }

  /**
   * The first budget `amount` more of `quota` would pass, as the diagnostic the broker reports
   * (not reported yet), or undefined when both have room.
   */
  #over(a: QuotaAccount, quota: QuotaName, amount: number): Omit<QuotaDiagnostic, 'action'> | undefined {
    const scopes: Array<[QuotaScope, Counters | undefined, QuotaLimits]> = [
      ['peer', this.#peers.get(a.peer), this.#peerLimits],
      ['identity', this.#identities.get(QuotaLedger.#identityKey(a)), this.#identityLimits],
    ];
    for (const [scope, counters, limits] of scopes) {
      const used = counters?.used[quota] ?? 0;
      const limit = limits[quota];
      if (used + amount > limit)
        return {
          at: Date.now(),
          peer: a.peer,
          peerId: a.peerId,
          osIdentity: a.osIdentity,
          quota,
          scope,
          limit,
          used,
          requested: amount,
          over: used + amount - limit,
        };
    }
    return undefined;
  }

  /**
   * Charge `amount` of `quota`, or throw the public SIPC_ERR_QUOTA_EXCEEDED (with the diagnostic's
   * quota, scope, limit, used and requested as `data`) and report it as `refused`; nothing is
   * charged then.
   */
  charge(a: QuotaAccount, quota: QuotaName, amount: number): void {
    const over = this.#over(a, quota, amount);
    if (over !== undefined) {
      this.#report({ ...over, action: 'refused' });
      throw quotaError(over);
    }
    this.#add(a, quota, amount);
  }

  /** Charge if both budgets have room; false (reported with `action`) if not. */
  tryCharge(a: QuotaAccount, quota: QuotaName, amount: number, action: 'dropped'): boolean {
    const over = this.#over(a, quota, amount);
    if (over !== undefined) {
      this.#report({ ...over, action });
      return false;
    }
    this.#add(a, quota, amount);
    return true;
  }

  /** Give back what `charge` took. */
  release(a: QuotaAccount, quota: QuotaName, amount: number): void {
    this.#add(a, quota, -amount);
  }

  /** Report a disconnect for `quota` (the broker closes the channel). */
  reportDisconnect(a: QuotaAccount, quota: QuotaName, requested: number): void {
    const used = this.#peers.get(a.peer)?.used[quota] ?? 0;
    const limit = this.#peerLimits[quota];
    this.#report({
      at: Date.now(),
      peer: a.peer,
      peerId: a.peerId,
      osIdentity: a.osIdentity,
      quota,
      scope: 'peer',
      limit,
      used,
      requested,
      over: Math.max(0, used + requested - limit),
      action: 'disconnected',
    });
  }

  #add(a: QuotaAccount, quota: QuotaName, amount: number): void {
    const mine = this.#peers.get(a.peer);
    if (mine === undefined) return; // a peer already gone: nothing to hold
    mine.used[quota] += amount;
    const id = this.#identities.get(QuotaLedger.#identityKey(a));
    if (id !== undefined) id.used[quota] += amount;
  }

  /** A peer's own usage and limits (`bus.quota`). */
  report(a: QuotaAccount): QuotaReport {
    const of = (c: Counters | undefined, limits: QuotaLimits) =>
      Object.fromEntries(QUOTAS.map((q) => [q, { used: c?.used[q] ?? 0, limit: limits[q] }])) as Record<
        QuotaName,
        QuotaUsage
      >;
    return {
      peer: of(this.#peers.get(a.peer), this.#peerLimits),
      identity: of(this.#identities.get(QuotaLedger.#identityKey(a)), this.#identityLimits),
    };
  }
}

/** The public error a refused request gets. */
export function quotaError(d: Omit<QuotaDiagnostic, 'action'>): PublicError {
  return new PublicError(
    'SIPC_ERR_QUOTA_EXCEEDED',
    `Over the ${d.scope} quota ${d.quota}: ${d.used} used + ${d.requested} requested > ${d.limit}`,
    { data: { quota: d.quota, scope: d.scope, limit: d.limit, used: d.used, requested: d.requested } },
  );
}
