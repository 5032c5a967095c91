/**
 * Test helpers: a scratch directory with the example's key and config files (owned by the users
 * who will read them), and the example's programs run as separate processes, as other users where
 * the OS has them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { chmodSync, chownSync, mkdirSync, mkdtempSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { encodeKey, generateKeyPair, writeSecretKeyFile, zeroKeyPair } from '@secure-ipc/core';
import test, { type ExecutionContext } from 'ava';

const program = (name: string) => fileURLToPath(new URL(`../src/${name}.js`, import.meta.url));
/** The example's programs. */
export const DAEMON = program('daemon');
export const APP = program('app');
export const ELECTRON_MAIN = program('electron-main');

/** The unprivileged app's uid, and a second unprivileged uid the daemon does not allow. */
export const NOBODY = 65534;
export const OTHER = 65533;

const posix = process.platform !== 'win32';

/**
 * Register a test that needs root on Linux (it runs the daemon as root and the app as uid 65534).
 * Not root: in CI (`CI` set, where the suite runs as root) the test fails, saying why; elsewhere it
 * is skipped with the reason in its title.
 */
export function asRootOnLinux(title: string, fn: (t: ExecutionContext) => Promise<void>): void {
  const why = process.platform !== 'linux' ? 'not Linux' : process.geteuid?.() !== 0 ? 'not root' : undefined;
  if (why === undefined) test(title, fn);
  else if (process.env.CI && process.platform === 'linux')
    test(title, (t) => t.fail(`needs root (CI runs this suite as root): ${why}`));
  else
    test.skip(
      `${title} (skipped: needs root on Linux for a root daemon and a uid-${NOBODY} app; ${why})`,
      fn,
    );
}

/** A fresh scratch directory any user may traverse (0711, like /run), removed when the test ends. */
export function scratch(t: ExecutionContext): string {
  const dir = realpathSync(mkdtempSync(join(tmpdir(), 'sipc-helper-')));
  if (posix) chmodSync(dir, 0o711);
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** A private (0700) directory `name` in `base`, owned by `owner` (Unix). */
export function privateDir(base: string, name: string, owner?: number): string {
  const dir = join(base, name);
  mkdirSync(dir, { mode: 0o700 });
  if (posix && owner !== undefined) chownSync(dir, owner, owner);
  return dir;
}

/** A fresh key pair: its secret written (0600) to each of `files` (path, owner); returns the public key text. */
export async function keyFiles(...files: [path: string, owner?: number][]): Promise<string> {
  const keys = generateKeyPair();
  try {
    for (const [path, owner] of files) {
      await writeSecretKeyFile(path, keys.secretKey);
      if (posix && owner !== undefined) chownSync(path, owner, owner);
    }
    return encodeKey(keys.publicKey);
  } finally {
    zeroKeyPair(keys);
  }
}

/** Write `value` as JSON to `path` with `mode` (default 0644), owned by `owner` (Unix). */
export function writeJson(path: string, value: object, owner?: number, mode = 0o644): string {
  writeFileSync(path, `${JSON.stringify(value, null, 2)}\n`, { mode });
  if (posix) {
    chmodSync(path, mode); // not narrowed by the umask
    if (owner !== undefined) chownSync(path, owner, owner);
  }
  return path;
}

/** A running program: its output lines so far, and ways to wait for more or for its exit. */
export interface Proc {
  child: ChildProcess;
  stdout: string[];
  stderr: string[];
  /** The first line of `stream` that `match` accepts; rejects, with the output, if the program exits first. */
  waitFor(stream: 'stdout' | 'stderr', match: (line: string) => boolean): Promise<string>;
  /** Resolves with the exit code once the program exited and its output is read. */
  exited: Promise<number | null>;
}

/** Run the example program `script` with `args` (as `uid` and the group of that number, on Unix); killed when the test ends. */
export function run(t: ExecutionContext, script: string, args: string[], uid?: number): Proc {
  const child = spawn(process.execPath, [script, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(uid === undefined ? {} : { uid, gid: uid }),
  });
  const out = { stdout: [] as string[], stderr: [] as string[] };
  const waiters = new Set<() => void>();
  const closed = (['stdout', 'stderr'] as const).map(
    (name) =>
      new Promise<void>((resolve) => {
        const lines = createInterface({ input: child[name]! });
        lines.on('line', (line) => {
          out[name].push(line);
          for (const wake of waiters) wake();
        });
        lines.on('close', resolve);
      }),
  );
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => Promise.all(closed).then(() => resolve(code)));
  });
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const dump = () => `stdout:\n${out.stdout.join('\n')}\nstderr:\n${out.stderr.join('\n')}`;
  const waitFor = (stream: 'stdout' | 'stderr', match: (line: string) => boolean) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const found = out[stream].find(match);
        if (found === undefined) return;
        waiters.delete(check);
        resolve(found);
      };
      waiters.add(check);
      check();
      exited.then((code) => {
        check();
        if (waiters.delete(check))
          reject(new Error(`${script} exited (code ${code}) before the line awaited\n${dump()}`));
      });
    });
  return { child, ...out, waitFor, exited };
}

/** Run a program to its end; returns its exit code and its stdout lines parsed as JSON (after `prefix`). */
export async function runToEnd(
  t: ExecutionContext,
  script: string,
  args: string[],
  uid?: number,
  prefix = '',
): Promise<{ code: number | null; pid: number | undefined; lines: Record<string, any>[]; stderr: string[] }> {
  const proc = run(t, script, args, uid);
  const code = await proc.exited;
  t.log(
    `${script.split(/[\\/]/).pop()} exited ${code}:\n${proc.stdout.join('\n')}\n${proc.stderr.join('\n')}`,
  );
  const lines = proc.stdout
    .filter((l) => l.startsWith(prefix))
    .map((l) => JSON.parse(l.slice(prefix.length)));
  return { code, pid: proc.child.pid, lines, stderr: proc.stderr };
}

/** Start the daemon with `config`; resolves once it prints `listening ADDRESS`. */
export async function startDaemon(t: ExecutionContext, config: string): Promise<Proc> {
  const daemon = run(t, DAEMON, [config]);
  await daemon.waitFor('stdout', (l) => l.startsWith('listening '));
  return daemon;
}
