/**
 * The encrypted outbox's access guard on Windows (core's `OutboxAccessGuard`, docs/outbox.md
 * "Access"): core has no OS code, so on Windows the user passes `windowsOwnerOnly` to `openOutbox`.
 *
 * `secure(path, kind, created)`:
 * 1. the path itself (GetFileAttributesW, which does not follow a reparse point) must be a
 *    directory or a regular file, never a reparse point (symlink, junction): nothing is set or read
 *    through a link;
 * 2. when `created`, a protected DACL (no inherited ACEs) is set: full access for the current user
 *    and SYSTEM only, inheritable (OICI) on a directory so the files created in it get the same;
 *    then the owner is set to the current user where Windows allows it;
 * 3. always, the DACL is read back (GetNamedSecurityInfoW, then SDDL) and refused when it is NULL
 *    or any ACE other than a deny grants something to a SID other than the current user, SYSTEM or
 *    Administrators.
 * Refusals are SIPC_ERR_INSECURE_DIRECTORY / SIPC_ERR_INSECURE_FILE with `details: { path, reason }`.
 */
import { createError, type GuardedKind, type OutboxAccessGuard, type SecureIpcError } from '@secure-ipc/core';
import { SYSTEM_SID, WELL_KNOWN_SIDS } from './sids.js';
import {
  currentUserSid,
  type Handle,
  isInvalidHandle,
  Win,
  type Win32,
  win32,
  win32Error,
} from './win32-ffi.js';

/** Why a path was refused (`details.reason`). */
export type GuardRefusal = 'symlink' | 'type' | 'null-dacl' | 'others' | 'unreadable' | 'set-failed';

function insecure(
  kind: GuardedKind,
  path: string,
  message: string,
  reason: GuardRefusal,
  cause?: unknown,
): SecureIpcError {
  return createError(
    kind === 'directory' ? 'SIPC_ERR_INSECURE_DIRECTORY' : 'SIPC_ERR_INSECURE_FILE',
    message,
    {
      details: { path, reason },
      ...(cause === undefined ? {} : { cause }),
    },
  );
}

/** A refusal caused by a failed Win32 call (`errno`: GetLastError unless the call returned it). */
function callFailed(
  w: Win32,
  kind: GuardedKind,
  path: string,
  message: string,
  reason: GuardRefusal,
  call: string,
  errno: number = w.GetLastError(),
): SecureIpcError {
  return insecure(kind, path, message, reason, win32Error(call, errno));
}

/**
 * The SDDL `secure` sets on what the outbox created: owner the user, a protected DACL of the user
 * and SYSTEM with full file access (FA); on a directory the ACEs are inherited by its files and
 * subdirectories (OICI).
 */
export function ownerOnlyFileSddl(userSid: string, kind: GuardedKind): string {
  const inherit = kind === 'directory' ? 'OICI' : '';
  return `O:${userSid}D:P(A;${inherit};FA;;;${userSid})(A;${inherit};FA;;;SY)`;
}

/** One ACE of an SDDL DACL: `(type;flags;rights;object;inherited object;sid[;condition])`. */
export interface SddlAce {
  readonly type: string;
  readonly flags: string;
  readonly rights: string;
  /** A SID string or an SDDL alias (SY, BA, WD, ...), as Windows printed it. */
  readonly sid: string;
}

/** A DACL as SDDL says it: its flags (`P` protected, `AI`, `AR`) and its ACEs. */
export interface SddlDacl {
  readonly flags: string;
  readonly aces: readonly SddlAce[];
}

/**
 * Parse the `D:` part of an SDDL string (no RegExp: a small scanner that counts parentheses, since
 * a conditional ACE's last field holds nested ones). Undefined when it is not a well-formed DACL,
 * which the guard treats as a refusal (fail closed).
 */
