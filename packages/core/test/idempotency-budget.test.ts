// Issue 12, row 8 and 9: the idempotency window is shared by every peer of a server, so one peer
// must not be able to flush it (double execution for the others, pending entries included), a key
// reused with other params must fail rather than answer the first result, and idempotent
// executions left running by disconnects must be bounded in number and in time. Real server and
// clients over the in-memory transport, one static key per peer.
import { randomUUID } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import { isSecureIpcError } from '../src/errors.js';
import { generateKeyPair } from '../src/keys/key-pair.js';
import type { RpcClient } from '../src/rpc/client.js';
import { DEFAULT_IDEMPOTENCY_MAX_ENTRIES } from '../src/rpc/idempotency.js';
import { createPolicy } from '../src/rpc/policy.js';
import { connect, type ListeningServer, type ServeOptions, serve } from '../src/rpc/serve.js';
import type { HandlerContext } from '../src/rpc/service-types.js';
import { memoryTransport } from '../src/transport/memory-transport.js';

const everything = createPolicy({ roles: { all: { call: ['*'] } }, defaultRoles: ['all'] });

interface Rig {
  server: ListeningServer;
  /** Connect as peer `i` (each peer has its own static key), with at most `maxInFlight` requests in flight. */
  dial(i: number, maxInFlight?: number): Promise<RpcClient>;
}

