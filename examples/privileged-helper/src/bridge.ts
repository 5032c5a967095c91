/**
 * The messages between the Electron main process and the utility process that holds the
 * secure-ipc client (electron-main.ts, electron-utility.ts). Structured-clone-able plain objects,
 * so the same shapes cross Electron's `utilityProcess` port and Node's `child_process.fork` channel.
 *
 *   main → utility   { id, method }           call a daemon method
 *                    { quit: true }           close the client and exit
 *   utility → main   { ready: true, pid }     connected to the daemon (pid: the utility's own)
 *                    { ready: false, error, message }   could not connect; it exits next
 *                    { id, method, result } | { id, method, error, message }   a call's outcome
 *                    { closed: true, error?, message? }   the daemon's channel closed; it exits next
 */
import type { CallOutcome } from './helper-client.js';
import { type HelperMethod, isHelperMethod } from './service.js';

/** main → utility: a call. */
export interface CallMessage {
  /** Correlates the reply. */
  id: number;
  /** The daemon method. */
  method: HelperMethod;
}

/** utility → main. */
export type UtilityMessage =
  | { ready: true; pid: number }
  | { ready: false; error: string; message: string }
  | ({ id: number } & CallOutcome)
  | { closed: true; error?: string; message?: string };

/** Whether `m` (from the other process, so untrusted in shape) is a well-formed call. */
export function isCallMessage(m: unknown): m is CallMessage {
  const r = m as Partial<CallMessage> | null;
  return typeof r === 'object' && r !== null && Number.isSafeInteger(r.id) && isHelperMethod(r.method);
}

/** Whether `m` asks the utility to quit. */
export function isQuitMessage(m: unknown): m is { quit: true } {
  return typeof m === 'object' && m !== null && (m as { quit?: unknown }).quit === true;
}
