/**
 * How a server pipe instance is created: an explicit owner-only DACL from the first instance on,
 * FILE_FLAG_FIRST_PIPE_INSTANCE, PIPE_REJECT_REMOTE_CLIENTS, overlapped I/O, plus a squatter check
 * that does not rely on the first-instance flag alone. Node's `net` cannot do any of this: libuv
 * creates its instances with a NULL security descriptor (the default pipe DACL gives Everyone and
 * Anonymous read access) and without PIPE_REJECT_REMOTE_CLIENTS (nodejs/node#47086), which is why
 * this package creates the instances itself and only hands connected handles to Node.
 */
import { createError } from '@secure-ipc/core';
import { isSidString, resolveSids, SYSTEM_SID } from './sids.js';
import { type Handle, isInvalidHandle, Win, type Win32, WinError, win32Error } from './win32-ffi.js';

/**
 * Access a client needs and nothing more: FILE_GENERIC_READ | FILE_WRITE_DATA | FILE_WRITE_ATTRIBUTES
 * (0x12018b). Deliberately without FILE_APPEND_DATA, which on a pipe is FILE_CREATE_PIPE_INSTANCE:
 * a client granted GENERIC_WRITE could add its own server instances under our name.
 */
export const CLIENT_ACCESS =
  Win.READ_CONTROL |
  Win.SYNCHRONIZE |
  Win.FILE_READ_DATA |
  Win.FILE_READ_EA |
  Win.FILE_READ_ATTRIBUTES |
  Win.FILE_WRITE_DATA |
  Win.FILE_WRITE_ATTRIBUTES;

/** Who the pipe's DACL lets in besides the owner and SYSTEM. */
export interface DaclOptions {
  /** Other SIDs (or well-known names, see `allowedSids`) that may connect as clients (client-only rights). */
  readonly extraClientSids?: readonly string[] | undefined;
  /** Let any authenticated local user connect as a client (client-only rights). */
  readonly anyAuthenticatedUser?: boolean | undefined;
}

/**
 * The SDDL of a server pipe: protected (no inherited ACEs), remote (NETWORK logon) users denied
 * first as a second layer under PIPE_REJECT_REMOTE_CLIENTS, full access for the owner's SID and
 * SYSTEM, and client-only rights for any extra SIDs (never WRITE_DAC, WRITE_OWNER or
 * FILE_CREATE_PIPE_INSTANCE). No Everyone, no Anonymous. Every SID is validated first
 * (SIPC_ERR_INVALID_ARGUMENT), so no string can add an ACE of its own to the SDDL.
 */
export function pipeSddl(ownerSid: string, options: DaclOptions = {}): string {
  if (!isSidString(ownerSid))
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'ownerSid must be a SID (S-1-...)');
  const extra = resolveSids(options.extraClientSids ?? [], 'extraClientSids');
  const client = `0x${CLIENT_ACCESS.toString(16)}`;
  let sddl = `D:P(D;;GA;;;NU)(A;;GA;;;${ownerSid})(A;;GA;;;SY)`;
  const granted = new Set([ownerSid, SYSTEM_SID]); // both already have full access
  for (const sid of extra) {
    if (!granted.has(sid)) sddl += `(A;;${client};;;${sid})`;
    granted.add(sid);
  }
  if (options.anyAuthenticatedUser === true) sddl += `(A;;${client};;;AU)`;
  return sddl;
}

/** The open mode of a server instance; the first one also carries FILE_FLAG_FIRST_PIPE_INSTANCE. */
export function serverOpenMode(first: boolean): number {
  return Win.PIPE_ACCESS_DUPLEX | Win.FILE_FLAG_OVERLAPPED | (first ? Win.FILE_FLAG_FIRST_PIPE_INSTANCE : 0);
}

/** The pipe mode of every server instance: a byte stream that refuses remote (SMB) clients. */
export const SERVER_PIPE_MODE =
  Win.PIPE_TYPE_BYTE | Win.PIPE_READMODE_BYTE | Win.PIPE_WAIT | Win.PIPE_REJECT_REMOTE_CLIENTS;

/** Buffer sizes (advisory to the pipe file system); libuv uses the same 64 KiB. */
const PIPE_BUFFER = 65536;

/** A binary security descriptor from SDDL, kept alive (and freed) by its owner. */
export class SecurityDescriptor {
  /** The SDDL it was made from. */
  readonly sddl: string;
  #sd: Handle;
  #w: Win32;

  /** Convert `sddl`; throws SIPC_ERR_PIPE_SECURITY if Windows rejects it. */
  constructor(w: Win32, sddl: string) {
    const out: Handle[] = [null];
    if (!w.ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, Win.SDDL_REVISION_1, out, [0])) {
      throw createError('SIPC_ERR_PIPE_SECURITY', 'Cannot build the pipe security descriptor', {
        cause: win32Error('ConvertStringSecurityDescriptorToSecurityDescriptorW', w.GetLastError()),
        details: { sddl },
      });
    }
    this.#w = w;
    this.#sd = out[0];
    this.sddl = sddl;
  }

  /** SECURITY_ATTRIBUTES pointing at this descriptor (not inheritable). */
  attributes(): Record<string, unknown> {
    return {
      nLength: this.#w.koffi.sizeof(this.#w.SECURITY_ATTRIBUTES),
      lpSecurityDescriptor: this.#sd,
      bInheritHandle: 0,
    };
  }

  /** Release the descriptor (LocalFree). */
  free(): void {
    if (this.#sd !== null) this.#w.LocalFree(this.#sd);
    this.#sd = null;
  }
}

