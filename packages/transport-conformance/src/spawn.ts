/** Start a fixture child process for one test and make sure it is gone when the test ends. */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import type { FixtureRole, FixtureSpec } from './fixture.js';
import type { ChildTransportSpec } from './options.js';

/** A running fixture process. */
export interface Fixture {
  /** The child process. */
  readonly child: ChildProcess;
  /** The address the child reported (the listener's real address for servers). */
  readonly address: string;
  /** Resolves when the child has exited. */
  readonly exited: Promise<void>;
}

const FIXTURE = fileURLToPath(new URL('./fixture.js', import.meta.url));

/**
 * Spawn the fixture playing `role` at `address` and wait for its `ready` line. The child is
 * killed (SIGKILL) in the test's teardown if it is still running; its stdin is a pipe, so it also
 * exits on its own if this process dies.
 */
export async function startFixture(
  t: ExecutionContext,
  spec: ChildTransportSpec,
  role: FixtureRole,
  address: string,
  extra: { args?: Record<string, unknown>; env?: Record<string, string>; nodeArgs?: readonly string[] } = {},
): Promise<Fixture> {
  const arg: FixtureSpec = {
    transport: { module: spec.module, factory: spec.factory, options: spec.options },
    role,
    address,
    ...(extra.args === undefined ? {} : { extra: extra.args }),
  };
  const child = spawn(
    spec.execPath ?? process.execPath,
    [...(spec.execArgv ?? []), ...(extra.nodeArgs ?? []), FIXTURE, JSON.stringify(arg)],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, ...spec.env, ...extra.env },
    },
  );
  const exited = once(child, 'exit').then(() => undefined);
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  let out = '';
  const line = await new Promise<string>((resolve, reject) => {
    child.stdout!.setEncoding('utf8');
    child.stdout!.on('data', (chunk: string) => {
      out += chunk;
      const nl = out.indexOf('\n');
      if (nl >= 0) resolve(out.slice(0, nl));
    });
    child.once('exit', (code, signal) =>
      reject(new Error(`fixture exited early (${code ?? signal}): ${out}`)),
    );
    child.once('error', reject);
  });
  if (!line.startsWith('ready ')) throw new Error(`fixture ${role} failed: ${line}`);
  return { child, address: line.slice('ready '.length), exited };
}
