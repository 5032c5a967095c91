// Issue 12, row 2: reassembly holds at most twice the bytes it counts against maxMessageSize
// (plus one small tail buffer), whatever chunk sizes the peer picks. Before, every chunk was kept
// as a view of its socket read: one-byte chunks cost ~128 bytes each and three connections
// could abort a process.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import net from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { Reassembly } from '../src/channel/reassembly.js';
import { establish } from '../src/channel/secure-channel.js';
import { FLAG_LAST, FLAG_SIZE, FRAME_HEADER_SIZE, TAG_LENGTH } from '../src/constants.js';
import type { NoiseCipherState } from '../src/handshake/cipher-state.js';
import { NoiseHandshake } from '../src/handshake/xx.js';
import { generateKeyPair } from '../src/keys/key-pair.js';
import { encodeKey } from '../src/keys/key-text.js';
import { asConnection, tempSocketPath } from './fixtures/rpc-net.js';

/** A finished in-memory XX handshake: the initiator's sending state, the responder's receiving one. */
function cipherPair(): { tx: NoiseCipherState; rx: NoiseCipherState } {
  const a = new NoiseHandshake({
    initiator: true,
    prologue: Buffer.alloc(0),
    staticKeyPair: generateKeyPair(),
  });
  const b = new NoiseHandshake({
    initiator: false,
    prologue: Buffer.alloc(0),
    staticKeyPair: generateKeyPair(),
  });
  b.readMessage(a.writeMessage(new Uint8Array(0)));
  a.readMessage(b.writeMessage(new Uint8Array(0)));
  b.readMessage(a.writeMessage(new Uint8Array(0)));
  return { tx: a.split!.tx, rx: b.split!.rx };
}

/** `count` encrypted frames in one buffer (as one socket read would carry them), chunk sizes from `size(i)`. */
function frames(
  tx: NoiseCipherState,
  sizes: readonly number[],
  lastFinal: boolean,
): { read: Buffer; bodies: Buffer[] } {
  const total = sizes.reduce((n, s) => n + FRAME_HEADER_SIZE + FLAG_SIZE + s + TAG_LENGTH, 0);
  const read = Buffer.alloc(total);
  const bodies: Buffer[] = [];
  let at = 0;
  sizes.forEach((size, i) => {
    const bodyLength = FLAG_SIZE + size + TAG_LENGTH;
    read.writeUInt16BE(bodyLength, at);
    const body = read.subarray(at + FRAME_HEADER_SIZE, at + FRAME_HEADER_SIZE + bodyLength);
    body[0] = lastFinal && i === sizes.length - 1 ? FLAG_LAST : 0;
    body.fill(i & 0xff, FLAG_SIZE, FLAG_SIZE + size);
    tx.encrypt(body, body.subarray(0, FLAG_SIZE + size));
    bodies.push(body);
    at += FRAME_HEADER_SIZE + bodyLength;
  });
  return { read, bodies };
}

test('one-byte chunks sharing socket reads: memory held stays within 2x the bytes counted + 1 KiB', (t) => {
  const { tx, rx } = cipherPair();
  const r = new Reassembly(rx, 16 * 1024 * 1024);
  let worst = 0;
  for (let read = 0; read < 40; read++) {
    const { bodies } = frames(tx, new Array(3000).fill(1), false);
    for (const body of bodies) t.is(r.open(body), undefined);
    worst = Math.max(worst, r.heldBytes / r.countedBytes);
    t.true(r.heldBytes <= 2 * r.countedBytes + 1024, `${r.heldBytes} held for ${r.countedBytes} counted`);
  }
  t.is(r.countedBytes, 120_000);
  t.log(`worst held/counted ratio: ${worst.toFixed(2)}`);
});

