/**
 * Who may touch a private directory of files: an outbox's (docs/outbox.md, "Access") or an audit
 * log's (docs/audit.md, "Directory"). Their owner asks its access guard about the directory and
 * about every file it creates or opens there, before any byte of it is read or written. Core ships the POSIX guard (owner and mode, read with lstat/fstat, never
 * following a link); the Windows guard (an owner-only protected DACL, set and read back) lives in
 * @secure-ipc/transport-win, which has the Win32 bindings (core has no OS code).
 */
import { promises as fs } from 'node:fs';
import { createError, type SecureIpcError } from '../errors.js';

/** What a guarded path is. */
export type GuardedKind = 'directory' | 'file';

/**
 * An access guard (an outbox's, an audit log's). `secure` is called on the directory and on each file of it (the
 * journal, a compaction's temporary file) right after the outbox created or opened it: when
 * `created` is true the guard makes the path owner-only first; then it reads the protection back
 * and throws a SecureIpcError (SIPC_ERR_INSECURE_DIRECTORY for the directory,
 * SIPC_ERR_INSECURE_FILE for a file, `details.reason` saying why) when anyone but the current
 * user (and the OS itself) can read or write it.
 */
export interface AccessGuard {
  /** What the guard checks, as `protection().files` reports it: 'posix-mode', 'windows-dacl'. */
  readonly name: string;
  /** Make owner-only (if `created`), then check; throws when others can access `path`. */
  secure(path: string, kind: GuardedKind, created: boolean): Promise<void>;
}

function insecure(kind: GuardedKind, path: string, message: string, reason: string): SecureIpcError {
  return createError(
    kind === 'directory' ? 'SIPC_ERR_INSECURE_DIRECTORY' : 'SIPC_ERR_INSECURE_FILE',
    message,
    {
      details: { path, reason },
    },
  );
}

/**
 * The POSIX guard: the path (lstat: a link is refused) must be a directory or regular file owned
 * by the effective uid with no group or other permission bits; one the outbox created is chmod'ed
 * 0700 / 0600 first (the umask cannot widen those, chmod makes them explicit).
 */
export const posixOwnerOnly: AccessGuard = Object.freeze({
  name: 'posix-mode',
  async secure(path: string, kind: GuardedKind, created: boolean): Promise<void> {
    if (created) await fs.chmod(path, kind === 'directory' ? 0o700 : 0o600);
    const st = await fs.lstat(path);
    if (st.isSymbolicLink())
      throw insecure(kind, path, `${path} is a symbolic link (these paths are never followed)`, 'symlink');
    if (kind === 'directory' ? !st.isDirectory() : !st.isFile())
      throw insecure(
        kind,
        path,
        `${path} is not a ${kind === 'directory' ? 'directory' : 'regular file'}`,
        'type',
      );
    const euid = process.geteuid?.();
    if (euid !== undefined && st.uid !== euid)
      throw insecure(
        kind,
        path,
        `${path} is owned by uid ${st.uid}, not by this process's user (uid ${euid})`,
        'owner',
      );
    if ((st.mode & 0o077) !== 0)
      throw insecure(
        kind,
        path,
        `${path} is accessible by group or others (mode 0${(st.mode & 0o777).toString(8)}); run chmod ${kind === 'directory' ? 700 : 600} ${path}`,
        'mode',
      );
  },
});
