/**
 * The circuit breaker (issue 16, item 4) on a manual clock: every transition, the consecutive and
 * ratio policies (window, minimum volume), the half-open probe limit, the backoff between opens,
 * the codes that do not count, stale outcomes, events in order, abort, bad options.
 */
import test from 'ava';
import { createError, isSecureIpcError } from '../src/errors.js';
import {
  type CircuitBreakerOptions,
  type CircuitStateChange,
  createCircuitBreaker,
  defaultClassify,
  MAX_HALF_OPEN_PROBES,
} from '../src/resilience/breaker.js';
import { manualClock } from '../src/resilience/clock.js';

const boom = () => Promise.reject(createError('SIPC_ERR_TIMEOUT'));
const ok = () => Promise.resolve('ok');

function setup(options: CircuitBreakerOptions = {}) {
  const clock = manualClock();
  const breaker = createCircuitBreaker({ clock, ...options });
  const changes: CircuitStateChange[] = [];
  breaker.on('stateChange', (c) => changes.push(c));
  const fail = (n: number) =>
    Promise.all(Array.from({ length: n }, () => breaker.execute(boom).catch(() => {})));
  const succeed = (n: number) => Promise.all(Array.from({ length: n }, () => breaker.execute(ok)));
  return { clock, breaker, changes, fail, succeed };
}

async function rejectsOpen(t: import('ava').ExecutionContext, p: Promise<unknown>) {
  const err = await t.throwsAsync(p);
  t.true(isSecureIpcError(err, 'SIPC_ERR_CIRCUIT_OPEN'), String(err));
  return err as Error & { details: Record<string, unknown> };
}

test('consecutive policy: N failures in a row open, a success between resets the count', async (t) => {
  const { breaker, fail, succeed, changes } = setup({ consecutiveFailures: 3, name: 'svc' });
  await fail(2);
  await succeed(1);
  await fail(2);
  t.is(breaker.state, 'closed');
  await fail(1);
  t.is(breaker.state, 'open');
  t.deepEqual(changes, [
    { name: 'svc', from: 'closed', to: 'open', reason: 'consecutive', openForMs: 10_000 },
  ]);
});

test('open: calls fail fast with SIPC_ERR_CIRCUIT_OPEN and retryAfterMs, fn is never called', async (t) => {
  const { breaker, clock, fail } = setup({ consecutiveFailures: 1, halfOpenAfterMs: 1000, name: 'svc' });
  await fail(1);
  let called = 0;
  const fn = async () => {
    called++;
    return 1;
  };
  clock.advance(250);
  const err = await rejectsOpen(t, breaker.execute(fn));
  t.deepEqual(err.details, { state: 'open', retryAfterMs: 750, name: 'svc' });
  clock.advance(749.5);
  t.is((await rejectsOpen(t, breaker.execute(fn))).details.retryAfterMs, 1);
  t.is(called, 0);
  t.is(breaker.state, 'open');
});

test('open → half-open at the first call after the period; a successful probe closes', async (t) => {
  const { breaker, clock, fail, changes } = setup({ consecutiveFailures: 1, halfOpenAfterMs: 1000 });
  await fail(1);
  clock.advance(1000);
  t.is(breaker.state, 'open', 'no timer: the state moves on the next call');
  let release!: (v: string) => void;
  const probe = breaker.execute(() => new Promise<string>((r) => (release = r)));
  t.is(breaker.state, 'half-open');
  const busy = await rejectsOpen(t, breaker.execute(ok));
  t.deepEqual(busy.details, { state: 'half-open', retryAfterMs: undefined, name: undefined });
  release('probe');
  t.is(await probe, 'probe');
  t.is(breaker.state, 'closed');
  t.is(await breaker.execute(ok), 'ok');
  t.deepEqual(
    changes.map((c) => [c.from, c.to, c.reason]),
    [
      ['closed', 'open', 'consecutive'],
      ['open', 'half-open', 'period-over'],
      ['half-open', 'closed', 'probe-succeeded'],
    ],
  );
});

