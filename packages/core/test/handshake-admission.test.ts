// Issue 12, rows 4 and 5: handshake fairness (per-identity and total pending caps that drop the
// oldest idle handshake, a short deadline for message 1, no reading while the trust decision
// runs) and connection caps (per static key, per OS identity, total).
import { randomBytes } from 'node:crypto';
import { EventEmitter, once } from 'node:events';
import test, { type ExecutionContext } from 'ava';
import { secureConnect } from '../src/channel/secure-channel.js';
import { type LimitDecision, type SecureListener, secureListen } from '../src/channel/secure-listener.js';
import { isSecureIpcError, type SecureIpcError } from '../src/errors.js';
import { generateKeyPair, type KeyPair } from '../src/keys/key-pair.js';
import type { Connection, Listener, ListenerEvents, PeerInfo } from '../src/transport/contract.js';
import { type MemoryConnection, memoryPair } from '../src/transport/memory-transport.js';
import { asConnection, handshake, tcpSocketPair, trustedKeys } from './helpers.js';

/** A transport listener whose connections carry the OS identity the test names (as a transport would fill it). */
class IdentityListener extends EventEmitter<ListenerEvents> implements Listener {
  readonly address = 'memory://admission';
  readonly #open = new Set<Connection>();
  /** Connect as `osIdentity` (undefined: a peer the OS cannot identify); returns the client end. */
  connect(osIdentity: string | undefined): MemoryConnection {
    const [client, server] = memoryPair();
    const peer: PeerInfo = Object.freeze({ transport: 'memory', osIdentity });
    Object.defineProperty(server, 'peer', { value: peer });
    this.#open.add(server);
    this.emit('connection', server);
    return client;
  }
  async close(): Promise<void> {
    for (const c of this.#open) c.destroy();
    this.emit('close');
  }
}

interface Setup {
  raw: IdentityListener;
  listener: SecureListener;
  server: KeyPair;
  decisions: LimitDecision[];
  errors: SecureIpcError[];
  /** A full client handshake as `osIdentity` with `keyPair`. */
  join(osIdentity: string | undefined, keyPair?: KeyPair): ReturnType<typeof secureConnect>;
  /** Connections that send nothing, as `osIdentity`. */
  silent(osIdentity: string | undefined, count: number): MemoryConnection[];
}

function setup(t: ExecutionContext, options: Record<string, unknown> = {}, trusted?: KeyPair[]): Setup {
  const raw = new IdentityListener();
  const server = generateKeyPair();
  const client = generateKeyPair();
  const keys = [client, ...(trusted ?? [])].map((k) => k.publicKey);
  const listener = secureListen(raw, { keyPair: server, trust: { keys }, ...options });
  t.teardown(() => listener.close());
  const decisions: LimitDecision[] = [];
  const errors: SecureIpcError[] = [];
  listener.on('limit', (d) => decisions.push(d));
  listener.on('handshakeError', (e) => errors.push(e));
  listener.on('channel', (ch) => ch.on('message', (m) => ch.send(m).catch(() => {})));
  const open: Connection[] = [];
  t.teardown(() => {
    for (const c of open) c.destroy();
  });
  return {
    raw,
    listener,
    server,
    decisions,
    errors,
    join: async (osIdentity, keyPair = client) => {
      const connection = raw.connect(osIdentity);
      open.push(connection);
      return secureConnect(connection, { keyPair, trust: { keys: [server.publicKey] } });
    },
    silent: (osIdentity, count) => {
      const made = Array.from({ length: count }, () => raw.connect(osIdentity));
      for (const c of made) {
        c.on('data', () => {});
        c.on('error', () => {}); // writes after the server let go (the drip-feeder)
      }
      open.push(...made);
      return made;
    },
  };
}

/** Resolves once the server let go of the connection (the client end sees its end or a close). */
const closedSoon = (c: Connection): Promise<void> =>
  c.destroyed || c.readableEnded
    ? Promise.resolve()
    : new Promise((resolve) => {
        c.once('end', () => resolve());
        c.once('close', () => resolve());
      });

test('a burst of 100 simultaneous handshakes from one uid all succeed with the default caps (32 per uid): the excess waits, nobody is dropped', async (t) => {
  const s = setup(t);
  const channels = await Promise.all(Array.from({ length: 100 }, () => s.join('uid:1000')));
  t.teardown(() => Promise.all(channels.map((c) => c.close())));
  const replies = await Promise.all(
    channels.map(async (channel, i) => {
      const echo = once(channel, 'message');
      await channel.send(Buffer.from(`burst ${i}`));
      return Buffer.from((await echo)[0] as Uint8Array).toString();
    }),
  );
  replies.forEach((r, i) => {
    t.is(r, `burst ${i}`);
  });
  t.deepEqual(s.decisions, []);
  t.deepEqual(s.errors, []);
});

test('per-identity cap: a 33rd silent connection displaces nobody; a newcomer whose message 1 arrived takes the slot of that uid’s oldest stale idle one', async (t) => {
  const s = setup(t);
  const flood = s.silent('uid:65534', 33);
  const channel = await s.join('uid:65534');
  t.teardown(() => channel.close());
  await closedSoon(flood[0]!);
  t.is(s.decisions.length, 1, 'one drop, for the newcomer; the silent 33rd caused none');
  t.like(s.decisions[0], {
    action: 'dropped',
    limit: 'maxPendingHandshakesPerIdentity',
    max: 32,
    identity: 'uid:65534',
  });
  t.is(s.decisions[0]!.peer?.osIdentity, 'uid:65534');
  t.true(isSecureIpcError(s.decisions[0]!.error, 'SIPC_ERR_HANDSHAKE_LIMIT'));
  t.true(isSecureIpcError(s.errors[0], 'SIPC_ERR_HANDSHAKE_LIMIT'), 'also a handshakeError');
  t.false(flood[1]!.destroyed, 'only the oldest went');
});

/** A valid message 1 (a random ephemeral key, `{ versions: [1] }`) and then nothing: a stalled initiator. */
function stalled(s: Setup, osIdentity: string, count: number): MemoryConnection[] {
  const payload = Buffer.from('81a876657273696f6e739101', 'hex');
  const made = s.silent(osIdentity, count);
  for (const c of made) {
    const frame = Buffer.alloc(2 + 32 + payload.length);
    frame.writeUInt16BE(32 + payload.length, 0);
    randomBytes(32).copy(frame, 2);
    payload.copy(frame, 34);
    c.write(frame);
  }
  return made;
}

test('a handshake past message 1 is never displaced by a newcomer of its own uid (it waits), but once stale it is by another uid’s newcomer at the total cap', async (t) => {
  const s = setup(t, {
    maxPendingHandshakes: 2,
    maxPendingHandshakesPerIdentity: 1,
    handshakeFirstMessageTimeoutMs: 200,
  });
  const [a] = stalled(s, 'uid:1000', 1);
  const [b] = stalled(s, 'uid:1001', 1);
  // Same uid as a stalled one, well past the 100 ms after which it is stale: it waits.
  const own = s.join('uid:1000');
  own.catch(() => {});
  await new Promise((r) => setTimeout(r, 300));
  t.deepEqual(s.decisions, [], 'nobody displaced for a newcomer of the same uid');
  t.false(a!.destroyed);
  // A third uid at the total cap (2): the stale stalled handshake of the uid holding the most goes.
  const other = await s.join('uid:1002');
  t.teardown(() => other.close());
  t.is(s.decisions.length, 1);
  t.like(s.decisions[0], { action: 'dropped', limit: 'maxPendingHandshakes', identity: 'uid:1000' });
  await closedSoon(a!);
  // The first uid's own newcomer then gets the slot its stalled handshake left.
  const channel = await own;
  t.teardown(() => channel.close());
  t.false(b!.destroyed);
});

test('total cap: two uids fill all 64 slots, a client of a third uid still gets in and only the biggest flooder loses a slot', async (t) => {
  const s = setup(t);
  const a = s.silent('uid:65534', 32);
  s.silent('uid:65533', 32);
  const channel = await s.join('uid:0');
  t.teardown(() => channel.close());
  const echo = once(channel, 'message');
  await channel.send(Buffer.from('in'));
  t.is(Buffer.from((await echo)[0] as Uint8Array).toString(), 'in');
  t.is(s.decisions.length, 1);
  t.like(s.decisions[0], { action: 'dropped', limit: 'maxPendingHandshakes', identity: 'uid:65534' });
  t.true(a[0]!.destroyed || (await closedSoon(a[0]!)) === undefined);
});

test('peers the OS cannot identify share one group: they cannot take every slot either', async (t) => {
  const s = setup(t, { maxPendingHandshakes: 4, maxPendingHandshakesPerIdentity: 2 });
  s.silent(undefined, 3);
  const channel = await s.join(undefined);
  t.teardown(() => channel.close());
  t.like(s.decisions[0], {
    action: 'dropped',
    limit: 'maxPendingHandshakesPerIdentity',
    identity: 'unknown',
  });
});

test('a handshake whose trust decision runs is never dropped: a newcomer waits for its slot; beyond 8 times the cap waiting, newcomers are refused', async (t) => {
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  let started!: () => void;
  const trustStarted = new Promise<void>((resolve) => {
    started = resolve;
  });
  const clientKey = generateKeyPair();
  const s = setup(t, { maxPendingHandshakesPerIdentity: 1, handshakeFirstMessageTimeoutMs: 200 }, [
    clientKey,
  ]);
  let decided = 0;
  s.listener.update({
    trust: async () => {
      if (decided++ === 0) {
        started();
        await gate;
      }
      return true;
    },
  });
  // The initiator sent message 3; the responder's trust decision is still waiting (and, in
  // protocol 2, so is the initiator: for the acceptance).
  const deciding = s.join('uid:1000', clientKey);
  await trustStarted;
  // A real newcomer: its message 1 arrives, then it waits (well past the 100 ms after which an
  // idle or waiting handshake would be stale) without displacing the one deciding.
  const newcomer = s.join('uid:1000', clientKey);
  await new Promise((r) => setTimeout(r, 300));
  t.deepEqual(s.decisions, []);
  // 7 more parked (8 with the newcomer, 8 x the cap of 1), then the next is refused.
  s.silent('uid:1000', 7);
  const refused = s.silent('uid:1000', 1)[0]!;
  await closedSoon(refused);
  t.is(s.decisions.length, 1);
  t.like(s.decisions[0], {
    action: 'refused',
    limit: 'maxPendingHandshakesPerIdentity',
    identity: 'uid:1000',
  });
  release();
  for (const [label, pending] of [
    ['decided', deciding],
    ['waited', newcomer],
  ] as const) {
    const channel = await pending;
    const echo = once(channel, 'message');
    await channel.send(Buffer.from(label));
    t.is(Buffer.from((await echo)[0] as Uint8Array).toString(), label);
    await channel.close();
  }
});

test('message 1 must arrive within handshakeFirstMessageTimeoutMs: silent and drip-feeding peers time out long before the handshake deadline', async (t) => {
  const s = setup(t, { handshakeFirstMessageTimeoutMs: 300, handshakeTimeoutMs: 10_000 });
  const started = Date.now();
  const [silent] = s.silent('uid:65534', 1);
  const [drip] = s.silent('uid:65534', 1);
  const timer = setInterval(() => drip!.write(Buffer.from([0])), 50);
  t.teardown(() => clearInterval(timer));
  // A frame header announcing 100 bytes, then a byte every 50 ms: never a complete message 1.
  drip!.write(Buffer.from([0, 100]));
  await Promise.all([closedSoon(silent!), closedSoon(drip!)]);
  const elapsed = Date.now() - started;
  t.true(elapsed >= 250 && elapsed < 5_000, `${elapsed} ms`);
  t.is(s.errors.length, 2);
  for (const e of s.errors) {
    t.true(isSecureIpcError(e, 'SIPC_ERR_HANDSHAKE_TIMEOUT'));
    t.regex(e.message, /message 1 did not arrive within 300 ms/);
  }
  // A real client is not affected by the short deadline.
  const channel = await s.join('uid:1000');
  await channel.close();
});

test('connection caps: per static key, per OS identity and in total, each a typed SIPC_ERR_BUSY refusal right after the handshake', async (t) => {
  const other = generateKeyPair();
  const third = generateKeyPair();
  const s = setup(t, { maxConnectionsPerKey: 2, maxConnectionsPerIdentity: 3, maxConnections: 4 }, [
    other,
    third,
  ]);
  const live = [await s.join('uid:1000'), await s.join('uid:1000')];
  t.teardown(() => Promise.all(live.map((c) => c.close())));
  const refuse = async (osIdentity: string, keyPair?: KeyPair) => {
    const before = s.decisions.length;
    // Protocol 2: the refused peer learns it in the handshake, as a REFUSED control message.
    const refused = (await t.throwsAsync(s.join(osIdentity, keyPair))) as SecureIpcError | undefined;
    t.true(isSecureIpcError(refused, 'SIPC_ERR_REFUSED'), String(refused));
    t.is(refused?.details?.reason, 'busy');
    t.is(s.decisions.length, before + 1);
    return s.decisions.at(-1)!;
  };
  // A third channel with the same key.
  const byKey = await refuse('uid:1000');
  t.like(byKey, { action: 'refused', limit: 'maxConnectionsPerKey', max: 2, identity: 'uid:1000' });
  t.true(isSecureIpcError(byKey.error, 'SIPC_ERR_BUSY'));
  t.true(isSecureIpcError(s.errors.at(-1), 'SIPC_ERR_BUSY'));
  t.truthy(byKey.remoteStaticKey);
  // Another key of the same uid fits once, then the uid is full.
  live.push(await s.join('uid:1000', other));
  t.like(await refuse('uid:1000', third), { limit: 'maxConnectionsPerIdentity', max: 3 });
  // Another uid fits once, then the total is full.
  live.push(await s.join('uid:1001', third));
  t.like(await refuse('uid:1002', other), { limit: 'maxConnections', max: 4 });
  t.is(s.listener.channels.size, 4);
  // A slot frees when a channel closes.
  await live.pop()!.close();
  await new Promise((r) => setTimeout(r, 20));
  live.push(await s.join('uid:1002', third));
  const echo = once(live.at(-1)!, 'message');
  await live.at(-1)!.send(Buffer.from('fits'));
  t.is(Buffer.from((await echo)[0] as Uint8Array).toString(), 'fits');
});

test('no reading while the trust decision runs: a peer flooding 64 MiB during an async trust callback makes the responder read at most a few hundred KiB', async (t) => {
  const [client, serverSide] = await tcpSocketPair(t);
  const keys = trustedKeys();
  let trustStarted!: () => void;
  const deciding = new Promise<void>((resolve) => {
    trustStarted = resolve;
  });
  let release!: () => void;
  const gate = new Promise<void>((resolve) => {
    release = resolve;
  });
  const slowTrust = async () => {
    trustStarted();
    await gate;
    return true;
  };
  const both = handshake(asConnection(client), asConnection(serverSide), keys, {}, { trust: slowTrust });
  await deciding;
  // The initiator is done (it sent message 3); now it floods with junk while the responder decides.
  const junk = Buffer.alloc(1024 * 1024, 0x41);
  let queued = 0;
  for (let i = 0; i < 64; i++) {
    client.write(junk);
    queued += junk.length;
  }
  await new Promise((r) => setTimeout(r, 1_000));
  const read = serverSide.bytesRead;
  release();
  const outcome = await both.then(
    () => 'established',
    () => 'failed',
  );
  t.log(`queued ${queued} bytes, the responder read ${read} bytes while deciding`);
  // Kernel socket buffers plus one Node read (64 KiB) and the stream's high-water mark: well under 2 MiB.
  t.true(read < 2 * 1024 * 1024, `${read} bytes read`);
  // The junk is then read as transport frames by the channel and fails it; nothing hung.
  t.truthy(outcome);
});
