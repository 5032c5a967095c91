import { once } from 'node:events';
import test, { type ExecutionContext } from 'ava';
import { secureConnect } from '../src/channel/secure-channel.js';
import { type LimitDecision, secureListen } from '../src/channel/secure-listener.js';
import { isSecureIpcError, type SecureIpcError } from '../src/errors.js';
import { generateKeyPair } from '../src/keys/key-pair.js';
import type { Connection, PeerInfo } from '../src/transport/contract.js';
import { memoryTransport } from '../src/transport/memory-transport.js';
import { closed, messages } from './helpers.js';

let counter = 0;
const transport = memoryTransport();

async function setup(t: ExecutionContext, extra: Record<string, unknown> = {}) {
  const address = `memory://secure-listener-${process.pid}-${counter++}`;
  const server = generateKeyPair();
  const client = generateKeyPair();
  const listener = secureListen(await transport.listen(address), {
    keyPair: server,
    trust: { keys: [client.publicKey] },
    ...extra,
  });
  t.teardown(() => listener.close());
  // Echo server.
  listener.on('channel', (ch) => ch.on('message', (m) => ch.send(m).catch(() => {})));
  const connect = async (keyPair = client, serverKey = server.publicKey) => {
    const channel = await secureConnect(await transport.connect(address), {
      keyPair,
      trust: { keys: [serverKey] },
    });
    t.teardown(() => channel.close(new Error('test over')));
    return channel;
  };
  return { address, listener, connect, server, client };
}

async function roundTrip(
  channel: Awaited<ReturnType<Awaited<ReturnType<typeof setup>>['connect']>>,
  text: string,
) {
  const got = messages(channel, 1);
  await channel.send(Buffer.from(text));
  return Buffer.from((await got)[0]!).toString();
}

test('secureListen hands out channels, tracks them, and close() closes every live channel', async (t) => {
  const { listener, connect } = await setup(t);
  const seen = once(listener, 'channel');
  const a = await connect();
  const b = await connect();
  await seen;
  t.is(await roundTrip(a, 'ping a'), 'ping a');
  t.is(await roundTrip(b, 'ping b'), 'ping b');
  t.is(listener.channels.size, 2);
  const aClosed = closed(a);
  const bClosed = closed(b);
  const listenerClosed = once(listener, 'close');
  await listener.close();
  await listenerClosed;
  await Promise.all([aClosed, bClosed]);
  t.is(listener.channels.size, 0);
  t.true(isSecureIpcError(await t.throwsAsync(connect()), 'SIPC_ERR_CONNECT_FAILED'));
});

test('a failed handshake is reported as handshakeError with the peer info; the listener keeps serving', async (t) => {
  const { listener, connect } = await setup(t);
  const failed = once(listener, 'handshakeError') as Promise<[SecureIpcError, PeerInfo]>;
  // XX finishes for the initiator at message 3; protocol 2 makes it wait for the acceptance, so
  // the refusal reaches it in the handshake as SIPC_ERR_REFUSED.
  const refused = (await t.throwsAsync(connect(generateKeyPair()))) as SecureIpcError | undefined;
  t.true(isSecureIpcError(refused, 'SIPC_ERR_REFUSED'), String(refused));
  t.is(refused?.details?.reason, 'closed');
  const [err, peer] = await failed;
  t.true(isSecureIpcError(err, 'SIPC_ERR_UNTRUSTED_PEER'));
  t.deepEqual(peer, { transport: 'memory' });
  t.is(await roundTrip(await connect(), 'still here'), 'still here');
});

test('update() rotates the server key for new handshakes; live channels keep working', async (t) => {
  const { listener, connect } = await setup(t);
  const before = await connect();
  const rotated = generateKeyPair();
  listener.update({ keyPair: rotated });
  const after = await connect(undefined, rotated.publicKey);
  t.deepEqual(Buffer.from(after.remoteStaticKey), Buffer.from(rotated.publicKey));
  t.is(await roundTrip(before, 'old key channel'), 'old key channel');
  t.is(await roundTrip(after, 'new key channel'), 'new key channel');
  t.true(
    isSecureIpcError(
      t.throws(() => listener.update({ trust: undefined as never, keyPair: {} as never })),
      'SIPC_ERR_INVALID_ARGUMENT',
    ),
  );
});

