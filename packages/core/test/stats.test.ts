// Live introspection (issue 18, item 4): server.stats() over a real channel, the channel's one
// fingerprint, and the `$stats` built-in behind an exact-name grant.
import test from 'ava';
import {
  connect,
  createPolicy,
  createServer,
  generateKeyPair,
  keyFingerprint,
  type Policy,
  PublicError,
  type SecureChannel,
  type ServerStats,
  STATS_VERSION,
  serve,
} from '../src/index.js';
import { memoryTransport } from '../src/transport/index.js';

interface Service {
  'echo.say'(p: string): string;
  'echo.fail'(): void;
  'echo.wait'(): string;
}

let n = 0;

async function pair(policyFor: (client: Uint8Array) => Policy | undefined, maxMessageSize?: number) {
  const address = `memory://stats-${++n}`;
  const serverKeys = generateKeyPair(),
    clientKeys = generateKeyPair();
  const transport = memoryTransport();
  const policy = policyFor(clientKeys.publicKey);
  const server = await serve<Service>({
    transport,
    address,
    keyPair: serverKeys,
    trust: { keys: [clientKeys.publicKey] },
    ...(policy ? { policy } : {}),
    ...(maxMessageSize ? { maxMessageSize } : {}),
  });
  const client = await connect<Service>({
    transport,
    address,
    keyPair: clientKeys,
    trust: { keys: [serverKeys.publicKey] },
  });
  return { server, client, clientKeys };
}

function granting(call: string[]) {
  return (key: Uint8Array) => createPolicy({ roles: { ops: { call } }, peers: [{ key, roles: ['ops'] }] });
}

test('server.stats() counts a channel: started, ok, failed, in flight while pending, last call', async (t) => {
  const { server, client, clientKeys } = await pair(granting(['echo.*']));
  let release: (v: string) => void = () => {};
  let entered: () => void = () => {};
  const running = new Promise<void>((resolve) => (entered = resolve));
  server
    .handle('echo.say', (p) => p)
    .handle('echo.fail', () => {
      throw new PublicError('ECHO_NO', 'no');
    })
    .handle('echo.wait', () => {
      entered();
      return new Promise<string>((resolve) => (release = resolve));
    });
  const before = Date.now();
  t.is(await client.request('echo.say', 'hi'), 'hi');
  await t.throwsAsync(client.request('echo.fail'), { code: 'SIPC_ERR_REMOTE' });
  const pending = client.request('echo.wait');
  await running;
  const during = server.stats();
  t.is(during.v, STATS_VERSION);
  t.is(during.channels.length, 1);
  const ch = during.channels[0]!;
  t.is(ch.peer, keyFingerprint(clientKeys.publicKey));
  t.deepEqual(ch.roles, ['ops']);
  t.is(ch.transport, 'memory');
  t.true(ch.protocolVersion >= 1);
  t.true(typeof ch.id === 'number' && ch.id > 0);
  t.true(typeof ch.openedAt === 'number' && ch.openedAt <= before);
  t.deepEqual(ch.calls, { started: 3, ok: 1, failed: 1 });
  t.is(ch.inFlight, 1);
  t.is(typeof ch.bytesQueued, 'number');
  t.true(ch.bytesQueued >= 0);
  t.true(typeof ch.lastCallAt === 'number' && ch.lastCallAt >= before && ch.lastCallAt <= during.at);
  release('done');
  t.is(await pending, 'done');
  const after = server.stats().channels[0]!;
  t.deepEqual(after.calls, { started: 3, ok: 2, failed: 1 });
  t.is(after.inFlight, 0);
  // Only plain values: the snapshot survives JSON unchanged (no payload in it).
  t.deepEqual(JSON.parse(JSON.stringify(after)), after);
  t.false(JSON.stringify(server.stats()).includes('hi'));
  await client.close();
  await server.close();
  t.deepEqual(server.stats().channels, []);
});