/**
 * Create one overlapped server instance of `path` with the descriptor `sd`. On the first instance
 * a failure with ERROR_ACCESS_DENIED / ERROR_PIPE_BUSY means another server owns the name:
 * SIPC_ERR_ADDRESS_IN_USE (a squatter that got there first makes listen fail loudly).
 */
export function createServerInstance(w: Win32, path: string, sd: SecurityDescriptor, first: boolean): Handle {
  const h = w.CreateNamedPipeW(
    path,
    serverOpenMode(first),
    SERVER_PIPE_MODE,
    Win.PIPE_UNLIMITED_INSTANCES,
    PIPE_BUFFER,
    PIPE_BUFFER,
    0,
    sd.attributes(),
  );
  if (!isInvalidHandle(w, h)) return h;
  const errno = w.GetLastError();
  const cause = win32Error('CreateNamedPipeW', errno);
  if (first && (errno === WinError.ACCESS_DENIED || errno === WinError.PIPE_BUSY)) {
    throw createError('SIPC_ERR_ADDRESS_IN_USE', `Another server already owns the pipe ${path}`, { cause });
  }
  if (errno === WinError.INVALID_NAME || errno === WinError.BAD_PATHNAME) {
    throw createError('SIPC_ERR_INVALID_ADDRESS', `Windows rejects the pipe name ${path}`, { cause });
  }
  throw createError('SIPC_ERR_LISTEN_FAILED', `Cannot create the pipe ${path}`, { cause });
}

/** FILE_PIPE_LOCAL_INFORMATION of a pipe handle (NtQueryInformationFile), or undefined. */
export interface PipeLocalInformation {
  /** 0 = byte stream, 1 = message type. */
  readonly namedPipeType: number;
  /** Instances of this pipe name that exist right now, in any process. */
  readonly currentInstances: number;
  /** 1 = disconnected, 2 = listening, 3 = connected, 4 = closing. */
  readonly namedPipeState: number;
  /** 1 = server end, 0 = client end. */
  readonly namedPipeEnd: number;
}

/** Query FILE_PIPE_LOCAL_INFORMATION; undefined if the call fails. */
export function pipeLocalInformation(w: Win32, h: Handle): PipeLocalInformation | undefined {
  const iosb = Buffer.alloc(16);
  const buf = Buffer.alloc(40);
  const status = w.NtQueryInformationFile(h, iosb, buf, buf.length, Win.FilePipeLocalInformation);
  if (status !== 0) return undefined;
  return {
    namedPipeType: buf.readUInt32LE(0),
    currentInstances: buf.readUInt32LE(12),
    namedPipeState: buf.readUInt32LE(32),
    namedPipeEnd: buf.readUInt32LE(36),
  };
}

/**
 * After creating our first instance, make sure it is the only one: a squatter's instances show up in
 * CurrentInstances whatever process made them. On Windows FILE_FLAG_FIRST_PIPE_INSTANCE already
 * refuses the creation; this second check also holds where that flag is not enforced (Wine 8
 * ignores it) and turns a silent shared name into SIPC_ERR_ADDRESS_IN_USE.
 */
export function assertSoleInstance(w: Win32, h: Handle, path: string): void {
  const info = pipeLocalInformation(w, h);
  if (info === undefined) {
    throw createError('SIPC_ERR_LISTEN_FAILED', `Cannot query the pipe ${path}`, {
      cause: win32Error('NtQueryInformationFile', w.GetLastError()),
    });
  }
  if (info.currentInstances !== 1) {
    throw createError(
      'SIPC_ERR_ADDRESS_IN_USE',
      `Another server already has ${info.currentInstances - 1} instance(s) of the pipe ${path}`,
      { details: { instances: info.currentInstances } },
    );
  }
}

/** Owner, group and DACL of a handle's object as SDDL (GetSecurityInfo), for read-back checks. */
export function readSecurityDescriptor(w: Win32, h: Handle): string {
  const info =
    Win.OWNER_SECURITY_INFORMATION | Win.GROUP_SECURITY_INFORMATION | Win.DACL_SECURITY_INFORMATION;
  const sd: Handle[] = [null];
  const rc = w.GetSecurityInfo(h, Win.SE_KERNEL_OBJECT, info, [null], [null], [null], [null], sd);
  if (rc !== 0) {
    throw createError('SIPC_ERR_PIPE_SECURITY', 'GetSecurityInfo failed', {
      cause: win32Error('GetSecurityInfo', rc),
    });
  }
  try {
    const out: (string | null)[] = [null];
    if (!w.ConvertSecurityDescriptorToStringSecurityDescriptorW(sd[0], Win.SDDL_REVISION_1, info, out, [0])) {
      throw createError('SIPC_ERR_PIPE_SECURITY', 'Cannot convert the security descriptor', {
        cause: win32Error('ConvertSecurityDescriptorToStringSecurityDescriptorW', w.GetLastError()),
      });
    }
    return out[0] ?? '';
  } finally {
    w.LocalFree(sd[0]);
  }
}
