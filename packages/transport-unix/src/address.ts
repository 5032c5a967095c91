/**
 * Parsing of the addresses transport-unix handles, and the resolution of `local://APP-ID` to the
 * per-user socket path. Pure functions over strings and the environment: no I/O happens here.
 */
import os from 'node:os';
import path from 'node:path';
import { createError } from '@secure-ipc/core';
import { invalidAddress, localAppId } from '@secure-ipc/core/transport';

/** A parsed address: a socket file path, or a Linux abstract socket name. */
export type UnixAddress =
  | { readonly kind: 'path'; readonly path: string; readonly local: boolean }
  | { readonly kind: 'abstract'; readonly name: string };

/** Where `local://` sockets live; see `localDirectory`. */
export interface LocalDirectoryOptions {
  /** Use this directory instead of the per-user default (it is still created and verified). */
  runtimeDirectory?: string | undefined;
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
 * The per-user directory of `local://` sockets: `$XDG_RUNTIME_DIR/secure-ipc` on Linux when set,
 * else `<tmpdir>/secure-ipc-<uid>`; on macOS `$TMPDIR/secure-ipc` ($TMPDIR is already per-user there).
 */
export function localDirectory(options: LocalDirectoryOptions = {}): string {
  if (options.runtimeDirectory !== undefined) return options.runtimeDirectory;
  if (process.platform === 'linux') {
    const xdg = process.env.XDG_RUNTIME_DIR;
    if (xdg !== undefined && path.isAbsolute(xdg)) return path.join(xdg, 'secure-ipc');
    return path.join(os.tmpdir(), `secure-ipc-${process.getuid!()}`);
  }
  return path.join(os.tmpdir(), 'secure-ipc');
}

/** Parse `unix:///abs/path`, `unix-abstract:NAME` (Linux) or `local://APP-ID`; throws typed errors. */
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
  if (address.startsWith('local://')) {
    return { kind: 'path', path: resolveLocalPath(address, options), local: true };
  }
  throw invalidAddress(address, 'transport-unix handles unix://, unix-abstract: (Linux) and local://');
}

/**
 * The concrete socket path a `local://APP-ID` address stands for on this machine and user, e.g.
 * `/run/user/1000/secure-ipc/my-app.sock` (for the CLI and logs to print).
 */
export function resolveLocalPath(address: string, options: LocalDirectoryOptions = {}): string {
  // The id rule (core's localAppId) is shared with transport-win; the path is this package's.
  const appId = localAppId(address);
  if (process.platform === 'win32') {
    throw createError('SIPC_ERR_UNSUPPORTED_PLATFORM', 'On Windows local:// is handled by transport-win');
  }
  const p = path.join(localDirectory(options), `${appId}.sock`);
  checkPathLength(p);
  return p;
}

/** The string Node's `net` takes for a parsed address (abstract names get the leading NUL). */
export function netPath(address: UnixAddress): string {
  return address.kind === 'abstract' ? `\0${address.name}` : address.path;
}