test('64 silent handshakes fill the limit: a new client drops the oldest stale idle one and gets in within half the message-1 deadline, established traffic keeps flowing', async (t) => {
  // One identity may take every slot here, so the total cap is the one hit.
  const { address, listener, connect } = await setup(t, { maxPendingHandshakesPerIdentity: 100 });
  const established = await connect();
  const silent: Connection[] = [];
  for (let i = 0; i < 64; i++) silent.push(await transport.connect(address));
  t.teardown(() => {
    for (const c of silent) c.destroy();
  });
  const decisions: LimitDecision[] = [];
  listener.on('limit', (d) => decisions.push(d));
  const oldestClosed = new Promise<void>((resolve) => {
    silent[0]!.on('data', () => {});
    silent[0]!.once('end', () => resolve());
  });
  const started = Date.now();
  t.is(await roundTrip(await connect(), 'newcomer'), 'newcomer');
  t.true(Date.now() - started < 900, 'in well under the 1 s first-message deadline of the silent ones');
  await oldestClosed;
  t.is(decisions.length, 1);
  t.like(decisions[0], { action: 'dropped', limit: 'maxPendingHandshakes', max: 64, identity: 'unknown' });
  t.true(isSecureIpcError(decisions[0]!.error, 'SIPC_ERR_HANDSHAKE_LIMIT'));
  // Legitimate traffic on the established channel is unaffected while the slots are full.
  for (let i = 0; i < 20; i++) t.is(await roundTrip(established, `msg ${i}`), `msg ${i}`);
});

test('secureListen validates its options (trust required, positive limit)', async (t) => {
  const listener = await transport.listen(`memory://secure-listener-bad-${process.pid}`);
  t.teardown(() => listener.close());
  const keyPair = generateKeyPair();
  t.true(
    isSecureIpcError(
      t.throws(() => secureListen(listener, { keyPair } as never)),
      'SIPC_ERR_INVALID_ARGUMENT',
    ),
  );
  t.true(
    isSecureIpcError(
      t.throws(() => secureListen(listener, { keyPair, trust: { keys: [] }, maxPendingHandshakes: 0 })),
      'SIPC_ERR_INVALID_ARGUMENT',
    ),
  );
  for (const name of [
    'maxPendingHandshakesPerIdentity',
    'maxConnections',
    'maxConnectionsPerIdentity',
    'maxConnectionsPerKey',
  ])
    t.true(
      isSecureIpcError(
        t.throws(() => secureListen(listener, { keyPair, trust: { keys: [] }, [name]: 1.5 })),
        'SIPC_ERR_INVALID_ARGUMENT',
      ),
      name,
    );
});

test('a transport listener error is forwarded as a typed error, and never crashes when nobody listens', async (t) => {
  const address = `memory://secure-listener-error-${process.pid}`;
  const inner = await transport.listen(address);
  const quiet = secureListen(inner, {
    keyPair: generateKeyPair(),
    trust: { keys: [generateKeyPair().publicKey] },
  });
  t.teardown(() => quiet.close());
  // Without an 'error' listener on the secure listener, the transport error must not be thrown.
  t.notThrows(() => inner.emit('error', Object.assign(new Error('accept failed'), { code: 'EMFILE' })));
  const seen: SecureIpcError[] = [];
  quiet.on('error', (err) => seen.push(err));
  inner.emit('error', Object.assign(new Error('accept failed again'), { code: 'EMFILE' }));
  t.is(seen.length, 1);
  t.true(isSecureIpcError(seen[0], 'SIPC_ERR_LISTEN_FAILED'));
  t.is((seen[0]!.cause as NodeJS.ErrnoException).code, 'EMFILE');
});
