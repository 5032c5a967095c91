/**
 * createReconnectingClient over core's memory transport (real Noise channels, real servers
 * stopped and started on one address), time on a manual clock: the states, the backoff's delays
 * against createBackoff's for the same seed, the reset after a ready channel, the per-attempt
 * connect deadline, terminal trust failures, waitForReady, subscriptions restored, close() in
 * every state, no timer left behind.
 */
import test, { type ExecutionContext } from 'ava';
import { createError, isSecureIpcError } from '../src/errors.js';
import { RevocationList } from '../src/identity/revocation.js';
import { generateKeyPair } from '../src/keys/key-pair.js';
import { createBackoff } from '../src/resilience/backoff.js';
import { manualClock, seededRandom } from '../src/resilience/clock.js';
import {
  type ConnectivityState,
  createReconnectingClient,
  isTerminalConnectError,
  type ReconnectingClient,
  type SubscriptionLost,
  TERMINAL_CONNECT_CODES,
} from '../src/resilience/reconnect.js';
import { createPolicy } from '../src/rpc/policy.js';
import {
  type ReconnectApi,
  type ReconnectEvents,
  reached,
  reconnectWorld,
  recordStates,
} from './fixtures/reconnect-memory.js';

const backoffOptions = { initialMs: 100, maxMs: 1000, minConnectTimeoutMs: 500 };
/** Manual time is a float sum: a timer due at start + delay may sit one rounding step past it. */
const EPSILON = 1e-6;
const close = (a: number, b: number) => Math.abs(a - b) < EPSILON;
type Client = ReconnectingClient<ReconnectApi, ReconnectEvents>;

/** Stop every server of the world and wait until the client's channel is gone. */
async function dropServers(world: ReturnType<typeof reconnectWorld>, rc: Client): Promise<void> {
  const client = rc.client!;
  const closed = new Promise<void>((resolve) => client.once('close', () => resolve()));
  await world.stopAll();
  await closed;
}

/** Wait for the next failed attempt and check it is the transient CONNECT_FAILED of an empty address. */
async function nextFailure(
  t: ExecutionContext,
  rc: Client,
  code: 'SIPC_ERR_CONNECT_FAILED' | 'SIPC_ERR_CONNECTION_CLOSED' = 'SIPC_ERR_CONNECT_FAILED',
): Promise<void> {
  await reached(rc, 'transient_failure');
  t.true(isSecureIpcError(rc.lastError, code), String(rc.lastError));
}

test('idle until the first call, which connects and is answered; close() is shutdown with no timer left', async (t) => {
  const world = reconnectWorld(t);
  await world.start();
  const clock = manualClock();
  const rc = world.client(clock);
  const states = recordStates(rc);
  t.is(rc.state, 'idle');
  t.is(rc.client, undefined);
  t.is(await rc.request('echo', 'hi'), 'hi', 'a call from idle waits for the first attempt');
  t.is(rc.state, 'ready');
  t.truthy(rc.client);
  t.is(await rc.ping('p'), 'p');
  await rc.close();
  await rc.close();
  t.deepEqual(states, ['idle', 'connecting', 'ready', 'shutdown']);
  t.is(clock.pendingTimers, 0);
  const after = await t.throwsAsync(rc.request('echo', 'late'));
  t.true(isSecureIpcError(after, 'SIPC_ERR_CHANNEL_CLOSED'), String(after));
});

test('connect() leaves idle at once; in another state it does nothing', async (t) => {
  const world = reconnectWorld(t);
  await world.start();
  const rc = world.client(manualClock());
  rc.connect();
  t.is(rc.state, 'connecting');
  await reached(rc, 'ready');
  rc.connect();
  t.is(rc.state, 'ready');
});

