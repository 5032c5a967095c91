/** Small byte-stream helpers for the suites: read exact amounts, hash, and wait for close. */
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import type { Connection } from '@secure-ipc/core';

/** Read exactly `n` bytes from `conn` (rejects if it closes first), leaving the rest unread. */
export function readExactly(conn: Connection, n: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let have = 0;
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      have += chunk.length;
      if (have >= n) {
        cleanup();
        const all = Buffer.concat(chunks);
        if (all.length > n) conn.unshift(all.subarray(n));
        resolve(all.subarray(0, n));
      }
    };
    const onClose = () => {
      cleanup();
      reject(new Error(`connection closed after ${have} of ${n} bytes`));
    };
    const cleanup = () => {
      conn.off('data', onData);
      conn.off('close', onClose);
      conn.pause();
    };
    conn.on('data', onData);
    conn.once('close', onClose);
    conn.resume();
  });
}

/** Write `data` to `conn` in pieces of at most `piece` bytes, awaiting drain (backpressure). */
export async function writeAll(conn: Connection, data: Uint8Array, piece = 64 * 1024): Promise<void> {
  for (let off = 0; off < data.length; off += piece) {
    if (!conn.write(data.subarray(off, Math.min(off + piece, data.length)))) await once(conn, 'drain');
  }
}

/** Write `data`, read the same number of bytes back, and return them (one round trip to an echo server). */
export async function echo(conn: Connection, data: Uint8Array): Promise<Buffer> {
  const [, back] = await Promise.all([writeAll(conn, data), readExactly(conn, data.length)]);
  return back;
}

/** SHA-256 hex of `data`, to compare large buffers with a readable failure message. */
export function digest(data: Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

/** `n` random bytes. */
export function random(n: number): Buffer {
  return randomBytes(n);
}

/** Resolve once `conn` has emitted 'close' (immediately if it already did). */
export function closed(conn: Connection): Promise<void> {
  return conn.closed ? Promise.resolve() : once(conn, 'close').then(() => undefined);
}

/** Resolve once the peer's end of `conn` is over: end-of-stream, an error or close (reads and drops any bytes). */
export function hungUp(conn: Connection): Promise<void> {
  if (conn.readableEnded || conn.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    conn
      .once('end', resolve)
      .once('close', resolve)
      .once('error', () => resolve());
    conn.resume();
  });
}
