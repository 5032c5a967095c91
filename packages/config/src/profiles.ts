/**
 * Hardening profiles (docs/configuration.md, "Profiles"): `baseline` (the defaults every
 * transport already applies, on every OS) and `strict`. A profile is a list of rules checked
 * against the whole configuration, every endpoint included, whatever the OS; a configuration that
 * breaks a rule of its profile is refused unless it names the rule in `weakens` with a reason.
 */
import type { Config } from './schema.js';

/** The profiles. */
export type ProfileName = 'baseline' | 'strict';

/** A rule a profile holds a configuration to. */
export interface ProfileRule {
  /** The rule's id (`baseline.…`, `strict.…`): what `weakens[].rule` names. */
  readonly id: string;
  /** The profile it belongs to (strict includes baseline's rules). */
  readonly profile: ProfileName;
  /** What it requires, one sentence (the handbook's table). */
  readonly requires: string;
  /** The violations: where (a path into the configuration) and what. */
  check(config: Config): { path: (string | number)[]; message: string }[];
}

/** @internal True unless `address` is a tcp:// address of a host that is not loopback. */
export const isLoopbackTcp = (address: string): boolean => {
  const m = /^tcp:\/\/(\[[^\]]+\]|[^:/]+):\d+\/?$/.exec(address);
  if (m === null) return true; // not tcp: not this rule's
  const host = m[1]!.replace(/^\[|\]$/g, '');
  return host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host);
};

/** Every rule, baseline's first. */
export const PROFILE_RULES: readonly ProfileRule[] = [
  {
    id: 'baseline.trust-someone',
    profile: 'baseline',
    requires: 'trust names at least one key or authority: nobody is trusted by default',
    check: (c) =>
      (c.trust.keys?.length ?? 0) + (c.trust.authorities?.length ?? 0) === 0
        ? [{ path: ['trust'], message: 'trust names no key and no authority: no peer could connect' }]
        : [],
  },
  {
    id: 'baseline.loopback-only',
    profile: 'baseline',
    requires: 'a tcp:// endpoint binds a loopback address unless allowRemote says otherwise',
    check: (c) =>
      c.endpoints.flatMap((e, i) =>
        !isLoopbackTcp(e.listen) && e.allowRemote !== true
          ? [
              {
                path: ['endpoints', i, 'listen'],
                message: `${e.listen} is not a loopback address (set allowRemote to expose it)`,
              },
            ]
          : [],
      ),
  },
  {
    id: 'baseline.socket-owner-only',
    profile: 'baseline',
    requires: 'socket files are 0600 unless socketMode widens them, and 0666 names no group',
    check: (c) =>
      c.endpoints.flatMap((e, i) =>
        e.socketMode === '0660' && e.socketGroup === undefined
          ? [
              {
                path: ['endpoints', i, 'socketMode'],
                message: 'socketMode 0660 needs socketGroup (the group that may connect)',
              },
            ]
          : [],
      ),
  },
  {
    id: 'strict.certificates',
    profile: 'strict',
    requires: 'peers are trusted by certificate (authorities), with a revocation list',
    check: (c) => {
      const out: { path: (string | number)[]; message: string }[] = [];
      if ((c.trust.authorities?.length ?? 0) === 0)
        out.push({ path: ['trust'], message: 'strict: trust must name certificate authorities' });
      if (c.trust.revocations === undefined)
        out.push({ path: ['trust'], message: 'strict: trust must name a revocation list' });
      return out;
    },
  },
  {
    id: 'strict.no-pinned-keys',
    profile: 'strict',
    requires: 'no pinned peer keys: every peer holds a short-lived certificate',
    check: (c) =>
      (c.trust.keys?.length ?? 0) > 0
        ? [{ path: ['trust', 'keys'], message: 'strict: pinned keys do not expire; give peers certificates' }]
        : [],
  },
  {
    id: 'strict.no-wildcard-call',
    profile: 'strict',
    requires: 'no role grants call on a pattern with `*`',
    check: (c) =>
      Object.entries(c.policy.roles).flatMap(([role, g]) =>
        (g.call ?? []).flatMap((m, j) =>
          m.includes('*')
            ? [
                {
                  path: ['policy', 'roles', role, 'call', j],
                  message: `strict: role ${role} grants call on the pattern ${m}`,
                },
              ]
            : [],
        ),
      ),
  },
  {
    id: 'strict.no-default-roles',
    profile: 'strict',
    requires: 'no default roles: every grant is given to a named peer or certificate',
    check: (c) =>
      (c.policy.defaultRoles?.length ?? 0) > 0
        ? [{ path: ['policy', 'defaultRoles'], message: 'strict: defaultRoles grant to every trusted peer' }]
        : [],
  },
  {
    id: 'strict.no-remote-tcp',
    profile: 'strict',
    requires: 'no endpoint is reachable from the network',
    check: (c) =>
      c.endpoints.flatMap((e, i) =>
        e.allowRemote === true
          ? [
              {
                path: ['endpoints', i, 'allowRemote'],
                message: 'strict: allowRemote exposes the endpoint to the network',
              },
            ]
          : [],
      ),
  },
  {
    id: 'strict.protected-keys',
    profile: 'strict',
    requires: 'secret keys are in the OS keystore or an encrypted key file, never a plain file',
    check: (c) => {
      const out: { path: (string | number)[]; message: string }[] = [];
      if (c.identity.key.file !== undefined)
        out.push({
          path: ['identity', 'key', 'file'],
          message: 'strict: a plain key file; use keystore or encryptedFile',
        });
      if (c.outbox?.key.file !== undefined)
        out.push({
          path: ['outbox', 'key', 'file'],
          message: 'strict: a plain key file; use keystore or encryptedFile',
        });
      return out;
    },
  },
  {
    id: 'strict.audit-required',
    profile: 'strict',
    requires: 'an audit log, required (fail closed)',
    check: (c) =>
      c.audit?.required === true
        ? []
        : [{ path: c.audit === undefined ? [] : ['audit'], message: 'strict: audit with required: true' }],
  },
];

/** The rules of `profile` (strict: baseline's and its own). */
export function profileRules(profile: ProfileName): readonly ProfileRule[] {
  return PROFILE_RULES.filter((r) => r.profile === 'baseline' || profile === 'strict');
}
