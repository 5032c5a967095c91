import test from 'ava';
import { createError, isSecureIpcError } from '../src/errors.js';
import { Fifo } from '../src/rpc/fifo.js';
import { CreditGate, RemoteStream } from '../src/rpc/streams.js';

test('RemoteStream grants credit in batches of half the window as the reader takes items', async (t) => {
  const grants: number[] = [];
  const s = new RemoteStream<number>(
    4,
    (n) => grants.push(n),
    () => t.fail('not cancelled'),
  );
  for (let i = 0; i < 4; i++) t.true(s.push(i));
  t.false(s.push(99), 'a fifth item overruns a window of 4');
  const it = s[Symbol.asyncIterator]();
  t.deepEqual(await it.next(), { value: 0, done: false });
  t.deepEqual(grants, []);
  t.deepEqual(await it.next(), { value: 1, done: false });
  t.deepEqual(grants, [2]);
  await it.next();
  await it.next();
  t.deepEqual(grants, [2, 2]);
  const waiting = it.next();
  s.push(4);
  t.deepEqual(await waiting, { value: 4, done: false });
  s.end();
  t.deepEqual(await it.next(), { value: undefined, done: true });
});

test('RemoteStream: items received before an error are delivered first; a local give-up drops them', async (t) => {
  const a = new RemoteStream<number>(
    8,
    () => {},
    () => {},
  );
  a.push(1);
  a.push(2);
  a.fail(createError('SIPC_ERR_STREAM', 'broke'));
  const got: number[] = [];
  const err = await t.throwsAsync(async () => {
    for await (const n of a) got.push(n);
  });
  t.deepEqual(got, [1, 2]);
  t.true(isSecureIpcError(err, 'SIPC_ERR_STREAM'));
  const b = new RemoteStream<number>(
    8,
    () => {},
    () => {},
  );
  b.push(1);
  b.fail(createError('SIPC_ERR_TIMEOUT'), true);
  await t.throwsAsync(b[Symbol.asyncIterator]().next(), { code: 'SIPC_ERR_TIMEOUT' } as never);
});

test('RemoteStream: breaking out cancels once; a second iteration is refused', async (t) => {
  let cancels = 0;
  const s = new RemoteStream<number>(
    8,
    () => {},
    () => cancels++,
  );
  s.push(1);
  s.push(2);
  for await (const _ of s) break;
  t.is(cancels, 1);
  t.true(s.done);
  t.true(
    isSecureIpcError(
      t.throws(() => s[Symbol.asyncIterator]()),
      'SIPC_ERR_STREAM',
    ),
  );
});

test('CreditGate: take spends credit, waits at zero, resumes on grant, resolves false once closed', async (t) => {
  const g = new CreditGate(2);
  t.true(await g.take());
  t.true(await g.take());
  let resolved: boolean | undefined;
  const p = Promise.resolve(g.take()).then((v) => {
    resolved = v;
  });
  await new Promise((r) => setImmediate(r));
  t.is(resolved, undefined, 'waits without credit');
  g.grant(1);
  await p;
  t.true(resolved);
  const q = g.take();
  g.close();
  t.false(await q);
  t.false(await g.take());
});

test('Fifo keeps order across compaction and drains in order', (t) => {
  const q = new Fifo<number>();
  for (let i = 0; i < 5000; i++) q.push(i);
  for (let i = 0; i < 3000; i++) t.is(q.shift(), i);
  q.push(5000);
  t.is(q.size, 2001);
  t.is(q.peek(), 3000);
  const rest = q.drain();
  t.is(rest.length, 2001);
  t.is(rest[0], 3000);
  t.is(rest.at(-1), 5000);
  t.is(q.size, 0);
  t.is(q.shift(), undefined);
});
