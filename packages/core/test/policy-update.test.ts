/**
 * `server.setPolicy()` (a configuration reload): live channels are authorized by the new policy
 * from their next request or event, their roles are given again, subscriptions no longer granted
 * are dropped at once, new channels get the new policy, and an auditing server records it.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { connect, createPolicy, generateKeyPair, openAuditLog, readAuditLog, serve } from '../src/index.js';
import { memoryTransport } from '../src/transport/index.js';

test('setPolicy: a live channel loses and gains grants at its next request; its subscription is dropped; new channels get it; recorded', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'sipc-policy-update-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const log = await openAuditLog({ dir: join(base, 'audit'), origin: 'test.example/policy' });
  const serverKeys = generateKeyPair();
  const clientKeys = generateKeyPair();
  const transport = memoryTransport();
  const address = 'memory://policy-update';
  const peers = [{ key: clientKeys.publicKey, roles: ['app'] }];
  const server = await serve({
    transport,
    address,
    keyPair: serverKeys,
    trust: { keys: [clientKeys.publicKey] },
    policy: createPolicy({ roles: { app: { call: ['files.read'], subscribe: ['tick.*'] } }, peers }),
    audit: { log },
  });
  server.handle('files.read', () => 'r');
  server.handle('files.write', () => 'w');
  const dial = () =>
    connect({ transport, address, keyPair: clientKeys, trust: { keys: [serverKeys.publicKey] } });
  const client = await dial();
  const ticks: unknown[] = [];
  await client.subscribe('tick.*', (p) => {
    ticks.push(p);
  });
  t.is(await client.request('files.read'), 'r');
  await t.throwsAsync(client.request('files.write'), { code: 'SIPC_ERR_FORBIDDEN' });
  server.publish('tick.a', 1);
  await client.ping();
  t.deepEqual(ticks, [1]);

  const update = server.setPolicy(createPolicy({ roles: { app: { call: ['files.write'] } }, peers }));
  t.deepEqual(update, { channels: 1, droppedSubscriptions: 1 });
  await t.throwsAsync(client.request('files.read'), { code: 'SIPC_ERR_FORBIDDEN' });
  t.is(await client.request('files.write'), 'w');
  server.publish('tick.a', 2);
  await client.ping();
  t.deepEqual(ticks, [1], 'the dropped subscription gets nothing more');
  // Roles come from the new policy too.
  server.setPolicy(
    createPolicy({
      roles: { ops: { call: ['files.*'] } },
      peers: [{ key: clientKeys.publicKey, roles: ['ops'] }],
    }),
  );
  t.deepEqual(server.stats().channels[0]?.roles, ['ops']);
  const late = await dial();
  t.is(await late.request('files.read'), 'r');
  await t.throwsAsync(
    late.subscribe('tick.*', () => {}),
    { code: 'SIPC_ERR_FORBIDDEN' },
  );
  t.throws(() => server.setPolicy({} as never), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  await client.close();
  await late.close();
  await server.close();
  await log.close();
  const updates = (await readAuditLog(join(base, 'audit'))).records.filter(
    (r) => r?.type === 'policy.update',
  );
  t.deepEqual(
    updates.map((r) => r!.fields),
    [
      { channels: 1, droppedSubscriptions: 1 },
      { channels: 1, droppedSubscriptions: 0 },
    ],
  );
});
