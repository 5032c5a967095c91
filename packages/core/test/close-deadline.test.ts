// Issue 12, row 10: close() settles within its deadline whatever the peer does. The deadline is
// armed when close() is called; past it the connection is destroyed. Before, a graceful close
// waited for the pending sends to drain before even starting its linger timer, so a peer that
// never read kept close() (and RpcClient.close(), RpcServer.close()) pending forever.
import type { ExecutionContext } from 'ava';
import test from 'ava';
import type { ChannelOptions } from '../src/channel/options.js';
import { establish, type SecureChannelImpl, secureConnect } from '../src/channel/secure-channel.js';
import { isSecureIpcError } from '../src/errors.js';
import { createClient } from '../src/rpc/client.js';
import { serve } from '../src/rpc/serve.js';
import { createServer } from '../src/rpc/server.js';
import { tempSocketPath, unixTestTransport } from './fixtures/rpc-net.js';
import { closed, connectionPair, trustedKeys } from './helpers.js';

const MiB = 1024 * 1024;
const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** A channel pair over a real TCP loopback socket, with `extra` options on the given side. */
async function pair(
  t: ExecutionContext,
  client: Partial<ChannelOptions> = {},
  server: Partial<ChannelOptions> = {},
): Promise<[SecureChannelImpl, SecureChannelImpl]> {
  const [a, b] = await connectionPair(t, 'tcp');
  const keys = trustedKeys();
  const channels = await Promise.all([
    establish(a, {
      keyPair: keys.client,
      trust: { keys: [keys.server.publicKey] },
      initiator: true,
      ...client,
    }),
    establish(b, {
      keyPair: keys.server,
      trust: { keys: [keys.client.publicKey] },
      initiator: false,
      ...server,
    }),
  ]);
  t.teardown(() => {
    for (const c of channels) c.close(new Error('test over')).catch(() => {});
  });
  return channels;
}

/** `promise` settled within `ms`? (never rejects: close() does not) */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<false>((r) => {
    timer = setTimeout(() => r(false), ms);
  });
  const result = await Promise.race([promise.then(() => true as const), late]);
  clearTimeout(timer);
  return result;
}

/** Queue `count` messages of `size` on `channel` towards a peer that does not read; wait until they back up. */
async function backUp(channel: SecureChannelImpl, count: number, size: number): Promise<Promise<void>[]> {
  const sends = Array.from({ length: count }, () => channel.send(Buffer.alloc(size, 1)));
  for (const s of sends) s.catch(() => {});
  // The kernel takes a few MiB; the rest stays queued because the peer does not read.
  for (let i = 0; i < 200 && channel.queuedBytes === 0; i++) await sleep(10);
  await sleep(100);
  return sends;
}

test('close() with sends the peer never reads settles within closeTimeoutMs; the close says SIPC_ERR_TIMEOUT', async (t) => {
  const DEADLINE = 800;
  const [client, server] = await pair(t, {}, { closeTimeoutMs: DEADLINE });
  client.pause(); // the peer stops reading for good
  const sends = await backUp(server, 8, 4 * MiB);
  const queued = server.queuedBytes;
  const serverClosed = closed(server);
  const started = Date.now();
  const settled = await settlesWithin(server.close(), DEADLINE + 3000);
  const elapsed = Date.now() - started;
  t.true(settled, `close() did not settle within ${DEADLINE + 3000} ms`);
  t.true(queued > 0, 'sends were waiting for a drain that never comes');
  t.log(`close() settled after ${elapsed} ms (deadline ${DEADLINE} ms)`);
  t.true(elapsed >= DEADLINE - 50, 'it waited for the deadline, not less');
  const error = await serverClosed;
  t.true(isSecureIpcError(error, 'SIPC_ERR_TIMEOUT'), String(error));
  t.regex(error!.message, /closeTimeoutMs/);
  const outcomes = await Promise.allSettled(sends);
  const rejected = outcomes.filter((o) => o.status === 'rejected');
  t.true(rejected.length > 0, 'the sends still queued are failed, not left pending');
  for (const r of rejected) t.true(isSecureIpcError(r.reason, 'SIPC_ERR_CHANNEL_CLOSED'), String(r.reason));
  t.is(server.queuedBytes, 0);
  t.true(server.cipherStates.tx.destroyed && server.cipherStates.rx.destroyed, 'keys wiped');
});

test('the default deadline (5 s) applies too, armed at the call', async (t) => {
  t.timeout(20_000);
  const [client, server] = await pair(t);
  client.pause();
  await backUp(server, 8, 4 * MiB);
  const started = Date.now();
  const settled = await settlesWithin(server.close(), 5000 + 3000);
  const elapsed = Date.now() - started;
  t.true(settled, 'close() did not settle within 8 s');
  t.log(`close() settled after ${elapsed} ms`);
  t.true(elapsed >= 4950);
});

