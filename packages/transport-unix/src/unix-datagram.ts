/**
 * Unix datagram sockets (`AF_UNIX`, `SOCK_DGRAM`) through koffi: what journald and syslog listen
 * on, and what Node's `dgram` cannot open. libc is loaded on first use, as in peer-credentials.ts,
 * so importing the package never loads a native module.
 *
 * Every call here is one non-blocking syscall, so none waits on the event loop's thread:
 * - the socket is made with `SOCK_NONBLOCK | SOCK_CLOEXEC` on Linux; macOS has no such `type`
 *   flags, so there `fcntl` sets `FD_CLOEXEC` (no child process inherits the fd) and every
 *   `sendto`/`recv` passes `MSG_DONTWAIT`, which it does on Linux too;
 * - `sendto` names the address each time, so a receiver that restarts (journald, rsyslog) is
 *   reached again by the next datagram without reconnecting;
 * - `struct sockaddr_un` differs: Linux `{ uint16 sun_family; char sun_path[108] }`, macOS
 *   `{ uint8 sun_len; uint8 sun_family; char sun_path[104] }`; it is written byte by byte below.
 *
 * Failures come back as errno names (`EAGAIN`, `ENOENT`, ...), read through `os.constants.errno`
 * so the numbers are the platform's own.
 */
import { createRequire } from 'node:module';
import { constants } from 'node:os';
import { createError } from '@secure-ipc/core';
import { checkPathLength } from './address.js';

/** The per-platform facts. */
interface Platform {
  readonly libc: string;
  /** Flags or'ed into socket()'s type. */
  readonly socketFlags: number;
  readonly msgDontWait: number;
  /** macOS and the BSDs: sockaddr_un starts with its length byte. */
  readonly sunLen: boolean;
}

const AF_UNIX = 1;
const SOCK_DGRAM = 2;
const F_SETFD = 2;
const FD_CLOEXEC = 1;

const PLATFORMS: Partial<Record<NodeJS.Platform, Platform>> = {
  // SOCK_NONBLOCK = 04000, SOCK_CLOEXEC = 02000000 (asm-generic, x86 and arm alike).
  linux: { libc: 'libc.so.6', socketFlags: 0o4000 | 0o2000000, msgDontWait: 0x40, sunLen: false },
  darwin: { libc: '/usr/lib/libSystem.B.dylib', socketFlags: 0, msgDontWait: 0x80, sunLen: true },
};

type Fn = (...args: unknown[]) => number;

interface Libc {
  readonly platform: Platform;
  readonly socket: Fn;
  readonly sendto: Fn;
  readonly bind: Fn;
  readonly recv: Fn;
  readonly close: Fn;
  readonly fcntl: Fn;
  readonly errno: () => number;
}

let libc: Libc | undefined;

/** errno value → name; where two names share a value (EAGAIN, EWOULDBLOCK) the first listed wins. */
const ERRNO_NAMES = new Map<number, string>();
for (const [name, n] of Object.entries(constants.errno)) if (!ERRNO_NAMES.has(n)) ERRNO_NAMES.set(n, name);

/** The name of an errno value (`EAGAIN`), or `errno N` for one Node does not name. */
export function errnoName(errno: number): string {
  return ERRNO_NAMES.get(errno) ?? `errno ${errno}`;
}

function loadLibc(): Libc {
  const platform = PLATFORMS[process.platform];
  if (platform === undefined)
    throw createError(
      'SIPC_ERR_UNSUPPORTED_PLATFORM',
      `Unix datagram sockets are implemented on Linux and macOS, not on ${process.platform}`,
    );
  if (libc !== undefined) return libc;
  let koffi: { load(path: string): { func(signature: string): Fn }; errno(): number };
  try {
    koffi = createRequire(import.meta.url)('koffi') as typeof koffi;
  } catch (err) {
    throw createError(
      'SIPC_ERR_UNSUPPORTED_PLATFORM',
      'koffi could not be loaded for Unix datagram sockets',
      {
        cause: err,
      },
    );
  }
  const lib = koffi.load(platform.libc);
  libc = {
    platform,
    socket: lib.func('int socket(int, int, int)'),
    sendto: lib.func(
      'intptr_t sendto(int, const uint8_t *buf, size_t len, int flags, const uint8_t *addr, uint32_t addrlen)',
    ),
    bind: lib.func('int bind(int, const uint8_t *addr, uint32_t addrlen)'),
    recv: lib.func('intptr_t recv(int, _Out_ uint8_t *buf, size_t len, int flags)'),
    close: lib.func('int close(int)'),
    fcntl: lib.func('int fcntl(int, int, ...)'),
    errno: () => koffi.errno(),
  };
  return libc;
}

