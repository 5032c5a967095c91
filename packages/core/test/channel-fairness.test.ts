// Issue 12, row 2 (CPU side): a peer sending one-byte frames must not hold the event loop. The
// channel opens at most 1,024 frames per read turn, then yields; before, every frame of a read
// (and libuv's up to 32 reads of one socket in a row) was opened in one go: ~100,000 frames
// blocked a server's event loop for 0.6-1.1 s under load (conformance suite, abuse row 2).
import { once } from 'node:events';
import test from 'ava';
import { establish, sendChunked } from '../src/channel/secure-channel.js';
import { connectionPair, trustedKeys } from './helpers.js';

test('100,000 one-byte frames arriving at once are opened over many event-loop turns, not one', async (t) => {
  t.timeout(60_000);
  const [a, b] = await connectionPair(t, 'memory');
  const keys = trustedKeys();
  const [client, server] = await Promise.all([
    establish(a, { keyPair: keys.client, trust: { keys: [keys.server.publicKey] }, initiator: true }),
    establish(b, { keyPair: keys.server, trust: { keys: [keys.client.publicKey] }, initiator: false }),
  ]);
  t.teardown(() => {
    for (const c of [client, server]) c.close(new Error('test over')).catch(() => {});
  });
  const FRAMES = 100_000;
  const message = once(server, 'message') as Promise<[Uint8Array]>;
  let turns = 0;
  let counting = true;
  const tick = () => {
    turns++;
    if (counting) setImmediate(tick);
  };
  setImmediate(tick);
  // All frames in two writes (the frame writer's ~1 MiB batches), so they arrive together.
  void sendChunked(client, new Uint8Array(FRAMES), { chunkSize: 1 });
  const [got] = await message;
  counting = false;
  t.is(got.byteLength, FRAMES);
  t.log(`${FRAMES} frames opened over ${turns} event-loop turns`);
  // 100,000 / 1,024: about 97 turns with the cap (96 measured); none without it (0 measured).
  t.true(turns >= 50, `${turns} turns`);
});
