/** Test helpers: a private temp directory per test, removed in teardown; the peer fixture in its own process. */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';

/** The peer fixture script. */
export const PEER = fileURLToPath(new URL('./fixtures/peer.js', import.meta.url));
const NO_KOFFI = new URL('./fixtures/no-koffi.js', import.meta.url).href;

/**
 * Run the peer fixture (`node peer.js connect|listen ADDRESS POLICY_JSON`), as `uid` (and the group
 * of the same number) if given, without koffi if asked; killed when the test ends. Returns the
 * child and a function that waits for its next stdout line.
 */
export function peerProcess(
  t: ExecutionContext,
  args: string[],
  options: { uid?: number; noKoffi?: boolean } = {},
) {
  const { uid, noKoffi = false } = options;
  const child = spawn(process.execPath, [...(noKoffi ? ['--import', NO_KOFFI] : []), PEER, ...args], {
    stdio: ['pipe', 'pipe', 'inherit'],
    ...(uid === undefined ? {} : { uid, gid: uid }),
  });
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await once(child, 'exit').catch(() => undefined);
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  return { child, next: async () => (await lines.next()).value as string };
}

/** A fresh 0700 directory (mkdtemp), removed when the test ends. */
export function tempDir(t: ExecutionContext): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'sipc-unix-')));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
