/**
 * Ordering lanes (issue 16, item 6): a lane's calls reach the server one after another in call
 * order (the next only once the one before settled, its retries included, across a reconnect);
 * other lanes and lane-less calls are not held; a full lane, an aborted or timed-out queued call.
 * Real servers on the memory transport count and order their handlers' entries; manual time.
 */
import test from 'ava';
import { PublicError } from '../src/envelope/wire-errors.js';
import { isSecureIpcError } from '../src/errors.js';
import { Lanes, MAX_LANE_NAME_LENGTH } from '../src/resilience/lanes.js';
import { drive, retryWorld, turn } from './fixtures/retry-memory.js';

/** A server whose `hold` calls wait until released, in the order they entered. */
async function holdingWorld(t: Parameters<typeof retryWorld>[0]) {
  const world = retryWorld(t);
  const server = await world.start();
  const entered: string[] = [];
  const releases: Array<() => void> = [];
  server.handle('hold', (p) => {
    entered.push(String(p));
    return new Promise((resolve) => releases.push(() => resolve(p)));
  });
  const budgets = new Map<string, number | undefined>();
  server.handle('quick', (p, ctx) => {
    entered.push(String(p));
    budgets.set(String(p), ctx.headers.timeoutMs);
    return p;
  });
  /** Let the event loop run until `entered` has `n` entries (or 200 turns). */
  const until = async (n: number) => {
    for (let i = 0; i < 200 && entered.length < n; i++) await turn();
  };
  return { world, server, entered, releases, budgets, until };
}

test('a lane: the next call is written only once the one before settled; other lanes and lane-less calls pass', async (t) => {
  const { world, entered, releases, until } = await holdingWorld(t);
  const rc = world.client();
  await drive(world.clock, rc.request('quick', 'warm-up'));
  entered.length = 0;
  const a1 = rc.request('hold', 'a1', { lane: 'a' });
  const a2 = rc.request('hold', 'a2', { lane: 'a' });
  const a3 = rc.request('quick', 'a3', { lane: 'a' });
  const b1 = rc.request('hold', 'b1', { lane: 'b' });
  const free = rc.request('quick', 'free');
  await until(3);
  for (let i = 0; i < 20; i++) await turn();
  t.deepEqual(entered.sort(), ['a1', 'b1', 'free'], 'a2 waits behind a1; lane b and the free call do not');
  t.is(rc.queuedInLane('a'), 2);
  t.is(rc.queuedInLane('b'), 0);
  t.is(await free, 'free');
  releases.shift()!(); // a1
  t.is(await a1, 'a1');
  await until(4);
  t.is(entered.at(-1), 'a2');
  releases.pop()!(); // a2 (b1 still holds)
  t.is(await a2, 'a2');
  t.is(await a3, 'a3');
  t.deepEqual(entered.slice(3), ['a2', 'a3']);
  releases.shift()!(); // b1
  t.is(await b1, 'b1');
  t.is(rc.queuedInLane('a'), 0);
});

test('a lane waits for the retries of the call before it, and keeps its order across a reconnect', async (t) => {
  const world = retryWorld(t);
  const server = await world.start();
  const entered: string[] = [];
  let failures = 2;
  server.handle('flaky', (p) => {
    entered.push(String(p));
    if (failures-- > 0) throw new PublicError('FLAKY', 'again');
    return p;
  });
  server.handle('cut', async (p) => {
    entered.push(String(p));
    await Promise.all([...server.listener.channels].map((c) => c.close()));
    return p;
  });
  server.handle('quick', (p) => {
    entered.push(String(p));
    return p;
  });
  const rc = world.client({
    retry: { policy: { maxAttempts: 3, initialBackoffMs: 50, retryableCodes: ['FLAKY'] } },
  });
  const first = rc.request('flaky', 'f', { lane: 'l' });
  const second = rc.request('quick', 'q', { lane: 'l' });
  const both = await drive(world.clock, Promise.all([first, second]));
  t.deepEqual(both, { value: ['f', 'q'] });
  t.deepEqual(entered, ['f', 'f', 'f', 'q'], 'q only after f’s third attempt answered');

  entered.length = 0;
  const lost = rc.request('cut', 'c', { lane: 'l', waitForReady: true });
  const after = rc.request('quick', 'after', { lane: 'l', waitForReady: true });
  const outcome = await drive(world.clock, Promise.allSettled([lost, after]));
  const [lostResult, afterResult] = outcome.value!;
  t.is(lostResult.status, 'rejected');
  t.true(isSecureIpcError((lostResult as PromiseRejectedResult).reason, 'SIPC_ERR_CONNECTION_CLOSED'));
  t.deepEqual(afterResult, { status: 'fulfilled', value: 'after' });
  t.deepEqual(entered, ['c', 'after'], 'the next call of the lane went on the new channel, after');
});

test('a full lane refuses with SIPC_ERR_BUSY; an aborted or timed-out queued call is removed and never sent', async (t) => {
  const { world, entered, releases, budgets, until } = await holdingWorld(t);
  const rc = world.client({ maxQueuedPerLane: 2 });
  await drive(world.clock, rc.request('quick', 'warm-up'));
  entered.length = 0;
  const head = rc.request('hold', 'head', { lane: 'x' });
  const abort = new AbortController();
  const aborted = rc.request('quick', 'aborted', { lane: 'x', signal: abort.signal });
  const timed = rc.request('quick', 'timed', { lane: 'x', timeoutMs: 100 });
  const full = await t.throwsAsync(rc.request('quick', 'over', { lane: 'x' }));
  t.true(isSecureIpcError(full, 'SIPC_ERR_BUSY'), String(full));
  t.deepEqual((full as { details?: unknown }).details, { lane: 'x', queued: 2 });
  abort.abort();
  const abortError = await t.throwsAsync(aborted);
  t.true(isSecureIpcError(abortError, 'SIPC_ERR_ABORTED'), String(abortError));
  t.is(rc.queuedInLane('x'), 1);
  world.clock.advance(100);
  const timeout = await t.throwsAsync(timed);
  t.true(isSecureIpcError(timeout, 'SIPC_ERR_TIMEOUT'), String(timeout));
  t.is(rc.queuedInLane('x'), 0);
  // Room again: a call waits 40 ms of its 100 in the lane, and is sent with what is left.
  const budget = rc.request('quick', 'budget', { lane: 'x', timeoutMs: 100 });
  world.clock.advance(40);
  await until(1);
  releases.shift()!();
  t.is(await head, 'head');
  t.is(await budget, 'budget');
  t.deepEqual(entered, ['head', 'budget'], 'the aborted and the timed-out calls never reached the server');
  const sent = budgets.get('budget')!;
  t.true(sent <= 60 && sent > 50, `sent with ${sent} ms left`);
});

test('lane options: a bad lane name or maxQueuedPerLane is SIPC_ERR_INVALID_ARGUMENT', async (t) => {
  const world = retryWorld(t);
  const rc = world.client();
  for (const lane of ['', 'x'.repeat(MAX_LANE_NAME_LENGTH + 1), 7]) {
    const err = await t.throwsAsync(rc.request('quick', null, { lane: lane as string }));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), String(lane));
  }
  for (const maxQueued of [0, 1.5, 2_000_000]) {
    const err = t.throws(() => new Lanes(world.clock, maxQueued));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), String(maxQueued));
    const viaClient = t.throws(() => world.client({ maxQueuedPerLane: maxQueued }));
    t.true(isSecureIpcError(viaClient, 'SIPC_ERR_INVALID_ARGUMENT'), String(maxQueued));
  }
});
