/**
 * The SIDs a policy may name: a SID string (`S-1-5-21-...`) or one of a few well-known names for
 * the accounts and groups a local service deals with. Pure functions: no I/O, no FFI, so the
 * validation runs (and is tested) on every OS, at `pipeTransport()`, `listen()` and `connect()`.
 */
import { createError } from '@secure-ipc/core';

/**
 * Well-known names accepted wherever a SID is. Each is the same SID on every Windows machine
 * (MS-DTYP 2.4.2.4). Accounts (a token's user) and groups (a token's membership) alike: a policy
 * entry matches a peer whose token user it is or whose token has it as an enabled group.
 */
export const WELL_KNOWN_SIDS: Readonly<Record<string, string>> = Object.freeze({
  /** Users logged on at the console or over Remote Desktop (a group; SDDL alias IU). */
  interactive: 'S-1-5-4',
  /** Every account that logged on with credentials, not Guest or Anonymous (a group; AU). */
  'authenticated-users': 'S-1-5-11',
  /** LocalSystem, the account of most services (SY). */
  system: 'S-1-5-18',
  /** The local Administrators group; a member's token has it enabled only when elevated (BA). */
  administrators: 'S-1-5-32-544',
  /** NT AUTHORITY\LocalService, a low-privilege service account (LS). */
  'local-service': 'S-1-5-19',
  /** NT AUTHORITY\NetworkService, a service account with the machine's network identity (NS). */
  'network-service': 'S-1-5-20',
});

/** LocalSystem: the owner a client of `local://system/APP` expects unless told otherwise. */
export const SYSTEM_SID = 'S-1-5-18';

/** The most sub-authorities a SID has (SID_MAX_SUB_AUTHORITIES). */
const MAX_SUB_AUTHORITIES = 15;

/**
 * True for a SID in string form that Windows would accept: `S-1-<authority>-<sub>...`, the
 * authority below 2^48, at most 15 sub-authorities of 32 bits each. Digits only, no signs.
 */
export function isSidString(sid: unknown): sid is string {
  if (typeof sid !== 'string' || !sid.startsWith('S-1-')) return false;
  const parts = sid.slice('S-1-'.length).split('-');
  if (parts.length < 2 || parts.length > MAX_SUB_AUTHORITIES + 1) return false;
  if (!parts.every((p) => p.length > 0 && p.length <= 15 && /^\d+$/.test(p))) return false;
  const [authority, ...subs] = parts.map(Number);
  return authority! < 2 ** 48 && subs.every((s) => s <= 0xffffffff);
}

/** The SID a policy entry stands for (a well-known name or a SID string), or undefined. */
export function resolveSid(entry: unknown): string | undefined {
  if (typeof entry !== 'string') return undefined;
  if (Object.hasOwn(WELL_KNOWN_SIDS, entry)) return WELL_KNOWN_SIDS[entry];
  return isSidString(entry) ? entry : undefined;
}

/**
 * Resolve every entry of `option` (an `allowedSids` list) to a SID string; anything else is
 * SIPC_ERR_INVALID_ARGUMENT naming the entry, so a typo fails loudly instead of admitting nobody.
 */
export function resolveSids(entries: unknown, option = 'allowedSids'): readonly string[] {
  if (!Array.isArray(entries)) {
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `${option} must be an array of SIDs or well-known names`);
  }
  return entries.map((entry: unknown, i) => {
    const sid = resolveSid(entry);
    if (sid === undefined) {
      throw createError(
        'SIPC_ERR_INVALID_ARGUMENT',
        `${option}[${i}] (${JSON.stringify(entry)?.slice(0, 80)}) is not a SID (S-1-...) or one of ${Object.keys(WELL_KNOWN_SIDS).join(', ')}`,
        { details: { index: i } },
      );
    }
    return sid;
  });
}
