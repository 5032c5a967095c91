import test from 'ava';
import type { SecureChannelImpl } from '../src/channel/secure-channel.js';
import { isSecureIpcError, type SecureIpcError } from '../src/errors.js';
import { closed, type FrameHook, handshake, mitm, trustedKeys } from './helpers.js';

// Client → server frames: 0 = message 1, 1 = message 3, 2.. = transport frames.
const FIRST_TRANSPORT = 2;

async function attacked(t: Parameters<typeof mitm>[0], toServer: FrameHook) {
  const relay = mitm(t, { toServer });
  const [client, server] = await handshake(relay.client, relay.server, trustedKeys());
  const delivered: string[] = [];
  server.on('message', (m) => delivered.push(Buffer.from(m).toString()));
  t.teardown(() => {
    client.close(new Error('test over')).catch(() => {});
  });
  return { client, server, delivered, relay };
}

async function sendAll(client: SecureChannelImpl, texts: string[]): Promise<void> {
  for (const text of texts) await client.send(Buffer.from(text)).catch(() => {});
}

const cases: Array<[string, FrameHook]> = [
  [
    'tampered (one bit flipped)',
    (f, i) => {
      if (i === FIRST_TRANSPORT + 1) f[5]! ^= 0x01;
      return f;
    },
  ],
  ['replayed (a frame sent twice)', (f, i) => (i === FIRST_TRANSPORT + 1 ? [f, Buffer.from(f)] : f)],
  ['dropped (a frame removed)', (f, i) => (i === FIRST_TRANSPORT + 1 ? undefined : f)],
  ['tag cut off', (f, i) => (i === FIRST_TRANSPORT + 1 ? f.subarray(0, f.length - 1) : f)],
];

for (const [name, hook] of cases) {
  test(`${name}: SIPC_ERR_DECRYPT_FAILED, nothing delivered from the bad frame on`, async (t) => {
    const { client, server, delivered } = await attacked(t, hook);
    const serverClosed = closed(server);
    await sendAll(client, ['first message', 'second message', 'third message', 'fourth message']);
    const err = await serverClosed;
    t.true(isSecureIpcError(err, 'SIPC_ERR_DECRYPT_FAILED'), String(err?.code));
    if (name.startsWith('replayed')) t.deepEqual(delivered, ['first message', 'second message']);
    else t.deepEqual(delivered, ['first message']);
    t.true(server.cipherStates.rx.destroyed, 'keys wiped after the failure');
  });
}

test('reordered frames: SIPC_ERR_DECRYPT_FAILED and nothing out of order is delivered', async (t) => {
  let held: Buffer | undefined;
  const { client, server, delivered } = await attacked(t, (f, i) => {
    if (i === FIRST_TRANSPORT + 1) {
      held = f;
      return undefined;
    }
    if (i === FIRST_TRANSPORT + 2) return [f, held!];
    return f;
  });
  const serverClosed = closed(server);
  await sendAll(client, ['first', 'second', 'third', 'fourth']);
  t.true(isSecureIpcError(await serverClosed, 'SIPC_ERR_DECRYPT_FAILED'));
  t.deepEqual(delivered, ['first']);
});

const injected: Array<[string, Buffer, boolean, string]> = [
  ['zero-length frame', Buffer.from([0, 0]), false, 'SIPC_ERR_FRAME_EMPTY'],
  ['frame shorter than flag + tag', Buffer.from([0, 5, 1, 2, 3, 4, 5]), false, 'SIPC_ERR_PROTOCOL'],
  ['stream ends inside a frame (truncated)', Buffer.from([0, 100, 1, 2, 3]), true, 'SIPC_ERR_TRUNCATED'],
  ['stream ends inside a header (truncated)', Buffer.from([0]), true, 'SIPC_ERR_TRUNCATED'],
];

for (const [name, bytes, end, code] of injected) {
  test(`injected ${name}: ${code}`, async (t) => {
    const { client, server, delivered, relay } = await attacked(t, (f) => f);
    const serverClosed = closed(server);
    await client.send(Buffer.from('before'));
    while (delivered.length < 1) await new Promise((r) => setTimeout(r, 2));
    if (end) relay.toServer.end(bytes);
    else relay.toServer.write(bytes);
    const err = await serverClosed;
    t.is((err as SecureIpcError | undefined)?.code as string | undefined, code);
    await client.send(Buffer.from('after')).catch(() => {});
    t.deepEqual(delivered, ['before']);
  });
}

test('a stream that ends between the chunks of a message is SIPC_ERR_TRUNCATED', async (t) => {
  const { client, server, delivered, relay } = await attacked(t, (f, i) => {
    // Forward only the first chunk of the 3-chunk message, then end the stream.
    if (i <= FIRST_TRANSPORT) return f;
    if (i === FIRST_TRANSPORT + 1) {
      setImmediate(() => relay.toServer.end());
      return undefined;
    }
    return undefined;
  });
  const serverClosed = closed(server);
  client.send(Buffer.alloc(150_000, 3)).catch(() => {});
  t.is((await serverClosed)?.code, 'SIPC_ERR_TRUNCATED');
  t.deepEqual(delivered, []);
});

test('payload bytes never cross the wire in the clear (handshake payloads and messages)', async (t) => {
  const secret = 'TOP-SECRET-MARKER-4f1c';
  const relay = mitm(t);
  const keys = trustedKeys();
  const [client, server] = await handshake(
    relay.client,
    relay.server,
    keys,
    { payload: { token: `${secret}-client-payload` } },
    { payload: { token: `${secret}-server-payload` } },
  );
  t.is(server.remotePayload.token, `${secret}-client-payload`);
  t.is(client.remotePayload.token, `${secret}-server-payload`);
  const got = new Promise<Uint8Array>((resolve) => server.once('message', resolve));
  const reply = new Promise<Uint8Array>((resolve) => client.once('message', resolve));
  await client.send(Buffer.from(`${secret}-request `.repeat(5000)));
  await got;
  await server.send(Buffer.from(`${secret}-reply`));
  await reply;
  const wire = Buffer.concat(relay.wire);
  t.true(wire.length > 5000 * 20, 'the capture holds the traffic');
  // The scan can fail: message 1's plaintext version list is on the wire in the clear.
  t.true(wire.includes(Buffer.from('versions')), 'the known plaintext of message 1 is visible');
  t.false(wire.includes(Buffer.from(secret)), 'no payload marker in the clear');
  t.false(wire.includes(Buffer.from('TOP-SECRET')), 'not even a prefix of it');
  t.false(wire.includes(Buffer.from(keys.client.publicKey)), 'the client static key is encrypted');
  t.false(wire.includes(Buffer.from(keys.server.publicKey)), 'the server static key is encrypted');
  await client.close();
});
