/**
 * Handshake flood sub-suite (issue 12, deliverable 6): while a child process running as another
 * OS user (uid 65534) holds 1,000 hostile connections open — silent, drip-feeding message 1, or
 * stalled after a valid message 1 — and reopens each one the server drops, a legitimate client
 * of this process's user connects every 100 ms to a `secureListen` server with the DEFAULT
 * limits. Each of its connects (transport connect, handshake, first answer) must finish, with a
 * p99 under 1 s throughout (the bound the issue names), logged with the flood's numbers.
 *
 * It needs root (to start the child as uid 65534) and a transport whose OS fills
 * `PeerInfo.osIdentity` for the accepting side (the per-identity caps are what keep the other
 * user's flood from taking every slot); without root it is an explicit skip saying so. The
 * transport under test must let uid 65534 connect (unix: `allowedUids`, and an address that
 * user can reach, e.g. `unix-abstract:`); `hostileChild` builds the child's transport.
 */
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { loadavg } from 'node:os';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import {
  generateKeyPair,
  isSecureIpcError,
  type LimitDecision,
  type SecureIpcError,
  secureConnect,
  secureListen,
} from '@secure-ipc/core';
import type { ExecutionContext } from 'ava';
import type { FloodChildSpec, FloodKind } from './flood-child.js';
import type { ChildTransportSpec, ConformanceOptions, Test } from './options.js';

/** Options of `handshakeFloodSuite`. */
export interface FloodOptions extends ConformanceOptions {
  /** How the hostile child builds its transport (default `child`); it runs as `hostileUid`. */
  readonly hostileChild?: ChildTransportSpec | undefined;
  /** The hostile user (default 65534, nobody). */
  readonly hostileUid?: number;
  /** Hostile connections held open (default 1,000). */
  readonly hostileConnections?: number;
  /** How long the legitimate client keeps connecting, ms (default 12,000: past the 10 s handshake deadline). */
  readonly durationMs?: number;
  /**
   * How soon the hostile child reopens a connection the server closed, ms, jittered ±50%
   * (default 1,000: it holds its connections, it is not a connection-rate flood, against which
   * no per-connection cap helps and which costs the server an accept and a close each).
   */
  readonly reconnectDelayMs?: number;
}

const CHILD = fileURLToPath(new URL('./flood-child.js', import.meta.url));
const INTERVAL_MS = 100;
/** The bound the issue names for the legitimate client's connect p99. */
const P99_BOUND_MS = 1_000;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
}

