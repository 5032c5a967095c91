/**
 * Parsing of the addresses transport-unix handles, and the resolution of `local://APP-ID` to the
 * per-user socket path. Functions over strings and the environment; the one I/O is an `lstat` of
 * `$XDG_RUNTIME_DIR`, which is used only when it is private to this user (see `localDirectory`).
 */
import { lstatSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createError } from '@secure-ipc/core';
import { invalidAddress, isLocalAppId, localAppId } from '@secure-ipc/core/transport';
import { activationName } from './activation.js';

/** A parsed address: a socket file path, or a Linux abstract socket name. */
export type UnixAddress =
  /** A socket file: `unix://`, `local://APP` (`local`) or `local://system/APP` (`system`). */
  | { readonly kind: 'path'; readonly path: string; readonly local: boolean; readonly system?: boolean }
  | { readonly kind: 'abstract'; readonly name: string }
  /** `systemd:NAME`: a listening socket the service manager handed over (activation.ts). */
  | { readonly kind: 'inherited'; readonly name: string };

/** Where `local://` sockets live; see `localDirectory` and `systemDirectory`. */
export interface LocalDirectoryOptions {
  /** Use this directory instead of the per-user default (it is still created and verified). */
  runtimeDirectory?: string | undefined;
  /**
   * Where `local://system/APP` sockets live instead of `/run/secure-ipc-system` (Linux) or
   * `/var/run/secure-ipc-system` (macOS); it is still created (0711) or verified as root's, and
   * its parent verified as root's. For tests and unusual layouts: both sides must agree.
   */
  systemDirectory?: string | undefined;
}

/** The prefix of system endpoints: `local://system/APP`, served by root for every user. */
export const SYSTEM_PREFIX = 'local://system/';

/**
 * The directory of `local://system/APP` sockets unless configured: `/run/secure-ipc-system` on
 * Linux, `/var/run/secure-ipc-system` on macOS. A sibling of root's own `local://` directory, not
 * inside it: that one stays closed to every other user.
 */
export function systemDirectory(options: LocalDirectoryOptions = {}): string {
  return options.systemDirectory ?? `${rootLocalDirectory()}-system`;
}

/**
 * The longest socket path the kernel stores without truncating: `sizeof(sun_path)` minus the NUL,
 * 108 - 1 on Linux, 104 - 1 on macOS and the BSDs. Node would silently truncate a longer path.
 */
export function socketPathLimit(platform: NodeJS.Platform = process.platform): number {
  return platform === 'linux' ? 107 : 103;
}

/** Throw `SIPC_ERR_PATH_TOO_LONG` naming the limit when `p` does not fit in `sun_path`. */
export function checkPathLength(p: string, what = 'socket path'): void {
  const limit = socketPathLimit();
  const bytes = Buffer.byteLength(p);
  if (bytes > limit) {
    throw createError(
      'SIPC_ERR_PATH_TOO_LONG',
      `The ${what} is ${bytes} bytes; the limit on ${process.platform} is ${limit} bytes: ${p}`,
      { details: { bytes, limit } },
    );
  }
}

/**
 * Where root's `local://` sockets live: a directory under `/run` (`/var/run` on macOS), which only
 * root can write, so no other user can create it first. Never a shared temporary directory.
 */
export function rootLocalDirectory(platform: NodeJS.Platform = process.platform): string {
  return platform === 'linux' ? '/run/secure-ipc' : '/var/run/secure-ipc';
}

/** Why `dir` (the value of `$XDG_RUNTIME_DIR`) must not hold our sockets, or undefined if it may. */
export function runtimeDirectoryProblem(dir: string, euid: number): string | undefined {
  if (!path.isAbsolute(dir)) return 'it is not an absolute path';
  let st: ReturnType<typeof lstatSync>;
  try {
    st = lstatSync(dir);
  } catch (err) {
    return `it cannot be inspected (${(err as NodeJS.ErrnoException).code ?? String(err)})`;
  }
  if (st.isSymbolicLink()) return 'it is a symbolic link';
  if (!st.isDirectory()) return 'it is not a directory';
  // The XDG Base Directory spec: owned by the user, and only the user may read or write it.
  if (st.uid !== euid) return `it is owned by uid ${st.uid}, not by this process's user (uid ${euid})`;
  if ((st.mode & 0o077) !== 0)
    return `group or others have access to it (mode 0${(st.mode & 0o777).toString(8)}; it must be 0700)`;
  return undefined;
}

// One warning per directory and reason per process: resolution runs on every listen and connect.
const warned = new Set<string>();

function warnIgnored(dir: string, problem: string, fallback: string): void {
  const key = `${dir}\0${problem}`;
  if (warned.has(key)) return;
  warned.add(key);
  process.emitWarning(
    `XDG_RUNTIME_DIR=${dir} is not used for local:// sockets: ${problem}. Using ${fallback} instead.`,
    { type: 'SecureIpcWarning', code: 'SIPC_WARN_XDG_RUNTIME_DIR_IGNORED' },
  );
}

