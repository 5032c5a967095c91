/**
 * The reconnecting client against a real server process over real Unix sockets: the server is
 * SIGKILLed and started again on the same path (same key) three times, the client goes
 * idle → connecting → ready → transient_failure → connecting (→ transient_failure → connecting)* →
 * ready each time, its subscription is restored (an event published by the new process arrives),
 * and a process restarted with another key ends the loop with SIPC_ERR_UNTRUSTED_PEER. The time
 * from SIGKILL to ready is logged (measured, never asserted).
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { isSecureIpcError } from '../src/errors.js';
import { generateKeyPair, type KeyPair } from '../src/keys/key-pair.js';
import { encodeKey } from '../src/keys/key-text.js';
import { seededRandom } from '../src/resilience/clock.js';
import { type ConnectivityState, createReconnectingClient } from '../src/resilience/reconnect.js';
import { reached } from './fixtures/reconnect-memory.js';
import type {
  ReconnectProcessApi,
  ReconnectProcessEvents,
  ReconnectServerConfig,
} from './fixtures/reconnect-server-process.js';
import { tempSocketPath, unixTestTransport } from './fixtures/rpc-net.js';

type Child = ChildProcessByStdio<Writable, Readable, null>;

const entry = fileURLToPath(new URL('./fixtures/reconnect-server-process.js', import.meta.url));

/** Start the server process; resolves once it listens. */
function startServer(config: ReconnectServerConfig): Promise<Child> {
  const child = spawn(process.execPath, [entry], { stdio: ['pipe', 'pipe', 'inherit'] });
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`server process exited early (${code})`)));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s: string) => {
      if (s.includes('ready')) resolve(child);
    });
    child.stdin.write(`${JSON.stringify(config)}\n`);
  });
}

function killed(child: Child): Promise<void> {
  return new Promise((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else {
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    }
  });
}

/** The states with each run of (transient_failure, connecting) pairs after the first collapsed to one. */
function collapse(states: readonly ConnectivityState[]): string[] {
  const out: string[] = [];
  for (const s of states) {
    const n = out.length;
    if (s === 'transient_failure' && out[n - 1] === 'connecting' && out[n - 2] === 'transient_failure') {
      out.pop();
      continue;
    }
    if (s === 'connecting' && out[n - 1] === 'transient_failure' && out[n - 2] === 'connecting') continue;
    out.push(s);
  }
  return out;
}

test('SIGKILLed server restarted: reconnect, state sequence, subscription restored; restarted with another key: UNTRUSTED_PEER, shutdown', async (t) => {
  const sock = tempSocketPath();
  const serverKeys = generateKeyPair();
  const clientKeys = generateKeyPair();
  const children = new Set<Child>();
  t.teardown(async () => {
    await Promise.all([...children].map(killed));
    sock.remove();
  });
  const start = async (keys: KeyPair) => {
    const child = await startServer({
      path: sock.path,
      serverSecretKey: encodeKey(keys.secretKey),
      clientKey: encodeKey(clientKeys.publicKey),
    });
    children.add(child);
    return child;
  };
  let server = await start(serverKeys);
  const rc = createReconnectingClient<ReconnectProcessApi, ReconnectProcessEvents>({
    transport: unixTestTransport(),
    address: `test-unix://${sock.path}`,
    keyPair: clientKeys,
    trust: { keys: [serverKeys.publicKey] },
    backoff: { initialMs: 20, maxMs: 100 },
    random: seededRandom(7),
  });
  t.teardown(() => rc.close());
  const states: ConnectivityState[] = [rc.state];
  rc.on('stateChange', (c) => states.push(c.to));
  const got: number[] = [];
  await rc.subscribe('tick.*', (n) => got.push(n));
  const pids = [await rc.request('pid', null)];
  await rc.request('emit', 0);

  const measured: number[] = [];
  const afterListen: number[] = [];
  for (let round = 1; round <= 3; round++) {
    const since = performance.now();
    await killed(server);
    children.delete(server);
    const up = new Promise<void>((resolve) => {
      const on = (c: { from: ConnectivityState; to: ConnectivityState }) => {
        if (c.to !== 'ready') return;
        rc.off('stateChange', on);
        resolve();
      };
      rc.on('stateChange', on);
    });
    server = await start(serverKeys);
    const listening = performance.now();
    await up;
    measured.push(performance.now() - since);
    afterListen.push(performance.now() - listening);
    pids.push(await rc.request('pid', null));
    await rc.request('emit', round);
  }
  const ms = (xs: number[]) => xs.map((m) => m.toFixed(0)).join(', ');
  t.log(`SIGKILL → ready (the new process's start included), ms: ${ms(measured)}`);
  t.log(`new process listening → ready, ms: ${ms(afterListen)}`);
  t.is(new Set(pids).size, 4, 'four different server processes answered');
  t.deepEqual(got, [0, 1, 2, 3], 'the subscription was restored on each new process');
  const cycle = ['transient_failure', 'connecting', 'ready'];
  t.deepEqual(collapse(states), ['idle', 'connecting', 'ready', ...cycle, ...cycle, ...cycle]);

  // Restarted with another key: the first attempt that reaches it is refused for good.
  await killed(server);
  children.delete(server);
  const down = reached(rc, 'shutdown');
  await start(generateKeyPair());
  await down;
  t.true(isSecureIpcError(rc.lastError, 'SIPC_ERR_UNTRUSTED_PEER'), String(rc.lastError));
  const after = await t.throwsAsync(rc.request('pid', null, { waitForReady: true }));
  t.true(isSecureIpcError((after as Error).cause, 'SIPC_ERR_UNTRUSTED_PEER'), String(after));
  t.is(states.at(-1), 'shutdown');
  t.is(states.filter((s) => s === 'shutdown').length, 1);
});