test('half-open: a failed probe reopens for another period', async (t) => {
  const { breaker, clock, fail, changes } = setup({ consecutiveFailures: 2, halfOpenAfterMs: 500 });
  await fail(2);
  clock.advance(500);
  await fail(1);
  t.is(breaker.state, 'open');
  clock.advance(499);
  await rejectsOpen(t, breaker.execute(ok));
  clock.advance(1);
  t.is(await breaker.execute(ok), 'ok');
  t.deepEqual(
    changes.map((c) => c.reason),
    ['consecutive', 'period-over', 'probe-failed', 'period-over', 'probe-succeeded'],
  );
});

test('half-open: at most maxHalfOpenProbes calls run at once; one success closes', async (t) => {
  const { breaker, clock, fail } = setup({
    consecutiveFailures: 1,
    halfOpenAfterMs: 10,
    maxHalfOpenProbes: 3,
  });
  await fail(1);
  clock.advance(10);
  const releases: Array<() => void> = [];
  let calls = 0;
  const held = () =>
    new Promise<void>((r) => {
      calls++;
      releases.push(r);
    });
  const probes = [breaker.execute(held), breaker.execute(held), breaker.execute(held)];
  await rejectsOpen(t, breaker.execute(held));
  t.is(calls, 3);
  releases[1]!();
  await probes[1];
  t.is(breaker.state, 'closed');
  releases[0]!();
  releases[2]!();
  await Promise.all(probes);
  t.is(breaker.state, 'closed');
});

test('halfOpenBackoff: successive opens wait the backoff delays, a close resets them', async (t) => {
  const { breaker, clock, fail, changes } = setup({
    consecutiveFailures: 1,
    halfOpenBackoff: { initialMs: 100, multiplier: 2, jitter: 0, maxMs: 350 },
  });
  await fail(1);
  for (const previous of [100, 200, 350]) {
    clock.advance(previous - 1);
    await rejectsOpen(t, breaker.execute(ok));
    clock.advance(1);
    await fail(1); // the probe fails: the next, longer period
  }
  t.deepEqual(
    changes.filter((c) => c.to === 'open').map((c) => c.openForMs),
    [100, 200, 350, 350],
  );
  clock.advance(350);
  await breaker.execute(ok);
  await fail(1);
  t.is(changes.at(-1)?.openForMs, 100, 'closing reset the backoff');
});

test('ratio policy: opens at threshold over the window once the minimum volume is reached', async (t) => {
  const { breaker, fail, succeed } = setup({
    consecutiveFailures: false,
    failureRatio: { threshold: 0.5, windowMs: 1000, minimumVolume: 10 },
  });
  await succeed(4);
  await fail(4); // 4 / 8: over the ratio, under the volume
  t.is(breaker.state, 'closed');
  await succeed(1);
  await fail(1); // 5 / 10
  t.is(breaker.state, 'open');
});

test('ratio policy: below the threshold stays closed; old buckets slide out of the window', async (t) => {
  const { breaker, clock, fail, succeed, changes } = setup({
    consecutiveFailures: false,
    failureRatio: { threshold: 0.6, windowMs: 1000, minimumVolume: 4, buckets: 10 },
  });
  await succeed(5);
  await fail(7); // 7 / 12 = 0.58
  t.is(breaker.state, 'closed');
  clock.advance(1000); // the 12 calls are out of the window
  await fail(2);
  t.is(breaker.state, 'closed', '2 calls: under the volume once the old ones slid out');
  clock.advance(500);
  await succeed(1);
  await fail(1); // 3 / 4 in the window
  t.is(breaker.state, 'open');
  t.is(changes[0]?.reason, 'ratio');
});

test('ratio policy: a bucket in the window counts, one a whole window old does not', async (t) => {
  const { breaker, clock, fail } = setup({
    consecutiveFailures: false,
    failureRatio: { threshold: 1, windowMs: 100, minimumVolume: 3, buckets: 4 },
  });
  await fail(2);
  clock.advance(99); // same window: bucket 0 is 3 buckets back
  await fail(1);
  t.is(breaker.state, 'open');
  const second = setup({
    consecutiveFailures: false,
    failureRatio: { threshold: 1, windowMs: 100, minimumVolume: 3, buckets: 4 },
  });
  await second.fail(2);
  second.clock.advance(100);
  await second.fail(1);
  t.is(second.breaker.state, 'closed');
});

