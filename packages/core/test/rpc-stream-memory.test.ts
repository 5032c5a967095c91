import test from 'ava';
import { startHarness } from './fixtures/rpc-suite.js';

const MiB = 1024 * 1024;
const CHUNK = 256 * 1024;
const TOTAL = 1024 * MiB; // 1 GiB
// Credit window 16 × 256 KiB = 4 MiB in flight, plus channel and socket buffers and garbage not
// yet collected; without flow control the reader's side would hold most of the 1 GiB.
const BOUND = 96 * MiB;

// Own file so that this process's RSS belongs to this test alone.
test('a 1 GiB stream to a slow reader stays in bounded RSS on both sides (server in another process)', async (t) => {
  t.timeout(120_000);
  const h = await startHarness('child-process');
  t.teardown(() => h.close());
  const c = await h.connect();
  const serverBase = (await c.request('stats.get', null)).peakRss;
  const clientBase = process.memoryUsage.rss();
  let clientPeak = clientBase;
  const n = TOTAL / CHUNK;
  const stream = await c.request('stream.count', { n, size: CHUNK, tag: 'gib' });
  let bytes = 0;
  let items = 0;
  for await (const chunk of stream) {
    bytes += chunk.byteLength;
    // The slow part: the reader stalls for 2 s twice; a producer without flow control keeps
    // sending meanwhile (about 150 MiB per stall here), and the reader's side would buffer it all.
    if (++items % 1536 === 0) await new Promise((r) => setTimeout(r, 2000));
    if ((items & 15) === 0) clientPeak = Math.max(clientPeak, process.memoryUsage.rss());
  }
  t.is(bytes, TOTAL);
  const s = await c.request('stats.get', null);
  t.is(s.produced.gib, n);
  const serverGrowth = s.peakRss - serverBase;
  const clientGrowth = clientPeak - clientBase;
  t.log(
    `RSS growth while streaming 1 GiB: server ${(serverGrowth / MiB).toFixed(1)} MiB, client ${(clientGrowth / MiB).toFixed(1)} MiB`,
  );
  t.true(serverGrowth < BOUND, `server grew ${serverGrowth} bytes`);
  t.true(clientGrowth < BOUND, `client grew ${clientGrowth} bytes`);
});
