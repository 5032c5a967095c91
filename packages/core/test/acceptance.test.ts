// Protocol version 2 (docs/protocol.md 3.4, 3.8, 5.2): negotiation, the responder's acceptance
// (its first transport frame, a control frame), the refusals the initiator sees in the handshake,
// and both directions against a version-1-only peer.
import test, { type ExecutionContext } from 'ava';
import { establish, kAccept, secureConnect } from '../src/channel/secure-channel.js';
import { secureListen } from '../src/channel/secure-listener.js';
import { createError, isSecureIpcError, type SecureIpcError } from '../src/errors.js';
import { generateKeyPair } from '../src/keys/key-pair.js';
import { memoryTransport } from '../src/transport/memory-transport.js';
import { closed, messages, mitm, trustedKeys } from './helpers.js';

let counter = 0;
const transport = memoryTransport();

async function setup(t: ExecutionContext, serverExtra: Record<string, unknown> = {}) {
  const address = `memory://acceptance-${process.pid}-${counter++}`;
  const keys = trustedKeys();
  const listener = secureListen(await transport.listen(address), {
    keyPair: keys.server,
    trust: { keys: [keys.client.publicKey] },
    ...serverExtra,
  });
  t.teardown(() => listener.close());
  listener.on('channel', (ch) => ch.on('message', (m) => ch.send(m).catch(() => {})));
  const connect = async (extra: Record<string, unknown> = {}, keyPair = keys.client) => {
    const channel = await secureConnect(await transport.connect(address), {
      keyPair,
      trust: { keys: [keys.server.publicKey] },
      ...extra,
    });
    t.teardown(() => channel.close(new Error('test over')));
    return channel;
  };
  return { listener, connect, keys };
}

async function echo(channel: Awaited<ReturnType<typeof secureConnect>>, text: string): Promise<string> {
  const got = messages(channel, 1);
  await channel.send(Buffer.from(text));
  return Buffer.from((await got)[0]!).toString();
}

test('new peers negotiate version 4 (acceptance as in version 2): the responder’s first transport frame is the 18-byte ACCEPTED control frame', async (t) => {
  const { client, server, wire } = mitm(t);
  const keys = trustedKeys();
  const [c, s] = await Promise.all([
    establish(client, { keyPair: keys.client, trust: { keys: [keys.server.publicKey] }, initiator: true }),
    establish(server, { keyPair: keys.server, trust: { keys: [keys.client.publicKey] }, initiator: false }),
  ]);
  t.teardown(() => c.close(new Error('over')));
  t.is(c.version, 4);
  t.is(s.version, 4);
  // Message 1 offers [4, 3, 2, 1]: the plaintext payload is the msgpack map { versions: [4, 3, 2, 1] }.
  t.true(wire[0]!.subarray(2 + 32).equals(Buffer.from('81a876657273696f6e739404030201', 'hex')));
  // Frames: message 1, message 2, message 3, then ACCEPTED: 2-byte length + flags + 1 byte + tag.
  t.is(wire.length, 4);
  t.is(wire[3]!.length, 2 + 1 + 1 + 16);
  const got = messages(s, 1);
  await c.send(Buffer.from('after acceptance'));
  t.is(Buffer.from((await got)[0]!).toString(), 'after acceptance');
});

test('a version-2 initiator resolves only on the acceptance, not on message 3', async (t) => {
  const { connecting: pending, responder: s } = await unaccepted(t);
  let resolved = false;
  const connecting = pending.then((c) => {
    resolved = true;
    return c;
  });
  // The responder has finished (message 3 read and trusted); the initiator must still wait.
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
  t.false(resolved);
  s[kAccept]();
  const c = await connecting;
  t.teardown(() => c.close(new Error('over')));
  t.is(c.version, 4);
});

/** What `promise` rejects with (the test fails unless it rejects). */
async function refusal(t: ExecutionContext, promise: Promise<unknown>): Promise<SecureIpcError | undefined> {
  return (await t.throwsAsync(promise)) as SecureIpcError | undefined;
}

/**
 * A version-2 initiator connecting (`clientExtra` added to its options) to a responder that
 * finished its handshake but has not sent the acceptance: the test decides what it sends.
 */
async function unaccepted(t: ExecutionContext, clientExtra: Record<string, unknown> = {}) {
  const { client, server } = mitm(t);
  const keys = trustedKeys();
  const connecting = establish(client, {
    keyPair: keys.client,
    trust: { keys: [keys.server.publicKey] },
    initiator: true,
    ...clientExtra,
  });
  const responder = await establish(server, {
    keyPair: keys.server,
    trust: { keys: [keys.client.publicKey] },
    initiator: false,
    deferAcceptance: true,
  });
  t.teardown(() => responder.close(new Error('over')));
  return { connecting, responder };
}

