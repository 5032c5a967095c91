/**
 * The filesystem side of listening on a Unix socket path, hardened:
 * - the directory is created 0700 if absent, and otherwise must be a real directory (lstat, so a
 *   symlink is refused), owned by this user and not writable by group or others;
 * - a socket already at the path is removed only if it is a socket and nobody answers on it; a
 *   live server gives ADDRESS_IN_USE and any other file gives NOT_A_SOCKET (never touched);
 * - the socket is bound owner-only with no window (see `bindOwnerOnly`), and removed on close only
 *   if the path still holds our inode.
 */
import { randomBytes } from 'node:crypto';
import { promises as fs, type Stats } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { isMainThread } from 'node:worker_threads';
import { type AbortOptions, createError } from '@secure-ipc/core';
import { LISTEN_BACKLOG } from '@secure-ipc/core/transport';
import { checkPathLength } from './address.js';
import type { UnixSocketAccess } from './socket-access.js';

/** The identity of the socket file we bound, to recognise it at close. */
export interface SocketIdentity {
  readonly dev: number;
  readonly ino: number;
}

function code(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | null)?.code;
}

function listenFailed(what: string, cause: unknown): Error {
  return createError('SIPC_ERR_LISTEN_FAILED', `${what}: ${code(cause) ?? String(cause)}`, { cause });
}

function throwIfAborted(options: AbortOptions): void {
  if (options.signal?.aborted) {
    throw createError('SIPC_ERR_ABORTED', undefined, { cause: options.signal.reason });
  }
}

function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8)}`;
}

/**
 * Why `st` (the lstat of `dir`) is not a safe socket directory, or undefined if it is: it must be
 * a real directory owned by this process's user (or by root, for a system endpoint's) that group
 * and others cannot write.
 */
export function directoryProblem(
  dir: string,
  st: Stats,
  owner: 'self' | 'root' = 'self',
): string | undefined {
  if (st.isSymbolicLink()) return `${dir} is a symbolic link (refusing to follow it)`;
  if (!st.isDirectory()) return `${dir} is not a directory`;
  const uid = owner === 'root' ? 0 : process.geteuid!();
  if (st.uid !== uid)
    return owner === 'root'
      ? `${dir} is owned by uid ${st.uid}, not by root`
      : `${dir} is owned by uid ${st.uid}, not by the current user (uid ${uid})`;
  if ((st.mode & 0o022) !== 0) return `${dir} is writable by group or others (mode ${octal(st.mode)})`;
  return undefined;
}

/** What the directory is for: a `local://` directory gets advice fit for it in the refusal. */
export interface DirectoryUse {
  /** The directory is the `local://` directory of this user (not one named by a `unix://` path). */
  local?: boolean | undefined;
  /** Who must own it: this process's user (default), or root (a `local://system/` directory). */
  owner?: 'self' | 'root' | undefined;
}

function insecureDirectory(dir: string, st: Stats, problem: string, use: DirectoryUse): Error {
  const uid = process.geteuid!();
  let advice = '';
  // A local:// directory someone else owns blocks local:// for this user until it is removed:
  // say so, and say what to do, instead of leaving the user with a dead address.
  if (use.local === true && st.uid !== uid && !st.isSymbolicLink()) {
    advice =
      `. Another user created it, which blocks local:// for this user: have its owner (uid ${st.uid}) or root ` +
      `remove it (rm -r ${dir}), or give local:// a directory of your own (XDG_RUNTIME_DIR set to a directory ` +
      'you own with mode 0700, or the runtimeDirectory option)';
  }
  return createError('SIPC_ERR_INSECURE_DIRECTORY', `Unsafe socket directory: ${problem}${advice}`, {
    details: { directory: dir, ownerUid: st.uid, uid, mode: st.mode & 0o7777 },
  });
}

/**
 * Create `dir` with `mode` if absent (its parent must exist), then verify it; returns its mode.
 * The mode is 0700, or for a socket other users may reach `directoryModeFor(access)`: 0710 with
 * `group` (the group may traverse it, nobody may list it) or 0711 (anyone may traverse it); an
 * existing directory is left as it is. Throws SIPC_ERR_INSECURE_DIRECTORY naming the problem
 * (and, for a `local://` directory owned by someone else, its owner and what to do).
 */
