// Over-limit refusals cross the wire as SIPC_ERR_BUSY (BusyError): requests beyond the
// responder's limit of running requests (on version 3: SIPC_ERR_UNAVAILABLE, not executed),
// subscriptions beyond the limit of patterns per peer (every version).
import test from 'ava';
import { isSecureIpcError } from '../src/errors.js';
import { createPolicy } from '../src/rpc/policy.js';
import { memoryRpc } from './fixtures/memory-rpc.js';

const everything = createPolicy({
  roles: { all: { call: ['*'], subscribe: ['*'] } },
  defaultRoles: ['all'],
});

test('version 3: a request beyond the server limit of running requests is refused with SIPC_ERR_UNAVAILABLE, never run', async (t) => {
  const { server, client } = await memoryRpc(t, { policy: everything, maxIncoming: 2, maxInFlight: 8 });
  const release: Array<() => void> = [];
  let quickRuns = 0;
  server.handle('hold', () => new Promise<string>((resolve) => release.push(() => resolve('done'))));
  server.handle('quick', () => {
    quickRuns++;
    return 'ok';
  });
  const held = [client.request('hold', null), client.request('hold', null)];
  const refused = await t.throwsAsync(client.request('quick', null));
  t.true(isSecureIpcError(refused, 'SIPC_ERR_UNAVAILABLE'), String(refused));
  t.is(refused?.message, 'The peer did not run the request (not executed); it may be sent again');
  t.like(refused, { details: { remote: true, notExecuted: true } });
  t.is(quickRuns, 0);
  for (const r of release) r();
  t.deepEqual(await Promise.all(held), ['done', 'done']);
  t.is(await client.request('quick', null), 'ok', 'once the slots are free the same call runs');
});

test('version 2: a request beyond the server limit of running requests is refused with SIPC_ERR_BUSY', async (t) => {
  const { server, client } = await memoryRpc(t, {
    policy: everything,
    maxIncoming: 2,
    maxInFlight: 8,
    versions: [2, 1],
  });
  const release: Array<() => void> = [];
  server.handle('hold', () => new Promise<string>((resolve) => release.push(() => resolve('done'))));
  server.handle('quick', () => 'ok');
  const held = [client.request('hold', null), client.request('hold', null)];
  const refused = await t.throwsAsync(client.request('quick', null));
  t.true(isSecureIpcError(refused, 'SIPC_ERR_BUSY'), String(refused));
  t.is(refused?.message, 'Too many requests in flight');
  t.like(refused, { details: { remote: true } });
  for (const r of release) r();
  t.deepEqual(await Promise.all(held), ['done', 'done']);
  t.is(await client.request('quick', null), 'ok', 'once the slots are free the same call runs');
});

test('a subscription beyond the limit of patterns per peer is refused with SIPC_ERR_BUSY', async (t) => {
  const { client } = await memoryRpc(t, { policy: everything });
  const listener = () => {};
  for (let i = 0; i < 256; i++) await client.subscribe(`topic.${i}`, listener);
  const refused = await t.throwsAsync(client.subscribe('topic.256', listener));
  t.true(isSecureIpcError(refused, 'SIPC_ERR_BUSY'), String(refused));
  t.is(refused?.message, 'Too many subscriptions');
  await t.notThrowsAsync(client.subscribe('topic.0', listener), 'a pattern already held is no new one');
});
