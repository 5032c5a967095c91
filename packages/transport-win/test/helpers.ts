/** Shared helpers of transport-win's tests: unique pipe names and child Windows processes. */
import { type ChildProcess, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import type { ExecutionContext } from 'ava';
import { currentUserSid } from '../src/index.js';

/** A pipe name no other test (or run) uses. */
export function uniqueName(tag: string): string {
  return `sipc-test-${tag}-${process.pid}-${randomBytes(6).toString('hex')}`;
}

/** A running fixture process and its stdout lines. */
export interface Fixture {
  readonly child: ChildProcess;
  readonly pid: number;
  /** Every stdout line so far. */
  readonly lines: string[];
  /** Resolve with the first line (already seen or future) that matches. */
  waitFor(match: (line: string) => boolean): Promise<string>;
  /** Close its stdin (the fixture shuts down cleanly) and wait for it to exit; kill it after 10 s. */
  stop(): Promise<void>;
}

/**
 * Start `dist/test/fixtures/<name>.js` with this same node (the Windows node.exe under Wine), wait
 * for its `READY <pid>` line, and register its cleanup with the test.
 */
export async function startFixture(t: ExecutionContext, name: string, args: string[]): Promise<Fixture> {
  const script = fileURLToPath(new URL(`./fixtures/${name}.js`, import.meta.url));
  const child = spawn(process.execPath, [script, ...args], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines: string[] = [];
  const waiting = new Set<{ match: (l: string) => boolean; resolve: (l: string) => void }>();
  let buffered = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    buffered += chunk;
    for (let i = buffered.indexOf('\n'); i >= 0; i = buffered.indexOf('\n')) {
      const line = buffered.slice(0, i).replace(/\r$/, '');
      buffered = buffered.slice(i + 1);
      lines.push(line);
      for (const w of waiting) {
        if (w.match(line)) {
          waiting.delete(w);
          w.resolve(line);
        }
      }
    }
  });
  const exited = once(child, 'exit');
  const waitFor = (match: (line: string) => boolean) => {
    const seen = lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise<string>((resolve, reject) => {
      waiting.add({ match, resolve });
      void exited.then(() => reject(new Error(`${name} exited; output: ${lines.join(' | ')}`)));
    });
  };
  const stop = async () => {
    if (child.exitCode !== null || child.signalCode !== null) return;
    child.stdin!.end();
    const timer = setTimeout(() => child.kill(), 10_000);
    await exited;
    clearTimeout(timer);
  };
  t.teardown(stop);
  const ready = await waitFor((l) => l.startsWith('READY ') || l.startsWith('FAILED'));
  if (!ready.startsWith('READY ')) throw new Error(`${name} failed to start: ${ready}`);
  return { child, pid: Number(ready.slice('READY '.length)), lines, waitFor, stop };
}

/** Parsed JSON event lines of a fixture. */
export function events(fixture: Fixture): Record<string, unknown>[] {
  return fixture.lines.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
}

/**
 * Assert that `server` (a pipe-server fixture) refused this process at accept: a `reject` event
 * with SIPC_ERR_PEER_CREDENTIALS naming our pid and user SID, and no `connection` event.
 */
export async function assertRefusedAtAccept(t: ExecutionContext, server: Fixture): Promise<void> {
  const reject = JSON.parse(await server.waitFor((l) => l.includes('"reject"'))) as {
    code: string;
    peer: { pid: number; sid: string };
  };
  t.is(reject.code, 'SIPC_ERR_PEER_CREDENTIALS');
  t.is(reject.peer.pid, process.pid);
  t.is(reject.peer.sid, currentUserSid());
  t.false(events(server).some((e) => e.event === 'connection'));
}
