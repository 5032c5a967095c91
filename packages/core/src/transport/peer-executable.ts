/**
 * What a transport that reports `PeerInfo.executable` shares with the others: the image's SHA-256
 * read in fixed-size chunks (bounded memory whatever the image's size, and a size cap so a huge
 * file cannot hold the reader for long), and one fail-closed answer per connection. Nothing here
 * is OS-specific: each transport finds, opens and pins the image its own way (transport-unix
 * through /proc/PID/exe, transport-win through QueryFullProcessImageNameW).
 */
import { createHash } from 'node:crypto';
import type { FileHandle } from 'node:fs/promises';
import type { PeerExecutable } from './contract.js';

/** The largest executable image hashed (1 GiB); a bigger one is reported as unknown. */
export const MAX_EXECUTABLE_BYTES = 1024 ** 3;

// 256 KiB per read: a 120 MB node binary in ~470 reads, memory fixed at one chunk.
const CHUNK_BYTES = 256 * 1024;

/** SHA-256 (hex) of an open file, read from offset 0 in chunks; undefined past `maxBytes`. */
export async function sha256OfFile(
  file: FileHandle,
  maxBytes: number = MAX_EXECUTABLE_BYTES,
): Promise<string | undefined> {
  const hash = createHash('sha256');
  const chunk = Buffer.allocUnsafe(CHUNK_BYTES);
  let total = 0;
  for (;;) {
    const { bytesRead } = await file.read(chunk, 0, CHUNK_BYTES, total);
    if (bytesRead === 0) return hash.digest('hex');
    total += bytesRead;
    if (total > maxBytes) return undefined;
    hash.update(chunk.subarray(0, bytesRead));
  }
}

const wellFormed = (e: PeerExecutable | undefined): PeerExecutable | undefined =>
  e !== undefined && typeof e.path === 'string' && e.path !== '' && /^[0-9a-f]{64}$/.test(e.sha256)
    ? Object.freeze({ path: e.path, sha256: e.sha256 })
    : undefined;

/**
 * `PeerInfo.executable` from a transport's reader: runs `read` on the first call only, and turns a
 * rejection or a malformed answer into undefined (fail closed), so every caller of one connection
 * sees the same answer and none sees an error.
 */
export function onceExecutable(
  read: () => Promise<PeerExecutable | undefined>,
): () => Promise<PeerExecutable | undefined> {
  let answer: Promise<PeerExecutable | undefined> | undefined;
  return () => {
    answer ??= (async () => read())().then(wellFormed, () => undefined);
    return answer;
  };
}
