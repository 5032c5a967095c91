/**
 * The Win32 calls this package makes through koffi, and the few helpers built directly on them.
 * koffi is loaded lazily, on the first call of `win32()`, and only on Windows: importing this
 * package on Linux or macOS never touches the native addon, and any use there throws
 * `SIPC_ERR_UNSUPPORTED_PLATFORM`.
 *
 * Declarations follow the x64 ABI (`__stdcall` is ignored there); handles and pointers are
 * koffi external pointers, compared through `koffi.address`.
 */
import { closeSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createError } from '@secure-ipc/core';
import type * as Koffi from 'koffi';

/** An opaque Win32 HANDLE (or any pointer) as koffi returns it. */
export type Handle = unknown;

/** Win32 error codes this package reacts to. */
export const WinError = {
  FILE_NOT_FOUND: 2,
  ACCESS_DENIED: 5,
  INVALID_PARAMETER: 87,
  PIPE_BUSY: 231,
  NO_DATA: 232,
  PIPE_CONNECTED: 535,
  PIPE_LISTENING: 536,
  OPERATION_ABORTED: 995,
  IO_PENDING: 997,
  BAD_PATHNAME: 161,
  INVALID_NAME: 123,
  NO_TOKEN: 1008,
  CANNOT_IMPERSONATE: 1368,
} as const;

/** Access rights, flags and information classes used by the transport. */
export const Win = {
  GENERIC_READ: 0x80000000,
  GENERIC_WRITE: 0x40000000,
  READ_CONTROL: 0x00020000,
  SYNCHRONIZE: 0x00100000,
  FILE_READ_DATA: 0x1,
  FILE_WRITE_DATA: 0x2,
  FILE_READ_EA: 0x8,
  FILE_READ_ATTRIBUTES: 0x80,
  FILE_WRITE_ATTRIBUTES: 0x100,
  OPEN_EXISTING: 3,
  FILE_FLAG_OVERLAPPED: 0x40000000,
  FILE_FLAG_FIRST_PIPE_INSTANCE: 0x00080000,
  PIPE_ACCESS_DUPLEX: 0x3,
  PIPE_TYPE_BYTE: 0x0,
  PIPE_READMODE_BYTE: 0x0,
  PIPE_WAIT: 0x0,
  PIPE_REJECT_REMOTE_CLIENTS: 0x8,
  PIPE_UNLIMITED_INSTANCES: 255,
  SECURITY_SQOS_PRESENT: 0x00100000,
  SECURITY_IDENTIFICATION: 0x00010000,
  PROCESS_QUERY_LIMITED_INFORMATION: 0x1000,
  STILL_ACTIVE: 259,
  TOKEN_QUERY: 0x8,
  TOKEN_DUPLICATE: 0x2,
  SecurityIdentification: 1,
  TokenUser: 1,
  SE_KERNEL_OBJECT: 6,
  OWNER_SECURITY_INFORMATION: 0x1,
  GROUP_SECURITY_INFORMATION: 0x2,
  DACL_SECURITY_INFORMATION: 0x4,
  SDDL_REVISION_1: 1,
  INFINITE: 0xffffffff,
  WT_EXECUTEONLYONCE: 0x8,
  FilePipeLocalInformation: 24,
  SE_FILE_OBJECT: 1,
  FILE_ATTRIBUTE_DIRECTORY: 0x10,
  FILE_ATTRIBUTE_DEVICE: 0x40,
  FILE_ATTRIBUTE_REPARSE_POINT: 0x400,
  INVALID_FILE_ATTRIBUTES: 0xffffffff,
} as const;

