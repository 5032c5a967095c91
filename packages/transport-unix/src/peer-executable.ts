/**
 * The executable of the process at the other end of a Unix socket, on Linux, read only when
 * `PeerInfo.executable()` is called (nothing is read at accept time). Each step that fails makes
 * the answer undefined, so a rule on the executable fails closed:
 *
 *   1. the socket is still open (its fd number is this connection's, not a reused one), and
 *      `SO_PEERPIDFD` gives a pidfd of the process that connected (kernel 6.5+);
 *   2. `/proc/PID/stat`: the process's start time, before;
 *   3. open `/proc/PID/exe`: the image the process runs, even if its path was since replaced
 *      or removed; `readlink` of it for the path;
 *   4. SHA-256 of that open file, in chunks (core's `sha256OfFile`);
 *   5. the start time again (the same process throughout 2-4: a pid reused in between has
 *      another one), the pidfd's `Pid:` in /proc/self/fdinfo still PID (the process that
 *      connected is alive and holds PID, so /proc/PID was it), the socket still open.
 *
 * Without SO_PEERPIDFD (an older kernel) step 5 cannot tell that the process at PID is the one
 * that connected: one that exited and whose pid was reused before step 2 is misattributed.
 * Residual risks whatever the kernel (docs/identity.md, "Enrolment"): the answer names the image
 * at the time of the read, so a process that connects, hands its channel to another (fork, or
 * SCM_RIGHTS with its session) and exec()s the wanted executable is reported as that executable;
 * and an interpreted program is reported as its interpreter.
 */
import { open, readFile, readlink } from 'node:fs/promises';
import type { Socket } from 'node:net';
import type { PeerExecutable } from '@secure-ipc/core';
import { sha256OfFile } from '@secure-ipc/core/transport';
import { closePidfd, readPeerPidfd, socketFd } from './peer-credentials.js';

/** Field 22 of /proc/PID/stat (start time in clock ticks since boot), after the `(comm)` field. */
export function startTimeOf(stat: string): string | undefined {
  // comm may hold spaces and parentheses: the fields resume after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  const start = fields[19];
  return start !== undefined && /^\d+$/.test(start) ? start : undefined;
}

/** The `Pid:` line of a pidfd's fdinfo (-1 once the process has exited), undefined if absent. */
export function pidfdPid(fdinfo: string): number | undefined {
  const m = /^Pid:\s*(-?\d+)$/m.exec(fdinfo);
  return m ? Number(m[1]) : undefined;
}

const startTime = async (pid: number) => startTimeOf(await readFile(`/proc/${pid}/stat`, 'latin1'));

/** Steps 2-4 with the start-time check of step 5; undefined if the process changed. */
async function readImage(pid: number): Promise<PeerExecutable | undefined> {
  const before = await startTime(pid);
  if (before === undefined) return undefined;
  const image = await open(`/proc/${pid}/exe`, 'r');
  try {
    const path = await readlink(`/proc/${pid}/exe`);
    const sha256 = await sha256OfFile(image);
    if (sha256 === undefined || (await startTime(pid)) !== before) return undefined;
    return { path, sha256 };
  } finally {
    await image.close();
  }
}

/** The executable of `socket`'s peer with kernel-reported `pid`; rejects or undefined on failure. */
export async function readPeerExecutable(socket: Socket, pid: number): Promise<PeerExecutable | undefined> {
  const fd = socketFd(socket);
  const pidfd = readPeerPidfd(socket);
  if (fd === undefined || pidfd === undefined) return undefined;
  try {
    const exe = await readImage(pid);
    if (exe === undefined || socketFd(socket) !== fd) return undefined;
    if (pidfd !== 'unsupported' && pidfdPid(await readFile(`/proc/self/fdinfo/${pidfd}`, 'latin1')) !== pid)
      return undefined;
    return exe;
  } finally {
    if (pidfd !== 'unsupported') closePidfd(pidfd);
  }
}
