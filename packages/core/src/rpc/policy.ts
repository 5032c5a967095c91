/**
 * Least-privilege authorization for RPC: deny by default, roles given to peers by their
 * authenticated static key (and, through `channel.roles`, by whatever the trust step decided,
 * e.g. certificates later), and per role the methods it may call and the topics it may
 * publish or subscribe to, with `*` wildcards. The identity is always the channel's; nothing
 * in a payload can change it.
 */
import { keyFingerprint } from '../keys/key-pair.js';
import { toKey } from '../keys/key-text.js';
import { ALWAYS_ALLOWED_METHODS, isReservedMethod } from './methods.js';
import { compilePatterns, type NameMatcher } from './patterns.js';

/**
 * What a peer tries to do: call a method, publish or subscribe to a topic, or own a bus name
 * (`own`: the names a role may request on a @secure-ipc/bus broker, docs/bus.md).
 */
export type PolicyAction = 'call' | 'publish' | 'subscribe' | 'own';

/** What one role may do; each list holds names or wildcard patterns (`files.*`, `*`). */
export interface RoleGrant {
  /** Methods the role may call (a reserved `$` method only by its exact name, never by a pattern). */
  call?: readonly string[];
  /** Topics the role may send events on. */
  publish?: readonly string[];
  /** Topic patterns the role may subscribe to. */
  subscribe?: readonly string[];
  /** Bus names the role may own on a broker (`RequestName`, docs/bus.md); nothing else reads it. */
  own?: readonly string[];
}

/** Policy configuration. */
export interface PolicyOptions {
  /** Role name → what it may do. */
  roles: Readonly<Record<string, RoleGrant>>;
  /** Roles given to peers by static key (Uint8Array or base64 text). */
  peers?: ReadonlyArray<{
    /** The peer's static public key: 32 bytes, or its 44-character base64 (`encodeKey`). */
    key: Uint8Array | string;
    /** Role names of `roles` this peer has. */
    roles: readonly string[];
  }>;
  /** Roles every authenticated peer has (default none). */
  defaultRoles?: readonly string[];
}

/** Who is asking: only what the authenticated channel says. */
export interface PolicySubject {
  /** The peer's static key from the Noise handshake. */
  remoteStaticKey: Uint8Array;
  /** Roles the trust decision gave the channel (certificates etc.). */
  channelRoles?: readonly string[];
  /**
   * `keyFingerprint(remoteStaticKey)` when the caller has it already (`SecureChannel.fingerprint`),
   * so it is not computed again; it must be that key's fingerprint.
   */
  fingerprint?: string;
}

/** One authorization decision, for audit logging: who, what, and the verdict; never a payload. */
export interface PolicyDecision {
  /** Fingerprint of the peer's static key. */
  who: string;
  /** All roles the peer held for this decision. */
  roles: readonly string[];
  /** What was attempted. */
  action: PolicyAction;
  /** The method or topic. */
  what: string;
  /** The verdict. */
  allowed: boolean;
  /** Milliseconds since the epoch. */
  at: number;
}

interface CompiledRole {
  call: NameMatcher;
  /** The `call` entries without a wildcard: the only grants of a reserved (`$`) method. */
  callExact: ReadonlySet<string>;
  publish: NameMatcher;
  subscribe: NameMatcher;
  own: NameMatcher;
}

/** A compiled, immutable policy. */
export class Policy {
  readonly #roles = new Map<string, CompiledRole>();
  readonly #peerRoles = new Map<string, readonly string[]>();
  readonly #defaultRoles: readonly string[];

  /** Compile the options; keys are decoded (SIPC_ERR_BAD_KEY on a malformed one). */
  constructor(options: PolicyOptions) {
    for (const [name, grant] of Object.entries(options.roles ?? {})) {
      this.#roles.set(name, {
        call: compilePatterns(grant.call ?? []),
        callExact: new Set((grant.call ?? []).filter((c) => typeof c === 'string' && !c.includes('*'))),
        publish: compilePatterns(grant.publish ?? []),
        subscribe: compilePatterns(grant.subscribe ?? []),
        own: compilePatterns(grant.own ?? []),
      });
    }
    for (const { key, roles } of options.peers ?? []) {
      const id = keyFingerprint(toKey(key, 'A policy peer key'));
      this.#peerRoles.set(id, [...(this.#peerRoles.get(id) ?? []), ...roles]);
    }
    this.#defaultRoles = [...(options.defaultRoles ?? [])];
  }

  /** The roles a subject holds: default roles, roles bound to its key, and the channel's roles. */
  rolesOf(subject: PolicySubject): readonly string[] {
    const fromKey = this.#peerRoles.get(subject.fingerprint ?? keyFingerprint(subject.remoteStaticKey)) ?? [];
    const all = new Set([...this.#defaultRoles, ...fromKey, ...(subject.channelRoles ?? [])]);
    return [...all];
  }

  /**
   * Decide whether `roles` allow `action` on `what`; `$ping` is always allowed to call. A reserved
   * method (a name starting with `$`, such as `$stats`) is granted only by its exact name: no
   * pattern covers it, not even `*`, so a broad grant never opens an introspection method.
   */
  allows(roles: readonly string[], action: PolicyAction, what: string): boolean {
    if (action === 'call') {
      if (ALWAYS_ALLOWED_METHODS.has(what)) return true;
      if (isReservedMethod(what)) {
        for (const r of roles) if (this.#roles.get(r)?.callExact.has(what)) return true;
        return false;
      }
    }
    for (const r of roles) if (this.#roles.get(r)?.[action](what)) return true;
    return false;
  }
}

/** Build a policy (deny by default: a peer with no role may only `$ping`). */
export function createPolicy(options: PolicyOptions): Policy {
  return new Policy(options);
}

/** The policy that allows nothing but `$ping`. */
export const DENY_ALL: Policy = new Policy({ roles: {} });
