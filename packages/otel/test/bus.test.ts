/**
 * A bus broker's metrics (docs/bus.md section 9) through the real SDK: a broker and three peers
 * over core's memory transport, routed calls (answered, an application error, refused by policy,
 * to a name nobody owns), a quota refusal, name queue events, a signal routed and one refused at
 * its sender, peers joining and leaving -> the secure_ipc.bus.* metrics count exactly that, with
 * bounded labels, and no label or attribute carries a params' sentinel.
 */

import { type BrokerOptions, connectBus, serveBus } from '@secure-ipc/bus';
import { generateKeyPair, type KeyPair, PublicError, type RoleGrant } from '@secure-ipc/core';
import { memoryTransport } from '@secure-ipc/core/transport';
import test, { type ExecutionContext } from 'ava';
import { otelWorld, points } from './fixtures/world.js';

const NAME = 'org.example.Sync';
const SENTINEL = 'SENTINEL-otel-bus-params';

/** The code a call failed with: an application's own (a destination's PublicError) or core's. */
const codeOf = (p: Promise<unknown>) =>
  p.then(
    () => 'resolved',
    (e: { code?: string; remoteCode?: string }) => e.remoteCode ?? e.code,
  );

/**
 * A broker on core's memory transport at ADDRESS whose policy gives peer `s` the `service` role
 * and `c` the `client` role (`x` is trusted with no role); `join` connects one of them.
 */
async function bus(
  t: ExecutionContext,
  address: string,
  roles: Record<string, RoleGrant>,
  extra: Partial<BrokerOptions> = {},
) {
  const transport = memoryTransport();
  const brokerKeys = generateKeyPair();
  const [s, c, x] = [generateKeyPair(), generateKeyPair(), generateKeyPair()];
  const broker = await serveBus({
    transport,
    address,
    keyPair: brokerKeys,
    trust: { keys: [s.publicKey, c.publicKey, x.publicKey] },
    policy: {
      roles,
      peers: [
        { key: s.publicKey, roles: ['service'] },
        { key: c.publicKey, roles: ['client'] },
      ],
    },
    ...extra,
  });
  t.teardown(() => broker.close());
  const join = (keyPair: KeyPair) =>
    connectBus({ transport, address, keyPair, trust: { keys: [brokerKeys.publicKey] } });
  return { broker, join, keys: { s, c, x } };
}