test('the delays between attempts are createBackoff’s for the same seed; a ready channel resets them', async (t) => {
  const world = reconnectWorld(t);
  const clock = manualClock();
  const rc = world.client(clock);
  const expected = createBackoff({ ...backoffOptions, random: seededRandom(42) });
  const starts: number[] = [];
  rc.on('stateChange', (c) => {
    if (c.to === 'connecting') starts.push(clock.now());
  });
  // Nobody listens: every attempt fails with CONNECT_FAILED.
  const waiting = rc.request('echo', 'through', { waitForReady: true });
  const delays: number[] = [];
  for (let i = 0; i < 6; i++) {
    await nextFailure(t, rc);
    const { delayMs } = expected.next();
    delays.push(delayMs);
    clock.advance(delayMs / 2);
    t.is(rc.state, 'transient_failure', `attempt ${i + 2} waits its delay`);
    if (i === 5) await world.start(); // attempt 7 succeeds
    clock.advance(delayMs / 2 + EPSILON);
    t.is(rc.state, 'connecting', `attempt ${i + 2} starts ${delayMs} ms after attempt ${i + 1}`);
  }
  const gaps = starts.slice(1).map((s, i) => s - starts[i]!);
  t.is(gaps.length, delays.length);
  for (const [i, gap] of gaps.entries())
    t.true(close(gap, delays[i]!), `gap ${i + 1}: ${gap} vs ${delays[i]}`);
  t.is(new Set(delays.map(Math.round)).size, delays.length, 'the delays grow (and are jittered)');
  expected.next(); // attempt 7
  t.is(await waiting, 'through', 'the waitForReady call went through once ready');

  // Reset: after the server goes away, the sequence starts over at initialMs (attempt 1, no jitter).
  expected.reset();
  await dropServers(world, rc);
  await nextFailure(t, rc, 'SIPC_ERR_CONNECTION_CLOSED');
  const before = starts.length;
  // A ready channel that drops at once: the next attempt no earlier than initialMs after the last start.
  clock.advance(backoffOptions.initialMs);
  t.is(starts.length, before + 1);
  const first = expected.next().delayMs;
  t.is(first, backoffOptions.initialMs);
  await nextFailure(t, rc);
  clock.advance(first);
  t.is(starts.length, before + 2, 'attempt 2 after the reset waits initialMs');
  await nextFailure(t, rc);
  const second = expected.next().delayMs;
  clock.advance(second + EPSILON);
  t.is(starts.length, before + 3);
  t.true(close(starts.at(-1)! - starts.at(-2)!, second), 'then the reset sequence’s jittered delay');
  await rc.close();
  t.is(clock.pendingTimers, 0);
});

test('a ready channel lost: ready → transient_failure → connecting → ready on the restarted server; in-flight calls reject', async (t) => {
  const world = reconnectWorld(t);
  await world.start();
  const clock = manualClock();
  const rc = world.client(clock);
  const states = recordStates(rc);
  t.is(await rc.request('echo', 'one'), 'one');
  const inFlight = rc.request('hang', null);
  // Time passes on the channel: the reconnect after the drop is immediate.
  clock.advance(10_000);
  await dropServers(world, rc);
  const lost = await t.throwsAsync(inFlight);
  t.true(isSecureIpcError(lost, 'SIPC_ERR_CONNECTION_CLOSED'), `not retried: ${String(lost)}`);
  await nextFailure(t, rc);
  await world.start();
  clock.advance(backoffOptions.initialMs);
  await reached(rc, 'ready');
  t.is(await rc.request('echo', 'two'), 'two');
  t.deepEqual(states, [
    'idle',
    'connecting',
    'ready',
    'transient_failure',
    'connecting',
    'transient_failure',
    'connecting',
    'ready',
  ]);
});

test('an attempt gets max(delay, minConnectTimeoutMs): a server that never answers the handshake is a transient failure', async (t) => {
  const world = reconnectWorld(t);
  const listener = await world.transport.listen(world.address);
  t.teardown(() => listener.close());
  listener.on('connection', () => {}); // accepted, never answered
  const clock = manualClock();
  const rc = world.client(clock);
  rc.connect();
  await new Promise((r) => setImmediate(r));
  clock.advance(backoffOptions.minConnectTimeoutMs - 1);
  t.is(rc.state, 'connecting');
  clock.advance(1);
  await reached(rc, 'transient_failure');
  t.true(isSecureIpcError(rc.lastError, 'SIPC_ERR_CONNECT_FAILED'), String(rc.lastError));
  t.regex(rc.lastError!.message, /within 500 ms/);
  await rc.close();
  t.is(clock.pendingTimers, 0);
});

