/**
 * withCircuitBreaker over a real client and server (core's memory transport, real Noise channel):
 * while a breaker is open nothing reaches the server (counted by the server's own `decision`
 * events, one per request or event it receives), per-method breakers by pattern, codes that do
 * not count, abort, a shared target breaker, bad options. Time is a manual clock.
 */
import test from 'ava';
import { isSecureIpcError } from '../src/errors.js';
import { createCircuitBreaker } from '../src/resilience/breaker.js';
import { manualClock } from '../src/resilience/clock.js';
import { withCircuitBreaker } from '../src/resilience/with-breaker.js';
import { createPolicy } from '../src/rpc/policy.js';
import { memoryRpc } from './fixtures/memory-rpc.js';

const policy = createPolicy({
  roles: { app: { call: ['status', 'flaky', 'admin.*'], publish: ['log.*'] } },
  defaultRoles: ['app'],
});

async function setup(t: import('ava').ExecutionContext) {
  const { server, client } = await memoryRpc(t, { policy });
  const received: string[] = [];
  server.on('decision', (d) => received.push(d.what));
  let failing = true;
  server.handle('status', () => 'up');
  server.handle('flaky', () => {
    if (failing) throw new Error('down');
    return 'fine';
  });
  server.handle('admin.restart', () => {
    throw new Error('admin down');
  });
  server.handle('admin.ok', () => 'ok');
  return { server, client, received, heal: () => (failing = false) };
}

const isOpen = (e: unknown) => isSecureIpcError(e, 'SIPC_ERR_CIRCUIT_OPEN');

test('target breaker: after N failures calls fail fast and the server receives nothing; a probe after the period closes it', async (t) => {
  const { client, received, heal } = await setup(t);
  const clock = manualClock();
  const guarded = withCircuitBreaker(client, {
    target: { consecutiveFailures: 2, halfOpenAfterMs: 1000, clock },
  });
  for (let i = 0; i < 2; i++)
    t.true(isSecureIpcError(await t.throwsAsync(guarded.request('flaky', null)), 'SIPC_ERR_HANDLER'));
  t.is(guarded.target.state, 'open');
  t.is(received.length, 2);
  for (let i = 0; i < 5; i++) t.true(isOpen(await t.throwsAsync(guarded.request('status', null))));
  t.true(isOpen(await t.throwsAsync(guarded.ping('x'))));
  t.true(isOpen(await t.throwsAsync(guarded.publish('log.x' as never, 1 as never))));
  // The unwrapped client still works: its $ping is the next thing the server receives.
  await client.ping('flush');
  t.deepEqual(received, ['flaky', 'flaky', '$ping'], 'nothing was written while open');
  heal();
  clock.advance(1000);
  t.is(await guarded.request('flaky', null), 'fine');
  t.is(guarded.target.state, 'closed');
  t.deepEqual(received, ['flaky', 'flaky', '$ping', 'flaky']);
});

test('per-method pattern: admin.* opens on its own, other methods still go through', async (t) => {
  const { client, received } = await setup(t);
  const clock = manualClock();
  const guarded = withCircuitBreaker(client, {
    target: { consecutiveFailures: 10, clock },
    methods: { 'admin.*': { consecutiveFailures: 2, clock } },
  });
  const admin = guarded.methods.get('admin.*')!;
  t.is(admin.name, 'admin.*');
  for (let i = 0; i < 2; i++) await t.throwsAsync(guarded.request('admin.restart', null));
  t.is(admin.state, 'open');
  t.true(isOpen(await t.throwsAsync(guarded.request('admin.ok', null))), 'the whole pattern is open');
  t.is(await guarded.request('status', null), 'up');
  t.is(guarded.target.state, 'closed');
  t.deepEqual(received, ['admin.restart', 'admin.restart', 'status']);
});

test('a method failure also counts for the target; the method breaker’s fast failures do not', async (t) => {
  const { client } = await setup(t);
  const clock = manualClock();
  const guarded = withCircuitBreaker(client, {
    target: { consecutiveFailures: 3, clock },
    methods: { 'admin.restart': { consecutiveFailures: 2, clock } },
  });
  for (let i = 0; i < 2; i++) await t.throwsAsync(guarded.request('admin.restart', null));
  for (let i = 0; i < 5; i++) t.true(isOpen(await t.throwsAsync(guarded.request('admin.restart', null))));
  t.is(guarded.target.state, 'closed', '2 real failures, the fast failures are not counted');
  await t.throwsAsync(guarded.request('flaky', null));
  t.is(guarded.target.state, 'open');
});

test('FORBIDDEN and NO_SUCH_METHOD answers reach the server and never open the circuit', async (t) => {
  const { client, received } = await setup(t);
  const guarded = withCircuitBreaker(client, { target: { consecutiveFailures: 1, clock: manualClock() } });
  for (let i = 0; i < 4; i++)
    t.true(
      isSecureIpcError(await t.throwsAsync(guarded.request('secret' as never, null)), 'SIPC_ERR_FORBIDDEN'),
    );
  t.true(
    isSecureIpcError(await t.throwsAsync(guarded.request('admin.none', null)), 'SIPC_ERR_NO_SUCH_METHOD'),
  );
  t.is(guarded.target.state, 'closed');
  t.is(received.length, 5);
});

test("abort: the request's own signal, aborted before, writes nothing and does not count", async (t) => {
  const { client, received } = await setup(t);
  const guarded = withCircuitBreaker(client, { target: { consecutiveFailures: 1, clock: manualClock() } });
  const err = await t.throwsAsync(guarded.request('status', null, { signal: AbortSignal.abort() }));
  t.true(isSecureIpcError(err, 'SIPC_ERR_ABORTED'));
  t.is(guarded.target.state, 'closed');
  t.is(await guarded.request('status', null), 'up');
  t.deepEqual(received, ['status']);
});

test('a shared target breaker covers two wrapped clients', async (t) => {
  const a = await setup(t);
  const b = await setup(t);
  const target = createCircuitBreaker({ consecutiveFailures: 1, clock: manualClock() });
  const ga = withCircuitBreaker(a.client, { target });
  const gb = withCircuitBreaker(b.client, { target });
  await t.throwsAsync(ga.request('flaky', null));
  t.true(isOpen(await t.throwsAsync(gb.request('status', null))));
  t.is(b.received.length, 0);
  t.is(ga.client, a.client);
});

test('bad options are SIPC_ERR_INVALID_ARGUMENT', async (t) => {
  const { client } = await setup(t);
  const bad = [
    () => withCircuitBreaker({} as never),
    () => withCircuitBreaker(client, { methods: { '': {} } }),
    () => withCircuitBreaker(client, { methods: { 'a*b*c*d*e*f*g*h*i*j': {} } }),
    () =>
      withCircuitBreaker(client, {
        methods: Object.fromEntries(Array.from({ length: 257 }, (_, i) => [`m${i}`, {}])),
      }),
    () => withCircuitBreaker(client, { methods: { 'admin.*': { maxHalfOpenProbes: 0 } } }),
    () => withCircuitBreaker(client, { target: { consecutiveFailures: -1 } }),
  ];
  for (const make of bad) t.true(isSecureIpcError(t.throws(make), 'SIPC_ERR_INVALID_ARGUMENT'));
});
