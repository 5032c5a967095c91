/**
 * A stand-in for an Electron app's main process: it starts the app side (electron-utility.ts) as a
 * separate process and asks it to call the daemon, the way an Electron main process would with
 * `utilityProcess.fork()`. Electron's binary cannot be downloaded where this repository's tests run,
 * so this is plain Node, with `child_process.fork` standing in for `utilityProcess.fork`: the same
 * shape (fork a module with arguments, post messages, a `message` and an `exit` event); in Electron
 * `child.send(m)` is `child.postMessage(m)`. docs/electron.md shows the Electron version.
 *
 *   node dist/src/electron-main.js APP.json [METHOD ...]     (default: status.get)
 *
 * Prints one JSON line per step, prefixed `main:`, and exits 0 when every call succeeded, 1 otherwise.
 * The main process never reads the key file or holds the channel: in Electron it would answer its
 * renderer's `ipcRenderer.invoke('helper:status')` with `helperCall('status.get')` and nothing more.
 */
import { type ChildProcess, fork } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { createError } from '@secure-ipc/core';
import type { UtilityMessage } from './bridge.js';
import { type CallOutcome, failure } from './helper-client.js';
import { type HelperMethod, isHelperMethod } from './service.js';

const UTILITY = fileURLToPath(new URL('./electron-utility.js', import.meta.url));
const print = (line: object) => console.log(`main: ${JSON.stringify(line)}`);

/** The utility process and a function that calls a daemon method through it. */
export interface HelperBridge {
  /** The utility process. */
  child: ChildProcess;
  /** Its pid, as it reported it once connected. */
  pid: number;
  /** Call `method` through the utility; rejects with SIPC_ERR_CONNECTION_CLOSED if the utility goes away. */
  call(method: HelperMethod): Promise<CallOutcome>;
  /** Ask the utility to close its channel and exit; resolves with its exit code. */
  quit(): Promise<number | null>;
}

/** Start the utility process with `configPath`; resolves once it is connected to the daemon. */
export async function startHelperBridge(configPath: string): Promise<HelperBridge> {
  // Electron: utilityProcess.fork(UTILITY, [configPath], { serviceName: 'privileged-helper client' })
  const child = fork(UTILITY, [configPath], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const pending = new Map<number, (outcome: CallOutcome) => void>();
  const gone = new Promise<never>((_, reject) => {
    child.once('exit', (code) =>
      reject(createError('SIPC_ERR_CONNECTION_CLOSED', `The utility process exited (code ${code})`)),
    );
  });
  gone.catch(() => {}); // observed by whoever is waiting; never an unhandled rejection
  let ready: (m: UtilityMessage) => void = () => {};
  const first = new Promise<UtilityMessage>((resolve) => {
    ready = resolve;
  });
  child.on('message', (raw) => {
    const m = raw as UtilityMessage;
    if ('ready' in m || 'closed' in m) ready(m);
    else if ('id' in m) pending.get(m.id)?.(m);
  });
  const hello = await Promise.race([first, gone]);
  if (!('ready' in hello) || !hello.ready) {
    const why = 'error' in hello ? `${hello.error}: ${hello.message}` : 'no reason given';
    throw createError(
      'SIPC_ERR_CONNECT_FAILED',
      `The utility process could not connect to the daemon (${why})`,
    );
  }
  let nextId = 1;
  return {
    child,
    pid: hello.pid,
    call(method) {
      const id = nextId++;
      const answered = new Promise<CallOutcome>((resolve) => pending.set(id, resolve));
      child.send({ id, method }); // Electron: child.postMessage({ id, method })
      return Promise.race([answered, gone]).finally(() => pending.delete(id));
    },
    async quit() {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode; // gone already
      const exited = once(child, 'exit') as Promise<[number | null]>;
      if (child.connected) child.send({ quit: true });
      return (await exited)[0];
    },
  };
}

async function main(argv: string[]): Promise<number> {
  const [configPath, ...names] = argv;
  const methods = names.length > 0 ? names : ['status.get'];
  if (configPath === undefined || !methods.every(isHelperMethod)) {
    console.error('usage: node electron-main.js APP.json [status.get | admin.shutdown ...]');
    return 2;
  }
  let bridge: HelperBridge;
  try {
    bridge = await startHelperBridge(configPath);
  } catch (err) {
    print({ utility: false, error: (err as { code?: string }).code, message: (err as Error).message });
    return 1;
  }
  print({ utility: { pid: bridge.pid } });
  let failed = false;
  for (const method of methods) {
    // A utility that went away (its channel closed, it crashed) is a typed error too, not a throw.
    const outcome = await bridge.call(method).catch((err: unknown) => ({ method, ...failure(err) }));
    print(outcome);
    failed ||= 'error' in outcome;
  }
  const code = await bridge.quit();
  print({ utilityExit: code });
  return failed || code !== 0 ? 1 : 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) process.exitCode = await main(process.argv.slice(2));
