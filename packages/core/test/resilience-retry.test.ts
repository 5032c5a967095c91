/**
 * Client retries (issue 16, item 2): the retry table's rows, the policy (maxAttempts and its cap,
 * gRFC A6's backoff on a seeded source, retryable codes, one deadline over every attempt,
 * pushback, the throttle), per method and per call; over real servers on the memory transport,
 * their handlers counting entries, time on a manual clock.
 */
import test from 'ava';
import { z } from 'zod';
import { PublicError } from '../src/envelope/wire-errors.js';
import { createError, isSecureIpcError, RemoteError } from '../src/errors.js';
import { seededRandom } from '../src/resilience/clock.js';
import { createReconnectingClient } from '../src/resilience/reconnect.js';
import {
  classifyFailure,
  createRetryPolicy,
  MAX_RETRY_ATTEMPTS,
  NEVER_RETRIED_CODES,
  RetryConfig,
  RetryThrottle,
  readPushback,
  retryBackoffMs,
  withAttempts,
} from '../src/resilience/retry.js';
import { createPolicy } from '../src/rpc/policy.js';
import { memoryTransport } from '../src/transport/memory-transport.js';
import { drive, entries, retryWorld } from './fixtures/retry-memory.js';

const flaky = (data?: unknown) => new PublicError('FLAKY', 'try again', { data });

/** A server whose `always` fails with FLAKY every time, its entries logged. */
async function alwaysFlaky(world: ReturnType<typeof retryWorld>) {
  const server = await world.start();
  const seen = entries(world.clock);
  server.handle('always', (_p, ctx) => {
    seen.enter(ctx);
    throw flaky();
  });
  return { server, seen };
}

test('createRetryPolicy: defaults, maxAttempts above 5 is 5, bad values are SIPC_ERR_INVALID_ARGUMENT', (t) => {
  const policy = createRetryPolicy({ maxAttempts: 3 });
  t.like(policy, { maxAttempts: 3, initialBackoffMs: 100, maxBackoffMs: 10_000, backoffMultiplier: 2 });
  t.is(policy.retryableCodes.size, 0);
  t.is(createRetryPolicy({ maxAttempts: 9 }).maxAttempts, MAX_RETRY_ATTEMPTS);
  t.is(createRetryPolicy({ maxAttempts: 1 }).maxAttempts, 1);
  t.is(createRetryPolicy({ maxAttempts: 2, initialBackoffMs: 20_000 }).maxBackoffMs, 20_000);
  const bad: unknown[] = [
    undefined,
    { maxAttempts: 0 },
    { maxAttempts: -1 },
    { maxAttempts: 1.5 },
    { maxAttempts: Number.NaN },
    { maxAttempts: '3' },
    { maxAttempts: 2, initialBackoffMs: 0 },
    { maxAttempts: 2, initialBackoffMs: 500, maxBackoffMs: 100 },
    { maxAttempts: 2, maxBackoffMs: 2 ** 31 },
    { maxAttempts: 2, backoffMultiplier: 0.5 },
    { maxAttempts: 2, retryableCodes: 'FLAKY' },
    { maxAttempts: 2, retryableCodes: [''] },
    { maxAttempts: 2, retryableCodes: Array.from({ length: 65 }, (_, i) => `C${i}`) },
    ...NEVER_RETRIED_CODES.map((code) => ({ maxAttempts: 2, retryableCodes: [code] })),
  ];
  for (const options of bad) {
    const err = t.throws(() => createRetryPolicy(options as never));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), JSON.stringify(options));
  }
  for (const throttle of [
    { maxTokens: 0, tokenRatio: 0.1 },
    { maxTokens: 1001, tokenRatio: 0.1 },
    { maxTokens: 10, tokenRatio: 0 },
    { maxTokens: 10, tokenRatio: 1.5 },
  ]) {
    const err = t.throws(() => new RetryThrottle(throttle));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), JSON.stringify(throttle));
  }
  const factory = t.throws(() =>
    createReconnectingClient({
      transport: memoryTransport(),
      address: 'memory://x',
      keyPair: undefined as never,
      trust: { keys: [] },
      retry: { methods: { 'a.*': { maxAttempts: 0 } } },
    }),
  );
  t.true(isSecureIpcError(factory, 'SIPC_ERR_INVALID_ARGUMENT'), String(factory));
});

test('RetryConfig: the first matching pattern in object order, false for none, else the fallback', (t) => {
  const config = new RetryConfig({
    policy: { maxAttempts: 2 },
    methods: { 'files.read': false, 'files.*': { maxAttempts: 4 } },
  });
  t.is(config.policyFor('files.read'), undefined);
  t.is(config.policyFor('files.list')?.maxAttempts, 4);
  t.is(config.policyFor('other')?.maxAttempts, 2);
  t.is(new RetryConfig({}).policyFor('other'), undefined);
  t.is(config.throttle, undefined);
});

