/**
 * Channel sub-suite: secure channels (Noise_XX, core's `secureConnect`/`secureListen`) and RPC over
 * the transport: echo across processes, 1 byte / 64 KiB / 16 MiB messages, 10,000 messages in
 * order, 100 concurrent channels, a slow reader bounding the writer, close semantics, and the
 * refusals a client learns in `connect()` (protocol version 2, docs/protocol.md 3.8) with both
 * directions of version-1 interoperation.
 */
import {
  type CloseInfo,
  connect,
  createClient,
  createPolicy,
  createServer,
  generateKeyPair,
  isSecureIpcError,
  type SecureIpcError,
  secureListen,
} from '@secure-ipc/core';
import { STALL_BOUND, writeUntilBlocked } from './backpressure.js';
import { digest, random } from './bytes.js';
import type { SecureFixtureArgs } from './fixture-channel.js';
import { listen, needsChild } from './harness.js';
import type { ConformanceOptions, Test } from './options.js';
import {
  channelClosed,
  channelPair,
  identities,
  nextMessage,
  remoteSecureEchoServer,
  secureClient,
  secureEchoServer,
  startSecureFixture,
  trusting,
} from './secure.js';

const MESSAGE_SIZES: ReadonlyArray<[string, number]> = [
  ['1 byte', 1],
  ['64 KiB', 64 * 1024],
  ['16 MiB (the default maximum)', 16 * 1024 * 1024],
];