test('a server with another key: SIPC_ERR_UNTRUSTED_PEER ends the loop (shutdown, no further attempt)', async (t) => {
  const world = reconnectWorld(t);
  await world.start({ keyPair: generateKeyPair() });
  const clock = manualClock();
  const rc = world.client(clock);
  const states = recordStates(rc);
  const changes: unknown[] = [];
  rc.on('stateChange', (c) => changes.push(c.error?.code));
  const waiting = rc.request('echo', 'x', { waitForReady: true });
  const err = await t.throwsAsync(waiting);
  t.true(isSecureIpcError(err, 'SIPC_ERR_CONNECT_FAILED'), String(err));
  t.true(isSecureIpcError((err as Error).cause, 'SIPC_ERR_UNTRUSTED_PEER'), 'the trust failure is the cause');
  t.is(rc.state, 'shutdown');
  t.true(isSecureIpcError(rc.lastError, 'SIPC_ERR_UNTRUSTED_PEER'));
  t.is(clock.pendingTimers, 0, 'no retry is scheduled');
  clock.advance(1_000_000);
  t.deepEqual(states, ['idle', 'connecting', 'shutdown']);
  t.deepEqual(changes, [undefined, 'SIPC_ERR_UNTRUSTED_PEER']);
});

test('closed before accepted (REFUSED reason closed): retried closedRetries times in a row, then terminal; an accepted channel restarts the count', async (t) => {
  const world = reconnectWorld(t);
  let server = await world.start({ trustClient: false });
  const clock = manualClock();
  // Attempts never time out here: `until` moves the clock while handshakes run.
  const rc = world.client(clock, {
    backoff: { initialMs: 100, maxMs: 1000, minConnectTimeoutMs: 1_000_000 },
  });
  const failures: unknown[] = [];
  rc.on('stateChange', (c) => {
    if (c.to === 'transient_failure') failures.push(c.error?.details?.reason ?? c.error?.code);
  });
  /** Move time on (past any backoff) until the client is in `state`. */
  const until = async (state: ConnectivityState) => {
    for (let i = 0; i < 100 && rc.state !== state; i++) {
      clock.advance(1000 + EPSILON);
      await new Promise((resolve) => setImmediate(resolve));
    }
    t.is(rc.state, state);
  };
  rc.connect();
  for (let i = 0; i < 2; i++) {
    await nextFailure(t, rc, 'SIPC_ERR_REFUSED' as never);
    if (i === 0) clock.advance(1000 + EPSILON);
  }
  // Two refusals: the server now trusts us (as a restarted server may); the next attempt is accepted.
  await world.stop(server);
  server = await world.start();
  await until('ready');
  t.is(await rc.request('echo', 'through'), 'through');
  t.deepEqual(failures.slice(0, 2), ['closed', 'closed']);
  // The server's stop may also cut the attempt that was running then (HANDSHAKE_FAILED): transient.
  const before = failures.length;

  // The count restarted: closedRetries (3) refusals in a row are retried, the fourth ends the loop.
  await world.stop(server);
  await world.start({ trustClient: false });
  await until('shutdown');
  t.true(isSecureIpcError(rc.lastError, 'SIPC_ERR_REFUSED'), String(rc.lastError));
  t.is(rc.lastError?.details?.reason, 'closed');
  const after = failures.slice(before);
  t.is(after[0], 'SIPC_ERR_CONNECTION_CLOSED', 'the lost channel');
  // An attempt may find no listener between the two servers (CONNECT_FAILED: transient, no reset).
  t.deepEqual(
    after.slice(1).filter((f) => f !== 'SIPC_ERR_CONNECT_FAILED'),
    ['closed', 'closed', 'closed'],
    'three retried refusals; the fourth is terminal (no transient_failure)',
  );
  t.is(clock.pendingTimers, 0);
});

test('closedRetries 0: the first closed-before-accepted ends the loop', async (t) => {
  const world = reconnectWorld(t);
  await world.start({ trustClient: false });
  const clock = manualClock();
  const rc = world.client(clock, { closedRetries: 0 });
  const states = recordStates(rc);
  const err = await t.throwsAsync(rc.request('echo', 'x', { waitForReady: true }));
  t.true(isSecureIpcError((err as Error).cause, 'SIPC_ERR_REFUSED'), String(err));
  t.deepEqual(states, ['idle', 'connecting', 'shutdown']);
  t.is(clock.pendingTimers, 0);
});

