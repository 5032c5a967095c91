// Shared fixtures of the identity tests: temporary directories that are always removed.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';

/** A fresh private temp directory, removed when the test ends. */
export function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'sipc-identity-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** The `code` of a thrown value, if it has one. */
export function codeOf(err: unknown): string | undefined {
  return (err as { code?: string } | undefined)?.code;
}

/** The first error in the `cause` chain of `err` (itself included) whose details carry a reason. */
export function refusalIn(err: unknown): { code: string | undefined; reason: unknown } | undefined {
  for (let e = err, depth = 0; e !== undefined && e !== null && depth < 8; depth++) {
    const reason = (e as { details?: { reason?: unknown } }).details?.reason;
    if (reason !== undefined) return { code: codeOf(e), reason };
    e = (e as { cause?: unknown }).cause;
  }
  return undefined;
}

/** Anything that closes once with an optional error: a secure channel, an RPC client. */
interface Closable {
  readonly closed: boolean;
  once(event: 'close', listener: (err?: Error) => void): unknown;
}

/** Resolves with the close error (undefined if clean or already closed), or 'open' after `ms`. */
export function closedWithin(closable: Closable, ms: number): Promise<Error | undefined | 'open'> {
  if (closable.closed) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve('open'), ms);
    closable.once('close', (err) => {
      clearTimeout(timer);
      resolve(err);
    });
  });
}