test('retryBackoffMs is gRFC A6: random(0, min(initial × multiplier^(n-1), max)), one draw each', (t) => {
  const policy = createRetryPolicy({
    maxAttempts: 5,
    initialBackoffMs: 100,
    maxBackoffMs: 500,
    backoffMultiplier: 3,
  });
  const draws = seededRandom(7);
  const random = seededRandom(7);
  for (const [n, cap] of [
    [1, 100],
    [2, 300],
    [3, 500],
    [4, 500],
  ] as const)
    t.is(retryBackoffMs(policy, n, random), draws() * cap);
  t.throws(() => retryBackoffMs(policy, 1, () => 1), { message: /RandomSource/ });
});

test('readPushback: an integer retryAfterMs of data; negative is stop; other types are not pushback', (t) => {
  const typed = (data: unknown) =>
    createError('SIPC_ERR_BUSY', undefined, { details: { remote: true, data } });
  t.is(readPushback(typed({ retryAfterMs: 250 })), 250);
  t.is(readPushback(typed({ retryAfterMs: 0 })), 0);
  t.is(readPushback(typed({ retryAfterMs: -1 })), 'stop');
  t.is(readPushback(typed({ retryAfterMs: 2 ** 31 })), 'stop', 'longer than any timer: never undercut it');
  t.is(readPushback(typed({ retryAfterMs: -5n })), 'stop');
  t.is(readPushback(typed({ retryAfterMs: 1.5 })), undefined);
  t.is(readPushback(typed({ retryAfterMs: '250' })), undefined);
  t.is(readPushback(typed([250])), undefined);
  t.is(readPushback(typed(undefined)), undefined);
  t.is(readPushback(new RemoteError('x', { remoteCode: 'FLAKY', data: { retryAfterMs: 30 } })), 30);
  t.is(readPushback(new Error('plain')), undefined);
});

test('classifyFailure: the table rows as the RPC layer marks them', (t) => {
  const rows: Array<[unknown, string]> = [
    [createError('SIPC_ERR_CONNECTION_CLOSED', undefined, { details: { written: false } }), 'unsent'],
    [
      createError('SIPC_ERR_UNAVAILABLE', undefined, {
        details: { notExecuted: true, written: false },
      }),
      'unsent',
    ],
    [
      createError('SIPC_ERR_UNAVAILABLE', undefined, {
        details: { notExecuted: true, remote: true },
      }),
      'not-executed',
    ],
    [createError('SIPC_ERR_CONNECTION_CLOSED'), 'lost'],
    [createError('SIPC_ERR_CONNECTION_CLOSED', undefined, { details: { written: true } }), 'lost'],
    ...NEVER_RETRIED_CODES.map((code): [unknown, string] => [
      createError(code as never, undefined, { details: { remote: true } }),
      'never',
    ]),
    [createError('SIPC_ERR_INVALID_ARGUMENT'), 'never'],
    [
      createError('SIPC_ERR_HANDLER', undefined, { details: { remote: true, correlationId: 'c' } }),
      'handler',
    ],
    [new RemoteError('x', { remoteCode: 'FLAKY', details: { remote: true } }), 'handler'],
    [createError('SIPC_ERR_TIMEOUT'), 'local'],
    [createError('SIPC_ERR_ABORTED'), 'local'],
    [new Error('not ours'), 'local'],
  ];
  for (const [error, row] of rows) t.is(classifyFailure(error) as string, row, String(error));
});

test('withAttempts copies the error (shared errors stay untouched), keeping class, code, data and cause', (t) => {
  const cause = new Error('root');
  const shared = createError('SIPC_ERR_CONNECTION_CLOSED', 'gone', { cause, details: { written: true } });
  const copy = withAttempts(shared, 2) as typeof shared;
  t.not(copy, shared);
  t.deepEqual(shared.details, { written: true });
  t.deepEqual(copy.details, { written: true, attempts: 2 });
  t.is(copy.message, 'gone');
  t.is(copy.cause, cause);
  t.true(isSecureIpcError(copy, 'SIPC_ERR_CONNECTION_CLOSED'));
  const remote = withAttempts(
    new RemoteError('m', { remoteCode: 'FLAKY', data: { a: 1 } }),
    3,
  ) as RemoteError;
  t.true(remote instanceof RemoteError);
  t.is(remote.remoteCode, 'FLAKY');
  t.deepEqual(remote.data, { a: 1 });
  t.is(remote.details?.attempts, 3);
});

