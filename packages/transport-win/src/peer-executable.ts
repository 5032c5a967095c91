/**
 * The executable of the process at the other end of a pipe, read only when
 * `PeerInfo.executable()` is called. Each step that fails makes the answer undefined (a rule on
 * it fails closed):
 *
 *   1. `OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION)` on the pid the pipe file system recorded
 *      at connect time (GetNamedPipe*ProcessId, read at accept). While this handle is open the
 *      pid cannot be reused;
 *   2. `GetProcessTimes`: the process was created no later than the connection was accepted (one
 *      created after it is a stranger at a reused pid), and `GetExitCodeProcess` says it runs;
 *   3. `QueryFullProcessImageNameW`: the image's path (Win32 form, `C:\...`);
 *   4. SHA-256 of the file at that path (core's `sha256OfFile`): Windows keeps a running image
 *      from being overwritten or deleted, but not from being renamed, so a path condition alone
 *      trusts whatever the path names (docs/identity.md, "Rules");
 *   5. the process still runs and the connection is still open.
 *
 * Residual: a pid freed and reused between the client's connect and our accept-time read is
 * not told apart (the same few microseconds as peer-credentials.ts accepts for the SID).
 */
import { open } from 'node:fs/promises';
import type { Socket } from 'node:net';
import type { PeerExecutable, PeerInfo } from '@secure-ipc/core';
import { onceExecutable, sha256OfFile } from '@secure-ipc/core/transport';
import { type Handle, isInvalidHandle, Win, type Win32 } from './win32-ffi.js';

// FILETIME counts 100 ns since 1601-01-01; the Unix epoch is 11,644,473,600 s later.
const FILETIME_UNIX_EPOCH = 116_444_736_000_000_000n;
// QueryFullProcessImageNameW takes up to 32,767 characters (the long-path limit).
const MAX_PATH_CHARS = 32_768;

/** A FILETIME (8 bytes, little-endian) as ms since the Unix epoch, rounded down. */
export function filetimeMs(ft: Buffer): number {
  return Number((ft.readBigUInt64LE(0) - FILETIME_UNIX_EPOCH) / 10_000n);
}

function running(w: Win32, proc: Handle): boolean {
  const code = [0];
  return w.GetExitCodeProcess(proc, code) && code[0] === Win.STILL_ACTIVE;
}

function createdMs(w: Win32, proc: Handle): number | undefined {
  const [c, e, k, u] = [Buffer.alloc(8), Buffer.alloc(8), Buffer.alloc(8), Buffer.alloc(8)];
  return w.GetProcessTimes(proc, c, e, k, u) ? filetimeMs(c) : undefined;
}

function imagePath(w: Win32, proc: Handle): string | undefined {
  const buf = Buffer.alloc(MAX_PATH_CHARS * 2);
  const size = [MAX_PATH_CHARS];
  if (!w.QueryFullProcessImageNameW(proc, 0, buf, size)) return undefined;
  const chars = size[0]!;
  return chars > 0 && chars < MAX_PATH_CHARS ? buf.toString('utf16le', 0, chars * 2) : undefined;
}

async function hashPath(path: string): Promise<string | undefined> {
  const file = await open(path, 'r');
  try {
    return await sha256OfFile(file);
  } finally {
    await file.close();
  }
}

/** Steps 1-5 for `pid`, accepted at `acceptedAt` (ms epoch) on `socket`. */
export async function readPeerExecutable(
  w: Win32,
  pid: number,
  acceptedAt: number,
  socket: Socket,
): Promise<PeerExecutable | undefined> {
  const proc = w.OpenProcess(Win.PROCESS_QUERY_LIMITED_INFORMATION, false, pid);
  if (isInvalidHandle(w, proc)) return undefined;
  try {
    const created = createdMs(w, proc);
    if (created === undefined || created > acceptedAt || !running(w, proc)) return undefined;
    const path = imagePath(w, proc);
    if (path === undefined) return undefined;
    const sha256 = await hashPath(path);
    if (sha256 === undefined || !running(w, proc) || socket.destroyed) return undefined;
    return { path, sha256 };
  } finally {
    w.CloseHandle(proc);
  }
}

/** `peer` with its `executable` reader for the pipe behind `socket` (none without a pid). */
export function withExecutable(peer: PeerInfo, w: Win32, socket: Socket): PeerInfo {
  const { pid } = peer;
  if (pid === undefined || pid <= 0) return peer;
  const acceptedAt = Date.now();
  return { ...peer, executable: onceExecutable(() => readPeerExecutable(w, pid, acceptedAt, socket)) };
}