/** What `win32()` returns: the loaded koffi module and every declared function. */
export interface Win32 {
  readonly koffi: typeof Koffi;
  readonly OVERLAPPED: Koffi.TypeObject;
  readonly SECURITY_ATTRIBUTES: Koffi.TypeObject;
  readonly WAIT_CALLBACK: Koffi.TypeObject;
  readonly GetLastError: () => number;
  readonly CloseHandle: (h: Handle) => boolean;
  readonly LocalFree: (p: Handle) => Handle;
  readonly GetCurrentProcess: () => Handle;
  readonly GetCurrentThread: () => Handle;
  readonly CreateNamedPipeW: (...a: unknown[]) => Handle;
  readonly CreateFileW: (...a: unknown[]) => Handle;
  readonly ConnectNamedPipe: (h: Handle, ov: Handle) => boolean;
  readonly DisconnectNamedPipe: (h: Handle) => boolean;
  readonly CancelIoEx: (h: Handle, ov: Handle) => boolean;
  readonly GetOverlappedResult: (h: Handle, ov: Handle, n: number[], wait: boolean) => boolean;
  readonly CreateEventW: (sa: null, manual: boolean, initial: boolean, name: null) => Handle;
  readonly RegisterWaitForSingleObject: (...a: unknown[]) => boolean;
  readonly UnregisterWait: (w: Handle) => boolean;
  readonly WaitForSingleObject: (h: Handle, ms: number) => number;
  readonly GetNamedPipeClientProcessId: (h: Handle, pid: number[]) => boolean;
  readonly GetNamedPipeServerProcessId: (h: Handle, pid: number[]) => boolean;
  readonly OpenProcess: (access: number, inherit: boolean, pid: number) => Handle;
  /** The process's full image path (UTF-16 into `buf`; `size` in: capacity, out: length, in characters). */
  readonly QueryFullProcessImageNameW: (p: Handle, flags: number, buf: Buffer, size: number[]) => boolean;
  /** Creation, exit, kernel and user times as FILETIMEs (8 bytes each, 100 ns since 1601). */
  readonly GetProcessTimes: (p: Handle, c: Buffer, e: Buffer, k: Buffer, u: Buffer) => boolean;
  /** STILL_ACTIVE (259) while the process runs. */
  readonly GetExitCodeProcess: (p: Handle, code: number[]) => boolean;
  readonly OpenProcessToken: (p: Handle, access: number, tok: Handle[]) => boolean;
  readonly OpenThreadToken: (t: Handle, access: number, openAsSelf: boolean, tok: Handle[]) => boolean;
  readonly ImpersonateNamedPipeClient: (h: Handle) => boolean;
  readonly RevertToSelf: () => boolean;
  readonly DuplicateToken: (tok: Handle, level: number, dup: Handle[]) => boolean;
  readonly CheckTokenMembership: (tok: Handle, sid: Handle, isMember: number[]) => boolean;
  readonly ConvertStringSidToSidW: (s: string, sid: Handle[]) => boolean;
  readonly GetTokenInformation: (...a: unknown[]) => boolean;
  readonly ConvertSidToStringSidW: (sid: Handle, out: (string | null)[]) => boolean;
  readonly ConvertStringSecurityDescriptorToSecurityDescriptorW: (...a: unknown[]) => boolean;
  readonly ConvertSecurityDescriptorToStringSecurityDescriptorW: (...a: unknown[]) => boolean;
  readonly GetSecurityInfo: (...a: unknown[]) => number;
  readonly GetNamedSecurityInfoW: (...a: unknown[]) => number;
  readonly SetFileSecurityW: (name: string, info: number, sd: Handle) => boolean;
  readonly GetSecurityDescriptorDacl: (...a: unknown[]) => boolean;
  readonly GetFileAttributesW: (name: string) => number;
  readonly NtQueryInformationFile: (...a: unknown[]) => number;
  /** libuv's `uv_open_osfhandle`, exported by node.exe: a CRT fd in Node's own CRT fd table. */
  readonly uvOpenOsfhandle: (h: Handle) => number;
}

let cached: Win32 | undefined;

