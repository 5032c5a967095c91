/**
 * Abuse sub-suite (issue 12): each way a peer could make a service hold memory, time or slots, run
 * against a server with the DEFAULT limits, in a separate process where the transport crosses
 * processes. Every case checks the same four things: the server survives, its RSS stays under the
 * bound the case states, a legitimate client keeps being answered (its round-trip p99 is stated),
 * and the abusive peer gets the outcome docs/limits.md documents.
 */
import { once } from 'node:events';
import { createInterface, type Interface } from 'node:readline';
import {
  connect,
  encodeKey,
  generateKeyPair,
  isSecureIpcError,
  type KeyPair,
  type RpcClient,
} from '@secure-ipc/core';
import type { ExecutionContext } from 'ava';
import { type AbuseControl, serveAbuse } from './abuse-server.js';
import { listen } from './harness.js';
import type { ConformanceOptions, Test } from './options.js';
import { startFixture } from './spawn.js';

/** Most wildcards a subscription pattern may hold (docs/limits.md). */
const MAX_WILDCARDS = 8;

interface AbuseServer {
  readonly address: string;
  readonly keys: { server: KeyPair; app: KeyPair; listener: KeyPair; nobody: KeyPair };
  /** Ask the server something (see abuse-server.ts). */
  command(line: string): Promise<string>;
  /** The server's RSS after a GC, in bytes. */
  rss(): Promise<number>;
}

async function startAbuseServer(t: ExecutionContext, o: ConformanceOptions): Promise<AbuseServer> {
  const keys = {
    server: generateKeyPair(),
    app: generateKeyPair(),
    listener: generateKeyPair(),
    nobody: generateKeyPair(),
  };
  const args = {
    app: encodeKey(keys.app.publicKey),
    listener: encodeKey(keys.listener.publicKey),
    nobody: encodeKey(keys.nobody.publicKey),
  };
  let address: string;
  let command: (line: string) => Promise<string>;
  if (o.child === undefined) {
    const listener = await listen(t, o.transport, o.address());
    const control: AbuseControl = serveAbuse(listener, {
      ...args,
      serverSecret: encodeKey(keys.server.secretKey),
    });
    t.teardown(() => control.close());
    address = listener.address;
    command = control.command;
  } else {
    const fixture = await startFixture(t, o.child, 'abuse-server', o.address(), {
      args,
      env: { SIPC_FIXTURE_SECRET_KEY: encodeKey(keys.server.secretKey) },
      nodeArgs: ['--expose-gc'],
    });
    address = fixture.address;
    const lines: Interface = createInterface({ input: fixture.child.stdout! });
    let queue = Promise.resolve('');
    command = (line: string) => {
      queue = queue.then(async () => {
        const answer = once(lines, 'line') as Promise<[string]>;
        fixture.child.stdin!.write(`${line}\n`);
        return (await answer)[0];
      });
      return queue;
    };
  }
  const rss = async () => Number((await command('rss')).split(' ')[1]);
  return { address, keys, command, rss };
}

async function client(
  t: ExecutionContext,
  o: ConformanceOptions,
  s: AbuseServer,
  keyPair: KeyPair,
): Promise<RpcClient> {
  const c = await connect({
    transport: o.transport,
    address: s.address,
    keyPair,
    trust: { keys: [s.keys.server.publicKey] },
  });
  t.teardown(() => c.close(new Error('test over')).catch(() => {}));
  return c;
}

/** Round-trip times (ms) of `count` sequential `echo` calls by the legitimate client. */
async function legitRoundTrips(app: RpcClient, count: number): Promise<number[]> {
  const times: number[] = [];
  for (let i = 0; i < count; i++) {
    const start = performance.now();
    await (app as unknown as { request(m: string, p: unknown): Promise<unknown> }).request('echo', i);
    times.push(performance.now() - start);
  }
  return times.sort((a, b) => a - b);
}

const p99 = (sorted: readonly number[]) =>
  sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * 0.99))]!;

/** Register the abuse cases. */
export function abuseSuite(test: Test, o: ConformanceOptions): void {
  test.serial(
    `${o.name}: abuse, row 3: adversarial subscription patterns cannot stall publishing`,
    async (t) => {
      t.timeout(120_000);
      const s = await startAbuseServer(t, o);
      const app = await client(t, o, s, s.keys.app);
      const attacker = await client(t, o, s, s.keys.listener);
      const before = await s.rss();
      const star = 'a*'.repeat(MAX_WILDCARDS);
      const subscribed = await Promise.allSettled(
        Array.from({ length: 300 }, (_, i) => attacker.subscribe(`events.${star}b${i}`, () => {})),
      );
      const refused = subscribed.filter((r) => r.status === 'rejected');
      // 256 patterns per peer; the rest are refused as over the limit.
      t.is(subscribed.length - refused.length, 256);
      t.true(refused.every((r) => isSecureIpcError((r as PromiseRejectedResult).reason, 'SIPC_ERR_BUSY')));
      const tooMany = await t.throwsAsync(
        (attacker as unknown as { request(m: string, p: unknown): Promise<unknown> }).request(
          '$subscribe',
          `events.${'a*'.repeat(MAX_WILDCARDS + 1)}`,
        ),
      );
      t.true(isSecureIpcError(tooMany, 'SIPC_ERR_BAD_ENVELOPE'), String(tooMany));
      const publishes: number[] = [];
      const roundTrips = legitRoundTrips(app, 200);
      for (let i = 0; i < 20; i++) {
        const [, ms] = (await s.command(`publish events.${'a'.repeat(240)}`)).split(' ');
        publishes.push(Number(ms));
      }
      const rt = await roundTrips;
      const growth = ((await s.rss()) - before) / 2 ** 20;
      t.log(
        `publish over 256 adversarial patterns: max ${Math.max(...publishes).toFixed(2)} ms; legit RT p99 ${p99(rt).toFixed(2)} ms; server RSS +${growth.toFixed(1)} MiB`,
      );
      t.true(Math.max(...publishes) < 200, 'each publish well under 200 ms');
      t.true(p99(rt) < 250, 'the legitimate client is answered (p99 < 250 ms)');
      t.true(growth < 64, 'server RSS grew less than 64 MiB');
    },
  );
}
