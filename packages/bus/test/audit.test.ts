/**
 * The broker's audit records (docs/bus.md section 9, docs/audit.md "What a server records"): a
 * broker over Unix sockets with an audit log, two peers, name changes (acquired, queued, lost,
 * released, a disconnect), routed calls and a quota refusal → the log verifies, holds one
 * `bus.name` per changed queue place, one `bus.route` per routed call and one `bus.quota` per
 * diagnostic with the fields the spec lists, and no byte of any call's params or answer.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type AuditRecord,
  generateKeyPair,
  keyFingerprint,
  openAuditLog,
  readAuditLog,
  verifyAuditLog,
} from '@secure-ipc/core';
import { unixTransport } from '@secure-ipc/transport-unix';
import test from 'ava';
import { connectBus, queueEvents, serveBus } from '../src/index.js';

const SENTINEL = 'SENTINEL-bus-aud1t-params';
const NAME = 'org.example.Sync';

test('queueEvents: lost / acquired / queued / released between two queues of a name', (t) => {
  t.deepEqual(queueEvents([], [':1.1']), [{ owner: ':1.1', event: 'acquired' }]);
  t.deepEqual(queueEvents([':1.1'], [':1.1', ':1.2']), [{ owner: ':1.2', event: 'queued' }]);
  t.deepEqual(queueEvents([':1.1', ':1.2'], [':1.3', ':1.1', ':1.2']), [
    { owner: ':1.1', event: 'lost' },
    { owner: ':1.1', event: 'queued' },
    { owner: ':1.3', event: 'acquired' },
  ]);
  t.deepEqual(queueEvents([':1.1', ':1.2', ':1.3'], [':1.2']), [
    { owner: ':1.1', event: 'lost' },
    { owner: ':1.2', event: 'acquired' },
    { owner: ':1.3', event: 'released' },
  ]);
  t.deepEqual(queueEvents([':1.1', ':1.2'], [':1.1', ':1.2']), [], 'flags updated in place: nothing');
  t.deepEqual(queueEvents([':1.1'], []), [{ owner: ':1.1', event: 'lost' }]);
});

test.serial(
  'audit: bus.name per queue place, bus.route per routed call, bus.quota per diagnostic; the log verifies and holds no params',
  async (t) => {
    if (process.platform === 'win32')
      return t.pass('no Unix sockets on Windows (the pipe suite covers the broker)');
    const base = await mkdtemp(join(tmpdir(), 'sipc-bus-audit-'));
    t.teardown(() => rm(base, { recursive: true, force: true }));
    const dir = join(base, 'audit');
    const log = await openAuditLog({ dir, origin: 'test.example/bus' });
    const brokerKeys = generateKeyPair();
    const [s, c] = [generateKeyPair(), generateKeyPair()];
    const transport = unixTransport();
    const broker = await serveBus({
      transport,
      address: `unix://${join(base, 'bus.sock')}`,
      keyPair: brokerKeys,
      trust: { keys: [s.publicKey, c.publicKey] },
      policy: {
        roles: { service: { own: ['org.example.*'], call: [`${NAME}/*`] } },
        peers: [
          { key: s.publicKey, roles: ['service'] },
          { key: c.publicKey, roles: ['service'] },
        ],
      },
      quotas: { peer: { names: 1 } },
      audit: { log },
    });
    const errors: unknown[] = [];
    broker.on('error', (e) => errors.push(e));
    const join_ = (keyPair: typeof s) =>
      connectBus({ transport, address: broker.address!, keyPair, trust: { keys: [brokerKeys.publicKey] } });
    const S = await join_(s);
    const C = await join_(c);
    S.handle('sync.echo', (p) => ({ back: p }));
    C.handle('sync.echo', (p) => ({ back: p }));

    t.is(await S.requestName(NAME, { allowReplacement: true }), 'primary-owner'); // S acquired
    t.is(await C.requestName(NAME), 'in-queue'); // C queued
    t.deepEqual(await C.call(NAME, 'sync.echo', { secret: SENTINEL }), { back: { secret: SENTINEL } });
    const over = await S.requestName('org.example.Two').catch((e: { code?: string }) => e);
    t.is((over as { code?: string }).code, 'SIPC_ERR_QUOTA_EXCEEDED');
    t.is(await S.releaseName(NAME), 'released'); // S lost, C acquired
    t.deepEqual(await S.call(NAME, 'sync.echo', [SENTINEL]), { back: [SENTINEL] });
    await C.close(); // C lost (the name has no owner now)
    while (broker.stats().peers > 1) await new Promise((r) => setTimeout(r, 5));
    await S.close();
    await broker.close();
    await new Promise((r) => setTimeout(r, 20));
    await log.close();
    t.deepEqual(errors, []);

    const report = await verifyAuditLog(dir, { anchorKey: log.anchorKey });
    t.true(report.ok, JSON.stringify(report.problems));
    const records = (await readAuditLog(dir)).records.filter((r): r is AuditRecord => r !== undefined);
    const bus = records.filter((r) => r.type.startsWith('bus.'));
    const sPeer = keyFingerprint(s.publicKey);
    const cPeer = keyFingerprint(c.publicKey);
    const owners = new Map([
      [sPeer, S.name],
      [cPeer, C.name],
    ]);
    const named = (peer: string, owner: string, event: string) => [
      'bus.name',
      { name: NAME, peer, owner, event },
    ];
    // `bytes` is the body's size, checked to be a real one (the sentinel's encoding is longer).
    const routed = (caller: string, destination: string, n: number) => {
      const bytes = bus.filter((r) => r.type === 'bus.route')[n]?.fields.bytes;
      const size = typeof bytes === 'number' && bytes > SENTINEL.length ? bytes : -1;
      return ['bus.route', { caller, to: NAME, destination, method: 'sync.echo', bytes: size, e2e: false }];
    };
    const quota = {
      peer: S.name,
      peerId: sPeer,
      osIdentity: `uid:${process.getuid!()}`,
      quota: 'names',
      scope: 'peer',
      limit: 1,
      used: 1,
      requested: 1,
      over: 1,
      action: 'refused',
    };
    t.deepEqual(
      bus.map((r) => [r.type, r.fields]),
      [
        named(sPeer, S.name, 'acquired'),
        named(cPeer, C.name, 'queued'),
        routed(C.name, S.name, 0),
        ['bus.quota', quota],
        named(sPeer, S.name, 'lost'),
        named(cPeer, C.name, 'acquired'),
        routed(S.name, C.name, 1),
        named(cPeer, C.name, 'lost'),
      ],
    );
    for (const r of bus.filter((b) => b.type === 'bus.name'))
      t.is(
        owners.get(String(r.fields.peer)),
        r.fields.owner as string,
        'peer is the owner’s key fingerprint',
      );
    // The server's own records are there too: the channels and the bus.* calls under them.
    const types = new Set(records.map((r) => r.type));
    for (const type of ['channel.open', 'rpc.call', 'channel.close']) t.true(types.has(type), type);
    for (const name of await readdir(dir)) {
      const bytes = await readFile(join(dir, name));
      t.false(bytes.includes(Buffer.from(SENTINEL)), `${name} holds no params or answer`);
    }
  },
);