export async function ensureSecureDirectory(
  dir: string,
  use: DirectoryUse = {},
  mode = 0o700,
  group?: number,
): Promise<number> {
  let created = false;
  try {
    await fs.mkdir(dir, { mode: 0o700 });
    created = true;
    if (group !== undefined) await fs.chown(dir, process.geteuid!(), group);
    // The umask may have stripped bits; set exactly the mode on the directory we just made.
    await fs.chmod(dir, mode);
  } catch (err) {
    if (created) await fs.rmdir(dir).catch(() => undefined);
    if (code(err) !== 'EEXIST') throw listenFailed(`Cannot create the socket directory ${dir}`, err);
  }
  const st = await fs.lstat(dir);
  const problem = directoryProblem(dir, st, use.owner);
  if (problem !== undefined) throw insecureDirectory(dir, st, problem, use);
  return st.mode;
}

/** Verify an existing socket directory without creating it (the client side of `local://`). */
export async function verifySecureDirectory(dir: string, use: DirectoryUse = {}): Promise<void> {
  let st: Stats;
  try {
    st = await fs.lstat(dir);
  } catch {
    return; // Absent: the connect itself will fail with the OS error.
  }
  const problem = directoryProblem(dir, st, use.owner);
  if (problem !== undefined) throw insecureDirectory(dir, st, problem, use);
}

/**
 * The directory of `local://system/APP` sockets, for the listener (root): created 0711 if absent
 * (any user may traverse it, nobody may list or write it), else verified as root's and not
 * writable by group or others, and given traversal for others if it lacks it. Its parent must
 * exist and be root's, not writable by group or others (it is verified, never changed). Returns
 * the directory's mode.
 */
export async function ensureSystemDirectory(dir: string): Promise<number> {
  const parent = path.dirname(dir);
  await verifySecureDirectory(parent, { owner: 'root' });
  const mode = await ensureSecureDirectory(dir, { owner: 'root' }, 0o711);
  if ((mode & 0o011) === 0o011) return mode;
  const traversable = (mode & 0o700) | 0o011;
  await fs.chmod(dir, traversable);
  return traversable;
}

/**
 * The client side of `local://system/APP`: the system directory, its parent and the socket must
 * be root's (the directories not writable by group or others), else SIPC_ERR_INSECURE_DIRECTORY;
 * anything absent is left to the connect's own error.
 */
export async function verifySystemSocket(socketPath: string): Promise<void> {
  const dir = path.dirname(socketPath);
  await verifySecureDirectory(path.dirname(dir), { owner: 'root' });
  await verifySecureDirectory(dir, { owner: 'root' });
  const st = await fs.lstat(socketPath).catch(() => undefined);
  if (st === undefined) return;
  if (!st.isSocket())
    throw createError('SIPC_ERR_NOT_A_SOCKET', `${socketPath} is not a socket`, {
      details: { path: socketPath },
    });
  if (st.uid !== 0)
    throw createError(
      'SIPC_ERR_INSECURE_DIRECTORY',
      `The system socket ${socketPath} is owned by uid ${st.uid}, not by root: refusing to connect`,
      { details: { path: socketPath, ownerUid: st.uid } },
    );
}

/** Resolve with the probe's outcome: 'live' if something accepts, else the connect error code. */
function probe(socketPath: string): Promise<'live' | string> {
  return new Promise((resolve) => {
    const s = net.connect(socketPath);
    s.once('connect', () => {
      s.destroy();
      resolve('live');
    });
    s.once('error', (err) => resolve(code(err) ?? 'EUNKNOWN'));
  });
}

/**
 * Make `socketPath` free to bind: nothing there → ok; a socket nobody answers on → removed; a live
 * server → SIPC_ERR_ADDRESS_IN_USE; anything else → SIPC_ERR_NOT_A_SOCKET, untouched.
 */
export async function clearStaleSocket(socketPath: string, options: AbortOptions = {}): Promise<void> {
  let st: Stats;
  try {
    st = await fs.lstat(socketPath);
  } catch (err) {
    if (code(err) === 'ENOENT') return;
    throw listenFailed(`Cannot inspect ${socketPath}`, err);
  }
  if (!st.isSocket()) {
    throw createError('SIPC_ERR_NOT_A_SOCKET', `${socketPath} exists and is not a socket; leaving it alone`);
  }
  const outcome = await probe(socketPath);
  throwIfAborted(options);
  // EAGAIN: the server's accept backlog is full, so it is alive, just busy.
  if (outcome === 'live' || outcome === 'EAGAIN') {
    throw createError('SIPC_ERR_ADDRESS_IN_USE', `A live server answers on ${socketPath}`);
  }
  if (outcome === 'ENOENT') return; // It vanished meanwhile.
  if (outcome !== 'ECONNREFUSED') {
    throw listenFailed(
      `Cannot tell whether the socket ${socketPath} is stale`,
      Object.assign(new Error(outcome), { code: outcome }),
    );
  }
  // Stale. Unlink only the very inode we probed, in case it was replaced in between.
  const again = await fs.lstat(socketPath).catch(() => undefined);
  if (again?.isSocket() && again.ino === st.ino && again.dev === st.dev) {
    await fs.unlink(socketPath).catch((err) => {
      if (code(err) !== 'ENOENT') throw listenFailed(`Cannot remove the stale socket ${socketPath}`, err);
    });
  }
}