test.serial(
  'bus metrics: calls by outcome and duration, bytes, signals, name events, quotas, peers',
  async (t) => {
    const world = otelWorld();
    t.teardown(() => world.stop());
    const { broker, join, keys } = await bus(
      t,
      'memory://otel-bus',
      {
        service: { own: ['org.example.*'], publish: [`${NAME}.*`] },
        client: { call: [`${NAME}/*`, 'org.example.Gone/*'], subscribe: [`${NAME}.*`] },
      },
      { quotas: { peer: { names: 1 } } },
    );
    const S = await join(keys.s);
    const C = await join(keys.c);
    const X = await join(keys.x);
    S.handle('sync.echo', (p) => ({ back: p }));
    S.handle('sync.fail', () => {
      throw new PublicError('APP_SYNC_FAILED', 'no');
    });
    t.is(await S.requestName(NAME), 'primary-owner');
    t.is(await codeOf(S.requestName('org.example.Two')), 'SIPC_ERR_QUOTA_EXCEEDED');
    const got: unknown[] = [];
    await C.addMatch({ signal: `${NAME}.*` }, (v) => got.push(v));

    for (let i = 0; i < 3; i++)
      t.deepEqual(await C.call(NAME, 'sync.echo', [SENTINEL]), { back: [SENTINEL] });
    t.is(await codeOf(C.call(NAME, 'sync.fail', { secret: SENTINEL })), 'APP_SYNC_FAILED');
    t.is(await codeOf(X.call(NAME, 'sync.echo', [SENTINEL])), 'SIPC_ERR_FORBIDDEN');
    t.is(await codeOf(C.call('org.example.Gone', 'sync.echo')), 'SIPC_ERR_NAME_HAS_NO_OWNER');
    await S.signal(`${NAME}.Progress`, { done: SENTINEL });
    t.is(await codeOf(X.signal(`${NAME}.Progress`, 1)), 'SIPC_ERR_FORBIDDEN');
    while (got.length < 1) await new Promise((r) => setTimeout(r, 5));
    await X.close();
    while (broker.stats().peers > 2) await new Promise((r) => setTimeout(r, 5));

    const m = await world.collect();
    const byOutcome = Object.fromEntries(
      points(m, 'secure_ipc.bus.calls').map((p) => [
        `${p.attributes['rpc.method']} ${p.attributes['secure_ipc.bus.outcome']}`,
        p.value,
      ]),
    );
    t.deepEqual(byOutcome, {
      'sync.echo OK': 3,
      'sync.fail APP_SYNC_FAILED': 1,
      'sync.echo SIPC_ERR_FORBIDDEN': 1,
      'sync.echo SIPC_ERR_NAME_HAS_NO_OWNER': 1,
    });
    for (const p of points(m, 'secure_ipc.bus.calls')) {
      t.is(p.attributes['secure_ipc.bus.e2e'], false);
      if (p.attributes['secure_ipc.bus.outcome'] !== 'OK')
        t.is(p.attributes['error.type'], p.attributes['secure_ipc.bus.outcome']);
    }
    const durations = points(m, 'secure_ipc.bus.call.duration');
    const count = (o: string) =>
      (
        durations.find((p) => p.attributes['secure_ipc.bus.outcome'] === o)?.value as
          | { count?: number }
          | undefined
      )?.count;
    t.is(count('OK'), 3);
    const bytes = Object.fromEntries(
      points(m, 'secure_ipc.bus.bytes').map((p) => [
        p.attributes['secure_ipc.bus.direction'],
        p.value as number,
      ]),
    );
    t.true(bytes.call! > 3 * SENTINEL.length, `call bytes ${bytes.call}`);
    t.true(bytes.answer! > 3 * SENTINEL.length, `answer bytes ${bytes.answer}`);
    t.true(bytes.signal! > SENTINEL.length, `signal bytes ${bytes.signal}`);
    t.deepEqual(
      points(m, 'secure_ipc.bus.signals').map((p) => [p.attributes['secure_ipc.bus.outcome'], p.value]),
      [['routed', 1]],
      'one receiver took it; the refused emit never reached routing',
    );
    t.deepEqual(
      points(m, 'secure_ipc.bus.name.events').map((p) => [
        p.attributes['secure_ipc.bus.name.event'],
        p.value,
      ]),
      [['acquired', 1]],
    );
    t.deepEqual(
      points(m, 'secure_ipc.bus.quota.exceeded').map((p) => p.attributes),
      [
        {
          'secure_ipc.bus.quota': 'names',
          'secure_ipc.bus.quota.scope': 'peer',
          'secure_ipc.bus.quota.action': 'refused',
        },
      ],
    );
    t.deepEqual(
      points(m, 'secure_ipc.bus.peers').map((p) => p.value),
      [2],
      'three joined, one left',
    );
    const text = JSON.stringify(m, (_k, v) => (typeof v === 'bigint' ? String(v) : v));
    t.false(text.includes(SENTINEL), 'no params, answers or signal bodies in metrics');
    await C.close();
    await S.close();
  },
);

test.serial('bus metrics: a method label per distinct method up to maxMethods, then _OTHER', async (t) => {
  const world = otelWorld({ maxMethods: 2 });
  t.teardown(() => world.stop());
  const { join, keys } = await bus(t, 'memory://otel-bus-cap', {
    service: { own: [NAME] },
    client: { call: [`${NAME}/*`] },
  });
  const S = await join(keys.s);
  const C = await join(keys.c);
  for (const method of ['a.one', 'a.two', 'a.three', 'a.four']) S.handle(method, () => 1);
  await S.requestName(NAME);
  for (const method of ['a.one', 'a.two', 'a.three', 'a.four']) await C.call(NAME, method);
  const labels = points(await world.collect(), 'secure_ipc.bus.calls')
    .map((p) => [p.attributes['rpc.method'], p.value])
    .sort();
  t.deepEqual(labels, [
    ['_OTHER', 2],
    ['a.one', 1],
    ['a.two', 1],
  ]);
  await C.close();
  await S.close();
});