export function parseSddlDacl(sddl: string): SddlDacl | undefined {
  const start = sddl.indexOf('D:');
  if (start < 0) return undefined;
  let i = start + 2;
  while (i < sddl.length && sddl[i] !== '(') i += 1;
  const flags = sddl.slice(start + 2, i);
  const aces: SddlAce[] = [];
  while (i < sddl.length && sddl[i] === '(') {
    let depth = 0;
    let end = i;
    for (; end < sddl.length; end += 1) {
      if (sddl[end] === '(') depth += 1;
      else if (sddl[end] === ')' && --depth === 0) break;
    }
    if (end >= sddl.length) return undefined;
    const fields = sddl.slice(i + 1, end).split(';');
    if (fields.length < 6) return undefined;
    const [type, aceFlags, rights, , , sid] = fields as [string, string, string, string, string, string];
    if (type === '' || sid === '') return undefined;
    aces.push({ type, flags: aceFlags, rights, sid });
    i = end + 1;
  }
  // Only the end of the string may follow the ACEs (this reads DACL-only SDDL).
  return i === sddl.length ? { flags, aces } : undefined;
}

/** ACE types that only take access away (access denied, object and callback variants). */
const DENY_TYPES: ReadonlySet<string> = new Set(['D', 'OD', 'XD']);

/** The canonical `S-1-...` form of a SID or SDDL alias (SY, BA, LA...), or undefined. */
function canonicalSid(w: Win32, sid: string): string | undefined {
  const bin: Handle[] = [null];
  if (!w.ConvertStringSidToSidW(sid, bin)) return undefined;
  try {
    const out: (string | null)[] = [null];
    return w.ConvertSidToStringSidW(bin[0], out) && out[0] !== null ? out[0] : undefined;
  } finally {
    w.LocalFree(bin[0]);
  }
}

/** Refuse a reparse point, or anything that is not a directory / regular file as `kind` says. */
function checkType(w: Win32, path: string, kind: GuardedKind): void {
  const attrs = w.GetFileAttributesW(path) >>> 0;
  if (attrs === Win.INVALID_FILE_ATTRIBUTES) {
    throw callFailed(
      w,
      kind,
      path,
      `Cannot read the attributes of ${path}`,
      'unreadable',
      'GetFileAttributesW',
    );
  }
  if ((attrs & Win.FILE_ATTRIBUTE_REPARSE_POINT) !== 0) {
    throw insecure(
      kind,
      path,
      `${path} is a reparse point (symlink or junction; outbox paths are never followed)`,
      'symlink',
    );
  }
  const isDir = (attrs & Win.FILE_ATTRIBUTE_DIRECTORY) !== 0;
  const ok = kind === 'directory' ? isDir : !isDir && (attrs & Win.FILE_ATTRIBUTE_DEVICE) === 0;
  if (!ok)
    throw insecure(
      kind,
      path,
      `${path} is not a ${kind === 'directory' ? 'directory' : 'regular file'}`,
      'type',
    );
}

/**
 * Set the owner-only protected DACL, then (if Windows lets us) the owner, on `path`.
 * SetFileSecurityW rather than SetNamedSecurityInfoW: Wine 8's SetNamedSecurityInfoW returns
 * success on a file and changes nothing (outbox-guard.test.ts would fail on it), while
 * SetFileSecurityW works on both. The "P" of the SDDL is the descriptor's SE_DACL_PROTECTED bit,
 * which the call keeps; no propagation to existing children is needed (the outbox secures each file
 * it creates itself).
 */
function applyOwnerOnly(w: Win32, path: string, kind: GuardedKind, userSid: string): void {
  const setFailed = (what: string, call: string) =>
    callFailed(w, kind, path, `Cannot ${what} the owner-only DACL of ${path}`, 'set-failed', call);
  const sd: Handle[] = [null];
  const sddl = ownerOnlyFileSddl(userSid, kind);
  if (!w.ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, Win.SDDL_REVISION_1, sd, [0])) {
    throw setFailed('build', 'ConvertStringSecurityDescriptorToSecurityDescriptorW');
  }
  try {
    if (!w.SetFileSecurityW(path, Win.DACL_SECURITY_INFORMATION, sd[0])) {
      throw setFailed('set', 'SetFileSecurityW');
    }
    // The owner keeps implicit rights (READ_CONTROL, WRITE_DAC): make it this user. Windows refuses
    // an owner the token cannot assign (an elevated token may force Administrators): the DACL above
    // already holds, so that refusal is not an error.
    w.SetFileSecurityW(path, Win.OWNER_SECURITY_INFORMATION, sd[0]);
  } finally {
    w.LocalFree(sd[0]);
  }
}