test('a handler error: retried for a listed code up to maxAttempts (5 at most), then the last error with details.attempts', async (t) => {
  const world = retryWorld(t);
  const server = await world.start();
  const seen = entries(world.clock);
  let failures = 3;
  server.handle('flaky', (_p, ctx) => {
    seen.enter(ctx);
    if (failures-- > 0) throw flaky();
    return 'ok';
  });
  const always = entries(world.clock);
  server.handle('always', (_p, ctx) => {
    always.enter(ctx);
    throw flaky();
  });
  const other = entries(world.clock);
  server.handle('other', (_p, ctx) => {
    other.enter(ctx);
    throw new PublicError('OTHER', 'no');
  });
  const rc = world.client({ retry: { policy: { maxAttempts: 4, retryableCodes: ['FLAKY'] } } });
  t.deepEqual(await drive(world.clock, rc.request('flaky', null)), { value: 'ok' });
  t.is(seen.log.length, 4, 'three failures, the fourth attempt answered');

  const capped = world.client({ retry: { policy: { maxAttempts: 9, retryableCodes: ['FLAKY'] } } });
  const last = (await drive(world.clock, capped.request('always', null))).error;
  t.true(last instanceof RemoteError && last.remoteCode === 'FLAKY', String(last));
  t.is((last as RemoteError).details?.attempts, 5);
  t.is(always.log.length, 5, 'maxAttempts 9 is treated as 5');

  const unlisted = (await drive(world.clock, rc.request('other', null))).error as RemoteError;
  t.is(unlisted.remoteCode, 'OTHER');
  t.is(unlisted.details?.attempts, 1);
  t.is(other.log.length, 1, 'a code the policy does not list is not retried');
});

test('never retried: FORBIDDEN, NO_SUCH_METHOD, a schema’s INVALID_ARGUMENT (one decision each, even with a policy)', async (t) => {
  const world = retryWorld(t);
  const server = await world.start({
    policy: createPolicy({ roles: { app: { call: ['typed', 'missing'] } }, defaultRoles: ['app'] }),
  });
  const decisions: string[] = [];
  server.on('decision', (d) => decisions.push(d.what));
  let ran = 0;
  server.handle('typed', { params: z.object({ n: z.number() }) }, () => ++ran);
  server.handle('forbidden', () => ++ran);
  const rc = world.client({
    retry: { policy: { maxAttempts: 5, retryableCodes: ['SIPC_ERR_HANDLER', 'SIPC_ERR_BUSY'] } },
  });
  const cases: Array<[string, unknown, string]> = [
    ['forbidden', null, 'SIPC_ERR_FORBIDDEN'],
    ['missing', null, 'SIPC_ERR_NO_SUCH_METHOD'],
    ['typed', { n: 'not a number' }, 'SIPC_ERR_INVALID_ARGUMENT'],
  ];
  for (const [method, params, code] of cases) {
    decisions.length = 0;
    const { error } = await drive(world.clock, rc.request(method, params, { waitForReady: true }));
    t.true(isSecureIpcError(error, code as never), `${method}: ${String(error)}`);
    t.is((error as { details?: { attempts?: number } }).details?.attempts, 1, method);
    t.deepEqual(decisions, [method], `${method}: the server saw it once`);
  }
  t.is(ran, 0);
});

test('written, then the channel lost: retried only with an idempotency key and a policy; the cache runs it once', async (t) => {
  const world = retryWorld(t);
  const server = await world.start();
  const seen = entries(world.clock);
  let cut = true;
  server.handle('work', async (_p, ctx) => {
    seen.enter(ctx);
    // Fault injection: the server side drops the channel while the handler runs (the first time).
    if (cut) {
      cut = false;
      await Promise.all([...server.listener.channels].map((c) => c.close()));
    }
    return `done ${seen.log.length}`;
  });
  const rc = world.client({ retry: { policy: { maxAttempts: 3 } } });
  const keyed = await drive(
    world.clock,
    rc.request('work', null, { idempotencyKey: 'k-1', waitForReady: true }),
  );
  t.deepEqual(keyed, { value: 'done 1' }, 'the repeat got the first execution’s outcome');
  t.is(seen.log.length, 1, 'the handler ran once');

  cut = true;
  const unkeyed = (await drive(world.clock, rc.request('work', null, { waitForReady: true }))).error;
  t.true(isSecureIpcError(unkeyed, 'SIPC_ERR_CONNECTION_CLOSED'), String(unkeyed));
  t.is((unkeyed as { details?: { attempts?: number } }).details?.attempts, 1);
  t.is(seen.log.length, 2, 'without a key it may have run: not sent again');

  cut = true;
  const noPolicy = world.client();
  const plain = (
    await drive(world.clock, noPolicy.request('work', null, { idempotencyKey: 'k-2', waitForReady: true }))
  ).error;
  t.true(isSecureIpcError(plain, 'SIPC_ERR_CONNECTION_CLOSED'), String(plain));
  t.is(
    (plain as { details?: unknown }).details,
    undefined,
    'no policy, no retry: the error as the client got it',
  );
  t.is(seen.log.length, 3);
});