async function startFlood(
  t: ExecutionContext,
  spec: ChildTransportSpec,
  uid: number,
  args: FloodChildSpec,
): Promise<{ stats: () => Promise<string> }> {
  const child = spawn(
    spec.execPath ?? process.execPath,
    [...(spec.execArgv ?? []), CHILD, JSON.stringify(args)],
    {
      stdio: ['pipe', 'pipe', 'inherit'],
      env: { ...process.env, ...spec.env },
      uid,
      gid: uid,
    },
  );
  const exited = once(child, 'exit');
  t.teardown(async () => {
    child.stdin!.end();
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const lines = createInterface({ input: child.stdout! })[Symbol.asyncIterator]();
  const next = async () => ((await lines.next()).value as string | undefined) ?? 'exited';
  const ready = await next();
  if (!ready.startsWith('ready ')) throw new Error(`flood child: ${ready}`);
  return {
    stats: async () => {
      child.stdin!.write('stats\n');
      return next();
    },
  };
}

async function flood(t: ExecutionContext, o: FloodOptions, kinds: readonly FloodKind[]): Promise<void> {
  const spec = o.hostileChild ?? o.child!;
  const count = o.hostileConnections ?? 1_000;
  const durationMs = o.durationMs ?? 12_000;
  const server = generateKeyPair();
  const client = generateKeyPair();
  const listener = secureListen(await o.transport.listen(o.address()), {
    keyPair: server,
    trust: { keys: [client.publicKey] },
  });
  t.teardown(() => listener.close());
  const tally = new Map<string, number>();
  const count1 = (key: string) => tally.set(key, (tally.get(key) ?? 0) + 1);
  listener.on('limit', (d: LimitDecision) => count1(`${d.action} ${d.limit} ${d.identity}`));
  listener.on('handshakeError', (e: SecureIpcError) => {
    if (!isSecureIpcError(e, 'SIPC_ERR_HANDSHAKE_LIMIT')) count1(e.code);
  });
  listener.on('channel', (ch) => ch.on('message', (m) => ch.send(m).catch(() => {})));

  const hostile = await startFlood(t, spec, o.hostileUid ?? 65534, {
    transport: { module: spec.module, factory: spec.factory, options: spec.options },
    address: listener.address,
    count,
    kinds,
    reconnectDelayMs: o.reconnectDelayMs ?? 1_000,
  });
  const before = await hostile.stats();

  const times: number[] = [];
  const slowest: { at: number; ms: number }[] = [];
  const failures: string[] = [];
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const one = async () => {
    const started = performance.now();
    try {
      const channel = await secureConnect(await o.transport.connect(listener.address), {
        keyPair: client,
        trust: { keys: [server.publicKey] },
      });
      const answer = once(channel, 'message');
      await channel.send(Buffer.from('hello'));
      await answer;
      times.push(performance.now() - started);
      slowest.push({ at: started - t0, ms: performance.now() - started });
      await channel.close();
    } catch (err) {
      failures.push((err as { code?: string }).code ?? String(err));
    }
  };
  const runs: Promise<void>[] = [];
  const end = Date.now() + durationMs;
  while (Date.now() < end) {
    runs.push(one());
    await new Promise((r) => setTimeout(r, INTERVAL_MS));
  }
  await Promise.all(runs);
  const after = await hostile.stats();
  const cpu = process.cpuUsage(cpu0);
  const elapsed = performance.now() - t0;
  const handled = [...tally].reduce((n, [, v]) => n + v, 0);

  const sorted = [...times].sort((a, b) => a - b);
  const p50 = sorted.length ? percentile(sorted, 50) : Number.NaN;
  const p99 = sorted.length ? percentile(sorted, 99) : Number.NaN;
  const max = sorted.at(-1) ?? Number.NaN;
  t.log(
    `${o.name}: ${count} hostile ${kinds.join('/')} connections from uid ${o.hostileUid ?? 65534} (child ${before} -> ${after}); ` +
      `legitimate connects: ${times.length} ok, ${failures.length} failed; p50 ${p50.toFixed(1)} ms, p99 ${p99.toFixed(1)} ms, max ${max.toFixed(1)} ms`,
  );
  slowest.sort((a, b) => b.ms - a.ms);
  t.log(
    `slowest connects (started at s: ms): ${slowest
      .slice(0, 5)
      .map((x) => `${(x.at / 1000).toFixed(1)}: ${x.ms.toFixed(0)}`)
      .join(', ')}`,
  );
  t.log(
    `this process (server and client): ${((cpu.user + cpu.system) / 1000 / elapsed).toFixed(2)} cores busy over ${(elapsed / 1000).toFixed(1)} s, ` +
      `${handled} hostile handshakes ended (${((handled / elapsed) * 1000).toFixed(0)}/s), ` +
      `${((cpu.user + cpu.system) / Math.max(1, handled)).toFixed(0)} µs of CPU each (${(cpu.system / Math.max(1, handled)).toFixed(0)} in the kernel); load average ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' ')}`,
  );
  t.log(`server decisions: ${[...tally].map(([k, v]) => `${k} x${v}`).join(', ') || 'none'}`);
  t.deepEqual(failures, [], 'every legitimate connect got in');
  t.true(times.length >= Math.floor(durationMs / INTERVAL_MS / 2), `${times.length} connects measured`);
  t.true(p99 < P99_BOUND_MS, `connect p99 ${p99.toFixed(1)} ms (bound ${P99_BOUND_MS} ms)`);
  // The flood was real: it filled the caps, so the server dropped stale hostile handshakes for
  // hostile newcomers whose message 1 arrived, or refused hostile newcomers when too many waited
  // for a slot (a silent newcomer displaces nobody: a pure idle flood is only refused).
  t.true(
    [...tally.keys()].some((k) => k.startsWith('dropped ') || k.startsWith('refused ')),
    'hostile handshakes were dropped or refused',
  );
}

/** Register the handshake flood cases for one transport (serially: each is a machine-wide load). */
export function handshakeFloodSuite(test: Test, o: FloodOptions): void {
  const uid = o.hostileUid ?? 65534;
  const root = process.geteuid?.() === 0;
  const spec = o.hostileChild ?? o.child;
  const why = !root
    ? ` (skipped: needs root to run the hostile child as uid ${uid}; CI runs as root)`
    : spec === undefined
      ? ' (skipped: no child transport spec to build the hostile process)'
      : '';
  const run = why === '' ? test.serial : test.skip;
  run(
    `${o.name}: handshake flood: 1,000 idle connections from uid ${uid}; a client connecting every 100 ms keeps its connect p99 under 1 s${why}`,
    (t) => flood(t, o, ['idle']),
  );
  run(
    `${o.name}: handshake flood: 1,000 idle, drip-feeding and stalled-after-message-1 connections from uid ${uid}; a client connecting every 100 ms keeps its connect p99 under 1 s${why}`,
    (t) => flood(t, o, ['idle', 'drip', 'stalled']),
  );
}
