/**
 * Parent <-> worker control messages. They travel over Node's IPC channel (a separate pipe from
 * the sockets under test), with the advanced serializer so keys stay Uint8Arrays and are never
 * turned into argv or environment strings that `ps` or a crash report could show.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import type { SideSecrets } from './impl.js';

/** A request from the parent to a worker. */
export type ControlRequest =
  | { op: 'serve'; row: string; secrets: SideSecrets; dir: string }
  | { op: 'connect'; row: string; secrets: SideSecrets; address: string }
  | { op: 'run'; scenario: 'roundTrip' | 'pipelined' | 'bulk' | 'connect'; params: Record<string, number> }
  | { op: 'open-idle'; n: number }
  | { op: 'grow-idle'; n: number }
  | { op: 'conn-load'; durationMs: number; size: number }
  | { op: 'close-idle' }
  | { op: 'rss' }
  | { op: 'close' };

/** A worker's answer, matched to the request by `id`. */
export type ControlReply =
  | { id: number; ok: true; value: unknown }
  | { id: number; ok: false; error: string };

const WORKER = fileURLToPath(new URL('./worker.js', import.meta.url));

/** A spawned worker process (server or client side of one row). */
export class WorkerHandle {
  readonly #child: ChildProcess;
  #next = 1;
  readonly #pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #exited: Error | undefined;

  constructor(role: 'server' | 'client', execArgv: string[]) {
    this.#child = fork(WORKER, [role], {
      serialization: 'advanced',
      // --expose-gc: the RSS test collects garbage on both sides before reading RSS.
      execArgv: ['--expose-gc', ...execArgv],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.#child.on('message', (msg: ControlReply) => {
      const p = this.#pending.get(msg.id);
      if (p === undefined) return;
      this.#pending.delete(msg.id);
      if (msg.ok) p.resolve(msg.value);
      else p.reject(new Error(msg.error));
    });
    this.#child.on('exit', (code, signal) => {
      this.#exited = new Error(`${role} worker exited (${signal ?? code})`);
      for (const p of this.#pending.values()) p.reject(this.#exited);
      this.#pending.clear();
    });
  }

  /** Send a request; rejects on the worker's error, its exit, or after `timeoutMs`. */
  call<T>(request: ControlRequest, timeoutMs: number): Promise<T> {
    if (this.#exited) return Promise.reject(this.#exited);
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new Error(`${request.op} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      this.#pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v as T);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      this.#child.send({ id, ...request });
    });
  }

  /** Ask the worker to close, then make sure the process is gone. */
  async stop(): Promise<void> {
    if (this.#exited) return;
    const gone = new Promise<void>((resolve) => this.#child.once('exit', () => resolve()));
    try {
      await this.call({ op: 'close' }, 5000);
    } catch {
      // A worker that does not answer is killed below; its pid is ours.
    }
    const timer = setTimeout(() => this.#child.kill('SIGKILL'), 5000);
    await gone;
    clearTimeout(timer);
  }
}
