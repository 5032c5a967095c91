/**
 * The access token that says who a pipe peer is, and its group memberships: what lets a policy
 * name a group (interactive users, Administrators, a domain group) and not only user SIDs.
 *
 *   server end: ImpersonateNamedPipeClient -> OpenThreadToken(OpenAsSelf) -> RevertToSelf
 *               (the token the client opened the pipe with, at the identification level its SQOS
 *               allows), else the client process's token;
 *   client end: the server process's token (OpenProcessToken + DuplicateToken to identification);
 *   then CheckTokenMembership for each SID of the policy, which applies Windows' own rule (an
 *   enabled group, not deny-only; with a restricted token, also among the restricting SIDs).
 *
 * Every failure is returned, never guessed around: the caller treats "membership unknown" as
 * "not a member" (fail closed).
 */
import { createError } from '@secure-ipc/core';
import { type Handle, isInvalidHandle, Win, type Win32, win32Error } from './win32-ffi.js';

/** A token handle (close it with CloseHandle), or why none could be opened. */
export type TokenResult = { readonly token: Handle } | { readonly failure: Error };

/** A failed step as a TokenResult, with the Win32 error read at once. */
function failed(w: Win32, call: string): TokenResult {
  return { failure: win32Error(call, w.GetLastError()) };
}

/**
 * The pipe client's token, read by impersonating it on this thread for the duration of one
 * OpenThreadToken call. OpenAsSelf: the token handle is opened with this process's identity, as an
 * identification-level impersonation token allows nothing else. RevertToSelf always runs; if it
 * ever failed this thread would go on acting as the client, so that is thrown rather than
 * returned (fail closed: nothing may continue on this thread; Windows documents no such failure).
 */
export function impersonationToken(w: Win32, pipe: Handle): TokenResult {
  if (!w.ImpersonateNamedPipeClient(pipe)) return failed(w, 'ImpersonateNamedPipeClient');
  // Nothing between impersonating and reverting can throw: two FFI calls with fixed arguments.
  const tok: Handle[] = [null];
  const opened = w.OpenThreadToken(w.GetCurrentThread(), Win.TOKEN_QUERY, true, tok);
  const openError = opened ? 0 : w.GetLastError();
  if (!w.RevertToSelf()) {
    const cause = win32Error('RevertToSelf', w.GetLastError());
    if (opened) w.CloseHandle(tok[0]);
    throw createError('SIPC_ERR_PIPE_SECURITY', 'RevertToSelf failed after reading a pipe client token', {
      cause,
    });
  }
  return opened ? { token: tok[0] } : { failure: win32Error('OpenThreadToken', openError) };
}

/**
 * An identification-level copy of the primary token of process `pid` (CheckTokenMembership takes
 * only impersonation tokens). Needs PROCESS_QUERY_LIMITED_INFORMATION on the process and
 * TOKEN_QUERY | TOKEN_DUPLICATE on its token, which Windows may refuse for another account's
 * process: that is returned as a failure.
 */
export function processIdentityToken(w: Win32, pid: number): TokenResult {
  const proc = w.OpenProcess(Win.PROCESS_QUERY_LIMITED_INFORMATION, false, pid);
  if (isInvalidHandle(w, proc)) return failed(w, 'OpenProcess');
  try {
    const primary: Handle[] = [null];
    if (!w.OpenProcessToken(proc, Win.TOKEN_QUERY | Win.TOKEN_DUPLICATE, primary))
      return failed(w, 'OpenProcessToken');
    try {
      const dup: Handle[] = [null];
      if (!w.DuplicateToken(primary[0], Win.SecurityIdentification, dup)) return failed(w, 'DuplicateToken');
      return { token: dup[0] };
    } finally {
      w.CloseHandle(primary[0]);
    }
  } finally {
    w.CloseHandle(proc);
  }
}

/** Which of `sids` the token is a member of (or is the user of), or why that could not be read. */
export function tokenMemberships(
  w: Win32,
  token: Handle,
  sids: readonly string[],
): { readonly memberOf: readonly string[] } | { readonly failure: Error } {
  const memberOf: string[] = [];
  for (const sid of sids) {
    const psid: Handle[] = [null];
    if (!w.ConvertStringSidToSidW(sid, psid))
      return { failure: win32Error('ConvertStringSidToSidW', w.GetLastError()) };
    try {
      const is = [0];
      if (!w.CheckTokenMembership(token, psid[0], is))
        return { failure: win32Error('CheckTokenMembership', w.GetLastError()) };
      if (is[0] !== 0) memberOf.push(sid);
    } finally {
      w.LocalFree(psid[0]);
    }
  }
  return { memberOf };
}