/**
 * The directory of `local://` sockets for this process's effective uid:
 * - root (Linux, macOS): `rootLocalDirectory()`, `/run/secure-ipc` on Linux, whatever the
 *   environment says, so a root service and a root shell agree and nothing lives in `/tmp`;
 * - Linux: `$XDG_RUNTIME_DIR/secure-ipc` when `XDG_RUNTIME_DIR` is a directory owned by the
 *   effective uid with no group/other access; otherwise it is ignored, with a `process` warning
 *   (`SIPC_WARN_XDG_RUNTIME_DIR_IGNORED`) saying why, and the directory is
 *   `<tmpdir>/secure-ipc-<euid>`;
 * - macOS: `$TMPDIR/secure-ipc` ($TMPDIR is already per-user there).
 * The result is created 0700 or verified by `listen` and verified by `connect`.
 */
export function localDirectory(options: LocalDirectoryOptions = {}): string {
  if (options.runtimeDirectory !== undefined) return options.runtimeDirectory;
  const euid = process.geteuid?.();
  if (euid === 0) return rootLocalDirectory();
  if (process.platform === 'linux' && euid !== undefined) {
    const fallback = path.join(os.tmpdir(), `secure-ipc-${euid}`);
    const xdg = process.env.XDG_RUNTIME_DIR;
    if (xdg === undefined || xdg === '') return fallback;
    const problem = runtimeDirectoryProblem(xdg, euid);
    if (problem === undefined) return path.join(xdg, 'secure-ipc');
    warnIgnored(xdg, problem, fallback);
    return fallback;
  }
  return path.join(os.tmpdir(), 'secure-ipc');
}

/**
 * Parse `unix:///abs/path`, `unix-abstract:NAME` (Linux), `local://APP-ID` or `systemd:NAME`
 * (Linux); throws typed errors.
 */
export function parseUnixAddress(address: string, options: LocalDirectoryOptions = {}): UnixAddress {
  if (typeof address !== 'string') throw invalidAddress(String(address), 'not a string');
  if (address.includes('\0')) throw invalidAddress(address, 'contains a NUL byte');
  if (address.startsWith('unix://')) {
    const p = address.slice('unix://'.length);
    if (!p.startsWith('/')) throw invalidAddress(address, 'expected unix:///absolute/path');
    // A normalized path only: `..`, `.`, `//` or a trailing slash would make the checked directory
    // differ from the one the kernel resolves.
    if (path.posix.normalize(p) !== p || p.endsWith('/'))
      throw invalidAddress(address, 'the path is not normalized');
    checkPathLength(p);
    return { kind: 'path', path: p, local: false };
  }
  if (address.startsWith('unix-abstract:')) {
    if (process.platform !== 'linux') {
      throw createError('SIPC_ERR_UNSUPPORTED_PLATFORM', 'Abstract Unix sockets exist only on Linux');
    }
    const name = address.slice('unix-abstract:'.length);
    if (name.length === 0) throw invalidAddress(address, 'empty abstract socket name');
    checkPathLength(name, 'abstract socket name');
    return { kind: 'abstract', name };
  }
  if (address.startsWith(SYSTEM_PREFIX)) {
    return { kind: 'path', path: resolveLocalPath(address, options), local: false, system: true };
  }
  if (address.startsWith('local://')) {
    return { kind: 'path', path: resolveLocalPath(address, options), local: true };
  }
  if (address.startsWith('systemd:')) {
    if (process.platform !== 'linux')
      throw createError(
        'SIPC_ERR_UNSUPPORTED_PLATFORM',
        'systemd: addresses (socket activation by systemd) exist only on Linux; with launchd, listen on the socket path the plist names',
      );
    return { kind: 'inherited', name: activationName(address) };
  }
  throw invalidAddress(
    address,
    'transport-unix handles unix://, unix-abstract: (Linux), local:// and systemd: (Linux, socket activation)',
  );
}

/**
 * The concrete socket path a `local://APP-ID` address stands for on this machine and user, e.g.
 * `/run/user/1000/secure-ipc/my-app.sock`, or of `local://system/APP-ID`, e.g.
 * `/run/secure-ipc-system/my-app.sock` (for the CLI and logs to print).
 */
export function resolveLocalPath(address: string, options: LocalDirectoryOptions = {}): string {
  if (process.platform === 'win32') {
    throw createError('SIPC_ERR_UNSUPPORTED_PLATFORM', 'On Windows local:// is handled by transport-win');
  }
  if (typeof address === 'string' && address.startsWith(SYSTEM_PREFIX)) {
    const appId = address.slice(SYSTEM_PREFIX.length);
    if (!isLocalAppId(appId))
      throw invalidAddress(
        address,
        'expected local://system/APP-ID, the id 1-64 characters of A-Z a-z 0-9 . _ - starting with a letter or digit',
      );
    const p = path.join(systemDirectory(options), `${appId}.sock`);
    checkPathLength(p);
    return p;
  }
  // The id rule (core's localAppId) is shared with transport-win; the path is this package's.
  const appId = localAppId(address);
  const p = path.join(localDirectory(options), `${appId}.sock`);
  checkPathLength(p);
  return p;
}

/** The string Node's `net` takes for a parsed address (abstract names get the leading NUL). */
export function netPath(address: UnixAddress): string {
  if (address.kind === 'inherited')
    throw createError(
      'SIPC_ERR_INVALID_ADDRESS',
      `systemd:${address.name} names a socket handed to a service; connect to the socket's path (unix://...)`,
    );
  return address.kind === 'abstract' ? `\0${address.name}` : address.path;
}