/** The DACL of a binary security descriptor as SDDL, or `null` for a NULL (or absent) DACL. */
export function daclSddlOf(w: Win32, sd: Handle): string | null | undefined {
  const present = [0];
  const dacl: Handle[] = [null];
  if (!w.GetSecurityDescriptorDacl(sd, present, dacl, [0])) return undefined;
  if (present[0] === 0 || isInvalidHandle(w, dacl[0])) return null;
  const out: (string | null)[] = [null];
  if (
    !w.ConvertSecurityDescriptorToStringSecurityDescriptorW(
      sd,
      Win.SDDL_REVISION_1,
      Win.DACL_SECURITY_INFORMATION,
      out,
      [0],
    )
  )
    return undefined;
  return out[0] ?? undefined;
}

/** The DACL of `path` as SDDL (GetNamedSecurityInfoW), or `null` for a NULL DACL (everyone has full access). */
export function readFileDacl(w: Win32, path: string, kind: GuardedKind): string | null {
  const sd: Handle[] = [null];
  const rc = w.GetNamedSecurityInfoW(
    path,
    Win.SE_FILE_OBJECT,
    Win.DACL_SECURITY_INFORMATION,
    [null],
    [null],
    [null],
    [null],
    sd,
  );
  if (rc !== 0)
    throw callFailed(
      w,
      kind,
      path,
      `Cannot read the DACL of ${path}`,
      'unreadable',
      'GetNamedSecurityInfoW',
      rc,
    );
  try {
    const sddl = daclSddlOf(w, sd[0]);
    if (sddl === undefined) {
      throw callFailed(
        w,
        kind,
        path,
        `Cannot read the DACL of ${path}`,
        'unreadable',
        'GetSecurityDescriptorDacl',
      );
    }
    return sddl;
  } finally {
    w.LocalFree(sd[0]);
  }
}

/**
 * The first SID (canonical `S-1-...`) that `dacl` grants anything to besides this user, SYSTEM and
 * Administrators, or undefined. Deny ACEs only take access away and are skipped; every other ACE
 * type (allow, object allow, callback allow, or one this code does not know) counts as a grant,
 * inherit-only ones too (they are what a new file gets).
 */
export function grantedToOthers(w: Win32, dacl: SddlDacl, userSid: string): string | undefined {
  const trusted = new Set([userSid, SYSTEM_SID, WELL_KNOWN_SIDS.administrators]);
  for (const ace of dacl.aces) {
    if (DENY_TYPES.has(ace.type)) continue;
    const sid = canonicalSid(w, ace.sid) ?? ace.sid;
    if (!trusted.has(sid)) return sid;
  }
  return undefined;
}

/** Refuse a NULL DACL, or one that grants anything to a SID other than the trusted ones. */
function checkDacl(w: Win32, path: string, kind: GuardedKind, userSid: string): void {
  const sddl = readFileDacl(w, path, kind);
  if (sddl === null)
    throw insecure(kind, path, `${path} has a NULL DACL: everyone has full access`, 'null-dacl');
  const dacl = parseSddlDacl(sddl);
  if (dacl === undefined) throw insecure(kind, path, `Cannot parse the DACL of ${path}`, 'unreadable');
  const other = grantedToOthers(w, dacl, userSid);
  if (other !== undefined) {
    throw insecure(
      kind,
      path,
      `${path} grants access to ${other}, not only to this user (${userSid}), SYSTEM and Administrators`,
      'others',
    );
  }
}

/**
 * The Windows outbox access guard: an owner-only protected DACL (this user and SYSTEM, inherited
 * by the directory's files) on what the outbox creates, read back and checked on every path it
 * opens. Pass it as `openOutbox({ dir, key, guard: windowsOwnerOnly })`. Outside Windows `secure`
 * rejects with SIPC_ERR_UNSUPPORTED_PLATFORM.
 */
export const windowsOwnerOnly: OutboxAccessGuard = Object.freeze({
  name: 'windows-dacl',
  async secure(path: string, kind: GuardedKind, created: boolean): Promise<void> {
    const w = win32();
    const userSid = currentUserSid();
    checkType(w, path, kind);
    if (created) applyOwnerOnly(w, path, kind, userSid);
    checkDacl(w, path, kind, userSid);
  },
});