test('an untrusted client’s connect rejects with SIPC_ERR_REFUSED (reason closed); the server reports UNTRUSTED_PEER', async (t) => {
  const { listener, connect } = await setup(t);
  const failed = new Promise<SecureIpcError>((r) => listener.once('handshakeError', (e) => r(e)));
  const err = await refusal(t, connect({}, generateKeyPair()));
  t.true(isSecureIpcError(err, 'SIPC_ERR_REFUSED'), String(err));
  t.is(err?.details?.reason, 'closed');
  t.regex(err!.message, /does not trust this client's key/);
  t.true(isSecureIpcError(await failed, 'SIPC_ERR_UNTRUSTED_PEER'));
});

test('a client over a connection cap gets SIPC_ERR_REFUSED with reason busy (retryable, cause SIPC_ERR_BUSY)', async (t) => {
  const { connect } = await setup(t, { maxConnectionsPerKey: 1 });
  const first = await connect();
  const err = await refusal(t, connect());
  t.true(isSecureIpcError(err, 'SIPC_ERR_REFUSED'), String(err));
  t.deepEqual(err?.details, { reason: 'busy', retryable: true });
  t.true(isSecureIpcError(err?.cause, 'SIPC_ERR_BUSY'));
  t.is(await echo(first, 'first still served'), 'first still served');
  await first.close();
  // The slot is free again: retrying gets in.
  for (let i = 0; i < 50; i++) {
    const again = await connect().catch((e: unknown) => e);
    if (!isSecureIpcError(again)) {
      t.is(await echo(again as Awaited<ReturnType<typeof connect>>, 'retry'), 'retry');
      return;
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  t.fail('the retry never got in');
});

test('a responder that finishes the handshake but never accepts: the initiator fails with SIPC_ERR_HANDSHAKE_TIMEOUT', async (t) => {
  const { connecting } = await unaccepted(t, { handshakeTimeoutMs: 300 });
  const err = await refusal(t, connecting);
  t.true(isSecureIpcError(err, 'SIPC_ERR_HANDSHAKE_TIMEOUT'), String(err));
});

test('the wait for the acceptance is aborted by the signal', async (t) => {
  const controller = new AbortController();
  const { connecting } = await unaccepted(t, { signal: controller.signal });
  controller.abort();
  t.true(isSecureIpcError(await t.throwsAsync(connecting), 'SIPC_ERR_ABORTED'));
});

test('a responder that sends a message before accepting: the initiator rejects with SIPC_ERR_REFUSED (reason protocol)', async (t) => {
  const { connecting, responder: s } = await unaccepted(t);
  await s.send(Buffer.from('too early'));
  const err = await refusal(t, connecting);
  t.true(isSecureIpcError(err, 'SIPC_ERR_REFUSED'), String(err));
  t.is(err?.details?.reason, 'protocol');
  t.true(isSecureIpcError(err?.cause, 'SIPC_ERR_PROTOCOL'));
});

test('an ACCEPTED from the initiator closes the responder’s channel (SIPC_ERR_PROTOCOL)', async (t) => {
  // Initiators send no control frame but CLOSE: the client's own send queue writes ACCEPTED (as a
  // buggy or hostile initiator would), encrypted with the right key.
  const keys = trustedKeys();
  const { client, server } = mitm(t);
  const [c, s] = await Promise.all([
    establish(client, { keyPair: keys.client, trust: { keys: [keys.server.publicKey] }, initiator: true }),
    establish(server, { keyPair: keys.server, trust: { keys: [keys.client.publicKey] }, initiator: false }),
  ]);
  const serverClosed = closed(s);
  const clientClosed = closed(c);
  (
    c as unknown as { sends: { writeNow: (m: Uint8Array, n: number, f: boolean, x: number) => void } }
  ).sends.writeNow(Uint8Array.of(1), 65_518, true, 0x04);
  const err = await serverClosed;
  t.true(isSecureIpcError(err, 'SIPC_ERR_PROTOCOL'), String(err));
  t.regex(err!.message, /Unexpected control frame/);
  await clientClosed;
});

test('version 1 against the new responder: a v1-only initiator gets version 1 and no acceptance frame', async (t) => {
  const { client, server, wire } = mitm(t);
  const keys = trustedKeys();
  const [c, s] = await Promise.all([
    establish(client, {
      keyPair: keys.client,
      trust: { keys: [keys.server.publicKey] },
      initiator: true,
      versions: [1],
    }),
    establish(server, { keyPair: keys.server, trust: { keys: [keys.client.publicKey] }, initiator: false }),
  ]);
  t.teardown(() => c.close(new Error('over')));
  t.is(c.version, 1);
  t.is(s.version, 1);
  await new Promise((r) => setTimeout(r, 20));
  t.is(wire.length, 3, 'only the three handshake messages crossed');
  const got = messages(s, 1);
  await c.send(Buffer.from('v1'));
  t.is(Buffer.from((await got)[0]!).toString(), 'v1');
});

test('version 1 against the new responder: an untrusted v1 initiator still sees connect resolve, then a close', async (t) => {
  const { connect } = await setup(t);
  const channel = await connect({ versions: [1] }, generateKeyPair());
  t.is(channel.version, 1);
  await closed(channel);
  t.true(channel.closed);
});

test('the new initiator against a v1-only responder: version 1, connect resolves after message 3, works', async (t) => {
  const { connect } = await setup(t, { versions: [1] });
  const channel = await connect();
  t.is(channel.version, 1);
  t.is(await echo(channel, 'v1 server'), 'v1 server');
});

test('the new initiator against a v1-only responder over a cap: connect resolves, then the channel closes (v1 has no refusal)', async (t) => {
  const { connect } = await setup(t, { versions: [1], maxConnectionsPerKey: 1 });
  await connect();
  const second = await connect();
  t.is(second.version, 1);
  await closed(second);
  t.true(second.closed);
});

test('versions must be distinct supported versions', async (t) => {
  const keys = trustedKeys();
  for (const versions of [[], [5], [1, 1], [0], 'x'])
    await t.throwsAsync(
      secureConnect(mitm(t).client, {
        keyPair: keys.client,
        trust: { keys: [keys.server.publicKey] },
        versions: versions as never,
      }),
      { code: 'SIPC_ERR_INVALID_ARGUMENT' },
    );
});

// Protocol 7 (version 2): every close is announced with CLOSE, so an end without it is a peer
// that vanished, and revoked / expired closes are told to the peer.

async function v2Pair(t: ExecutionContext, versions?: number[]) {
  const { client, server } = mitm(t);
  const keys = trustedKeys();
  const extra = versions === undefined ? {} : { versions };
  const [c, s] = await Promise.all([
    establish(client, {
      keyPair: keys.client,
      trust: { keys: [keys.server.publicKey] },
      initiator: true,
      ...extra,
    }),
    establish(server, { keyPair: keys.server, trust: { keys: [keys.client.publicKey] }, initiator: false }),
  ]);
  t.teardown(() => c.close(new Error('over')));
  return { c, s, serverConnection: server };
}

function closeInfo(channel: Awaited<ReturnType<typeof establish>>) {
  return new Promise<[SecureIpcError | undefined, { reason: string; error: unknown }]>((resolve) =>
    channel.once('close', (error, info) => resolve([error, info])),
  );
}

test('version 2: a graceful close is clean on both sides (CLOSE, then the end)', async (t) => {
  const { c, s } = await v2Pair(t);
  const [client, server] = [closeInfo(c), closeInfo(s)];
  await s.close();
  t.deepEqual((await client)[1], { reason: 'clean', error: undefined });
  t.is((await server)[1].reason, 'clean');
});

test('version 2: a stream that ends at a message boundary without CLOSE is a peer that vanished, not a clean close', async (t) => {
  const { c, s, serverConnection } = await v2Pair(t);
  const got = messages(c, 1);
  await s.send(Buffer.from('last'));
  await got;
  const client = closeInfo(c);
  // What a killed process's kernel does: end the stream, with no CLOSE from the application.
  serverConnection.end();
  const [error, info] = await client;
  t.is(info.reason, 'peer-vanished');
  t.true(isSecureIpcError(error, 'SIPC_ERR_CONNECTION_CLOSED'));
  t.regex(error!.message, /without closing the channel/);
});

test('version 1: the same end of the stream is a clean close (version 1 cannot tell)', async (t) => {
  const { c, serverConnection } = await v2Pair(t, [1]);
  t.is(c.version, 1);
  const client = closeInfo(c);
  serverConnection.end();
  t.deepEqual((await client)[1], { reason: 'clean', error: undefined });
});

for (const [code, reason] of [
  ['SIPC_ERR_REVOKED', 'revoked'],
  ['SIPC_ERR_CERT_EXPIRED', 'expired'],
] as const)
  test(`version 2: a channel closed here as ${reason} tells the peer, whose close says ${reason}`, async (t) => {
    const { c, s } = await v2Pair(t);
    const [client, server] = [closeInfo(c), closeInfo(s)];
    await s.close(createError(code));
    const [serverError, serverInfo] = await server;
    t.true(isSecureIpcError(serverError, code));
    t.is(serverInfo.reason, reason);
    const [error, info] = await client;
    t.is(info.reason, reason, String(error));
    t.true(isSecureIpcError(error, code));
    t.deepEqual(error?.details, { by: 'peer' });
  });

test('version 2: a frame after the peer’s CLOSE is a protocol error', async (t) => {
  const { c, s } = await v2Pair(t);
  const client = closeInfo(c);
  const sends = (
    s as unknown as { sends: { writeNow: (m: Uint8Array, n: number, f: boolean, x: number) => void } }
  ).sends;
  sends.writeNow(Uint8Array.of(3, 0), 65_518, true, 0x04);
  sends.writeNow(Buffer.from('after close'), 65_518, true, 0);
  const [error, info] = await client;
  t.is(info.reason, 'protocol');
  t.regex(error!.message, /after the peer closed/);
});
