/** Test helpers: a private temp directory per test, removed in teardown. */
import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';

/** A fresh 0700 directory (mkdtemp), removed when the test ends. */
export function tempDir(t: ExecutionContext): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'sipc-unix-')));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}
