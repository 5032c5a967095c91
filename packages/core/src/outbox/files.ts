/**
 * The checks on an outbox directory's paths that opening an outbox (./outbox.ts) and inspecting
 * one (./inspect.ts) both make, in one place: the directory is a real one, the journal is opened
 * without following a link and checked on its descriptor and by the guard, and the lock file's
 * pid is read without following a link and tested for life.
 */
import { constants, type promises as nodeFs, type Stats } from 'node:fs';
import { createError } from '../errors.js';
import { fileProblem } from '../keys/private-file.js';
import type { OutboxAccessGuard } from './access.js';

/** O_NOFOLLOW where it exists (not on Windows). */
export const NO_FOLLOW = process.platform === 'win32' ? 0 : constants.O_NOFOLLOW;

const isLink = (err: unknown) => {
  const code = (err as NodeJS.ErrnoException).code;
  return code === 'ELOOP' || code === 'EMLINK';
};

/** Throw SIPC_ERR_INSECURE_DIRECTORY unless `st` (an lstat of `dir`) is a real directory. */
export function checkOutboxDirectory(dir: string, st: Pick<Stats, 'isSymbolicLink' | 'isDirectory'>): void {
  if (st.isSymbolicLink() || !st.isDirectory())
    throw createError(
      'SIPC_ERR_INSECURE_DIRECTORY',
      `${dir} is ${st.isSymbolicLink() ? 'a symbolic link' : 'not a directory'}`,
      { details: { path: dir, reason: st.isSymbolicLink() ? 'symlink' : 'type' } },
    );
}

/**
 * Open the journal with `flags` (O_NOFOLLOW added): undefined when it does not exist,
 * SIPC_ERR_INSECURE_FILE for a link, SIPC_ERR_INVALID_ARGUMENT reason `open` otherwise.
 */
export async function openJournalFile(
  fs: typeof nodeFs,
  path: string,
  flags: number,
): Promise<nodeFs.FileHandle | undefined> {
  try {
    return await fs.open(path, flags | NO_FOLLOW);
  } catch (err) {
    if (isLink(err))
      throw createError(
        'SIPC_ERR_INSECURE_FILE',
        `${path} is a symbolic link (outbox paths are never followed)`,
        {
          details: { path, reason: 'symlink' },
        },
      );
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `Cannot open the outbox journal ${path}`, {
      details: { path, reason: 'open', cause: (err as Error).message },
    });
  }
}

/**
 * Check an open journal as a secret file on its descriptor (a regular file, ours, no group or
 * other access: SIPC_ERR_INSECURE_FILE), then by the guard; its stats.
 */
export async function checkJournalFile(
  handle: nodeFs.FileHandle,
  path: string,
  guard: OutboxAccessGuard | undefined,
): Promise<Stats> {
  const st = await handle.stat();
  const problem = fileProblem(path, st, { code: 'SIPC_ERR_INSECURE_FILE', kind: 'secret' });
  if (problem !== undefined)
    throw createError('SIPC_ERR_INSECURE_FILE', problem.message, { details: problem.details });
  await guard?.secure(path, 'file', false);
  return st;
}

/**
 * The pid a lock file names, read through a descriptor opened without following a link:
 * undefined when it names none (a crash between its creation and its write) or is a link (not a
 * lock this code wrote); the read's error is thrown as is (the caller decides).
 */
export async function readLockPid(fs: typeof nodeFs, path: string): Promise<number | undefined> {
  let text: string;
  try {
    const h = await fs.open(path, constants.O_RDONLY | NO_FOLLOW);
    try {
      text = await h.readFile('utf8');
    } finally {
      await h.close();
    }
  } catch (err) {
    if (isLink(err)) return undefined;
    throw err;
  }
  const pid = Number.parseInt(text, 10);
  return Number.isSafeInteger(pid) && pid > 0 ? pid : undefined;
}

/** Whether `pid` may be alive: only "no such process" (ESRCH) says it is dead (fail closed). */
export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code !== 'ESRCH';
  }
}