test('the policy backoff: each retry waits random(0, min(initial × mult^(n-1), max)) on the clock', async (t) => {
  const world = retryWorld(t);
  const { seen } = await alwaysFlaky(world);
  const policy = {
    maxAttempts: 4,
    initialBackoffMs: 200,
    maxBackoffMs: 500,
    backoffMultiplier: 2,
    retryableCodes: ['FLAKY'],
  };
  const rc = world.client({ random: seededRandom(9), retry: { policy } });
  const step = 1;
  const { error } = await drive(world.clock, rc.request('always', null), step);
  t.true(error instanceof RemoteError);
  t.is(seen.log.length, 4);
  // The first connect attempt draws nothing; every draw after it is a retry's.
  const draws = seededRandom(9);
  const expected = [200, 400, 500].map((cap) => draws() * cap);
  for (let i = 1; i < seen.log.length; i++) {
    const waited = seen.log[i]!.at - seen.log[i - 1]!.at;
    t.true(
      waited >= expected[i - 1]! && waited < expected[i - 1]! + step + 1,
      `retry ${i}: ${waited} vs ${expected[i - 1]}`,
    );
  }
});

test('one deadline over every attempt: each is sent with the budget left; no retry whose wait would pass it', async (t) => {
  const world = retryWorld(t);
  const { seen } = await alwaysFlaky(world);
  const policy = {
    maxAttempts: 5,
    initialBackoffMs: 400,
    maxBackoffMs: 400,
    backoffMultiplier: 1,
    retryableCodes: ['FLAKY'],
  };
  const rc = world.client({ random: () => 0.99, retry: { policy } });
  await drive(
    world.clock,
    rc.request('echo', null).catch(() => {}),
  );
  const started = world.clock.now();
  const { error } = await drive(world.clock, rc.request('always', null, { timeoutMs: 1000 }), 1);
  t.true(error instanceof RemoteError, String(error));
  t.is(seen.log.length, 3, 'attempts at about 0, 396 and 792 ms; a fourth would start past 1000');
  t.is((error as RemoteError).details?.attempts, 3);
  // The header is what was left at the send (the handler runs a few clock steps later).
  for (const entry of seen.log) {
    const elapsed = entry.at - started;
    t.true(Math.abs(entry.timeoutMs! - (1000 - elapsed)) <= 5, `${entry.timeoutMs} at ${elapsed}`);
  }
});

test('pushback: retryAfterMs ≥ 0 is waited at least; negative stops; a non-integer is ignored', async (t) => {
  const world = retryWorld(t);
  const server = await world.start();
  const seen = entries(world.clock);
  let advice: unknown[] = [];
  server.handle('advised', (_p, ctx) => {
    seen.enter(ctx);
    if (advice.length > 0) throw flaky({ retryAfterMs: advice.shift() });
    return 'ok';
  });
  const rc = world.client({
    random: () => 0,
    retry: { policy: { maxAttempts: 5, initialBackoffMs: 1, retryableCodes: ['FLAKY'] } },
  });
  advice = [700];
  t.deepEqual(await drive(world.clock, rc.request('advised', null)), { value: 'ok' });
  t.is(seen.log.length, 2);
  t.true(seen.log[1]!.at - seen.log[0]!.at >= 700, 'not sooner than the server asked');

  seen.log.length = 0;
  advice = [-1];
  const stopped = (await drive(world.clock, rc.request('advised', null))).error as RemoteError;
  t.is(stopped.remoteCode, 'FLAKY');
  t.is(seen.log.length, 1, 'negative pushback: no retry although the code is listed');

  seen.log.length = 0;
  advice = ['700'];
  t.deepEqual(await drive(world.clock, rc.request('advised', null)), { value: 'ok' });
  t.true(seen.log[1]!.at - seen.log[0]!.at < 700, 'a string is not pushback: the policy’s backoff (0 here)');
});