/** Load koffi and declare the Win32 API; throws SIPC_ERR_UNSUPPORTED_PLATFORM outside Windows. */
export function win32(): Win32 {
  if (cached !== undefined) return cached;
  if (process.platform !== 'win32') {
    throw createError(
      'SIPC_ERR_UNSUPPORTED_PLATFORM',
      `Windows named pipes are not available on ${process.platform}`,
    );
  }
  let koffi: typeof Koffi;
  try {
    koffi = createRequire(import.meta.url)('koffi') as typeof Koffi;
  } catch (cause) {
    throw createError('SIPC_ERR_UNSUPPORTED_PLATFORM', 'koffi (FFI) could not be loaded', { cause });
  }
  const k32 = koffi.load('kernel32.dll');
  const adv = koffi.load('advapi32.dll');
  const ntdll = koffi.load('ntdll.dll');
  const OVERLAPPED = koffi.struct('SIPC_OVERLAPPED', {
    Internal: 'uintptr_t',
    InternalHigh: 'uintptr_t',
    Offset: 'uint32',
    OffsetHigh: 'uint32',
    hEvent: 'void *',
  });
  const SECURITY_ATTRIBUTES = koffi.struct('SIPC_SECURITY_ATTRIBUTES', {
    nLength: 'uint32',
    lpSecurityDescriptor: 'void *',
    bInheritHandle: 'int',
  });
  const WAIT_CALLBACK = koffi.proto('void __stdcall SIPC_WAITORTIMERCALLBACK(void *ctx, bool timedOut)');

  // Node hides the HANDLE of its pipes and cannot adopt a raw HANDLE, but node.exe exports libuv
  // (native addons link against it) and libuv's uv_open_osfhandle turns a HANDLE into a CRT fd of
  // Node's own CRT; `new net.Socket({ fd })` then reaches uv_pipe_open, which adopts the handle.
  // An fd from ucrtbase's _open_osfhandle would live in another CRT's table and not work.
  let uvOpenOsfhandle: (h: Handle) => number;
  try {
    const host = koffi.load(process.execPath);
    uvOpenOsfhandle = host.func('int uv_open_osfhandle(void *h)') as (h: Handle) => number;
  } catch (cause) {
    throw createError(
      'SIPC_ERR_UNSUPPORTED_PLATFORM',
      'This Node.js host does not export libuv (uv_open_osfhandle), which transport-win needs',
      { cause },
    );
  }

  const f = <T>(lib: Koffi.LibraryHandle, decl: string): T => lib.func(decl) as T;
  cached = {
    koffi,
    OVERLAPPED,
    SECURITY_ATTRIBUTES,
    WAIT_CALLBACK,
    GetLastError: f(k32, 'uint32 __stdcall GetLastError()'),
    CloseHandle: f(k32, 'bool __stdcall CloseHandle(void *h)'),
    LocalFree: f(k32, 'void * __stdcall LocalFree(void *p)'),
    GetCurrentProcess: f(k32, 'void * __stdcall GetCurrentProcess()'),
    GetCurrentThread: f(k32, 'void * __stdcall GetCurrentThread()'),
    CreateNamedPipeW: f(
      k32,
      'void * __stdcall CreateNamedPipeW(str16 name, uint32 openMode, uint32 pipeMode, uint32 maxInst, uint32 outSz, uint32 inSz, uint32 timeout, SIPC_SECURITY_ATTRIBUTES *sa)',
    ),
    CreateFileW: f(
      k32,
      'void * __stdcall CreateFileW(str16 name, uint32 access, uint32 share, void *sa, uint32 disp, uint32 flags, void *tmpl)',
    ),
    ConnectNamedPipe: f(k32, 'bool __stdcall ConnectNamedPipe(void *h, void *ov)'),
    DisconnectNamedPipe: f(k32, 'bool __stdcall DisconnectNamedPipe(void *h)'),
    CancelIoEx: f(k32, 'bool __stdcall CancelIoEx(void *h, void *ov)'),
    GetOverlappedResult: f(
      k32,
      'bool __stdcall GetOverlappedResult(void *h, void *ov, _Out_ uint32 *n, bool wait)',
    ),
    CreateEventW: f(k32, 'void * __stdcall CreateEventW(void *sa, bool manual, bool initial, void *name)'),
    RegisterWaitForSingleObject: f(
      k32,
      'bool __stdcall RegisterWaitForSingleObject(_Out_ void **wait, void *h, SIPC_WAITORTIMERCALLBACK *cb, void *ctx, uint32 ms, uint32 flags)',
    ),
    UnregisterWait: f(k32, 'bool __stdcall UnregisterWait(void *w)'),
    WaitForSingleObject: f(k32, 'uint32 __stdcall WaitForSingleObject(void *h, uint32 ms)'),
    GetNamedPipeClientProcessId: f(
      k32,
      'bool __stdcall GetNamedPipeClientProcessId(void *h, _Out_ uint32 *pid)',
    ),
    GetNamedPipeServerProcessId: f(
      k32,
      'bool __stdcall GetNamedPipeServerProcessId(void *h, _Out_ uint32 *pid)',
    ),
    OpenProcess: f(k32, 'void * __stdcall OpenProcess(uint32 access, bool inherit, uint32 pid)'),
    QueryFullProcessImageNameW: f(
      k32,
      'bool __stdcall QueryFullProcessImageNameW(void *p, uint32 flags, _Out_ uint8_t *buf, _Inout_ uint32 *size)',
    ),
    GetProcessTimes: f(
      k32,
      'bool __stdcall GetProcessTimes(void *p, _Out_ uint8_t *c, _Out_ uint8_t *e, _Out_ uint8_t *k, _Out_ uint8_t *u)',
    ),
    GetExitCodeProcess: f(k32, 'bool __stdcall GetExitCodeProcess(void *p, _Out_ uint32 *code)'),
    OpenProcessToken: f(adv, 'bool __stdcall OpenProcessToken(void *p, uint32 access, _Out_ void **tok)'),
    OpenThreadToken: f(
      adv,
      'bool __stdcall OpenThreadToken(void *t, uint32 access, bool openAsSelf, _Out_ void **tok)',
    ),
    ImpersonateNamedPipeClient: f(adv, 'bool __stdcall ImpersonateNamedPipeClient(void *h)'),
    RevertToSelf: f(adv, 'bool __stdcall RevertToSelf()'),
    DuplicateToken: f(adv, 'bool __stdcall DuplicateToken(void *tok, int level, _Out_ void **dup)'),
    CheckTokenMembership: f(
      adv,
      'bool __stdcall CheckTokenMembership(void *tok, void *sid, _Out_ int *isMember)',
    ),
    ConvertStringSidToSidW: f(adv, 'bool __stdcall ConvertStringSidToSidW(str16 s, _Out_ void **sid)'),
    GetTokenInformation: f(
      adv,
      'bool __stdcall GetTokenInformation(void *tok, int cls, _Out_ uint8_t *buf, uint32 len, _Out_ uint32 *retLen)',
    ),
    ConvertSidToStringSidW: f(adv, 'bool __stdcall ConvertSidToStringSidW(void *sid, _Out_ str16 *out)'),
    ConvertStringSecurityDescriptorToSecurityDescriptorW: f(
      adv,
      'bool __stdcall ConvertStringSecurityDescriptorToSecurityDescriptorW(str16 s, uint32 rev, _Out_ void **sd, _Out_ uint32 *len)',
    ),
    ConvertSecurityDescriptorToStringSecurityDescriptorW: f(
      adv,
      'bool __stdcall ConvertSecurityDescriptorToStringSecurityDescriptorW(void *sd, uint32 rev, uint32 info, _Out_ str16 *out, _Out_ uint32 *len)',
    ),
    GetSecurityInfo: f(
      adv,
      'uint32 __stdcall GetSecurityInfo(void *h, int objType, uint32 info, _Out_ void **owner, _Out_ void **group, _Out_ void **dacl, _Out_ void **sacl, _Out_ void **sd)',
    ),
    GetNamedSecurityInfoW: f(
      adv,
      'uint32 __stdcall GetNamedSecurityInfoW(str16 name, int objType, uint32 info, _Out_ void **owner, _Out_ void **group, _Out_ void **dacl, _Out_ void **sacl, _Out_ void **sd)',
    ),
    SetFileSecurityW: f(adv, 'bool __stdcall SetFileSecurityW(str16 name, uint32 info, void *sd)'),
    GetSecurityDescriptorDacl: f(
      adv,
      'bool __stdcall GetSecurityDescriptorDacl(void *sd, _Out_ int *present, _Out_ void **dacl, _Out_ int *defaulted)',
    ),
    GetFileAttributesW: f(k32, 'uint32 __stdcall GetFileAttributesW(str16 name)'),
    NtQueryInformationFile: f(
      ntdll,
      'int32 __stdcall NtQueryInformationFile(void *h, _Out_ uint8_t *iosb, _Out_ uint8_t *buf, uint32 len, int cls)',
    ),
    uvOpenOsfhandle,
  };
  return cached;
}

