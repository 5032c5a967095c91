/**
 * Activation (docs/bus.md section 6): the broker starts the owner of a well-known name on the
 * first call to it, once (concurrent calls wait for the same start), and the call waits until the
 * started process owns the name, it exits, or the caller's deadline passes.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createError, PublicError } from '@secure-ipc/core';
import { isOwnableName } from './names.js';

/** How to start a name's owner. */
export interface ActivationSpec {
  /** The program and its arguments (no shell). */
  readonly command: readonly [string, ...string[]];
  /** Its environment (default: the broker's). */
  readonly env?: Readonly<Record<string, string>>;
  /** Its working directory (default: the broker's). */
  readonly cwd?: string;
}

/** The wait when the caller gives no deadline: 25 s, as D-Bus. */
export const DEFAULT_ACTIVATION_TIMEOUT_MS = 25_000;

/** What the activator tells the broker. */
export interface ActivationEvent {
  /** The name. */
  readonly name: string;
  /** started, or exited (with its code or signal). */
  readonly event: 'started' | 'exited' | 'failed';
  /** The process id, when it started. */
  readonly pid?: number | undefined;
  /** Exit code or signal, when it exited. */
  readonly exit?: number | string | null | undefined;
  /** A line the process wrote on stdout/stderr (its log). */
  readonly line?: string | undefined;
}

interface Running {
  readonly child: ChildProcess;
  readonly waiters: Set<{ resolve: () => void; reject: (e: Error) => void }>;
}

/** Starts owners and wakes the calls waiting for them. */
export class Activator {
  readonly #specs: ReadonlyMap<string, ActivationSpec>;
  readonly #running = new Map<string, Running>();
  readonly #onEvent: (e: ActivationEvent) => void;
  /** What a started process is told about the bus (D-Bus's DBUS_STARTER_ADDRESS). */
  starterEnv: () => Record<string, string> = () => ({});

  /** Specs validated here (SIPC_ERR_INVALID_ARGUMENT). */
  constructor(
    specs: Readonly<Record<string, ActivationSpec>> | undefined,
    onEvent: (e: ActivationEvent) => void,
  ) {
    const map = new Map<string, ActivationSpec>();
    for (const [name, spec] of Object.entries(specs ?? {})) {
      if (!isOwnableName(name))
        throw createError(
          'SIPC_ERR_INVALID_ARGUMENT',
          `activation: ${JSON.stringify(name)} is not a name a peer may own`,
        );
      if (
        !Array.isArray(spec?.command) ||
        spec.command.length === 0 ||
        !spec.command.every((a) => typeof a === 'string' && a.length > 0 && !a.includes('\0'))
      )
        throw createError(
          'SIPC_ERR_INVALID_ARGUMENT',
          `activation ${name}: command is a non-empty list of arguments`,
        );
      map.set(name, spec);
    }
    this.#specs = map;
    this.#onEvent = onEvent;
  }

  /** True if `name` can be activated. */
  has(name: string): boolean {
    return this.#specs.has(name);
  }

  /**
   * Start `name`'s owner unless it runs already, and resolve once `acquired(name)` is called;
   * reject with SIPC_ERR_TIMEOUT after `timeoutMs` or on `signal`, and with the public
   * SIPC_ERR_NAME_HAS_NO_OWNER if the process cannot start or exits first.
   */
  wait(name: string, timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const running = this.#running.get(name) ?? this.#start(name);
    return new Promise<void>((resolve, reject) => {
      const waiter = {
        resolve: () => {
          cleanup();
          resolve();
        },
        reject: (e: Error) => {
          cleanup();
          reject(e);
        },
      };
      const timer = setTimeout(
        () =>
          waiter.reject(createError('SIPC_ERR_TIMEOUT', `${name} was not activated within ${timeoutMs} ms`)),
        timeoutMs,
      );
      const onAbort = () =>
        waiter.reject(signal?.reason instanceof Error ? signal.reason : createError('SIPC_ERR_CANCELLED'));
      signal?.addEventListener('abort', onAbort, { once: true });
      const cleanup = () => {
        clearTimeout(timer);
        signal?.removeEventListener('abort', onAbort);
        running.waiters.delete(waiter);
      };
      running.waiters.add(waiter);
    });
  }

  /** The name got an owner: every call waiting for it goes on. */
  acquired(name: string): void {
    const running = this.#running.get(name);
    if (running === undefined) return;
    for (const w of [...running.waiters]) w.resolve();
  }

  #start(name: string): Running {
    const spec = this.#specs.get(name)!;
    const [file, ...args] = spec.command;
    const child = spawn(file, args, {
      cwd: spec.cwd,
      env: { ...(spec.env ?? process.env), ...this.starterEnv(), SIPC_BUS_ACTIVATED_NAME: name },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const running: Running = { child, waiters: new Set() };
    this.#running.set(name, running);
    const fail = (data: Record<string, unknown>, message: string) => {
      this.#running.delete(name);
      const err = new PublicError('SIPC_ERR_NAME_HAS_NO_OWNER', message, { data });
      for (const w of [...running.waiters]) w.reject(err);
    };
    child.once('spawn', () => this.#onEvent({ name, event: 'started', pid: child.pid }));
    child.once('error', (err) => {
      this.#onEvent({ name, event: 'failed', line: err.message });
      fail({ activation: 'spawn' }, `${name} could not be activated`);
    });
    child.once('exit', (code, sig) => {
      this.#onEvent({ name, event: 'exited', pid: child.pid, exit: code ?? sig });
      fail({ activation: 'exited', exit: code ?? sig ?? null }, `${name} exited before it owned the name`);
    });
    for (const stream of [child.stdout, child.stderr]) {
      stream?.setEncoding('utf8');
      let partial = '';
      stream?.on('data', (chunk: string) => {
        const lines = (partial + chunk).split('\n');
        partial = lines.pop()!.slice(-4096);
        for (const line of lines)
          if (line !== '')
            this.#onEvent({ name, event: 'started', pid: child.pid, line: line.slice(0, 4096) });
      });
    }
    return running;
  }

  /** Stop tracking (the broker closes); started processes keep running. */
  close(): void {
    for (const running of this.#running.values()) {
      running.child.stdout?.destroy();
      running.child.stderr?.destroy();
      running.child.unref();
    }
    this.#running.clear();
  }
}