test('both policies: whichever triggers first opens', async (t) => {
  const { breaker, fail, succeed, changes } = setup({
    consecutiveFailures: 3,
    failureRatio: { threshold: 0.5, windowMs: 60_000, minimumVolume: 100 },
  });
  await succeed(1);
  await fail(3);
  t.is(breaker.state, 'open');
  t.is(changes[0]?.reason, 'consecutive');
});

test('forbidden, invalid-argument, no-such-method, aborted, cancelled and remote errors do not count', async (t) => {
  const { breaker, fail } = setup({ consecutiveFailures: 2 });
  for (const code of [
    'SIPC_ERR_FORBIDDEN',
    'SIPC_ERR_INVALID_ARGUMENT',
    'SIPC_ERR_NO_SUCH_METHOD',
    'SIPC_ERR_ABORTED',
    'SIPC_ERR_CANCELLED',
    'SIPC_ERR_REMOTE',
  ] as const) {
    await fail(1);
    for (let i = 0; i < 5; i++)
      await breaker.execute(() => Promise.reject(createError(code))).catch(() => {});
    t.is(breaker.state, 'closed', code);
    t.is(defaultClassify(createError(code)), 'ignore');
    await breaker.execute(ok); // the consecutive count starts over
  }
  for (const e of [
    createError('SIPC_ERR_TIMEOUT'),
    createError('SIPC_ERR_CONNECTION_CLOSED'),
    new Error('x'),
    'str',
  ])
    t.is(defaultClassify(e), 'failure');
});

test('an ignored probe outcome frees its slot and leaves the circuit half-open', async (t) => {
  const { breaker, clock, fail } = setup({ consecutiveFailures: 1, halfOpenAfterMs: 1 });
  await fail(1);
  clock.advance(1);
  await t.throwsAsync(breaker.execute(() => Promise.reject(createError('SIPC_ERR_FORBIDDEN'))));
  t.is(breaker.state, 'half-open');
  t.is(await breaker.execute(ok), 'ok');
  t.is(breaker.state, 'closed');
});

test('classify overrides the default; a throwing classifier counts as a failure', async (t) => {
  const byApp = setup({
    consecutiveFailures: 1,
    classify: (e) => (e instanceof Error && e.message === 'fine' ? 'success' : defaultClassify(e)),
  });
  await byApp.breaker.execute(() => Promise.reject(new Error('fine'))).catch(() => {});
  t.is(byApp.breaker.state, 'closed');
  const remote = setup({ consecutiveFailures: 1, classify: () => 'failure' });
  await remote.breaker.execute(() => Promise.reject(createError('SIPC_ERR_REMOTE'))).catch(() => {});
  t.is(remote.breaker.state, 'open');
  const throwing = setup({
    consecutiveFailures: 1,
    classify: () => {
      throw new Error('bug');
    },
  });
  await throwing.breaker.execute(() => Promise.reject(createError('SIPC_ERR_FORBIDDEN'))).catch(() => {});
  t.is(throwing.breaker.state, 'open');
});

test('a slow outcome from before the circuit opened does not count in the new period', async (t) => {
  const { breaker, clock, fail } = setup({ consecutiveFailures: 1, halfOpenAfterMs: 100 });
  let release!: () => void;
  const slow = breaker.execute(() => new Promise<void>((r) => (release = r)));
  await fail(1);
  t.is(breaker.state, 'open');
  release();
  await slow;
  t.is(breaker.state, 'open', 'the old success does not close it');
  clock.advance(100);
  t.is(await breaker.execute(ok), 'ok');
});

test('a synchronous fn and a throwing fn are both counted; fn gets the signal', async (t) => {
  const { breaker } = setup({ consecutiveFailures: 1 });
  const ac = new AbortController();
  t.is(await breaker.execute((s) => (s === ac.signal ? 7 : 0), { signal: ac.signal }), 7);
  await t.throwsAsync(
    breaker.execute(() => {
      throw createError('SIPC_ERR_TIMEOUT');
    }),
  );
  t.is(breaker.state, 'open');
});

