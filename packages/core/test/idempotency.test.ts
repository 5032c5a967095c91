import test from 'ava';
import { isSecureIpcError } from '../src/errors.js';
import { IdempotencyCache, type IdempotentOutcome } from '../src/rpc/idempotency.js';

const ok = (value: unknown): Promise<IdempotentOutcome> => Promise.resolve({ ok: true, value });

test('runs once per (peer, key); a repeat gets the first outcome', async (t) => {
  const cache = new IdempotencyCache();
  let runs = 0;
  const exec = () => ok(++runs);
  t.deepEqual(await cache.run('p1', 'k', 'm', exec), { ok: true, value: 1 });
  t.deepEqual(await cache.run('p1', 'k', 'm', exec), { ok: true, value: 1 });
  t.deepEqual(await cache.run('p2', 'k', 'm', exec), { ok: true, value: 2 }, 'another peer, another entry');
  t.is(runs, 2);
});

test('a repeat while the first runs waits for it', async (t) => {
  const cache = new IdempotencyCache();
  let release!: (o: IdempotentOutcome) => void;
  let runs = 0;
  const exec = () => {
    runs++;
    return new Promise<IdempotentOutcome>((r) => {
      release = r;
    });
  };
  const first = cache.run('p', 'k', 'm', exec);
  const second = cache.run('p', 'k', 'm', exec);
  release({ ok: false, error: { code: 'APP', message: 'x' } });
  t.deepEqual(await first, await second);
  t.is(runs, 1);
});

test('entries expire after the window', async (t) => {
  let clock = 0;
  const cache = new IdempotencyCache({ windowMs: 1000, now: () => clock });
  let runs = 0;
  const exec = () => ok(++runs);
  await cache.run('p', 'k', 'm', exec);
  clock = 999;
  await cache.run('p', 'k', 'm', exec);
  t.is(runs, 1);
  clock = 1000;
  await cache.run('p', 'k', 'm', exec);
  t.is(runs, 2);
});

test('memory is bounded: the oldest entries are evicted', async (t) => {
  const cache = new IdempotencyCache({ maxEntries: 3 });
  for (let i = 0; i < 10; i++) await cache.run('p', `k${i}`, 'm', () => ok(i));
  t.is(cache.size, 3);
  t.deepEqual(await cache.run('p', 'k9', 'm', () => ok('again')), { ok: true, value: 9 });
  t.deepEqual(await cache.run('p', 'k0', 'm', () => ok('again')), { ok: true, value: 'again' });
});

test('a transient outcome (cancelled) is forgotten so a retry runs again', async (t) => {
  const cache = new IdempotencyCache();
  await cache.run('p', 'k', 'm', () =>
    Promise.resolve({ ok: false, error: { code: 'SIPC_ERR_CANCELLED', message: 'c' }, transient: true }),
  );
  t.is(cache.size, 0);
  t.deepEqual(await cache.run('p', 'k', 'm', () => ok(1)), { ok: true, value: 1 });
});

test('reusing a key for another method is refused, not answered with the other result', async (t) => {
  const cache = new IdempotencyCache();
  await cache.run('p', 'k', 'a', () => ok(1));
  const o = await cache.run('p', 'k', 'b', () => ok(2));
  t.false(o.ok);
  if (!o.ok) t.is(o.error.code, 'SIPC_ERR_INVALID_ARGUMENT');
});

test('bad options are typed errors', (t) => {
  t.true(
    isSecureIpcError(
      t.throws(() => new IdempotencyCache({ windowMs: 0 })),
      'SIPC_ERR_INVALID_ARGUMENT',
    ),
  );
});