test('a channel closed because the server revoked us is terminal too', async (t) => {
  const world = reconnectWorld(t);
  const revocations = new RevocationList();
  await world.start({ revocations });
  const clock = manualClock();
  const rc = world.client(clock);
  t.is(await rc.request('echo', 'ok'), 'ok');
  const down = reached(rc, 'shutdown');
  revocations.revokeKey(world.clientKeys.publicKey);
  await down;
  t.true(isSecureIpcError(rc.lastError, 'SIPC_ERR_REVOKED'), String(rc.lastError));
  t.is(clock.pendingTimers, 0);
});

test('terminal and transient codes: REFUSED is terminal except a busy refusal', (t) => {
  for (const code of TERMINAL_CONNECT_CODES) t.true(isTerminalConnectError(createError(code as never)), code);
  const busy = createError('SIPC_ERR_REFUSED', 'busy', { details: { reason: 'busy', retryable: true } });
  t.false(isTerminalConnectError(busy));
  t.true(isTerminalConnectError(createError('SIPC_ERR_REFUSED', 'x', { details: { reason: 'closed' } })));
  for (const code of [
    'SIPC_ERR_CONNECT_FAILED',
    'SIPC_ERR_HANDSHAKE_TIMEOUT',
    'SIPC_ERR_CONNECTION_CLOSED',
  ] as const)
    t.false(isTerminalConnectError(createError(code)), code);
});

test('waitForReady false fails fast in transient_failure with the last failure as cause; true waits, bounded by timeoutMs and signal', async (t) => {
  const world = reconnectWorld(t);
  const clock = manualClock();
  const rc = world.client(clock);
  const fromIdle = await t.throwsAsync(rc.request('echo', 'a'));
  t.true(isSecureIpcError(fromIdle, 'SIPC_ERR_CONNECT_FAILED'), 'the first attempt’s failure fails it');
  t.is(rc.state, 'transient_failure');
  const fast = await t.throwsAsync(rc.request('echo', 'b'));
  t.true(isSecureIpcError(fast, 'SIPC_ERR_CONNECT_FAILED'), String(fast));
  t.is((fast as Error).cause, rc.lastError);
  const publishFast = await t.throwsAsync(rc.publish('tick.a' as never, 1 as never));
  t.true(isSecureIpcError(publishFast, 'SIPC_ERR_CONNECT_FAILED'));

  const timed = rc.request('echo', 'c', { waitForReady: true, timeoutMs: 50 });
  clock.advance(50);
  const timeout = await t.throwsAsync(timed);
  t.true(isSecureIpcError(timeout, 'SIPC_ERR_TIMEOUT'), String(timeout));
  const controller = new AbortController();
  const aborted = rc.request('echo', 'd', { waitForReady: true, signal: controller.signal });
  controller.abort();
  t.true(isSecureIpcError(await t.throwsAsync(aborted), 'SIPC_ERR_ABORTED'));

  const patient = rc.request('echo', 'e', { waitForReady: true, timeoutMs: 60_000 });
  await world.start();
  clock.advance(1000); // past the next attempt's delay
  t.is(await patient, 'e');
  await rc.close();
  t.is(clock.pendingTimers, 0, 'the waits’ timers are gone');
});

test('close() while connecting and during the backoff: shutdown, waiters rejected, no attempt after, no timer left', async (t) => {
  const world = reconnectWorld(t);
  const listener = await world.transport.listen(world.address);
  t.teardown(() => listener.close());
  const accepted: unknown[] = [];
  listener.on('connection', (c) => accepted.push(c));
  const clock = manualClock();
  const rc = world.client(clock);
  const waiting = rc.request('echo', 'x', { waitForReady: true });
  t.is(rc.state, 'connecting');
  await rc.close();
  const closed = await t.throwsAsync(waiting);
  t.true(isSecureIpcError(closed, 'SIPC_ERR_CHANNEL_CLOSED'), String(closed));
  t.is(clock.pendingTimers, 0);

  await listener.close();
  const second = world.client(clock);
  second.connect();
  await reached(second, 'transient_failure');
  t.is(clock.pendingTimers, 1, 'the backoff timer');
  const states = recordStates(second);
  await second.close();
  clock.advance(1_000_000);
  t.deepEqual(states, ['transient_failure', 'shutdown'], 'no attempt after close()');
  t.is(clock.pendingTimers, 0);
});