/** True for a NULL or INVALID_HANDLE_VALUE handle. */
export function isInvalidHandle(w: Win32, h: Handle): boolean {
  if (h === null || h === undefined) return true;
  const a = BigInt.asUintN(64, BigInt(w.koffi.address(h)));
  return a === 0n || a === 0xffffffffffffffffn;
}

/** Node-style codes for the Win32 errors a caller may want to match in a typed error's cause. */
const ERRNO_CODES: Readonly<Record<number, string>> = {
  [WinError.FILE_NOT_FOUND]: 'ENOENT',
  [WinError.ACCESS_DENIED]: 'EACCES',
  [WinError.PIPE_BUSY]: 'EBUSY',
  [WinError.NO_DATA]: 'EPIPE',
};

/** A Win32 error as an Error (`errno` = the Win32 number, `code` as Node would name it, `syscall`). */
export function win32Error(
  call: string,
  errno: number,
): Error & { errno: number; code: string; syscall: string } {
  const code = ERRNO_CODES[errno] ?? `WIN32_${errno}`;
  return Object.assign(new Error(`${call} failed: ${code} (Win32 error ${errno})`), {
    errno,
    code,
    syscall: call,
  });
}

/** String SID of the user of a token (TokenUser), or undefined if it cannot be read. */
export function tokenUserSid(w: Win32, token: Handle): string | undefined {
  const buf = Buffer.alloc(256);
  const len = [0];
  if (!w.GetTokenInformation(token, Win.TokenUser, buf, buf.length, len)) return undefined;
  // TOKEN_USER = { SID_AND_ATTRIBUTES User = { PSID Sid; DWORD Attributes } }: the first pointer.
  const psid = w.koffi.decode(buf, 'void *');
  const out: (string | null)[] = [null];
  if (!w.ConvertSidToStringSidW(psid, out) || out[0] === null) return undefined;
  return out[0];
}

