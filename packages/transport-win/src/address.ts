/**
 * Parsing of the addresses transport-win handles and their mapping to pipe names. Pure functions
 * over strings: no I/O and no FFI, so they are testable on every OS.
 */
import { createError } from '@secure-ipc/core';
import { invalidAddress, isLocalAppId, localAppId } from '@secure-ipc/core/transport';
import { isSidString } from './sids.js';

/** Longest full pipe name Windows accepts (`\\.\pipe\` included), in UTF-16 code units. */
export const MAX_PIPE_PATH_LENGTH = 256;

/** The prefix of every local pipe name. */
export const PIPE_PREFIX = '\\\\.\\pipe\\';

/** The prefix of system endpoints: `local://system/APP`, one well-known pipe for every user. */
export const SYSTEM_PREFIX = 'local://system/';

/** A parsed address: the full pipe path and whether it came from `local://` or `local://system/`. */
export interface PipeAddress {
  /** The full pipe path, e.g. `\\.\pipe\my-service`. */
  readonly path: string;
  /** True for `local://APP-ID` (the name embeds the user's SID). */
  readonly local: boolean;
  /** True for `local://system/APP-ID` (a service's endpoint; its client expects a SYSTEM server). */
  readonly system?: boolean;
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
 * The pipe name of `local://system/APP-ID`: `secure-ipc-system-<APP-ID>`. It holds no SID, so every
 * user finds the service at the same name; it cannot collide with a per-user name (those continue
 * with `S-1-`). The name is not a secret: a client checks the server's process owner (SYSTEM by
 * default), the server creates it with FILE_FLAG_FIRST_PIPE_INSTANCE and the sole-instance check.
 */
export function systemPipeName(appId: string): string {
  return `secure-ipc-system-${appId}`;
}

/**
 * Parse `pipe://NAME`, `local://system/APP-ID` or `local://APP-ID` into a pipe path; `sid` is the current user's SID, needed
 * only for `local://` (a function so it is read only then). Throws typed errors.
 */
export function parsePipeAddress(address: string, sid: () => string): PipeAddress {
  if (typeof address !== 'string') throw invalidAddress(String(address), 'not a string');
  if (address.startsWith('pipe://')) {
    const name = address.slice('pipe://'.length);
    checkPipeName(address, name);
    return { path: PIPE_PREFIX + name, local: false };
  }
  if (address.startsWith(SYSTEM_PREFIX)) {
    const appId = address.slice(SYSTEM_PREFIX.length);
    if (!isLocalAppId(appId))
      throw invalidAddress(
        address,
        'expected local://system/APP-ID, the id 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit',
      );
    const name = systemPipeName(appId);
    checkPipeName(address, name);
    return { path: PIPE_PREFIX + name, local: false, system: true };
  }
  if (address.startsWith('local://')) {
    const appId = localAppId(address); // the rule shared with transport-unix (core)
    const userSid = sid();
    if (!isSidString(userSid))
      throw invalidAddress(address, `the user SID ${JSON.stringify(userSid)} is malformed`);
    const name = localPipeName(appId, userSid);
    checkPipeName(address, name);
    return { path: PIPE_PREFIX + name, local: true };
  }
  throw invalidAddress(
    address,
    'transport-win handles pipe://NAME, local://APP-ID and local://system/APP-ID',
  );
}
