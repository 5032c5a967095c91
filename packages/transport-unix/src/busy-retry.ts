/**
 * connect() on a Unix socket whose listen backlog is full fails at once with EAGAIN on Linux
 * (a TCP client would wait in SYN retransmits instead). Under a flood of connections the backlog
 * fills for a moment even though the server accepts as fast as it can, so a client retries with
 * a growing, jittered pause until `connectBusyTimeoutMs` (default 5 s) has passed; other errors,
 * and an abort, end the wait at once. macOS reports a full backlog as ECONNREFUSED, the same as
 * no listener at all, so there it is not retried.
 */
import type { Socket } from 'node:net';
import { type AbortOptions, createError, isSecureIpcError } from '@secure-ipc/core';
import { abortError } from '@secure-ipc/core/transport';

/** Default time a connect keeps retrying a full listen backlog (ms). */
export const DEFAULT_CONNECT_BUSY_TIMEOUT_MS = 5_000;

const FIRST_PAUSE_MS = 2;
const LONGEST_PAUSE_MS = 100;
const MAX_TIMER_MS = 2 ** 31 - 1;

/** Throw SIPC_ERR_INVALID_ARGUMENT unless `value` is undefined or an integer from 0 (no retry) to 2^31-1 ms. */
export function validateBusyTimeout(value: unknown): void {
  if (
    value !== undefined &&
    !(Number.isSafeInteger(value) && (value as number) >= 0 && (value as number) <= MAX_TIMER_MS)
  )
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      'connectBusyTimeoutMs must be an integer from 0 to 2^31-1 ms',
    );
}

function isBusy(err: unknown): boolean {
  return (
    isSecureIpcError(err, 'SIPC_ERR_CONNECT_FAILED') &&
    (err.cause as NodeJS.ErrnoException | undefined)?.code === 'EAGAIN'
  );
}

function pause(ms: number, options: AbortOptions): Promise<void> {
  return new Promise((resolve, reject) => {
    const { signal } = options;
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortError(options));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Run `attempt` (one connect) until it succeeds, fails otherwise, or the backlog stays full for `timeoutMs`. */
export async function connectRetryingBusy(
  attempt: () => Promise<Socket>,
  timeoutMs: number,
  options: AbortOptions,
): Promise<Socket> {
  const deadline = Date.now() + timeoutMs;
  let wait = FIRST_PAUSE_MS;
  for (let tries = 1; ; tries++) {
    try {
      return await attempt();
    } catch (err) {
      const left = deadline - Date.now();
      if (!isBusy(err) || left <= 0) {
        if (isBusy(err) && timeoutMs > 0)
          throw createError(
            'SIPC_ERR_CONNECT_FAILED',
            `${(err as Error).message} (the listen backlog stayed full for ${timeoutMs} ms, ${tries} attempts)`,
            { cause: (err as Error).cause, details: { busy: true, attempts: tries } },
          );
        throw err;
      }
      await pause(Math.min(left, wait * (0.5 + Math.random())), options);
      wait = Math.min(wait * 2, LONGEST_PAUSE_MS);
    }
  }
}
