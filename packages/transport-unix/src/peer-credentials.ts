/**
 * What the kernel says about the process at the other end of a Unix socket, read through koffi on
 * the socket's file descriptor. koffi is required lazily on first use so that importing this
 * package never loads a native module; every failure (no koffi binary, unknown OS, syscall error)
 * yields `undefined` fields, and the caller's policy decides whether that is fatal.
 *
 * - Linux: `getsockopt(fd, SOL_SOCKET, SO_PEERCRED)` fills `struct ucred { pid_t pid; uid_t uid;
 *   gid_t gid; }` (three 32-bit integers), captured by the kernel at connect()/listen() time.
 * - macOS: `getpeereid(fd, &uid, &gid)` plus `getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID)` for the pid.
 * - Linux, only when the peer's executable is asked for (peer-executable.ts):
 *   `getsockopt(fd, SOL_SOCKET, SO_PEERPIDFD)`, a pidfd of the process that connected.
 */
import { createRequire } from 'node:module';
import type { Socket } from 'node:net';

/** The OS identity of a Unix socket peer; a field is undefined where it could not be read. */
export interface UnixPeerCredentials {
  /** Process id of the peer. */
  readonly pid: number | undefined;
  /** Effective user id of the peer. */
  readonly uid: number | undefined;
  /** Effective group id of the peer. */
  readonly gid: number | undefined;
  /** Why the credentials are missing (for the error's cause); undefined when they were read. */
  readonly failure?: Error | undefined;
}

type Reader = (fd: number) => UnixPeerCredentials;

const SOL_SOCKET_LINUX = 1;
const SO_PEERCRED = 17;
const SOL_LOCAL = 0;
const LOCAL_PEERPID = 0x002;

const SO_PEERPIDFD = 77;
const ENOPROTOOPT = 92;

let reader: Reader | undefined;

function missing(failure: Error): UnixPeerCredentials {
  return { pid: undefined, uid: undefined, gid: undefined, failure };
}

interface Koffi {
  load(path: string): { func(signature: string): (...args: unknown[]) => number };
  errno(): number;
}

/** getsockopt(2) of Linux's libc, through koffi (loaded once, on first use). */
interface LinuxLibc {
  readonly getsockopt: (fd: number, level: number, name: number, out: Buffer, len: number[]) => number;
  readonly errno: () => number;
  /** close(2): for a descriptor the kernel handed over outside node:fs (a pidfd). */
  readonly close: (fd: number) => number;
}

let linuxLibc: LinuxLibc | undefined;

function koffiModule(): Koffi {
  // koffi's types are not needed past these few lines; keep them out of the public surface.
  return createRequire(import.meta.url)('koffi') as Koffi;
}

function libcLinux(): LinuxLibc {
  if (linuxLibc !== undefined) return linuxLibc;
  const koffi = koffiModule();
  const libc = koffi.load('libc.so.6');
  const getsockopt = libc.func(
    'int getsockopt(int, int, int, _Out_ uint8_t *optval, _Inout_ uint32_t *optlen)',
  );
  const close = libc.func('int close(int)');
  linuxLibc = { getsockopt, errno: () => koffi.errno(), close };
  return linuxLibc;
}

function loadReader(): Reader {
  if (process.platform === 'linux') {
    const libc = libcLinux();
    return (fd) => {
      const buf = Buffer.alloc(12);
      const len = [12];
      if (libc.getsockopt(fd, SOL_SOCKET_LINUX, SO_PEERCRED, buf, len) !== 0) {
        return missing(new Error(`getsockopt(SO_PEERCRED) failed (errno ${libc.errno()})`));
      }
      return { pid: buf.readInt32LE(0), uid: buf.readUInt32LE(4), gid: buf.readUInt32LE(8) };
    };
  }
  if (process.platform === 'darwin') {
    const koffi = koffiModule();
    const sysError = (call: string): Error => new Error(`${call} failed (errno ${koffi.errno()})`);
    const libc = koffi.load('/usr/lib/libSystem.B.dylib');
    const getpeereid = libc.func('int getpeereid(int, _Out_ uint32_t *uid, _Out_ uint32_t *gid)');
    const getsockopt = libc.func(
      'int getsockopt(int, int, int, _Out_ uint8_t *optval, _Inout_ uint32_t *optlen)',
    );
    return (fd) => {
      const uid = [0];
      const gid = [0];
      if (getpeereid(fd, uid, gid) !== 0) return missing(sysError('getpeereid'));
      const buf = Buffer.alloc(4);
      const len = [4];
      // The pid is informative; a kernel that cannot report it still gives trustworthy uid/gid.
      const pid = getsockopt(fd, SOL_LOCAL, LOCAL_PEERPID, buf, len) === 0 ? buf.readInt32LE(0) : undefined;
      return { pid, uid: uid[0], gid: gid[0] };
    };
  }
  return () => missing(new Error(`reading peer credentials is not implemented on ${process.platform}`));
}

/** The socket's file descriptor while it is open, else undefined. */
export function socketFd(socket: Socket): number | undefined {
  const fd = (socket as unknown as { _handle?: { fd?: number } })._handle?.fd;
  return typeof fd === 'number' && fd >= 0 && !socket.destroyed ? fd : undefined;
}

/** Read the peer's pid/uid/gid from a connected Unix socket; never throws. */
export function readPeerCredentials(socket: Socket): UnixPeerCredentials {
  const fd = socketFd(socket);
  if (fd === undefined) return missing(new Error('the socket has no file descriptor'));
  try {
    reader ??= loadReader();
  } catch (err) {
    reader = () => missing(new Error('could not load koffi to read peer credentials', { cause: err }));
  }
  return reader(fd);
}

/**
 * A pidfd of the process that connected (Linux `SO_PEERPIDFD`, kernel 6.5+): the kernel took it
 * at connect time, so it names that process and no later holder of its pid. The caller closes it.
 * `unsupported` on an older kernel; undefined on any other failure (the socket closed meanwhile).
 */
export function readPeerPidfd(socket: Socket): number | 'unsupported' | undefined {
  const fd = socketFd(socket);
  if (fd === undefined || process.platform !== 'linux') return undefined;
  let libc: LinuxLibc;
  try {
    libc = libcLinux();
  } catch {
    return undefined;
  }
  const buf = Buffer.alloc(4);
  if (libc.getsockopt(fd, SOL_SOCKET_LINUX, SO_PEERPIDFD, buf, [4]) !== 0)
    return libc.errno() === ENOPROTOOPT ? 'unsupported' : undefined;
  const pidfd = buf.readInt32LE(0);
  return pidfd >= 0 ? pidfd : undefined;
}

/**
 * Close a pidfd from readPeerPidfd with close(2) itself: it is the kernel's descriptor, not one
 * node:fs opened, and Deno's fs.closeSync takes only descriptors of its own (EBADF otherwise).
 */
export function closePidfd(pidfd: number): void {
  libcLinux().close(pidfd);
}
