// The per-peer byte budget's accounting (src/rpc/byte-budget.ts) and the validation of its options;
// byte-budget-process.test.ts checks what it bounds, with a server in its own process.
import test from 'ava';
import { isSecureIpcError } from '../src/errors.js';
import { ByteBudget } from '../src/rpc/byte-budget.js';
import { createServer } from '../src/rpc/server.js';

test('over the limit once: reads paused; back at half: resumed', (t) => {
  const calls: string[] = [];
  const budget = new ByteBudget(100, {
    pause: () => calls.push('over'),
    resume: () => calls.push('under'),
  });
  budget.charge(60);
  budget.charge(60);
  budget.charge(10);
  t.deepEqual(calls, ['over'], 'told once, not per charge');
  budget.release(60);
  t.deepEqual(calls, ['over'], '70 is above half');
  budget.release(20);
  t.deepEqual(calls, ['over', 'under']);
  t.is(budget.used, 50);
});

test('producers wait for their turn in order; waiting ones hold nothing; at most one goes over', async (t) => {
  const budget = new ByteBudget(100);
  t.is(budget.turn(), undefined, 'room now');
  budget.take(90);
  t.is(budget.turn(), undefined, '90 < 100: room for one more');
  budget.take(50); // the one that goes over
  const order: number[] = [];
  const waits = [1, 2, 3].map((n) =>
    budget.turn()!.then(() => {
      order.push(n);
      budget.take(40);
    }),
  );
  await new Promise((r) => setImmediate(r));
  t.deepEqual(order, [], 'nobody while over the limit');
  budget.release(90); // 50 used: one turn
  await new Promise((r) => setImmediate(r));
  t.deepEqual(order, [1, 2], 'served in order while there is room (50 -> 90 -> 130)');
  t.is(budget.used, 130);
  budget.release(50);
  budget.release(40);
  await Promise.all(waits);
  t.deepEqual(order, [1, 2, 3]);
});

test('a producer that sends nothing passes its turn on; close() wakes every waiting producer', async (t) => {
  const budget = new ByteBudget(10);
  t.is(budget.turn(), undefined);
  const next = budget.turn();
  t.truthy(next, 'one turn at a time');
  budget.pass();
  await next;
  budget.take(20);
  const stuck = [budget.turn(), budget.turn()];
  budget.close();
  await Promise.all(stuck);
  t.pass();
});

test('maxQueuedReplyBytes, maxQueuedEventBytes and eventOverflow are validated', (t) => {
  for (const bad of [0, -1, 1.5, Number.NaN, '8'])
    for (const option of ['maxQueuedReplyBytes', 'maxQueuedEventBytes'])
      t.true(
        isSecureIpcError(
          t.throws(() => createServer({ [option]: bad as number })),
          'SIPC_ERR_INVALID_ARGUMENT',
        ),
        `${option}: ${String(bad)}`,
      );
  for (const bad of ['block', '', 1])
    t.true(
      isSecureIpcError(
        t.throws(() => createServer({ eventOverflow: bad as 'drop' })),
        'SIPC_ERR_INVALID_ARGUMENT',
      ),
      String(bad),
    );
  t.notThrows(() => createServer({ eventOverflow: 'disconnect', maxQueuedEventBytes: 1 }));
});
