// Idempotency stores (issue 16, item 7): a store behind the cache keeps settled outcomes so a
// restarted server replays them. The memory store shows the contract in one process; the file
// store is checked for restarts of a real SIGKILLed process, corruption, mode 0600 and expiry.
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { isSecureIpcError } from '../src/errors.js';
import { fileIdempotencyStore } from '../src/resilience/idempotency-file-store.js';
import {
  IdempotencyCache,
  type IdempotentOutcome,
  isRefusal,
  requestFingerprint,
} from '../src/rpc/idempotency.js';
import { memoryIdempotencyStore } from '../src/rpc/idempotency-store.js';

const CHILD = fileURLToPath(new URL('./fixtures/idempotency-store-child.js', import.meta.url));
const fp = requestFingerprint('m', { a: 1 });
const other = requestFingerprint('m', { a: 2 });
const ok = (value: unknown): Promise<IdempotentOutcome> => Promise.resolve({ ok: true, value });
const code = (o: IdempotentOutcome) => (o.ok ? undefined : o.error.code);

function tempDir(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'sipc-idem-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('memory store: a new cache on the same store (a restart) replays the outcome without running', async (t) => {
  const store = memoryIdempotencyStore();
  let runs = 0;
  const exec = () => ok(++runs);
  t.deepEqual(await new IdempotencyCache({ store }).run('p', 'k', fp, exec), { ok: true, value: 1 });
  const restarted = new IdempotencyCache({ store });
  t.deepEqual(await restarted.run('p', 'k', fp, exec), { ok: true, value: 1 });
  t.is(code(await restarted.run('p', 'k', other, exec)), 'SIPC_ERR_IDEMPOTENCY_CONFLICT');
  t.deepEqual(
    await restarted.run('p2', 'k', fp, exec),
    { ok: true, value: 2 },
    'another peer, another record',
  );
  t.is(runs, 2);
});

test('memory store: an error outcome is kept too; a transient one is not', async (t) => {
  const store = memoryIdempotencyStore();
  const failing = () =>
    Promise.resolve<IdempotentOutcome>({ ok: false, error: { code: 'APP_DECLINED', message: 'no' } });
  const cut = () =>
    Promise.resolve<IdempotentOutcome>({
      ok: false,
      error: { code: 'SIPC_ERR_TIMEOUT', message: 't' },
      transient: true,
    });
  await new IdempotencyCache({ store }).run('p', 'e', fp, failing);
  await new IdempotencyCache({ store }).run('p', 't', fp, cut);
  const restarted = new IdempotencyCache({ store });
  t.is(code(await restarted.run('p', 'e', fp, () => ok('ran'))), 'APP_DECLINED');
  t.deepEqual(await restarted.run('p', 't', fp, () => ok('ran')), { ok: true, value: 'ran' });
});

test('a store that cannot be read fails closed: nothing runs, SIPC_ERR_BUSY, and a retry may run', async (t) => {
  let broken = true;
  const inner = memoryIdempotencyStore();
  const store = {
    get: (peer: string, key: string) => {
      if (broken) throw new Error('disk gone');
      return inner.get(peer, key);
    },
    put: inner.put,
  };
  const cache = new IdempotencyCache({ store });
  let runs = 0;
  const first = cache.run('p', 'k', fp, () => ok(++runs));
  const waiter = cache.run('p', 'k', fp, () => ok(++runs)); // joins the entry while the store is asked
  for (const answer of await Promise.all([first, waiter]))
    t.like(answer, { ok: false, error: { code: 'SIPC_ERR_BUSY' }, refused: 'store' });
  t.is(runs, 0);
  t.is(cache.size, 0, 'nothing is kept');
  broken = false;
  t.deepEqual(await cache.run('p', 'k', fp, () => ok(++runs)), { ok: true, value: 1 });
});

test('a stored outcome is replayed as an outcome, never as a refusal, whatever else its object holds', async (t) => {
  const busy = { ok: false as const, error: { code: 'SIPC_ERR_BUSY', message: 'handler' } };
  const store = {
    get: () => ({
      peer: 'p',
      key: 'k',
      fingerprint: fp,
      expiresAt: Date.now() + 60_000,
      outcome: { ...busy, refused: 'quota' },
    }),
    put: () => {},
  };
  const cache = new IdempotencyCache({ store });
  const answer = await cache.run('p', 'k', fp, () => ok('ran'));
  t.deepEqual(answer, busy);
  t.false(isRefusal(answer));
  t.is(cache.size, 1, 'kept as a settled entry');
});

test('file store: records survive close and reopen; the window is wall-clock and honoured after it', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'idem.log');
  let clock = 1_000_000;
  const now = () => clock;
  const first = await fileIdempotencyStore(path, { now });
  t.is(statSync(path).mode & 0o777, 0o600);
  const cache = new IdempotencyCache({ store: first, now, windowMs: 1000 });
  t.deepEqual(await cache.run('p', 'k', fp, () => ok({ n: 1, bytes: new Uint8Array([1, 2]) })), {
    ok: true,
    value: { n: 1, bytes: new Uint8Array([1, 2]) },
  });
  await first.close();
  const second = await fileIdempotencyStore(path, { now });
  t.is(second.size, 1);
  const restarted = new IdempotencyCache({ store: second, now, windowMs: 1000 });
  t.deepEqual(await restarted.run('p', 'k', fp, () => ok('ran')), {
    ok: true,
    value: { n: 1, bytes: new Uint8Array([1, 2]) },
  });
  clock += 1000; // the window of the first execution is over, across the restart too
  await second.close();
  const third = await fileIdempotencyStore(path, { now });
  t.is(third.size, 0, 'the open drops expired records');
  t.deepEqual(await new IdempotencyCache({ store: third, now }).run('p', 'k', fp, () => ok('ran')), {
    ok: true,
    value: 'ran',
  });
  await third.close();
});