/** `struct sockaddr_un` for `path` (checked against `sun_path`'s size: SIPC_ERR_PATH_TOO_LONG). */
function socketAddress(lib: Libc, path: string): Buffer {
  checkPathLength(path);
  const bytes = Buffer.from(path);
  const addr = Buffer.alloc(2 + bytes.length + 1); // family, path, NUL
  if (lib.platform.sunLen) {
    addr[0] = addr.length;
    addr[1] = AF_UNIX;
  } else addr.writeUInt16LE(AF_UNIX, 0); // the x86 and arm Linux ABIs are little-endian
  bytes.copy(addr, 2);
  return addr;
}

/** A new non-blocking, close-on-exec `AF_UNIX` `SOCK_DGRAM` socket; throws SIPC_ERR_CONNECT_FAILED. */
function openSocket(lib: Libc): number {
  const fd = lib.socket(AF_UNIX, SOCK_DGRAM | lib.platform.socketFlags, 0);
  if (fd < 0)
    throw createError(
      'SIPC_ERR_CONNECT_FAILED',
      `socket(AF_UNIX, SOCK_DGRAM) failed: ${errnoName(lib.errno())}`,
    );
  if (lib.platform.socketFlags === 0 && lib.fcntl(fd, F_SETFD, 'int', FD_CLOEXEC) !== 0) {
    const why = errnoName(lib.errno());
    lib.close(fd);
    throw createError('SIPC_ERR_CONNECT_FAILED', `fcntl(FD_CLOEXEC) failed: ${why}`);
  }
  return fd;
}

/** An unbound datagram socket that sends to one address. */
export interface DatagramSender {
  /** Send one datagram without waiting: undefined once sent, else the errno name (`EAGAIN`, ...). */
  send(datagram: Uint8Array): string | undefined;
  /** Close the socket (idempotent). */
  close(): void;
}

/**
 * Open a datagram socket that sends to the socket at `path`. Throws SIPC_ERR_UNSUPPORTED_PLATFORM
 * (not Linux or macOS, or no koffi), SIPC_ERR_PATH_TOO_LONG or SIPC_ERR_CONNECT_FAILED (socket()).
 */
export function openDatagramSender(path: string): DatagramSender {
  const lib = loadLibc();
  const address = socketAddress(lib, path);
  let fd = openSocket(lib);
  return {
    send(datagram) {
      if (fd < 0) return 'EBADF';
      const n = lib.sendto(fd, datagram, datagram.length, lib.platform.msgDontWait, address, address.length);
      return n < 0 ? errnoName(lib.errno()) : undefined;
    },
    close() {
      if (fd < 0) return;
      lib.close(fd);
      fd = -1;
    },
  };
}

/** @internal A bound datagram socket, for tests: what journald or syslog would be. */
export interface DatagramReceiver {
  /** The next queued datagram, without waiting; undefined when none is queued. */
  receive(): Buffer | undefined;
  /** Close the socket (idempotent); the socket file stays, as the caller's to remove. */
  close(): void;
}

/** @internal Bind a datagram socket at `path` (a new file); throws SIPC_ERR_LISTEN_FAILED. */
export function bindDatagramReceiver(path: string, maxDatagramBytes = 1 << 21): DatagramReceiver {
  const lib = loadLibc();
  const address = socketAddress(lib, path);
  let fd = openSocket(lib);
  if (lib.bind(fd, address, address.length) !== 0) {
    const why = errnoName(lib.errno());
    lib.close(fd);
    throw createError('SIPC_ERR_LISTEN_FAILED', `bind(${path}) failed: ${why}`);
  }
  const buffer = Buffer.alloc(maxDatagramBytes);
  return {
    receive() {
      if (fd < 0) return undefined;
      const n = lib.recv(fd, buffer, buffer.length, lib.platform.msgDontWait);
      if (n >= 0) return Buffer.from(buffer.subarray(0, n));
      const why = errnoName(lib.errno());
      if (why === 'EAGAIN') return undefined;
      throw createError('SIPC_ERR_CONNECTION_CLOSED', `recv failed: ${why}`);
    },
    close() {
      if (fd < 0) return;
      lib.close(fd);
      fd = -1;
    },
  };
}
