import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';

/** The real binary: the committed bin file npm links, which loads the built dist/src/main.js. */
export const cliMain = fileURLToPath(new URL('../../bin/secure-ipc.js', import.meta.url));

/** The test server with methods besides `$ping` (test/fixtures/rpc-server.ts, built). */
export const rpcServerMain = fileURLToPath(new URL('./fixtures/rpc-server.js', import.meta.url));

/** Result of one CLI run in its own process. */
export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `secure-ipc ARGS` as a separate process; `input` goes to stdin. */
export function cli(
  args: string[],
  options: { input?: string; cwd?: string; onStdout?: (soFar: string) => void; uid?: number } = {},
): Promise<CliRun> {
  return new Promise((resolve) => {
    const child = execFile(
      process.execPath,
      [cliMain, ...args],
      {
        cwd: options.cwd,
        timeout: 60_000,
        maxBuffer: 4 * 1024 * 1024,
        // As another user (root only): that user and its group of the same number.
        ...(options.uid === undefined ? {} : { uid: options.uid, gid: options.uid }),
      },
      (err, stdout, stderr) => {
        const code = err ? ((err as { code?: number }).code ?? 1) : 0;
        resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
      },
    );
    let soFar = '';
    if (options.onStdout)
      child.stdout?.on('data', (d) => {
        soFar += String(d);
        options.onStdout?.(soFar);
      });
    child.stdin?.end(options.input ?? '');
  });
}

/** A temporary directory removed after the test. */
export async function tempDir(t: ExecutionContext, prefix = 'sipc-cli-'): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** Generate a key file with the CLI; returns its path and public key. */
export async function keyFile(dir: string, name: string): Promise<{ path: string; pub: string }> {
  const path = join(dir, name);
  const gen = await cli(['keygen', '--out', path]);
  if (gen.code !== 0) throw new Error(`keygen failed: ${gen.stderr}`);
  const pub = await cli(['pubkey', '--key', path]);
  if (pub.code !== 0) throw new Error(`pubkey failed: ${pub.stderr}`);
  return { path, pub: pub.stdout.trim() };
}

/** `secure-ipc cert issue` for `pubkey`, signed by the authority key file `ca`, written to `out`. */
export function issueCert(o: {
  ca: string;
  pubkey: string;
  name: string;
  out: string;
  roles?: string[];
  extra?: string[];
}): Promise<CliRun> {
  const roles = (o.roles ?? []).flatMap((r) => ['--role', r]);
  return cli([
    'cert',
    'issue',
    '--ca',
    o.ca,
    '--pubkey',
    o.pubkey,
    '--name',
    o.name,
    ...roles,
    '--out',
    o.out,
    ...(o.extra ?? []),
  ]);
}

/** A running server process: its first stdout line, and a stop() that sends SIGTERM and waits. */
export interface Served {
  child: ChildProcess;
  firstLine: string;
  /** Everything it printed on stdout so far. */
  stdout: () => string;
  stderr: () => string;
  stop: (signal?: NodeJS.Signals) => Promise<number | null>;
}

/** Start `node SCRIPT ARGS`; resolves after its first stdout line (or rejects if it exits first). */
export function spawnServer(t: ExecutionContext, script: string, args: string[]): Promise<Served> {
  const child = spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'pipe'] });
  let outText = '';
  let errText = '';
  child.stdout!.on('data', (d) => {
    outText += String(d);
  });
  child.stderr!.on('data', (d) => {
    errText += String(d);
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const stop = async (signal: NodeJS.Signals = 'SIGTERM') => {
    if (child.exitCode === null && child.signalCode === null) child.kill(signal);
    return exited;
  };
  t.teardown(() => stop('SIGKILL'));
  return new Promise((resolve, reject) => {
    const rl = createInterface({ input: child.stdout! });
    rl.once('line', (firstLine) =>
      resolve({ child, firstLine, stdout: () => outText, stderr: () => errText, stop }),
    );
    void exited.then((code) =>
      reject(new Error(`${script} exited with ${code} before printing: ${errText}`)),
    );
  });
}

/** Start `secure-ipc serve ARGS`; resolves after its first stdout line (or rejects if it exits first). */
export function serve(t: ExecutionContext, args: string[]): Promise<Served> {
  return spawnServer(t, cliMain, ['serve', ...args]);
}

/**
 * A `secure-ipc serve` on a unix socket in a temporary directory, trusting one client key per
 * name in `clients` and granting `$stats` (`--grant-stats`) to the first only.
 */
export async function statsServer(t: ExecutionContext, clients: readonly string[]) {
  const dir = await tempDir(t);
  const server = await keyFile(dir, 'server.key');
  const keys: Array<{ path: string; pub: string }> = [];
  for (const name of clients) keys.push(await keyFile(dir, name));
  const address = `unix://${join(dir, 'run', 's.sock')}`;
  const trusted = keys.flatMap((k) => ['--allow', k.pub]);
  const s = await serve(t, [
    '--listen',
    address,
    '--key',
    server.path,
    ...trusted,
    '--grant-stats',
    keys[0]!.pub,
  ]);
  t.is(s.firstLine, `listening ${address}`);
  return { address, server, clients: keys };
}