/**
 * User SID of a running process, or undefined if it cannot be read (another user's or an
 * elevated process may refuse PROCESS_QUERY_LIMITED_INFORMATION; callers fail closed on that).
 */
export function processUserSid(w: Win32, pid: number): string | undefined {
  const proc = w.OpenProcess(Win.PROCESS_QUERY_LIMITED_INFORMATION, false, pid);
  if (isInvalidHandle(w, proc)) return undefined;
  try {
    return handleTokenSid(w, proc);
  } finally {
    w.CloseHandle(proc);
  }
}

function handleTokenSid(w: Win32, proc: Handle): string | undefined {
  const tok: Handle[] = [null];
  if (!w.OpenProcessToken(proc, Win.TOKEN_QUERY, tok)) return undefined;
  try {
    return tokenUserSid(w, tok[0]);
  } finally {
    w.CloseHandle(tok[0]);
  }
}

let ownSid: string | undefined;

/** SID of the user this process runs as (cached: a process's token user never changes). */
export function currentUserSid(): string {
  if (ownSid !== undefined) return ownSid;
  const w = win32();
  const sid = handleTokenSid(w, w.GetCurrentProcess());
  if (sid === undefined) {
    throw createError('SIPC_ERR_PIPE_SECURITY', 'Cannot read the current user SID', {
      cause: win32Error('OpenProcessToken/GetTokenInformation', w.GetLastError()),
    });
  }
  ownSid = sid;
  return sid;
}

/**
 * Hand a connected, overlapped pipe HANDLE to libuv and return its CRT fd, or throw.
 * From here on libuv owns the handle: closing the socket (or `closeFd`) closes it.
 */
export function adoptHandle(w: Win32, h: Handle): number {
  const fd = w.uvOpenOsfhandle(h);
  if (fd < 0) throw win32Error('uv_open_osfhandle', -fd);
  return fd;
}

/** Close an fd made by `adoptHandle` that never reached a socket (closes the HANDLE too). */
export function closeFd(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // Already closed: nothing left to release.
  }
}