test('abort: an aborted signal refuses before fn; aborting a running call rejects at once and is not a failure', async (t) => {
  const { breaker } = setup({ consecutiveFailures: 1 });
  let called = false;
  const err = await t.throwsAsync(
    breaker.execute(
      async () => {
        called = true;
      },
      { signal: AbortSignal.abort() },
    ),
  );
  t.true(isSecureIpcError(err, 'SIPC_ERR_ABORTED'));
  t.false(called);
  const ac = new AbortController();
  const running = breaker.execute(
    (signal) =>
      new Promise((_, reject) =>
        signal!.addEventListener('abort', () => reject(createError('SIPC_ERR_ABORTED')), { once: true }),
      ),
    { signal: ac.signal },
  );
  ac.abort();
  t.true(isSecureIpcError(await t.throwsAsync(running), 'SIPC_ERR_ABORTED'));
  const ignoring = new AbortController();
  let finish!: () => void;
  const deaf = breaker.execute(() => new Promise<void>((r) => (finish = r)), { signal: ignoring.signal });
  ignoring.abort();
  t.true(
    isSecureIpcError(await t.throwsAsync(deaf), 'SIPC_ERR_ABORTED'),
    'does not wait for a fn that ignores it',
  );
  finish();
  t.is(breaker.state, 'closed');
});

test('reset closes an open circuit and clears the counts; events are emitted in order', async (t) => {
  const { breaker, fail, changes } = setup({ consecutiveFailures: 2 });
  await fail(2);
  breaker.reset();
  t.is(breaker.state, 'closed');
  await fail(1);
  t.is(breaker.state, 'closed', 'the count was cleared');
  breaker.reset(); // closed: no event
  t.deepEqual(
    changes.map((c) => `${c.from}>${c.to}:${c.reason}`),
    ['closed>open:consecutive', 'open>closed:reset'],
  );
});

test('a throwing stateChange listener is reported as error, the breaker goes on', async (t) => {
  const { breaker, fail } = setup({ consecutiveFailures: 1 });
  const errors: unknown[] = [];
  breaker.on('error', (e) => errors.push(e));
  breaker.prependListener('stateChange', () => {
    throw new Error('listener');
  });
  await fail(1);
  t.is(breaker.state, 'open');
  t.is((errors[0] as Error).message, 'listener');
});

test('bad options are SIPC_ERR_INVALID_ARGUMENT', async (t) => {
  const bad: CircuitBreakerOptions[] = [
    { consecutiveFailures: 0 },
    { consecutiveFailures: 1.5 },
    { consecutiveFailures: false },
    { failureRatio: { threshold: 0, windowMs: 1000, minimumVolume: 1 } },
    { failureRatio: { threshold: 1.1, windowMs: 1000, minimumVolume: 1 } },
    { failureRatio: { threshold: 0.5, windowMs: 0, minimumVolume: 1 } },
    { failureRatio: { threshold: 0.5, windowMs: 1000, minimumVolume: 0 } },
    { failureRatio: { threshold: 0.5, windowMs: 1000, minimumVolume: 1, buckets: 1001 } },
    { halfOpenAfterMs: -1 },
    { halfOpenAfterMs: 100, halfOpenBackoff: {} },
    { halfOpenBackoff: { multiplier: 0 } },
    { maxHalfOpenProbes: 0 },
    { maxHalfOpenProbes: MAX_HALF_OPEN_PROBES + 1 },
    { classify: 'x' as never },
    { clock: {} as never },
    { name: 5 as never },
  ];
  for (const options of bad)
    t.true(
      isSecureIpcError(
        t.throws(() => createCircuitBreaker(options)),
        'SIPC_ERR_INVALID_ARGUMENT',
      ),
      JSON.stringify(options),
    );
  const breaker = createCircuitBreaker();
  t.true(isSecureIpcError(await t.throwsAsync(breaker.execute(5 as never)), 'SIPC_ERR_INVALID_ARGUMENT'));
});