test('everything sent but the peer never ends its side: a clean close at the deadline', async (t) => {
  const DEADLINE = 500;
  const [client, server] = await pair(t, {}, { closeTimeoutMs: DEADLINE });
  client.pause();
  await server.send(Buffer.from('small enough for the kernel'));
  const serverClosed = closed(server);
  const started = Date.now();
  t.true(await settlesWithin(server.close(), DEADLINE + 3000));
  t.true(Date.now() - started < DEADLINE + 3000);
  t.is(await serverClosed, undefined, 'nothing was lost: the close is graceful');
});

test('closeTimeoutMs is validated', async (t) => {
  const [a] = await connectionPair(t, 'memory');
  const keys = trustedKeys();
  for (const bad of [0, -1, 1.5, 2 ** 31, Number.NaN]) {
    const err = await t.throwsAsync(
      establish(a, {
        keyPair: keys.client,
        trust: { keys: [keys.server.publicKey] },
        initiator: true,
        closeTimeoutMs: bad,
      }),
    );
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), `${bad}: ${String(err)}`);
  }
});

test('RpcClient.close() settles within the deadline when the server never reads', async (t) => {
  const DEADLINE = 800;
  const [clientChannel, serverChannel] = await pair(t, { closeTimeoutMs: DEADLINE });
  serverChannel.pause(); // a server that accepted the channel and stopped reading
  const client = createClient(clientChannel);
  // Requests the server never reads: they back up in the client's channel.
  const calls = Array.from({ length: 8 }, () => client.ping(Buffer.alloc(4 * MiB)));
  for (const c of calls) c.catch(() => {});
  for (let i = 0; i < 200 && clientChannel.queuedBytes === 0; i++) await sleep(10);
  const queued = clientChannel.queuedBytes;
  const started = Date.now();
  t.true(await settlesWithin(client.close(), DEADLINE + 3000), 'RpcClient.close() did not settle');
  t.true(queued > 0, 'requests were waiting for a drain');
  t.log(`RpcClient.close() settled after ${Date.now() - started} ms`);
  for (const c of await Promise.allSettled(calls))
    t.true(c.status === 'rejected' && isSecureIpcError(c.reason, 'SIPC_ERR_CONNECTION_CLOSED'));
});

test('RpcServer.close() settles within the deadline when a peer never reads its answers', async (t) => {
  const DEADLINE = 800;
  const [clientChannel, serverChannel] = await pair(t, {}, { closeTimeoutMs: DEADLINE });
  const server = createServer();
  server.attach(serverChannel);
  const client = createClient(clientChannel);
  const calls = Array.from({ length: 8 }, () => client.ping(Buffer.alloc(4 * MiB)));
  for (const c of calls) c.catch(() => {});
  // Wait until the server holds answers the client will not read.
  const peer = [...server.peers][0]!;
  clientChannel.pause();
  for (let i = 0; i < 300 && peer.queuedReplies === 0; i++) await sleep(10);
  t.true(peer.queuedReplies > 0, 'answers are queued for the peer');
  const started = Date.now();
  t.true(await settlesWithin(server.close(), DEADLINE + 3000), 'RpcServer.close() did not settle');
  t.log(`RpcServer.close() settled after ${Date.now() - started} ms`);
  t.is(server.peers.size, 0);
});

test('serve(): server.close() and listener.close() settle within the deadline with a peer that never reads', async (t) => {
  const DEADLINE = 800;
  const { path, remove } = tempSocketPath();
  t.teardown(remove);
  const keys = trustedKeys();
  const address = `test-unix://${path}`;
  const server = await serve({
    transport: unixTestTransport(),
    address,
    keyPair: keys.server,
    trust: { keys: [keys.client.publicKey] },
    closeTimeoutMs: DEADLINE,
  });
  const channel = await secureConnect(await unixTestTransport().connect(address), {
    keyPair: keys.client,
    trust: { keys: [keys.server.publicKey] },
  });
  t.teardown(() => channel.close(new Error('test over')));
  const client = createClient(channel);
  const calls = Array.from({ length: 8 }, () => client.ping(Buffer.alloc(4 * MiB)));
  for (const c of calls) c.catch(() => {});
  channel.pause();
  for (let i = 0; i < 300 && ![...server.peers].some((p) => p.queuedReplies > 0); i++) await sleep(10);
  t.true(
    [...server.peers].some((p) => p.queuedReplies > 0),
    'answers are queued for the peer',
  );
  const started = Date.now();
  t.true(await settlesWithin(server.close(), DEADLINE + 3000), 'server.close() did not settle');
  t.true(await settlesWithin(server.listener.close(), 100), 'listener.close() did not settle');
  t.log(`serve().close() settled after ${Date.now() - started} ms`);
});