test('any mix of chunk sizes: the bound holds at every frame and the message comes out whole', (t) => {
  const { tx, rx } = cipherPair();
  const r = new Reassembly(rx, 16 * 1024 * 1024);
  // Sizes chosen to hit every path: tiny, tail growth, views, views of a shared read, big copies.
  const pattern = [1, 7, 900, 5000, 1, 65_000, 3, 20_000, 1023, 4096, 2, 30_000, 64_000, 1, 1, 1];
  const expected: Buffer[] = [];
  for (let round = 0; round < 4; round++) {
    const sizes = round % 2 === 0 ? pattern : [...pattern].reverse();
    // Round 0 and 2: one read per frame; round 1 and 3: all frames in one read.
    if (round % 2 === 0)
      for (const size of sizes) {
        const { bodies } = frames(tx, [size], false);
        const body = Buffer.from(bodies[0]!); // its own read
        expected.push(Buffer.alloc(size, 0));
        t.is(r.open(body), undefined);
        t.true(r.heldBytes <= 2 * r.countedBytes + 1024, `${r.heldBytes} held for ${r.countedBytes} counted`);
      }
    else {
      const { bodies } = frames(tx, sizes, false);
      bodies.forEach((body, i) => {
        expected.push(Buffer.alloc(sizes[i]!, i & 0xff));
        t.is(r.open(body), undefined);
        t.true(r.heldBytes <= 2 * r.countedBytes + 1024, `${r.heldBytes} held for ${r.countedBytes} counted`);
      });
    }
  }
  const { bodies } = frames(tx, [10], true);
  expected.push(Buffer.alloc(10, 0));
  const message = r.open(bodies[0]!);
  t.true(message instanceof Uint8Array);
  t.true(Buffer.from(message as Uint8Array).equals(Buffer.concat(expected)));
  t.false(r.partial);
  t.is(r.heldBytes, 0);
});

test('three peers sending one-byte chunks to a server in another process: its RSS stays bounded and it keeps answering', async (t) => {
  t.timeout(120_000);
  const serverKeys = generateKeyPair();
  const clientKeys = generateKeyPair();
  const { path, remove } = tempSocketPath();
  t.teardown(remove);
  const MAX = 512 * 1024;
  const child = spawn(
    process.execPath,
    ['--expose-gc', fileURLToPath(new URL('./fixtures/channel-server-process.js', import.meta.url))],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  t.teardown(() => child.kill());
  const lines = createInterface({ input: child.stdout! });
  const nextLine = () => once(lines, 'line').then(([l]) => l as string);
  child.stdin!.write(
    `${JSON.stringify({ path, serverSecret: encodeKey(serverKeys.secretKey), clientPublic: encodeKey(clientKeys.publicKey), maxMessageSize: MAX })}\n`,
  );
  t.is(await nextLine(), 'ready');
  /** The server's RSS and its JS-held bytes (heap used + ArrayBuffers), after a full GC. */
  const usage = async () => {
    child.stdin!.write('rss\n');
    const [, rss, held] = (await nextLine()).split(' ').map(Number);
    return { rss: rss!, held: held! };
  };
  const open = async () => {
    const socket = net.connect(path);
    await once(socket, 'connect');
    const channel = await establish(asConnection(socket), {
      keyPair: clientKeys,
      trust: { keys: [serverKeys.publicKey] },
      initiator: true,
      maxMessageSize: MAX,
    });
    return { socket, channel };
  };
  const peers = await Promise.all([open(), open(), open()]);
  const before = await usage();
  // Each sends MAX - 1 one-byte non-final chunks (all counted, none completing a message),
  // straight on the socket with the channel's own sending key.
  const CHUNKS = MAX - 1;
  const BATCH = 4096;
  await Promise.all(
    peers.map(async ({ socket, channel }) => {
      const tx = channel.cipherStates.tx;
      for (let sent = 0; sent < CHUNKS; sent += BATCH) {
        const { read } = frames(tx, new Array(Math.min(BATCH, CHUNKS - sent)).fill(1), false);
        if (!socket.write(read)) await once(socket, 'drain');
      }
    }),
  );
  // Let the server read everything: a legitimate client's echo queues behind nothing.
  const legit = await open();
  const echoed = once(legit.channel, 'message');
  await legit.channel.send(Buffer.from('still here'));
  const [reply] = (await echoed) as [Uint8Array];
  t.is(Buffer.from(reply).toString(), 'still here');
  await new Promise((r) => setTimeout(r, 500));
  const after = await usage();
  const growth = (after.rss - before.rss) / 2 ** 20;
  const held = (after.held - before.held) / 2 ** 20;
  t.log(
    `server growth with 3 x ${CHUNKS} one-byte chunks held: RSS ${growth.toFixed(1)} MiB, JS heap + ArrayBuffers ${held.toFixed(1)} MiB`,
  );
  // 3 x (2 x 512 KiB + 1 KiB) is the budget's bound on what the channels hold (JS heap +
  // ArrayBuffers measured 1.7-1.8 MiB under Node 20; Deno's count leaves the buffers out, so it is
  // logged, not checked). RSS also counts what the runtime keeps after ~30 MB of socket reads:
  // measured 7.5-27 MiB under Node 20, 36-40.5 MiB under Deno 2.9.6 (outside its JS heap; 40.5
  // failed the earlier 40 MiB bound in CI). Before the budget it grew 238 MiB: 64 MiB tells them apart.
  t.true(growth < 64, `RSS grew ${growth.toFixed(1)} MiB`);
  for (const p of [...peers, legit]) p.socket.destroy();
});