async function rig(
  t: ExecutionContext,
  peers: number,
  options: Partial<Pick<ServeOptions, 'idempotency' | 'maxIncoming'>> = {},
): Promise<Rig> {
  const serverKeys = generateKeyPair();
  const keys = Array.from({ length: peers }, () => generateKeyPair());
  const transport = memoryTransport();
  const address = `memory://idem-${randomUUID()}`;
  const server = await serve({
    transport,
    address,
    keyPair: serverKeys,
    trust: { keys: keys.map((k) => k.publicKey) },
    policy: everything,
    ...options,
  });
  t.teardown(() => server.close());
  const dial = async (i: number, maxInFlight = 64) => {
    const client = await connect({
      transport,
      address,
      keyPair: keys[i]!,
      trust: { keys: [serverKeys.publicKey] },
      maxInFlight,
    });
    t.teardown(() => client.close());
    return client;
  };
  return { server, dial };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function until(ok: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** Runs per idempotency key, counted by the handler. */
function counting(server: ListeningServer): Map<string, number> {
  const runs = new Map<string, number>();
  server.handle('charge', (p: { amount: number }, ctx: HandlerContext) => {
    const key = ctx.headers.idempotencyKey ?? '';
    const n = (runs.get(key) ?? 0) + 1;
    runs.set(key, n);
    return { run: n, amount: p.amount };
  });
  return runs;
}

/** A handler that runs until its signal fires (or `release`), recording the reason. */
function holding(server: ListeningServer, method = 'hold') {
  const state = { started: 0, running: 0, reasons: [] as string[], releases: [] as Array<() => void> };
  server.handle(method, (_p: unknown, ctx: HandlerContext) => {
    const run = ++state.started;
    state.running++;
    return new Promise((resolve, reject) => {
      const done = () => {
        state.running--;
      };
      state.releases.push(() => {
        done();
        resolve(`run ${run}`);
      });
      ctx.signal.addEventListener('abort', () => {
        done();
        state.reasons.push((ctx.signal.reason as { code: string }).code);
        reject(ctx.signal.reason);
      });
    });
  });
  return state;
}

test("issue 12 row 8: a peer flooding keys cannot evict another peer's entries (retry gets the first result, run once)", async (t) => {
  const { server, dial } = await rig(t, 2);
  const runs = counting(server);
  const [a, b] = [await dial(0), await dial(1)];
  t.deepEqual(await b.request('charge', { amount: 5 }, { idempotencyKey: 'b-order' }), { run: 1, amount: 5 });
  // More keys than the whole window holds.
  const flood: Promise<unknown>[] = [];
  for (let i = 0; i <= DEFAULT_IDEMPOTENCY_MAX_ENTRIES; i++)
    flood.push(a.request('charge', { amount: i }, { idempotencyKey: `a-${i}` }));
  await Promise.all(flood);
  t.deepEqual(await b.request('charge', { amount: 5 }, { idempotencyKey: 'b-order' }), { run: 1, amount: 5 });
  t.is(runs.get('b-order'), 1, "the other peer's request ran exactly once");
  const last = `a-${DEFAULT_IDEMPOTENCY_MAX_ENTRIES}`;
  t.deepEqual(
    await a.request('charge', { amount: DEFAULT_IDEMPOTENCY_MAX_ENTRIES }, { idempotencyKey: last }),
    {
      run: 1,
      amount: DEFAULT_IDEMPOTENCY_MAX_ENTRIES,
    },
  );
});

test('issue 12 row 8: pending entries survive a flood; the flood is refused with SIPC_ERR_UNAVAILABLE (version 3: not executed)', async (t) => {
  const { server, dial } = await rig(t, 2, { idempotency: { maxEntries: 100 }, maxIncoming: 1000 });
  const hold = holding(server);
  const [a, b] = [await dial(0, 1000), await dial(1)];
  const bFirst = b.request('hold', null, { idempotencyKey: 'b-pending' });
  await until(() => hold.started === 1, "b's first execution");
  let busy = 0;
  const flood: Promise<unknown>[] = [];
  for (let i = 0; i < 150; i++)
    flood.push(
      a.request('hold', null, { idempotencyKey: `a-${i}` }).catch((err) => {
        if (isSecureIpcError(err, 'SIPC_ERR_UNAVAILABLE') && err.details?.notExecuted === true) busy++;
        else throw err;
      }),
    );
  await until(() => hold.started + busy === 151, 'the flood to be run or refused');
  t.is(busy, 51, 'the window holds 100 entries: b’s one and 99 of the flood, all pending');
  // b retries over a new connection: it waits for its first execution instead of running again.
  const bAgain = (await dial(1)).request('hold', null, { idempotencyKey: 'b-pending' });
  await sleep(20);
  t.is(hold.started, 100);
  hold.releases[0]!();
  t.is(await bAgain, 'run 1');
  t.is(await bFirst, 'run 1');
  for (const release of hold.releases.slice(1)) release();
  await Promise.all(flood);
});

test('issue 12 row 8: the same key with other params (or another method) fails with SIPC_ERR_IDEMPOTENCY_CONFLICT', async (t) => {
  const { server, dial } = await rig(t, 1);
  const runs = counting(server);
  server.handle('refund', () => 'refunded');
  const c = await dial(0);
  t.deepEqual(await c.request('charge', { amount: 1 }, { idempotencyKey: 'k' }), { run: 1, amount: 1 });
  const other = await t.throwsAsync(c.request('charge', { amount: 1000 }, { idempotencyKey: 'k' }));
  t.true(isSecureIpcError(other, 'SIPC_ERR_IDEMPOTENCY_CONFLICT'), String(other));
  t.like(other, { details: { remote: true } });
  const method = await t.throwsAsync(c.request('refund', { amount: 1 }, { idempotencyKey: 'k' }));
  t.true(isSecureIpcError(method, 'SIPC_ERR_IDEMPOTENCY_CONFLICT'), String(method));
  t.deepEqual(await c.request('charge', { amount: 1 }, { idempotencyKey: 'k' }), { run: 1, amount: 1 });
  t.is(runs.get('k'), 1);
});

test('issue 12 row 9: thousands of detached executions are capped per peer and in total, the excess refused with SIPC_ERR_UNAVAILABLE (version 3)', async (t) => {
  // Defaults: 64 per peer, 1,024 in all. 18 peers each leave 64 executions behind, and one of
  // them tries again twice: 1,280 attempts.
  const { server, dial } = await rig(t, 18);
  const hold = holding(server);
  let busy = 0;
  const leave = async (peer: number) => {
    const c = await dial(peer);
    const before = hold.started + busy;
    for (let i = 0; i < 64; i++)
      c.request('hold', null, { idempotencyKey: randomUUID() }).catch((err) => {
        if (isSecureIpcError(err, 'SIPC_ERR_UNAVAILABLE')) busy++;
      });
    await until(() => hold.started + busy === before + 64, 'the round to run or be refused');
    await c.close();
  };
  await leave(0);
  t.is(hold.running, 64, 'one connection worth left running');
  await leave(0);
  await leave(0);
  t.is(busy, 128, 'the same peer is refused while its 64 detached executions run');
  t.is(hold.running, 64);
  for (let peer = 1; peer < 18; peer++) await leave(peer);
  await until(() => hold.reasons.length + hold.running === hold.started, 'closes to abort the excess');
  t.true(hold.running <= 1024, `${hold.running} detached executions still running`);
  t.is(hold.running, 1024);
  t.true(hold.reasons.every((r) => r === 'SIPC_ERR_CONNECTION_CLOSED'));
  t.true(busy > 128, 'once the total is full, other peers are refused too');
  t.is(hold.started + busy, 18 * 64 + 128);
});

test('issue 12 row 9: a detached execution past its lifetime is aborted (SIPC_ERR_TIMEOUT) and forgotten', async (t) => {
  const { server, dial } = await rig(t, 1, { idempotency: { maxDetachedMs: 200 } });
  const hold = holding(server);
  // A handler that ignores its signal still lets its entry go when the lifetime ends.
  let deafRuns = 0;
  server.handle('deaf', () => {
    deafRuns++;
    return new Promise(() => {});
  });
  const first = await dial(0);
  first.request('hold', null, { idempotencyKey: 'h' }).catch(() => {});
  first.request('deaf', null, { idempotencyKey: 'd' }).catch(() => {});
  await until(() => hold.started === 1 && deafRuns === 1, 'both executions');
  const closed = Date.now();
  await first.close();
  await sleep(100);
  t.deepEqual(hold.reasons, [], 'still running within its lifetime');
  await until(() => hold.reasons.length === 1, 'the lifetime to end', 5000);
  t.deepEqual(hold.reasons, ['SIPC_ERR_TIMEOUT']);
  t.true(Date.now() - closed >= 190);
  const second = await dial(0);
  second.request('hold', null, { idempotencyKey: 'h' }).catch(() => {});
  second.request('deaf', null, { idempotencyKey: 'd' }).catch(() => {});
  await until(() => hold.started === 2 && deafRuns === 2, 'the retries to run again');
  t.pass();
});