test('a channel with no request yet reports lastCallAt null; a forbidden call counts as failed', async (t) => {
  const { server, client } = await pair(() => undefined);
  t.is(server.stats().channels[0]!.lastCallAt, null);
  t.deepEqual(server.stats().channels[0]!.calls, { started: 0, ok: 0, failed: 0 });
  await t.throwsAsync(client.request('echo.say', 'x'), { code: 'SIPC_ERR_FORBIDDEN' });
  await client.ping();
  t.deepEqual(server.stats().channels[0]!.calls, { started: 2, ok: 1, failed: 1 });
  await client.close();
  await server.close();
});

test('a result too large for the channel reaches the caller as an error, and counts as failed', async (t) => {
  const { server, client } = await pair(granting(['echo.*']), 1024);
  server.handle('echo.say', (p) => p.repeat(64));
  await t.throwsAsync(client.request('echo.say', 'x'.repeat(100)), { code: 'SIPC_ERR_MESSAGE_TOO_LARGE' });
  t.deepEqual(server.stats().channels[0]!.calls, { started: 1, ok: 0, failed: 1 });
  await client.close();
  await server.close();
});

test('SecureChannel.fingerprint equals keyFingerprint, is computed once, and is the peerId', async (t) => {
  const { server, client, clientKeys } = await pair(() => undefined);
  const peer = [...server.peers][0]!;
  const channel = peer.channel as SecureChannel;
  const expected = keyFingerprint(clientKeys.publicKey);
  t.is(channel.fingerprint, expected);
  t.is(peer.peerId, expected);
  // Kept after the first read: later reads do not hash the key again (a changed buffer shows it).
  const key = channel.remoteStaticKey;
  const saved = Buffer.from(key);
  key.fill(0);
  try {
    t.is(channel.fingerprint, expected);
  } finally {
    key.set(saved);
  }
  t.true(Date.now() >= channel.openedAt);
  await client.close();
  await server.close();
});

test('$stats is denied by default (no policy)', async (t) => {
  const { server, client } = await pair(() => undefined);
  await t.throwsAsync(client.request('$stats' as never), { code: 'SIPC_ERR_FORBIDDEN' });
  await client.close();
  await server.close();
});

test('$stats is denied with only a * grant (or $*): a reserved method needs its exact name', async (t) => {
  for (const call of [['*'], ['$*'], ['$st*']]) {
    const { server, client } = await pair(granting(call));
    await t.throwsAsync(client.request('$stats' as never), { code: 'SIPC_ERR_FORBIDDEN' }, call.join());
    await client.close();
    await server.close();
  }
});

test('$stats with an explicit grant answers the server.stats() shape', async (t) => {
  const { server, client, clientKeys } = await pair(granting(['$stats']));
  const stats = (await client.request('$stats' as never)) as ServerStats;
  t.is(stats.v, STATS_VERSION);
  t.is(stats.channels.length, 1);
  const ch = stats.channels[0]!;
  t.is(ch.peer, keyFingerprint(clientKeys.publicKey));
  t.deepEqual(ch.roles, ['ops']);
  // Its own request is counted as started, answered after the snapshot was taken.
  t.deepEqual(ch.calls, { started: 1, ok: 0, failed: 0 });
  t.deepEqual(Object.keys(ch).sort(), Object.keys(server.stats().channels[0]!).sort());
  await client.close();
  await server.close();
});

test('a * grant still covers application methods, and $ping stays allowed', (t) => {
  const policy = createPolicy({ roles: { all: { call: ['*'] } }, defaultRoles: ['all'] });
  t.true(policy.allows(['all'], 'call', 'files.read'));
  t.true(policy.allows(['all'], 'call', '$ping'));
  t.false(policy.allows(['all'], 'call', '$stats'));
  t.false(policy.allows([], 'call', '$stats'));
  const exact = createPolicy({ roles: { ops: { call: ['$stats'] } } });
  t.true(exact.allows(['ops'], 'call', '$stats'));
});

test('a handler named $stats (or any $ name) cannot be registered: SIPC_ERR_INVALID_ARGUMENT', (t) => {
  const server = createServer();
  for (const name of ['$stats', '$anything'])
    t.throws(() => server.handle(name as never, () => 1), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
});
