/**
 * The reconnecting client's answer to `goingAway` (the RpcClient event of a received kind 13):
 * it stops sending on that channel, which drains (its running call finishes there), connects a
 * new one (ready → connecting → ready) and sends new calls there; close() closes the draining
 * channel too. Real servers and channels on the memory transport, manual time.
 *
 * The RPC layer emits `goingAway` once protocol version 3's kind 13 is implemented (issue 16,
 * item 5, in rpc/); until then this test emits the event on the real client the way the layer
 * will (`{ lastId }`), so it covers the reconnecting client's side of the contract only. The
 * end-to-end drain (server.close({ drainMs })) belongs in resilience-retry-v3.test.ts.
 */
import test from 'ava';
import type { RpcClient } from '../src/rpc/client.js';
import { drive, holdMethod, retryWorld } from './fixtures/retry-memory.js';

test('goingAway: new calls go to a new channel while the old one finishes its running call; close() closes both', async (t) => {
  const world = retryWorld(t);
  const server = await world.start();
  const hold = holdMethod(server, 'held');
  let quick = 0;
  server.handle('quick', () => ++quick);
  const rc = world.client();
  t.deepEqual(await drive(world.clock, rc.request('quick', null)), { value: 1 });
  const old = rc.client as RpcClient;
  const states: string[] = [];
  rc.on('stateChange', ({ to }) => states.push(to));
  const held = rc.request('hold', null);
  await hold.running();
  t.is(hold.held, 1);

  (old as unknown as NodeJS.EventEmitter).emit('goingAway', { lastId: 2 });
  t.is(rc.state, 'connecting');
  t.is(rc.client, undefined, 'no call is sent on the draining channel');
  t.deepEqual(await drive(world.clock, rc.request('quick', null)), { value: 2 });
  t.deepEqual(states, ['connecting', 'ready']);
  t.not(rc.client, old);
  t.false(old.closed, 'the old channel drains');
  t.is(server.listener.channels.size, 2);
  hold.release();
  t.is(await held, 'held', 'the running call finished on the old channel');

  await rc.close();
  t.true(old.closed, 'close() closed the draining channel too');
  t.is(world.clock.pendingTimers, 0);
});
