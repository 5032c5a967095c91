/**
 * The bus suite, run over every transport (bus-unix, bus-tcp, and win/bus-pipe under Wine): a
 * broker in its own process, peers with their own keys in this one, real sockets or pipes. Names
 * with D-Bus's semantics, routing under the policy, signals, quotas, introspection, monitoring,
 * activation (a third process) and the end-to-end sentinel.
 */
import { keyFingerprint, PublicError } from '@secure-ipc/core';
import type { TestFn } from 'ava';
import type { BusClient, MonitorRecord } from '../src/index.js';
import { codeOf, join, PEER, peerKeys, type SuiteTransport, startBroker, until } from './harness.js';

const NAME = 'org.example.Sync';

export function busSuite(test: TestFn, o: SuiteTransport): void {
  test(`${o.name}: names over the wire: primary owner, queue, EXISTS; a release and a disconnect hand the name on with nameLost, nameAcquired and NameOwnerChanged`, async (t) => {
    const [a, b, c, w] = peerKeys(4);
    const broker = await startBroker(t, o, {
      trust: [a!, b!, c!, w!],
      policy: { roles: { owner: { own: [NAME] } }, defaultRoles: ['owner'] },
    });
    const A = await join(t, o, broker, a!);
    const B = await join(t, o, broker, b!);
    const C = await join(t, o, broker, c!);
    const W = await join(t, o, broker, w!);
    const changes: unknown[] = [];
    await W.addMatch({ signal: 'bus.NameOwnerChanged' }, (v) => {
      if ((v as { name: string }).name === NAME) changes.push(v);
    });
    const events: string[] = [];
    for (const [who, bus] of [
      ['A', A],
      ['B', B],
    ] as const) {
      bus.on('nameAcquired', (n) => events.push(`${who}+${n}`));
      bus.on('nameLost', (n) => events.push(`${who}-${n}`));
    }
    t.is(await A.requestName(NAME), 'primary-owner');
    t.is(await A.requestName(NAME), 'already-owner');
    t.is(await B.requestName(NAME), 'in-queue');
    t.is(await C.requestName(NAME, { doNotQueue: true }), 'exists');
    t.deepEqual(await W.listQueuedOwners(NAME), [A.name, B.name]);
    t.is(await W.getNameOwner(NAME), A.name);
    t.is(await A.releaseName(NAME), 'released');
    await until(() => events.includes(`B+${NAME}`), 'B acquiring the name');
    t.is(await W.getNameOwner(NAME), B.name);
    t.is(await C.releaseName(NAME), 'not-owner');
    // B allows replacement; C replaces; then B's channel closes while queued: the name stays C's.
    t.is(await B.requestName(NAME, { allowReplacement: true }), 'already-owner');
    t.is(await C.requestName(NAME, { replaceExisting: true }), 'primary-owner');
    await until(() => events.includes(`B-${NAME}`), 'B losing the name');
    t.deepEqual(await W.listQueuedOwners(NAME), [C.name, B.name]);
    await C.close();
    await until(() => changes.length >= 4, 'the owner change of C leaving');
    t.is(await W.getNameOwner(NAME), B.name, 'the owner left: the queue moved up');
    await B.close();
    await until(() => changes.length >= 5, 'the last owner change');
    t.is(await codeOf(W.getNameOwner(NAME)), 'SIPC_ERR_NAME_HAS_NO_OWNER');
    t.deepEqual(changes, [
      { name: NAME, oldOwner: '', newOwner: A.name },
      { name: NAME, oldOwner: A.name, newOwner: B.name },
      { name: NAME, oldOwner: B.name, newOwner: C.name },
      { name: NAME, oldOwner: C.name, newOwner: B.name },
      { name: NAME, oldOwner: B.name, newOwner: '' },
    ]);
    t.deepEqual(events, [`A+${NAME}`, `A-${NAME}`, `B+${NAME}`, `B-${NAME}`, `B+${NAME}`]);
  });

  test(`${o.name}: own is deny by default: a name the policy does not grant is SIPC_ERR_FORBIDDEN and stays unowned; bus.* is never ownable`, async (t) => {
    const [a, b] = peerKeys(2);
    const broker = await startBroker(t, o, {
      trust: [a!, b!],
      policy: { roles: { owner: { own: ['org.example.*'] } }, peers: [{ key: a!.key, roles: ['owner'] }] },
    });
    const A = await join(t, o, broker, a!);
    const B = await join(t, o, broker, b!);
    t.is(await codeOf(B.requestName(NAME)), 'SIPC_ERR_FORBIDDEN');
    t.false(await A.nameHasOwner(NAME));
    t.is(await codeOf(A.requestName('org.other.Name')), 'SIPC_ERR_FORBIDDEN');
    t.is(await codeOf(A.requestName('bus.Thing')), 'SIPC_ERR_INVALID_ARGUMENT');
    t.is(await codeOf(A.requestName('not-a-name')), 'SIPC_ERR_INVALID_ARGUMENT');
    t.is(await A.requestName(NAME), 'primary-owner');
  });

  test(`${o.name}: routing: a call reaches the owner, which sees the caller by its unique name and broker-attested key; each answer goes only to its caller`, async (t) => {
    const [s, c1, c2] = peerKeys(3);
    const broker = await startBroker(t, o, {
      trust: [s!, c1!, c2!],
      policy: {
        roles: { service: { own: [NAME] }, client: { call: [`${NAME}/sync.*`] } },
        peers: [
          { key: s!.key, roles: ['service'] },
          { key: c1!.key, roles: ['client'] },
          { key: c2!.key, roles: ['client'] },
        ],
      },
    });
    const S = await join(t, o, broker, s!);
    S.handle('sync.whoami', async (p, ctx) => {
      await new Promise((r) => setTimeout(r, Math.random() * 20));
      return {
        sender: ctx.sender,
        to: ctx.to,
        peer: ctx.identity.peer,
        os: ctx.identity.osIdentity ?? null,
        p,
      };
    });
    t.is(await S.requestName(NAME), 'primary-owner');
    const C1 = await join(t, o, broker, c1!);
    const C2 = await join(t, o, broker, c2!);
    const calls = Array.from({ length: 20 }, (_, i) => {
      const who = i % 2 === 0 ? C1 : C2;
      return who.call(NAME, 'sync.whoami', { i }).then((r) => ({ who, r: r as Record<string, unknown>, i }));
    });
    for (const { who, r, i } of await Promise.all(calls)) {
      t.is(r.sender, who.name);
      t.is(r.to, NAME);
      t.is(r.peer, keyFingerprint((who === C1 ? c1! : c2!).keyPair.publicKey));
      t.deepEqual(r.p, { i });
      if (o.osIdentity) t.regex(String(r.os), /^(uid|sid):/);
    }
    // By unique name too, under the same grant (the destination owns NAME).
    t.deepEqual(await C1.call(S.name, 'sync.whoami', 'x').then((r) => (r as { p: unknown }).p), 'x');
  });

  test(`${o.name}: routing policy is deny by default per (caller, name, method): the destination never runs a refused call; no owner is SIPC_ERR_NAME_HAS_NO_OWNER`, async (t) => {
    const [s, c, n] = peerKeys(3);
    const broker = await startBroker(t, o, {
      trust: [s!, c!, n!],
      policy: {
        roles: {
          service: { own: [NAME] },
          client: { call: [`${NAME}/sync.status`, 'org.example.Gone/*'] },
        },
        peers: [
          { key: s!.key, roles: ['service'] },
          { key: c!.key, roles: ['client'] },
        ],
      },
    });
    const S = await join(t, o, broker, s!);
    let ran = 0;
    S.handle('sync.status', () => 'ok');
    S.handle('sync.wipe', () => {
      ran++;
      return 'wiped';
    });
    await S.requestName(NAME);
    const C = await join(t, o, broker, c!);
    const N = await join(t, o, broker, n!);
    t.is(await C.call(NAME, 'sync.status'), 'ok');
    t.is(await codeOf(C.call(NAME, 'sync.wipe')), 'SIPC_ERR_FORBIDDEN');
    t.is(await codeOf(N.call(NAME, 'sync.status')), 'SIPC_ERR_FORBIDDEN', 'a peer with no role calls nobody');
    t.is(ran, 0);
    t.is(await codeOf(C.call('org.example.Gone', 'x')), 'SIPC_ERR_NAME_HAS_NO_OWNER');
    t.is(
      await codeOf(N.call('org.example.Gone', 'x')),
      'SIPC_ERR_FORBIDDEN',
      'refused before it learns the name is unowned',
    );
  });

  test(`${o.name}: errors: a destination's PublicError reaches the caller with code and data, anything else stays opaque; a destination that leaves mid-call is SIPC_ERR_CONNECTION_CLOSED`, async (t) => {
    const [s, c] = peerKeys(2);
    const broker = await startBroker(t, o, {
      trust: [s!, c!],
      policy: {
        roles: { service: { own: [NAME] }, client: { call: [`${NAME}/*`] } },
        peers: [
          { key: s!.key, roles: ['service'] },
          { key: c!.key, roles: ['client'] },
        ],
      },
    });
    const S = await join(t, o, broker, s!);
    S.handle('public', () => {
      throw new PublicError('SYNC_EMPTY', 'nothing to sync', { data: { left: 0 } });
    });
    S.handle('secret', () => {
      throw new Error('the key file of alice is missing');
    });
    let leave: () => void = () => {};
    S.handle('hang', () => new Promise<void>((r) => (leave = r)));
    await S.requestName(NAME);
    const C = await join(t, o, broker, c!);
    const pub = await C.call(NAME, 'public').catch(
      (e: unknown) => e as { code: string; remoteCode?: string; data?: unknown },
    );
    t.is((pub as { remoteCode?: string }).remoteCode, 'SYNC_EMPTY');
    t.deepEqual((pub as { data?: unknown }).data, { left: 0 });
    const secret = await C.call(NAME, 'secret').catch((e: unknown) => e as Error & { code: string });
    t.is((secret as { code: string }).code, 'SIPC_ERR_HANDLER');
    t.false((secret as Error).message.includes('alice'), 'the handler internals stay at the destination');
    t.is(await codeOf(C.call(NAME, 'nope')), 'SIPC_ERR_NO_SUCH_METHOD');
    const pending = codeOf(C.call(NAME, 'hang'));
    await new Promise((r) => setTimeout(r, 100));
    await S.close();
    t.is(await pending, 'SIPC_ERR_CONNECTION_CLOSED');
    leave();
  });

  test(`${o.name}: signals: broadcast to matching rules under subscribe grants only; addMatch beyond the grant is SIPC_ERR_FORBIDDEN; a sender rule by well-known name; unicast`, async (t) => {
    const [s, l1, l2, ot] = peerKeys(4);
    const broker = await startBroker(t, o, {
      trust: [s!, l1!, l2!, ot!],
      policy: {
        roles: {
          service: { own: [NAME], publish: [`${NAME}.*`] },
          listener: { subscribe: [`${NAME}.*`] },
          other: { publish: [`${NAME}.*`] },
        },
        peers: [
          { key: s!.key, roles: ['service'] },
          { key: l1!.key, roles: ['listener'] },
          { key: ot!.key, roles: ['other'] },
        ],
      },
    });
    const S = await join(t, o, broker, s!);
    await S.requestName(NAME);
    const L1 = await join(t, o, broker, l1!);
    const L2 = await join(t, o, broker, l2!);
    const O = await join(t, o, broker, ot!);
    const got: Array<[string, unknown, string]> = [];
    await L1.addMatch({ signal: `${NAME}.*`, sender: NAME }, (v, info) => got.push(['L1', v, info.sender]));
    t.is(await codeOf(L2.addMatch({ signal: `${NAME}.*` }, () => {})), 'SIPC_ERR_FORBIDDEN');
    t.is(
      await codeOf(L2.addMatch({}, () => {})),
      'SIPC_ERR_FORBIDDEN',
      'no rule matches everything without a grant',
    );
    t.is(await codeOf(L2.signal(`${NAME}.Progress`, 1)), 'SIPC_ERR_FORBIDDEN', 'publish is deny by default');
    await S.signal(`${NAME}.Progress`, { done: 1 });
    await O.signal(`${NAME}.Progress`, { forged: true }); // O does not own NAME: L1's sender rule does not take it
    await S.signal(`${NAME}.Progress`, { done: 2 });
    await until(() => got.length >= 2, 'two signals');
    await new Promise((r) => setTimeout(r, 100));
    t.deepEqual(got, [
      ['L1', { done: 1 }, S.name],
      ['L1', { done: 2 }, S.name],
    ]);
    const unicast: unknown[] = [];
    L1.on('signal', (v, info) => {
      if (info.signal === `${NAME}.Direct`) unicast.push(v);
    });
    await S.signal(`${NAME}.Direct`, 'to you', { to: L1.name });
    await until(() => unicast.length === 1, 'the unicast signal');
    t.deepEqual(unicast, ['to you']);
  });

  test(`${o.name}: quotas: over a quota is SIPC_ERR_QUOTA_EXCEEDED with quota, scope, limit, used and requested, before anything changes; the broker says which peer by how much; freed usage admits again`, async (t) => {
    const [s, c] = peerKeys(2);
    const broker = await startBroker(t, o, {
      trust: [s!, c!],
      policy: {
        roles: {
          service: { own: ['org.example.*'] },
          client: { call: [`${NAME}/*`], subscribe: ['org.*'] },
        },
        peers: [
          { key: s!.key, roles: ['service'] },
          { key: c!.key, roles: ['client'] },
        ],
      },
      quotas: { peer: { names: 2, pendingReplies: 2, matches: 1 } },
    });
    const S = await join(t, o, broker, s!);
    t.is(await S.requestName(NAME), 'primary-owner');
    t.is(await S.requestName('org.example.Two'), 'primary-owner');
    const over = await S.requestName('org.example.Three').catch(
      (e: unknown) => e as { code: string; details: { data: unknown } },
    );
    t.is((over as { code: string }).code, 'SIPC_ERR_QUOTA_EXCEEDED');
    t.deepEqual((over as { details: { data: unknown } }).details.data, {
      quota: 'names',
      scope: 'peer',
      limit: 2,
      used: 2,
      requested: 1,
    });
    t.false(await S.nameHasOwner('org.example.Three'), 'nothing changed');
    const diag = JSON.parse(await broker.line('quota', (l) => l.includes('"names"'))) as Record<
      string,
      unknown
    >;
    t.like(diag, {
      peer: S.name,
      quota: 'names',
      scope: 'peer',
      limit: 2,
      used: 2,
      requested: 1,
      over: 1,
      action: 'refused',
    });
    await S.releaseName('org.example.Two');
    t.is(await S.requestName('org.example.Three'), 'primary-owner', 'the freed place admits again');

    const release: Array<() => void> = [];
    S.handle('hold', () => new Promise<string>((r) => release.push(() => r('done'))));
    const C = await join(t, o, broker, c!);
    const held = [C.call(NAME, 'hold'), C.call(NAME, 'hold')];
    await until(() => release.length === 2, 'two calls held');
    t.is(await codeOf(C.call(NAME, 'hold')), 'SIPC_ERR_QUOTA_EXCEEDED', 'a third pending reply');
    t.is(release.length, 2, 'the refused call never reached the destination');
    for (const r of release) r();
    t.deepEqual(await Promise.all(held), ['done', 'done']);
    const report = await C.quota();
    t.deepEqual(report.peer.pendingReplies, { used: 0, limit: 2 });
    await C.addMatch({ signal: 'org.example.A' }, () => {});
    t.is(await codeOf(C.addMatch({ signal: 'org.example.B' }, () => {})), 'SIPC_ERR_QUOTA_EXCEEDED');
  });

  test(`${o.name}: quotas per OS identity: peers of one identity share its budget; a peer without the room is refused even under its own`, async (t) => {
    const [a, b] = peerKeys(2);
    const broker = await startBroker(t, o, {
      trust: [a!, b!],
      policy: { roles: { owner: { own: ['org.example.*'] } }, defaultRoles: ['owner'] },
      quotas: { peer: { names: 5 }, identity: { names: 3 } },
    });
    const A = await join(t, o, broker, a!);
    const B = await join(t, o, broker, b!);
    await A.requestName('org.example.A1');
    await A.requestName('org.example.A2');
    await B.requestName('org.example.B1');
    // tcp peers without an OS identity count under their key: then B has its own budget.
    const shared = A.identity.osIdentity !== undefined && A.identity.osIdentity === B.identity.osIdentity;
    const err = await B.requestName('org.example.B2').catch(
      (e: unknown) => e as { code: string; details: { data: Record<string, unknown> } },
    );
    if (shared) {
      t.is((err as { code: string }).code, 'SIPC_ERR_QUOTA_EXCEEDED');
      t.like((err as { details: { data: Record<string, unknown> } }).details.data, {
        quota: 'names',
        scope: 'identity',
        limit: 3,
        used: 3,
      });
    } else {
      t.is(err, 'primary-owner', 'no shared OS identity: each key has its own identity budget');
      t.is(await codeOf(A.requestName('org.example.A3')), 'SIPC_ERR_QUOTA_EXCEEDED');
    }
  });

  test(`${o.name}: introspection: bus.identity needs $bus.identity (one’s own needs none) and answers the owner’s key fingerprint, roles and OS identity`, async (t) => {
    const [s, i, n] = peerKeys(3);
    const broker = await startBroker(t, o, {
      trust: [s!, i!, n!],
      policy: {
        roles: {
          service: { own: [NAME] },
          inspector: { call: ['$bus.identity'] },
          everything: { call: ['*'] },
        },
        peers: [
          { key: s!.key, roles: ['service'] },
          { key: i!.key, roles: ['inspector'] },
          { key: n!.key, roles: ['everything'] },
        ],
      },
    });
    const S = await join(t, o, broker, s!);
    await S.requestName(NAME);
    const I = await join(t, o, broker, i!);
    const N = await join(t, o, broker, n!);
    const id = await I.identityOf(NAME);
    t.is(id.name, S.name);
    t.is(id.peer, keyFingerprint(s!.keyPair.publicKey));
    t.deepEqual([...id.roles], ['service']);
    if (o.osIdentity) t.truthy(id.osIdentity);
    t.is(
      await codeOf(N.identityOf(NAME)),
      'SIPC_ERR_FORBIDDEN',
      'a `*` call grant does not open introspection',
    );
    t.is((await N.identityOf(N.name)).name, N.name);
  });

  test(`${o.name}: monitor: needs $bus.monitor; sees the metadata of calls, answers and signals, never a body`, async (t) => {
    const [s, c, m] = peerKeys(3);
    const broker = await startBroker(t, o, {
      trust: [s!, c!, m!],
      policy: {
        roles: {
          service: { own: [NAME], publish: [`${NAME}.*`] },
          client: { call: [`${NAME}/*`] },
          monitor: { call: ['$bus.monitor'] },
        },
        peers: [
          { key: s!.key, roles: ['service'] },
          { key: c!.key, roles: ['client'] },
          { key: m!.key, roles: ['monitor'] },
        ],
      },
    });
    const S = await join(t, o, broker, s!);
    S.handle('echo', (p) => p);
    await S.requestName(NAME);
    const C = await join(t, o, broker, c!);
    t.is(await codeOf(C.becomeMonitor(() => {})), 'SIPC_ERR_FORBIDDEN');
    const M = await join(t, o, broker, m!);
    const records: MonitorRecord[] = [];
    await M.becomeMonitor((r) => records.push(r));
    const SENTINEL = 'sentinel-7f3a9c1e-never-on-a-monitor';
    t.is(await C.call(NAME, 'echo', SENTINEL), SENTINEL);
    await S.signal(`${NAME}.Progress`, SENTINEL);
    await until(() => records.some((r) => r.kind === 'signal'), 'the signal record');
    const call = records.find((r) => r.kind === 'call')!;
    t.like(call, { sender: C.name, destination: S.name, method: 'echo' });
    t.true(call.bytes > SENTINEL.length);
    t.truthy(records.find((r) => r.kind === 'reply' && r.destination === C.name));
    t.false(JSON.stringify(records).includes(SENTINEL));
    t.false(JSON.stringify(records).includes(Buffer.from(SENTINEL).toString('base64')));
  });

  test(`${o.name}: activation: the first call starts the owner in a new process and is delivered to it; an owner that exits first is SIPC_ERR_NAME_HAS_NO_OWNER`, async (t) => {
    const [svc, c] = peerKeys(2);
    const broker = await startBroker(t, o, {
      trust: [svc!, c!],
      policy: {
        roles: { service: { own: ['org.example.*'] }, client: { call: ['org.example.*/*'] } },
        peers: [
          { key: svc!.key, roles: ['service'] },
          { key: c!.key, roles: ['client'] },
        ],
      },
      activation: {
        [NAME]: {
          command: [process.execPath, PEER, o.name],
          env: {
            ...(process.env as Record<string, string>),
            SIPC_TEST_PEER_KEY: Buffer.from(svc!.keyPair.secretKey).toString('hex'),
          },
        },
        'org.example.Broken': { command: [process.execPath, '-e', 'process.exit(3)'] },
      },
    });
    const C = await join(t, o, broker, c!);
    t.false(await C.nameHasOwner(NAME));
    const started = Date.now();
    const [r1, r2] = (await Promise.all([
      C.call(NAME, 'whoami', null, { timeoutMs: 20_000 }),
      C.call(NAME, 'whoami'),
    ])) as Array<{
      pid: number;
      caller: string;
    }>;
    t.is(r1!.caller, C.name);
    t.is(r1!.pid, r2!.pid, 'one activation for concurrent calls');
    t.not(r1!.pid, process.pid);
    t.true(Date.now() - started < 20_000);
    const activations = broker.lines.filter(
      (l) => l.startsWith('activation ') && l.includes('"started"') && !l.includes('"line"'),
    );
    t.is(activations.length, 1);
    const broken = await C.call('org.example.Broken', 'x').catch(
      (e: unknown) => e as { code: string; details: { data: unknown } },
    );
    t.is((broken as { code: string }).code, 'SIPC_ERR_NAME_HAS_NO_OWNER');
    t.like((broken as { details: { data: Record<string, unknown> } }).details.data, {
      activation: 'exited',
      exit: 3,
    });
  });
  test(`${o.name}: end-to-end: a tunnel through the broker; the broker routes by name and method and never reads the params or result (sentinel), each end trusts by its own pins`, async (t) => {
    const [s, c, x] = peerKeys(3);
    const PLAIN = 'sentinel-plain-4b1d0c2e';
    const SECRET = 'sentinel-e2e-9a8e7f6d5c';
    const broker = await startBroker(t, o, {
      trust: [s!, c!, x!],
      policy: {
        roles: { service: { own: [NAME] }, client: { call: [`${NAME}/*`] } },
        peers: [
          { key: s!.key, roles: ['service'] },
          { key: c!.key, roles: ['client'] },
          { key: x!.key, roles: ['client'] },
        ],
      },
      sentinels: [PLAIN, SECRET],
    });
    // The service answers tunnels from c only (its own pin), whatever the broker says.
    const S = await join(t, o, broker, s!, { e2e: { trust: { keys: [c!.key] } } });
    let ran = 0;
    S.handle('vault.echo', (p, ctx) => {
      ran++;
      return { p, e2e: ctx.e2e?.peerId ?? null, sender: ctx.sender };
    });
    await S.requestName(NAME);
    const C = await join(t, o, broker, c!);
    // Control: in the clear the broker can read the body, and the detector sees it.
    t.deepEqual(((await C.call(NAME, 'vault.echo', PLAIN)) as { p: unknown }).p, PLAIN);
    await broker.line('saw', (l) => l === PLAIN);
    const session = await C.openSession(NAME, { trust: { keys: [s!.key] } });
    t.is(session.destination, S.name);
    t.is(session.peerId, keyFingerprint(s!.keyPair.publicKey));
    for (let i = 0; i < 3; i++) {
      const r = (await session.call('vault.echo', { secret: SECRET, i })) as {
        p: unknown;
        e2e: string;
        sender: string;
      };
      t.deepEqual(r.p, { secret: SECRET, i });
      t.is(r.e2e, keyFingerprint(c!.keyPair.publicKey), 'the handler sees the key the tunnel proved');
      t.is(r.sender, C.name);
    }
    const readBefore = broker.lines.filter((l) => l.startsWith('read ')).length;
    t.true(readBefore > 6, 'the broker decrypted every message of its channels');
    t.false(
      broker.lines.includes(`saw ${SECRET}`),
      'the secret never appeared in anything the broker could decrypt',
    );
    // A method the destination lacks is its sealed SIPC_ERR_NO_SUCH_METHOD.
    t.is(await codeOf(session.call('vault.echo2')), 'SIPC_ERR_NO_SUCH_METHOD');
    // A body that does not open runs nothing.
    const before = ran;
    const forged = C.rawCall({
      to: S.name,
      method: 'vault.echo',
      body: new Uint8Array(40),
      e2e: new Uint8Array(16),
    });
    t.is(await codeOf(forged), 'SIPC_ERR_DECRYPT_FAILED');
    t.is(ran, before);
    // Pins on both ends: the caller refuses a destination key it did not pin; the service refuses x.
    t.is(await codeOf(C.openSession(NAME, { trust: { keys: [x!.key] } })), 'SIPC_ERR_UNTRUSTED_PEER');
    const X = await join(t, o, broker, x!);
    t.is(await codeOf(X.openSession(NAME, { trust: { keys: [s!.key] } })), 'SIPC_ERR_UNTRUSTED_PEER');
    session.close();
    t.false(broker.lines.includes(`saw ${SECRET}`));
  });
}

export type { BusClient };