test('file store: corruption is refused with a typed error, a torn tail is dropped, a loose mode refused', async (t) => {
  const dir = tempDir(t);
  const path = join(dir, 'idem.log');
  const store = await fileIdempotencyStore(path);
  for (const [key, value] of [
    ['a', 1],
    ['b', 2],
  ] as const)
    await store.put({
      peer: 'p',
      key,
      fingerprint: fp,
      outcome: { ok: true, value },
      expiresAt: Date.now() + 60_000,
    });
  await store.close();
  const good = readFileSync(path);
  const damaged = Buffer.from(good);
  damaged[30] = (damaged[30] as number) ^ 0xff; // inside the first record, with another after it
  writeFileSync(path, damaged, { mode: 0o600 });
  const err = await t.throwsAsync(fileIdempotencyStore(path));
  t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'));
  t.is((err as { details?: { reason?: string } }).details?.reason, 'corrupt');
  writeFileSync(path, good.subarray(0, good.byteLength - 3), { mode: 0o600 });
  const torn = await fileIdempotencyStore(path);
  t.true(torn.tornBytes > 0);
  t.is(torn.size, 1);
  await torn.close();
  chmodSync(path, 0o644);
  t.true(isSecureIpcError(await t.throwsAsync(fileIdempotencyStore(path)), 'SIPC_ERR_INSECURE_KEY_FILE'));
});

test('file store: bounded by maxEntries (the oldest gives way) and options checked', async (t) => {
  const dir = tempDir(t);
  const store = await fileIdempotencyStore(join(dir, 'idem.log'), { maxEntries: 2 });
  for (const key of ['a', 'b', 'c'])
    await store.put({
      peer: 'p',
      key,
      fingerprint: fp,
      outcome: { ok: true, value: key },
      expiresAt: Date.now() + 60_000,
    });
  t.is(store.size, 2);
  t.is(await store.get('p', 'a'), undefined);
  t.is((await store.get('p', 'c'))?.outcome.ok, true);
  await store.close();
  t.true(
    isSecureIpcError(
      await t.throwsAsync(fileIdempotencyStore(join(dir, 'x'), { maxEntries: 0 })),
      'SIPC_ERR_INVALID_ARGUMENT',
    ),
  );
});

/** Run the child until it printed its outcome, then SIGKILL it; its outcome line. */
function runAndKill(args: string[]): Promise<IdempotentOutcome> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [CHILD, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.stdout.on('data', (d) => {
      out += d;
      const line = out.indexOf('\n');
      if (line >= 0) {
        child.kill('SIGKILL');
        resolve(JSON.parse(out.slice(0, line)) as IdempotentOutcome);
      }
    });
    child.on('exit', (status, signal) => {
      if (signal !== 'SIGKILL') reject(new Error(`child exited ${status}: ${err}`));
    });
  });
}

test('file store: a SIGKILLed server process restarted replays the first outcome; the handler runs once', async (t) => {
  const dir = tempDir(t);
  const store = join(dir, 'idem.log');
  const effects = join(dir, 'effects');
  writeFileSync(effects, '');
  const first = await runAndKill([store, effects, 'order-1', '10']);
  const again = await runAndKill([store, effects, 'order-1', '10']);
  t.deepEqual(again, first, 'the restarted process answers with the first outcome');
  const conflict = await runAndKill([store, effects, 'order-1', '99']);
  t.is(code(conflict), 'SIPC_ERR_IDEMPOTENCY_CONFLICT');
  t.is(readFileSync(effects, 'utf8').split('\n').filter(Boolean).length, 1, 'the effect happened once');
});

test('the reply waits for the put; a put that fails is reported and the outcome still replayed here', async (t) => {
  const inner = memoryIdempotencyStore();
  let release!: () => void;
  const gate = new Promise<void>((r) => {
    release = r;
  });
  const slow = {
    get: inner.get,
    put: async (record: Parameters<typeof inner.put>[0]) => {
      await gate;
      await inner.put(record);
    },
  };
  const cache = new IdempotencyCache({ store: slow });
  let answered = false;
  const first = cache
    .run('p', 'k', fp, () => ok('v'))
    .then((o) => {
      answered = true;
      return o;
    });
  await new Promise((r) => setImmediate(r)); // every microtask has run
  t.false(answered, 'not answered before the store has the outcome');
  release();
  t.deepEqual(await first, { ok: true, value: 'v' });
  t.is((await inner.get('p', 'k'))?.outcome.ok, true);

  const reported: unknown[] = [];
  const failing = new IdempotencyCache({
    store: { get: () => undefined, put: () => Promise.reject(new Error('disk full')) },
    onStoreError: (err) => reported.push(err),
  });
  let runs = 0;
  t.deepEqual(await failing.run('p', 'k', fp, () => ok(++runs)), { ok: true, value: 1 });
  t.deepEqual(await failing.run('p', 'k', fp, () => ok(++runs)), { ok: true, value: 1 });
  t.is(runs, 1);
  t.is(reported.length, 1);
});
