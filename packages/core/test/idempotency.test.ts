import test from 'ava';
import { isSecureIpcError } from '../src/errors.js';
import {
  IdempotencyCache,
  type IdempotentOutcome,
  isRefusal,
  requestFingerprint,
} from '../src/rpc/idempotency.js';
import { memoryIdempotencyStore } from '../src/rpc/idempotency-store.js';

const ok = (value: unknown): Promise<IdempotentOutcome> => Promise.resolve({ ok: true, value });
const fp = requestFingerprint('m', null);
const code = (o: IdempotentOutcome) => (o.ok ? undefined : o.error.code);

/** An execution that settles when the test says so. */
function held(): { exec: () => Promise<IdempotentOutcome>; release: (o: IdempotentOutcome) => void } {
  let release!: (o: IdempotentOutcome) => void;
  const promise = new Promise<IdempotentOutcome>((r) => {
    release = r;
  });
  return { exec: () => promise, release };
}

test('runs once per (peer, key); a repeat gets the first outcome', async (t) => {
  const cache = new IdempotencyCache();
  let runs = 0;
  const exec = () => ok(++runs);
  t.deepEqual(await cache.run('p1', 'k', fp, exec), { ok: true, value: 1 });
  t.deepEqual(await cache.run('p1', 'k', fp, exec), { ok: true, value: 1 });
  t.deepEqual(await cache.run('p2', 'k', fp, exec), { ok: true, value: 2 }, 'another peer, another entry');
  t.is(runs, 2);
});

test('a repeat while the first runs waits for it', async (t) => {
  const cache = new IdempotencyCache();
  const h = held();
  let runs = 0;
  const exec = () => {
    runs++;
    return h.exec();
  };
  const first = cache.run('p', 'k', fp, exec);
  const second = cache.run('p', 'k', fp, exec);
  h.release({ ok: false, error: { code: 'APP', message: 'x' } });
  t.deepEqual(await first, await second);
  t.is(runs, 1);
});

test('entries expire windowMs after they settled, not after they started', async (t) => {
  let clock = 0;
  const cache = new IdempotencyCache({ windowMs: 1000, now: () => clock });
  const slow = held();
  const pending = cache.run('p', 'slow', fp, slow.exec);
  clock = 5000; // far past the window while still running: a pending entry never expires
  t.is(
    await Promise.race([cache.run('p', 'slow', fp, () => ok('second')), Promise.resolve('waiting')]),
    'waiting',
  );
  slow.release({ ok: true, value: 'first' });
  t.deepEqual(await pending, { ok: true, value: 'first' });
  await Promise.resolve();
  clock = 5999;
  t.deepEqual(await cache.run('p', 'slow', fp, () => ok('again')), { ok: true, value: 'first' });
  clock = 6000;
  t.deepEqual(await cache.run('p', 'slow', fp, () => ok('again')), { ok: true, value: 'again' });
});

test("a peer at its quota gives up its own oldest settled entry, never another peer's", async (t) => {
  const cache = new IdempotencyCache({ maxEntries: 100, maxEntriesPerPeer: 3 });
  await cache.run('b', 'kept', fp, () => ok('b'));
  for (let i = 0; i < 50; i++) await cache.run('a', `k${i}`, fp, () => ok(i));
  t.is(cache.size, 4);
  t.deepEqual(await cache.run('b', 'kept', fp, () => ok('again')), { ok: true, value: 'b' });
  t.deepEqual(await cache.run('a', 'k49', fp, () => ok('again')), { ok: true, value: 49 });
  t.deepEqual(await cache.run('a', 'k0', fp, () => ok('again')), { ok: true, value: 'again' });
});

test('a full cache takes from the peer holding the most settled entries', async (t) => {
  const cache = new IdempotencyCache({ maxEntries: 4, maxEntriesPerPeer: 4 });
  await cache.run('b', 'b0', fp, () => ok('b0'));
  for (let i = 0; i < 3; i++) await cache.run('a', `a${i}`, fp, () => ok(i));
  await cache.run('c', 'c0', fp, () => ok('c0')); // full: a (3 settled) gives up a0
  t.is(cache.size, 4);
  t.deepEqual(await cache.run('b', 'b0', fp, () => ok('again')), { ok: true, value: 'b0' });
  t.deepEqual(await cache.run('c', 'c0', fp, () => ok('again')), { ok: true, value: 'c0' });
  t.deepEqual(await cache.run('a', 'a0', fp, () => ok('again')), { ok: true, value: 'again' });
});

test('a pending entry is never evicted: over the quota a new key is refused with SIPC_ERR_BUSY', async (t) => {
  const cache = new IdempotencyCache({ maxEntries: 3, maxEntriesPerPeer: 2 });
  const b = held();
  const bFirst = cache.run('b', 'b', fp, b.exec);
  const a = [held(), held()];
  void cache.run('a', 'a0', fp, a[0]!.exec);
  void cache.run('a', 'a1', fp, a[1]!.exec);
  let ran = false;
  const refused = await cache.run('a', 'a2', fp, () => {
    ran = true;
    return ok(1);
  });
  t.is(code(refused), 'SIPC_ERR_BUSY', 'the peer quota: all its entries pending');
  t.like(refused, { refused: 'quota' });
  t.false(ran);
  t.like(await cache.run('c', 'c0', fp, () => ok(1)), {
    error: { code: 'SIPC_ERR_BUSY' },
    refused: 'quota',
  });
  const bRetry = cache.run('b', 'b', fp, () => ok('second run'));
  b.release({ ok: true, value: 'first run' });
  t.deepEqual(await bRetry, { ok: true, value: 'first run' });
  t.deepEqual(await bFirst, { ok: true, value: 'first run' });
  t.is(code(await cache.run('c', 'c0', fp, () => ok(1))), undefined, 'a settled entry can now make room');
});