test('subscriptions are restored on every new channel: an event published after the restart arrives', async (t) => {
  const world = reconnectWorld(t);
  const first = await world.start();
  const clock = manualClock();
  const rc = world.client(clock);
  const got: number[] = [];
  const unsubscribe = await rc.subscribe('tick.*', (n) => got.push(n));
  await first.publish('tick.a', 1);
  await rc.ping();
  t.deepEqual(got, [1]);
  await dropServers(world, rc);
  const second = await world.start();
  clock.advance(1000);
  await reached(rc, 'ready');
  await second.publish('tick.a', 2);
  await rc.ping();
  t.deepEqual(got, [1, 2], 'the new server had the subscription before ready');
  await unsubscribe();
  await second.publish('tick.a', 3);
  await rc.ping();
  t.deepEqual(got, [1, 2]);
});

test('a re-subscription the new server refuses drops the subscription with a subscriptionLost event', async (t) => {
  const world = reconnectWorld(t);
  await world.start();
  const clock = manualClock();
  const rc = world.client(clock);
  const unsubscribe = await rc.subscribe('tick.*', () => {});
  const lost: SubscriptionLost[] = [];
  rc.on('subscriptionLost', (l) => lost.push(l));
  await dropServers(world, rc);
  await world.start({ policy: createPolicy({ roles: { app: { call: ['echo'] } }, defaultRoles: ['app'] }) });
  clock.advance(1000);
  await reached(rc, 'ready');
  t.is(lost.length, 1);
  t.is(lost[0]!.pattern, 'tick.*');
  t.true(isSecureIpcError(lost[0]!.error, 'SIPC_ERR_FORBIDDEN'), String(lost[0]!.error));
  await unsubscribe(); // a lost subscription's unsubscriber does nothing
  t.is(await rc.request('echo', 'still'), 'still');
});

test('bad options are SIPC_ERR_INVALID_ARGUMENT at the factory; a bad address is terminal at the first attempt', async (t) => {
  const world = reconnectWorld(t);
  const base = {
    transport: world.transport,
    address: world.address,
    keyPair: world.clientKeys,
    trust: { keys: [] },
  };
  const bad = [
    undefined,
    { ...base, backoff: { initialMs: -1 } },
    { ...base, backoff: { multiplier: 1000 } },
    { ...base, clock: {} },
    { ...base, random: 3 },
    { ...base, signal: new AbortController().signal },
    { ...base, closedRetries: -1 },
    { ...base, closedRetries: 11 },
    { ...base, closedRetries: 1.5 },
  ];
  for (const options of bad)
    t.true(
      isSecureIpcError(
        t.throws(() => createReconnectingClient(options as never)),
        'SIPC_ERR_INVALID_ARGUMENT',
      ),
    );
  const rc = createReconnectingClient({ ...base, address: 'nope://x', clock: manualClock() });
  const err = await t.throwsAsync(rc.request('x' as never, undefined as never));
  t.true(isSecureIpcError((err as Error).cause, 'SIPC_ERR_INVALID_ADDRESS'), String(err));
  t.is(rc.state, 'shutdown');
});

test('a throwing subscription listener is reported as an error event (as on RpcClient); client is undefined while not ready', async (t) => {
  const world = reconnectWorld(t);
  const server = await world.start();
  const clock = manualClock();
  const rc = world.client(clock);
  const errors: unknown[] = [];
  rc.on('error', (err) => errors.push(err));
  const got: number[] = [];
  await rc.subscribe('tick.*', () => {
    throw new Error('listener broke');
  });
  await rc.subscribe('tick.*', (n) => got.push(n));
  await server.publish('tick.a', 1);
  await rc.ping();
  t.deepEqual(got, [1], 'the other listener still ran');
  t.is((errors[0] as Error).message, 'listener broke');
  await dropServers(world, rc);
  t.not(rc.state, 'ready');
  t.is(rc.client, undefined);
});

test('a bad timeoutMs on a waiting call is SIPC_ERR_INVALID_ARGUMENT; nothing is left waiting', async (t) => {
  const world = reconnectWorld(t);
  const clock = manualClock();
  const rc = world.client(clock);
  rc.connect();
  await reached(rc, 'transient_failure');
  const pending = clock.pendingTimers;
  const err = await t.throwsAsync(rc.request('echo', 'x', { waitForReady: true, timeoutMs: -1 }));
  t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), String(err));
  t.is(clock.pendingTimers, pending);
  await rc.close();
  t.is(clock.pendingTimers, 0);
});
