// sendChunked: a message sent as chunks of any size (and left unfinished on purpose) is what the
// conformance suite's abuse cases use to probe a receiver's reassembly (issue 12, row 2).
import { once } from 'node:events';
import test, { type ExecutionContext } from 'ava';
import { establish, type SecureChannelImpl, sendChunked } from '../src/channel/secure-channel.js';
import { MAX_CHUNK_SIZE } from '../src/constants.js';
import { isSecureIpcError } from '../src/errors.js';
import { connectionPair, trustedKeys } from './helpers.js';

async function pair(t: ExecutionContext): Promise<[SecureChannelImpl, SecureChannelImpl]> {
  const [a, b] = await connectionPair(t, 'tcp');
  const keys = trustedKeys();
  const channels = await Promise.all([
    establish(a, { keyPair: keys.client, trust: { keys: [keys.server.publicKey] }, initiator: true }),
    establish(b, { keyPair: keys.server, trust: { keys: [keys.client.publicKey] }, initiator: false }),
  ]);
  t.teardown(() => {
    for (const c of channels) c.close(new Error('test over')).catch(() => {});
  });
  return channels;
}

test('one-byte chunks left unfinished, then finished by a final send, arrive as one whole message', async (t) => {
  const [client, server] = await pair(t);
  const got: Buffer[] = [];
  server.on('message', (m) => got.push(Buffer.from(m)));
  const part = Buffer.from('one byte per frame, ');
  await sendChunked(client, part, { chunkSize: 1, final: false });
  await sendChunked(client, Buffer.alloc(100_000, 7), { chunkSize: 3, final: false });
  t.deepEqual(got, [], 'nothing delivered while the message is unfinished');
  const message = once(server, 'message');
  await sendChunked(client, Buffer.from('end'), { chunkSize: MAX_CHUNK_SIZE });
  await message;
  t.is(got.length, 1);
  t.true(got[0]!.equals(Buffer.concat([part, Buffer.alloc(100_000, 7), Buffer.from('end')])));
  // A normal send after it is its own message.
  const next = once(server, 'message');
  await client.send(Buffer.from('next'));
  t.is(Buffer.from(((await next) as [Uint8Array])[0]).toString(), 'next');
});

test('sendChunked checks its arguments and refuses while sends are queued or the channel closed', async (t) => {
  const [client, server] = await pair(t);
  for (const chunkSize of [0, -1, 1.5, MAX_CHUNK_SIZE + 1, Number.NaN]) {
    const err = await t.throwsAsync(sendChunked(client, Buffer.from('x'), { chunkSize }));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), `${chunkSize}: ${String(err)}`);
  }
  const notChannel = await t.throwsAsync(sendChunked({} as never, Buffer.from('x'), { chunkSize: 1 }));
  t.true(isSecureIpcError(notChannel, 'SIPC_ERR_INVALID_ARGUMENT'));
  // A peer that does not read: the first big send backs up, so the channel has a send queued.
  server.pause();
  const big = client.send(Buffer.alloc(8 * 1024 * 1024));
  big.catch(() => {});
  for (let i = 0; i < 200 && client.queuedBytes === 0; i++) await new Promise((r) => setTimeout(r, 10));
  const busy = await t.throwsAsync(sendChunked(client, Buffer.from('x'), { chunkSize: 1 }));
  t.true(isSecureIpcError(busy, 'SIPC_ERR_BUSY'), String(busy));
  await client.close(new Error('done'));
  const closed = await t.throwsAsync(sendChunked(client, Buffer.from('x'), { chunkSize: 1 }));
  t.true(isSecureIpcError(closed, 'SIPC_ERR_CHANNEL_CLOSED'), String(closed));
});
