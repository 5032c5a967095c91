// Large binary payloads leave the RPC layer unjoined (envelope head + the caller's buffer, copied
// once into the frames: src/envelope/encode.ts, encodeEnvelopeSplit). They must arrive byte for
// byte at every size, and a send that has to wait must carry the payload as it was when sent.
import test from 'ava';
import { createClient } from '../src/rpc/client.js';
import { createPolicy } from '../src/rpc/policy.js';
import { createServer } from '../src/rpc/server.js';
import { channelPair, pattern } from './helpers.js';

async function rpcPair(t: Parameters<typeof channelPair>[0], kind: 'memory' | 'tcp' = 'memory') {
  const [clientChannel, serverChannel] = await channelPair(t, kind);
  const server = createServer({
    policy: createPolicy({ roles: { any: { call: ['echo'], publish: ['bulk'] } }, defaultRoles: ['any'] }),
  });
  server.handle('echo', (p: Uint8Array) => p);
  const events: Buffer[] = [];
  server.subscribe('bulk', (p) => {
    events.push(Buffer.from(p as Uint8Array));
  });
  server.attach(serverChannel);
  const client = createClient(clientChannel);
  t.teardown(() => client.close().catch(() => {}));
  return { client, events, serverChannel };
}

// Around the split threshold, one frame, just over one frame, one batch of frames (~1 MiB) and more.
const SIZES = [4095, 4096, 65_000, 65_536, 65_518 * 16 - 40, 65_518 * 16 + 1, 3 * 1024 * 1024 + 7];

for (const kind of ['memory', 'tcp'] as const) {
  test(`${kind}: binary requests, replies and events of every size arrive byte for byte`, async (t) => {
    const { client, events } = await rpcPair(t, kind);
    for (const [i, size] of SIZES.entries()) {
      const p = pattern(size, i + 1);
      const back = (await client.request('echo', p)) as Uint8Array;
      t.true(Buffer.from(back).equals(p), `echo of ${size} bytes`);
      await client.publish('bulk', p);
    }
    await client.request('echo', Buffer.alloc(1)); // the events before it were dispatched
    t.deepEqual(
      events.map((e) => e.length),
      SIZES,
    );
    for (const [i, size] of SIZES.entries())
      t.true(events[i]!.equals(pattern(size, i + 1)), `event of ${size}`);
  });
}

test('events sent while the channel waits for the peer carry the payload as it was at publish()', async (t) => {
  const { client, events, serverChannel } = await rpcPair(t);
  serverChannel.pause(); // the peer stops reading: sends back up and queue
  const payload = Buffer.alloc(65_536);
  const sent: Promise<void>[] = [];
  for (let i = 0; i < 64; i++) {
    payload.fill(i);
    sent.push(client.publish('bulk', payload));
    // The caller reuses its buffer at once, as a stream reading into one buffer does.
  }
  payload.fill(0xff);
  serverChannel.resume();
  await Promise.all(sent);
  await client.request('echo', Buffer.alloc(1));
  t.is(events.length, 64);
  for (const [i, e] of events.entries()) t.true(e.equals(Buffer.alloc(65_536, i)), `event ${i}`);
});

test('a payload larger than one write batch (~1 MiB) is not read after publish() returns', async (t) => {
  const { client, events } = await rpcPair(t);
  const payload = pattern(3 * 1024 * 1024, 5);
  const want = Buffer.from(payload);
  const sent = client.publish('bulk', payload);
  payload.fill(0); // the rest of its frames wait for 'drain': they must not come from this buffer
  await sent;
  await client.request('echo', Buffer.alloc(1));
  t.is(events.length, 1);
  t.true(events[0]!.equals(want));
});