/** Register the channel cases. */
export function channelSuite(test: Test, o: ConformanceOptions): void {
  const where = o.child === undefined ? 'in process' : 'server in a child process';
  const crossProcess = o.child === undefined ? test.skip : test;

  test(`${o.name}: a secure channel authenticates both keys and echoes (${where})`, async (t) => {
    t.timeout(30_000);
    const ids = identities();
    const address = await remoteSecureEchoServer(t, o, ids);
    const channel = await secureClient(t, o, address, ids);
    t.deepEqual(channel.remoteStaticKey, ids.server.publicKey);
    t.is(channel.peer.transport, o.transport.name);
    t.is(channel.handshakeHash.length, 64);
    const reply = nextMessage(channel);
    await channel.send(Buffer.from('hello'));
    t.is(Buffer.from(await reply).toString(), 'hello');
  });

  for (const [label, size] of MESSAGE_SIZES) {
    test(`${o.name}: a ${label} message crosses a secure channel and back intact (${where})`, async (t) => {
      t.timeout(60_000);
      const ids = identities();
      const channel = await secureClient(t, o, await remoteSecureEchoServer(t, o, ids), ids);
      const data = random(size);
      const reply = nextMessage(channel);
      await channel.send(data);
      const back = await reply;
      t.is(back.length, size);
      t.is(digest(back), digest(data));
    });
  }

  test(`${o.name}: 10,000 small messages arrive in order over a secure channel (${where})`, async (t) => {
    t.timeout(60_000);
    const ids = identities();
    const channel = await secureClient(t, o, await remoteSecureEchoServer(t, o, ids), ids);
    const count = 10_000;
    let next = 0;
    let wrong: number | undefined;
    const all = new Promise<void>((resolve) => {
      channel.on('message', (m) => {
        const got = Buffer.from(m).readUInt32BE(0);
        if (got !== next && wrong === undefined) wrong = next;
        if (++next === count) resolve();
      });
    });
    const sends: Promise<void>[] = [];
    for (let i = 0; i < count; i++) {
      const m = Buffer.alloc(16);
      m.writeUInt32BE(i);
      sends.push(channel.send(m));
    }
    await Promise.all(sends);
    await all;
    t.is(wrong, undefined, `message ${wrong} arrived out of order`);
    t.is(next, count);
  });

  // A burst of one OS identity's handshakes beyond its pending cap (32 by default): the excess
  // waits for a slot instead of displacing the burst's own handshakes, which were judged idle
  // before their sockets were read (issue 12's leftover; under Deno it lost some). All connections
  // are opened at once, so the server accepts many in one event-loop turn.
  const bursts: ReadonlyArray<[number, SecureFixtureArgs['limits']]> = [
    [100, undefined],
    // 200 channels with one client key: above the 128 channels per static key, raised here (that
    // cap is about established channels, not this case).
    [200, { maxPendingHandshakes: 64, maxPendingHandshakesPerIdentity: 64, maxConnectionsPerKey: 256 }],
  ];
  for (const [count, limits] of bursts) {
    const caps = limits === undefined ? 'default caps' : 'a pending cap of 64';
    const title =
      count === 100
        ? `${o.name}: 100 concurrent secure channels each get their own messages back (${where})`
        : `${o.name}: ${count} simultaneous handshakes from one OS identity all succeed with ${caps} (${where})`;
    test(title, async (t) => {
      t.timeout(60_000);
      const ids = identities();
      const address = await remoteSecureEchoServer(t, o, ids, limits);
      const channels = await Promise.all(
        Array.from({ length: count }, () => secureClient(t, o, address, ids)),
      );
      const replies = await Promise.all(
        channels.map(async (channel, i) => {
          const reply = nextMessage(channel);
          await channel.send(Buffer.from(`channel ${i}`));
          return Buffer.from(await reply).toString();
        }),
      );
      replies.forEach((r, i) => {
        t.is(r, `channel ${i}`);
      });
    });
  }

  test(`${o.name}: a paused secure reader blocks the writer's sends with bounded memory; all arrive after resume`, async (t) => {
    t.timeout(60_000);
    const ids = identities();
    const { client: writer, server: reader } = await channelPair(t, o, ids);
    reader.pause();
    let received = 0;
    reader.on('message', (m) => {
      received += m.length;
    });
    const message = Buffer.alloc(256 * 1024, 1);
    const blocked = await writeUntilBlocked(() => writer.send(message), message.length);
    t.log(`${blocked.accepted} bytes of sends completed when the writer blocked`);
    t.true(blocked.accepted <= STALL_BOUND, `${blocked.accepted} bytes were accepted with the reader paused`);
    reader.resume();
    const total = await blocked.finish();
    if (received < total) {
      await new Promise<void>((resolve) => {
        const check = () => {
          if (received >= total) {
            reader.off('message', check);
            resolve();
          }
        };
        reader.on('message', check);
      });
    }
    t.is(received, total);
  });

  test(`${o.name}: a client's graceful close reaches the server as a clean close`, async (t) => {
    t.timeout(30_000);
    const ids = identities();
    const { client, server } = await channelPair(t, o, ids);
    const serverClosed = channelClosed(server);
    await client.close();
    t.is(await serverClosed, undefined);
    t.true(client.closed);
    const err = await t.throwsAsync(client.send(Buffer.from('late')));
    t.true(isSecureIpcError(err, 'SIPC_ERR_CHANNEL_CLOSED'), String(err));
  });

  test(`${o.name}: closing the server with clients connected rejects their pending requests with a typed error`, async (t) => {
    t.timeout(30_000);
    const ids = identities();
    const listener = await listen(t, o.transport, o.address());
    const server = createServer({
      policy: createPolicy({ roles: { any: { call: ['*'] } }, defaultRoles: ['any'] }),
    });
    server.handle('hang', () => new Promise(() => {}));
    server.listen(secureListen(listener, trusting(ids.server, ids.client)));
    t.teardown(() => server.close());
    const clients = await Promise.all(
      Array.from({ length: 3 }, async () => createClient(await secureClient(t, o, listener.address, ids))),
    );
    for (const c of clients) t.is(await c.ping('up'), 'up');
    const pending = clients.flatMap((c) => Array.from({ length: 5 }, () => c.request('hang', {})));
    await server.close();
    const outcomes = await Promise.allSettled(pending);
    for (const outcome of outcomes) {
      t.is(outcome.status, 'rejected');
      if (outcome.status === 'rejected') t.true(isSecureIpcError(outcome.reason), String(outcome.reason));
    }
  });

  crossProcess(
    `${o.name}: the server process killed with SIGKILL rejects pending requests with SIPC_ERR_CONNECTION_CLOSED; the client's close says peer-vanished ${needsChild(o)}`,
    async (t) => {
      t.timeout(30_000);
      const ids = identities();
      const fixture = await startSecureFixture(t, o, ids, 'rpc-server');
      const client = createClient(await secureClient(t, o, fixture.address, ids));
      const closed = new Promise<[SecureIpcError | undefined, CloseInfo]>((resolve) =>
        client.once('close', (error, info) => resolve([error, info])),
      );
      t.deepEqual(await client.request('echo', { n: 1 }), { n: 1 });
      const pending = Array.from({ length: 10 }, () => client.request('hang', {}));
      fixture.child.kill('SIGKILL');
      // Protocol 2 announces every close: the kernel's end of a killed process is never "clean".
      const [error, info] = await closed;
      t.is(info.reason, 'peer-vanished', String(error));
      t.true(isSecureIpcError(error, 'SIPC_ERR_CONNECTION_CLOSED'), String(error));
      const outcomes = await Promise.allSettled(pending);
      for (const outcome of outcomes) {
        t.is(outcome.status, 'rejected');
        if (outcome.status === 'rejected') {
          t.true(isSecureIpcError(outcome.reason, 'SIPC_ERR_CONNECTION_CLOSED'), String(outcome.reason));
        }
      }
    },
  );

  test(`${o.name}: an untrusted client's connect() rejects with SIPC_ERR_REFUSED (${where})`, async (t) => {
    t.timeout(30_000);
    const ids = identities();
    const address = await remoteSecureEchoServer(t, o, ids);
    const stranger = generateKeyPair();
    const err = (await t.throwsAsync(
      connect({
        transport: o.transport,
        address,
        keyPair: stranger,
        trust: { keys: [ids.server.publicKey] },
      }),
    )) as SecureIpcError | undefined;
    t.true(isSecureIpcError(err, 'SIPC_ERR_REFUSED'), String(err));
    t.is(err?.details?.reason, 'closed');
    // The trusted client still gets in.
    const channel = await secureClient(t, o, address, ids);
    t.is(channel.version, 4);
  });

  test(`${o.name}: a client over the server's connection cap: connect() rejects with SIPC_ERR_REFUSED, reason busy`, async (t) => {
    t.timeout(30_000);
    const ids = identities();
    const server = await secureEchoServer(t, o, ids, { maxConnectionsPerKey: 1 });
    const options = { transport: o.transport, address: server.address, ...trusting(ids.client, ids.server) };
    const first = await connect(options);
    t.teardown(() => first.close(new Error('test over')).catch(() => {}));
    t.is(await first.ping('in'), 'in');
    const err = (await t.throwsAsync(connect(options))) as SecureIpcError | undefined;
    t.true(isSecureIpcError(err, 'SIPC_ERR_REFUSED'), String(err));
    t.deepEqual(err?.details, { reason: 'busy', retryable: true });
    t.true(isSecureIpcError(err?.cause, 'SIPC_ERR_BUSY'));
    t.is(await first.ping('still in'), 'still in');
  });

  test(`${o.name}: version 1 interoperates both ways: a v1-only client with a v2 server, a v2 client with a v1-only server`, async (t) => {
    t.timeout(30_000);
    for (const [clientVersions, serverVersions] of [
      [[1], undefined],
      [undefined, [1]],
    ] as const) {
      const ids = identities();
      const server = await secureEchoServer(t, o, ids, serverVersions ? { versions: serverVersions } : {});
      const channel = await secureClient(
        t,
        o,
        server.address,
        ids,
        clientVersions ? { versions: clientVersions } : {},
      );
      t.is(channel.version, 1);
      const reply = nextMessage(channel);
      await channel.send(Buffer.from('v1'));
      t.is(Buffer.from(await reply).toString(), 'v1');
    }
  });
}