function listenOn(server: net.Server, socketPath: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (err: Error) => reject(err);
    server.once('error', onError);
    // net binds a pipe synchronously inside listen() (checked on Node 20), so a umask set around
    // this call is in force for exactly that bind() and for nothing else in the process.
    const restore = isMainThread ? process.umask(0o177) : undefined;
    try {
      server.listen({ path: socketPath, backlog: LISTEN_BACKLOG }, () => {
        server.off('error', onError);
        resolve();
      });
    } finally {
      if (restore !== undefined) process.umask(restore);
    }
  });
}

/**
 * Bind `server` at `socketPath` (in the verified directory of mode `dirMode`), owner-only unless
 * `access` widens it (its mode and group are set before the socket gets its name), and return the
 * inode bound.
 *
 * Why not a plain listen(socketPath): libuv unlinks the bound path by name when the server closes,
 * which would delete another server's socket if ours had been replaced meanwhile. So we bind a
 * random temporary name in the same directory, chmod it 0600, then link() it to the final name
 * (which fails rather than overwrites if something appeared there) and unlink the temporary name.
 * libuv's unlink at close then hits the vanished temporary name; we remove the final name only if
 * it still holds our inode.
 *
 * No window: the bind runs under umask 0177 (see `listenOn`), so the socket is born 0600. In a
 * worker thread the umask cannot be changed, so there the directory itself must be 0700 (closed to
 * everyone else), which we require.
 */
export async function bindOwnerOnly(
  server: net.Server,
  socketPath: string,
  dirMode: number,
  access: UnixSocketAccess = {},
): Promise<SocketIdentity> {
  if (!isMainThread && (dirMode & 0o077) !== 0) {
    throw createError(
      'SIPC_ERR_INSECURE_DIRECTORY',
      `In a worker thread the socket directory must be 0700 (it is ${octal(dirMode)}): the umask cannot be set there`,
    );
  }
  const dir = path.dirname(socketPath);
  const base = path.basename(socketPath);
  // As long as the final name when possible, so the temporary path fits wherever the final one does.
  const tempLength = Math.max(4, base.length - 1);
  let temp = '';
  for (let attempt = 0; ; attempt++) {
    temp = path.join(dir, `.${randomBytes(16).toString('hex').slice(0, tempLength)}`);
    checkPathLength(temp, 'temporary socket path');
    try {
      await listenOn(server, temp);
      break;
    } catch (err) {
      if (code(err) !== 'EADDRINUSE' || attempt >= 3) throw listenFailed(`Cannot bind ${socketPath}`, err);
    }
  }
  try {
    // Group first, then mode: the name clients use appears (link) only once both are final.
    if (access.socketGroup !== undefined) await fs.chown(temp, process.geteuid!(), access.socketGroup);
    await fs.chmod(temp, access.socketMode ?? 0o600);
    await fs.link(temp, socketPath);
  } catch (err) {
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (code(err) === 'EEXIST') {
      throw createError('SIPC_ERR_ADDRESS_IN_USE', `Another server bound ${socketPath} at the same time`);
    }
    throw listenFailed(`Cannot bind ${socketPath}`, err);
  } finally {
    await fs.unlink(temp).catch(() => undefined);
  }
  const st = await fs.lstat(socketPath);
  return { dev: st.dev, ino: st.ino };
}

/** Unlink `socketPath` only if it is still the socket we bound (same device and inode). */
export async function removeIfOurs(socketPath: string, identity: SocketIdentity): Promise<void> {
  const st = await fs.lstat(socketPath).catch(() => undefined);
  if (st?.isSocket() && st.dev === identity.dev && st.ino === identity.ino) {
    await fs.unlink(socketPath).catch(() => undefined);
  }
}
