/**
 * What a broker costs (docs/bus.md): `node dist/src/bus-cost.js [--calls N] [--direct-only]`
 * prints one JSON line comparing, over Unix sockets in this process,
 *   - `direct`: a secure-ipc call to a server (`serve` + `connect`), one in flight;
 *   - `routed`: the same call through a broker (`serveBus`: caller → broker → owner and back);
 *   - `e2e`: the same call in an end-to-end session through the broker (sealed both ways);
 *   - `routedPipelined`: calls/s with 32 routed calls in flight.
 * Latencies are p50 / p99 in µs over N calls (default 5,000) after 500 warm-up calls, medians of
 * 3 rounds. `--direct-only` runs the first row alone (it needs only core and transport-unix, so it
 * can A/B an older checkout). Nothing here asserts a speed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, createPolicy, encodeKey, generateKeyPair, serve } from '@secure-ipc/core';
import { unixTransport } from '@secure-ipc/transport-unix';
import { median, percentile } from './stats.js';

const argValue = (name: string, fallback: number) => {
  const i = process.argv.indexOf(name);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const CALLS = argValue('--calls', 5_000);
const WARMUP = 500;
const ROUNDS = 3;
const directOnly = process.argv.includes('--direct-only');
const params = { folder: 'Documents', n: 42 };

async function latencies(call: () => Promise<unknown>): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < WARMUP; i++) await call();
  const p50s: number[] = [];
  const p99s: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    const us: number[] = [];
    for (let i = 0; i < CALLS; i++) {
      const t0 = performance.now();
      await call();
      us.push((performance.now() - t0) * 1000);
    }
    us.sort((a, b) => a - b);
    p50s.push(percentile(us, 50));
    p99s.push(percentile(us, 99));
  }
  const round = (x: number) => Math.round(x * 10) / 10;
  return { p50: round(median(p50s)), p99: round(median(p99s)) };
}

async function pipelined(call: () => Promise<unknown>, inFlight: number): Promise<number> {
  const rates: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    let left = CALLS;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: inFlight }, async () => {
        while (left-- > 0) await call();
      }),
    );
    rates.push(CALLS / ((performance.now() - t0) / 1000));
  }
  return Math.round(median(rates));
}

const dir = mkdtempSync(join(tmpdir(), 'sipc-bus-bench-'));
const out: Record<string, unknown> = { calls: CALLS, rounds: ROUNDS, node: process.version };
try {
  const serverKeys = generateKeyPair();
  const clientKeys = generateKeyPair();
  const server = await serve({
    transport: unixTransport(),
    address: `unix://${join(dir, 'direct.sock')}`,
    keyPair: serverKeys,
    trust: { keys: [clientKeys.publicKey] },
    policy: createPolicy({ roles: { c: { call: ['sync.*'] } }, defaultRoles: ['c'] }),
  });
  server.handle('sync.echo', (p: unknown) => p);
  const client = await connect({
    transport: unixTransport(),
    address: server.address!,
    keyPair: clientKeys,
    trust: { keys: [serverKeys.publicKey] },
  });
  out.direct = await latencies(() => client.request('sync.echo' as never, params as never));
  await client.close();
  await server.close();
  await server.listener.close();

  if (!directOnly) {
    const bus = await import('@secure-ipc/bus');
    const brokerKeys = generateKeyPair();
    const svcKeys = generateKeyPair();
    const key = (k: { publicKey: Uint8Array }) => encodeKey(k.publicKey);
    const broker = await bus.serveBus({
      transport: unixTransport(),
      address: `unix://${join(dir, 'bus.sock')}`,
      keyPair: brokerKeys,
      trust: { keys: [key(svcKeys), key(clientKeys)] },
      policy: {
        roles: {
          svc: { own: ['org.example.Sync'] },
          c: { call: ['org.example.Sync/sync.*', 'org.example.Sync/$tunnel.*'] },
        },
        peers: [
          { key: key(svcKeys), roles: ['svc'] },
          { key: key(clientKeys), roles: ['c'] },
        ],
      },
    });
    const join_ = (keyPair: typeof svcKeys, e2e?: { trust: { keys: string[] } }) =>
      bus.connectBus({
        transport: unixTransport(),
        address: broker.address!,
        keyPair,
        trust: { keys: [key(brokerKeys)] },
        ...(e2e === undefined ? {} : { e2e }),
      });
    const svc = await join_(svcKeys, { trust: { keys: [key(clientKeys)] } });
    svc.handle('sync.echo', (p) => p);
    await svc.requestName('org.example.Sync');
    const caller = await join_(clientKeys);
    out.routed = await latencies(() => caller.call('org.example.Sync', 'sync.echo', params));
    const session = await caller.openSession('org.example.Sync', { trust: { keys: [key(svcKeys)] } });
    out.e2e = await latencies(() => session.call('sync.echo', params));
    out.routedPipelined = await pipelined(() => caller.call('org.example.Sync', 'sync.echo', params), 32);
    session.close();
    await caller.close();
    await svc.close();
    await broker.close();
  }
} finally {
  rmSync(dir, { recursive: true, force: true });
}
console.log(JSON.stringify(out));
