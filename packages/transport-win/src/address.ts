/**
 * Parsing of the addresses transport-win handles and their mapping to pipe names. Pure functions
 * over strings: no I/O and no FFI, so they are testable on every OS.
 */
import { createError } from '@secure-ipc/core';
import { invalidAddress, localAppId } from '@secure-ipc/core/transport';

/** Longest full pipe name Windows accepts (`\\.\pipe\` included), in UTF-16 code units. */
export const MAX_PIPE_PATH_LENGTH = 256;

/** The prefix of every local pipe name. */
export const PIPE_PREFIX = '\\\\.\\pipe\\';

/** A user SID in string form (`S-1-5-21-...`). */
const SID = /^S-1(-\d+)+$/;

/** A parsed address: the full pipe path and whether it came from `local://`. */
export interface PipeAddress {
  /** The full pipe path, e.g. `\\.\pipe\my-service`. */
  readonly path: string;
  /** True for `local://APP-ID` (the name embeds the user's SID). */
  readonly local: boolean;
}

/**
 * Check a bare pipe name (the part after `\\.\pipe\`). Windows allows any character but the
 * backslash; control characters are refused too (they are never intended and make names unreadable
 * in logs). The limit is the documented 256 characters for the whole `\\.\pipe\NAME`.
 */
export function checkPipeName(address: string, name: string): void {
  if (name.length === 0) throw invalidAddress(address, 'the pipe name is empty');
  if (name.includes('\\')) throw invalidAddress(address, 'a pipe name cannot contain a backslash');
  // biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
  if (/[\u0000-\u001f\u007f]/.test(name))
    throw invalidAddress(address, 'the pipe name contains a control character');
  const full = PIPE_PREFIX.length + name.length;
  if (full > MAX_PIPE_PATH_LENGTH) {
    throw createError(
      'SIPC_ERR_PATH_TOO_LONG',
      `The pipe path is ${full} characters; Windows allows ${MAX_PIPE_PATH_LENGTH} (\\\\.\\pipe\\ included)`,
      { details: { length: full, limit: MAX_PIPE_PATH_LENGTH } },
    );
  }
}

/**
 * The pipe name `local://APP-ID` stands for for the user `sid`: `secure-ipc-<SID>-<APP-ID>`, so
 * two users never share an endpoint (the name is not a secret: the DACL, the first-instance flag
 * and the server-owner check are what stop a squatter).
 */
export function localPipeName(appId: string, sid: string): string {
  return `secure-ipc-${sid}-${appId}`;
}

/**
 * Parse `pipe://NAME` or `local://APP-ID` into a pipe path; `sid` is the current user's SID, needed
 * only for `local://` (a function so it is read only then). Throws typed errors.
 */
export function parsePipeAddress(address: string, sid: () => string): PipeAddress {
  if (typeof address !== 'string') throw invalidAddress(String(address), 'not a string');
  if (address.startsWith('pipe://')) {
    const name = address.slice('pipe://'.length);
    checkPipeName(address, name);
    return { path: PIPE_PREFIX + name, local: false };
  }
  if (address.startsWith('local://')) {
    const appId = localAppId(address); // the rule shared with transport-unix (core)
    const userSid = sid();
    if (!SID.test(userSid))
      throw invalidAddress(address, `the user SID ${JSON.stringify(userSid)} is malformed`);
    const name = localPipeName(appId, userSid);
    checkPipeName(address, name);
    return { path: PIPE_PREFIX + name, local: true };
  }
  throw invalidAddress(address, 'transport-win handles pipe://NAME and local://APP-ID');
}

/** True if `sid` looks like a string SID (`S-1-...`); used to validate policy options. */
export function isSidString(sid: unknown): sid is string {
  return typeof sid === 'string' && SID.test(sid);
}