test('throttle: a retryable failure takes a token, a success adds tokenRatio; no retry at or below maxTokens / 2', async (t) => {
  const world = retryWorld(t);
  const { server, seen } = await alwaysFlaky(world);
  server.handle('fine', () => 'ok');
  const rc = world.client({
    retry: {
      policy: { maxAttempts: 5, retryableCodes: ['FLAKY'] },
      throttle: { maxTokens: 4, tokenRatio: 1 },
    },
  });
  await drive(world.clock, rc.request('always', null));
  t.is(seen.log.length, 2, '4 → 3 (retry allowed), 3 → 2 (2 is not above 2: stop)');
  t.deepEqual(await drive(world.clock, rc.request('fine', null)), { value: 'ok' });
  seen.log.length = 0;
  await drive(world.clock, rc.request('always', null));
  t.is(seen.log.length, 1, 'a success brought 3; the failure took it to 2: no retry');
});

test('per method and per call: the first matching pattern, false for none, a call’s own policy, checked at the call', async (t) => {
  const world = retryWorld(t);
  const server = await world.start();
  const counts = new Map<string, number>();
  for (const method of ['files.read', 'files.list', 'other'])
    server.handle(method, () => {
      counts.set(method, (counts.get(method) ?? 0) + 1);
      throw flaky();
    });
  const flakyPolicy = (maxAttempts: number) => ({
    maxAttempts,
    initialBackoffMs: 1,
    retryableCodes: ['FLAKY'],
  });
  const rc = world.client({ retry: { methods: { 'files.read': false, 'files.*': flakyPolicy(3) } } });
  for (const method of ['files.read', 'files.list', 'other'])
    await drive(world.clock, rc.request(method, null));
  t.deepEqual(Object.fromEntries(counts), { 'files.read': 1, 'files.list': 3, other: 1 });
  counts.clear();
  await drive(world.clock, rc.request('other', null, { retry: flakyPolicy(2) }));
  await drive(world.clock, rc.request('files.list', null, { retry: false }));
  t.deepEqual(Object.fromEntries(counts), { other: 2, 'files.list': 1 });
  const bad = await t.throwsAsync(rc.request('other', null, { retry: { maxAttempts: 0 } }));
  t.true(isSecureIpcError(bad, 'SIPC_ERR_INVALID_ARGUMENT'), String(bad));
  t.is(counts.get('other'), 2, 'a bad per-call policy is refused before anything is sent');
});

test('a failed wait for a channel is retried by a policy (an attempt), never without one', async (t) => {
  const world = retryWorld(t);
  const rc = world.client({ retry: { policy: { maxAttempts: 3, initialBackoffMs: 50, maxBackoffMs: 50 } } });
  const states: string[] = [];
  rc.on('stateChange', ({ to }) => states.push(to));
  // Nothing listens: fail-fast calls fail their wait; the policy retries them after its backoff.
  const pending = rc.request('echo', 'x');
  const { error } = await drive(world.clock, pending);
  t.true(isSecureIpcError(error, 'SIPC_ERR_CONNECT_FAILED'), String(error));
  t.is((error as { details?: { attempts?: number } }).details?.attempts, 0, 'never written');
  const plain = world.client();
  const once = (await drive(world.clock, plain.request('echo', 'x'))).error;
  t.true(isSecureIpcError(once, 'SIPC_ERR_CONNECT_FAILED'));
  t.is((once as { details?: unknown }).details, undefined);
  // A wait that runs out of time is the call's deadline: never retried, nothing was written.
  const late = (await drive(world.clock, rc.request('echo', 'x', { waitForReady: true, timeoutMs: 50 })))
    .error;
  t.true(isSecureIpcError(late, 'SIPC_ERR_TIMEOUT'), String(late));
  t.is((late as { details?: { attempts?: number } }).details?.attempts, 0);
  // With a server up, the same client is answered.
  const server = await world.start();
  server.handle('echo', (p) => p);
  t.deepEqual(await drive(world.clock, rc.request('echo', 'y', { waitForReady: true })), { value: 'y' });
});

test('a call with a streamed input is never sent again (its one attempt consumed the input)', async (t) => {
  const world = retryWorld(t);
  const server = await world.start();
  let entered = 0;
  server.handle('upload', async (items) => {
    entered++;
    for await (const _ of items as AsyncIterable<unknown>);
    throw flaky();
  });
  const rc = world.client({ retry: { policy: { maxAttempts: 3, retryableCodes: ['FLAKY'] } } });
  async function* input() {
    yield 1;
    yield 2;
  }
  const { error } = await drive(world.clock, rc.request('upload', input()));
  t.true(error instanceof RemoteError && error.remoteCode === 'FLAKY', String(error));
  t.is(entered, 1);
});