test('only the cache marks a refusal: an execution SIPC_ERR_BUSY is an outcome, replayed unmarked, with or without a store', async (t) => {
  const busy = () =>
    Promise.resolve<IdempotentOutcome>({ ok: false, error: { code: 'SIPC_ERR_BUSY', message: 'handler' } });
  for (const store of [undefined, memoryIdempotencyStore()]) {
    const cache = new IdempotencyCache({ store, maxEntriesPerPeer: 1 });
    const first = await cache.run('p', 'k', fp, busy);
    t.false(isRefusal(first));
    const replay = await cache.run('p', 'k', fp, () => ok('ran again'));
    t.deepEqual(replay, first);
    t.false(isRefusal(replay));
    const pending = held();
    void cache.run('q', 'k', fp, pending.exec);
    const refused = await cache.run('q', 'other', fp, () => ok('ran'));
    t.true(isRefusal(refused));
    t.is(code(refused), 'SIPC_ERR_BUSY');
    pending.release({ ok: true, value: 1 });
  }
});

test('a transient outcome (cancelled) is forgotten so a retry runs again', async (t) => {
  const cache = new IdempotencyCache();
  await cache.run('p', 'k', fp, () =>
    Promise.resolve({ ok: false, error: { code: 'SIPC_ERR_CANCELLED', message: 'c' }, transient: true }),
  );
  t.is(cache.size, 0);
  t.deepEqual(await cache.run('p', 'k', fp, () => ok(1)), { ok: true, value: 1 });
});

test('a key reused with other params or another method is a conflict, not the first result', async (t) => {
  const cache = new IdempotencyCache();
  await cache.run('p', 'k', requestFingerprint('pay', { amount: 1 }), () => ok(1));
  const same = await cache.run('p', 'k', requestFingerprint('pay', { amount: 1 }), () => ok(2));
  t.deepEqual(same, { ok: true, value: 1 });
  t.is(
    code(await cache.run('p', 'k', requestFingerprint('pay', { amount: 2 }), () => ok(2))),
    'SIPC_ERR_IDEMPOTENCY_CONFLICT',
  );
  t.is(
    code(await cache.run('p', 'k', requestFingerprint('refund', { amount: 1 }), () => ok(2))),
    'SIPC_ERR_IDEMPOTENCY_CONFLICT',
  );
});

test('the fingerprint covers the method and the params, binary included', (t) => {
  const a = requestFingerprint('m', { x: new Uint8Array([1, 2]) });
  t.is(a.byteLength, 64);
  t.deepEqual(a, requestFingerprint('m', { x: new Uint8Array([1, 2]) }));
  t.notDeepEqual(a, requestFingerprint('m', { x: new Uint8Array([1, 3]) }));
  t.notDeepEqual(a, requestFingerprint('n', { x: new Uint8Array([1, 2]) }));
});

test('detached executions: per-peer and total quotas, then new keys are refused', async (t) => {
  const cache = new IdempotencyCache({ maxDetached: 3, maxDetachedPerPeer: 2 });
  const aborted: string[] = [];
  const abort = (reason: { code: string }) => aborted.push(reason.code);
  const a1 = cache.detach('a', abort);
  const a2 = cache.detach('a', abort);
  t.truthy(a1);
  t.truthy(a2);
  t.is(cache.detach('a', abort), undefined, 'the peer quota');
  t.like(await cache.run('a', 'new', fp, () => ok(1)), {
    error: { code: 'SIPC_ERR_BUSY' },
    refused: 'quota',
  });
  t.truthy(cache.detach('b', abort));
  t.is(cache.detach('c', abort), undefined, 'the total');
  t.like(await cache.run('c', 'new', fp, () => ok(1)), {
    error: { code: 'SIPC_ERR_BUSY' },
    refused: 'quota',
  });
  t.is(cache.detached, 3);
  a1!();
  a1!(); // ending twice counts once
  t.is(cache.detached, 2);
  t.is(code(await cache.run('c', 'new', fp, () => ok(1))), undefined);
  a2!();
  t.deepEqual(aborted, []);
});

test('a detached execution is aborted with SIPC_ERR_TIMEOUT past maxDetachedMs', async (t) => {
  const cache = new IdempotencyCache({ maxDetachedMs: 30 });
  // The lifetime timer does not keep a process alive on its own (unref): this one does.
  const alive = setTimeout(() => {}, 5000);
  t.teardown(() => clearTimeout(alive));
  const reason = await new Promise<{ code: string; message: string }>((resolve) => {
    cache.detach('a', resolve);
  });
  t.true(isSecureIpcError(reason, 'SIPC_ERR_TIMEOUT'));
  t.regex(reason.message, /30 ms after its connection closed/);
});

test('bad options are typed errors', (t) => {
  for (const options of [
    { windowMs: 0 },
    { maxEntries: 0 },
    { maxEntriesPerPeer: -1 },
    { maxDetached: Number.NaN },
    { maxDetachedPerPeer: 0 },
    { maxDetachedMs: 2 ** 31 },
  ])
    t.true(
      isSecureIpcError(
        t.throws(() => new IdempotencyCache(options)),
        'SIPC_ERR_INVALID_ARGUMENT',
      ),
      JSON.stringify(options),
    );
});
