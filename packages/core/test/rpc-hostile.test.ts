import test from 'ava';
import { decodeEnvelope } from '../src/envelope/decode.js';
import { encodeEnvelope } from '../src/envelope/encode.js';
import { EnvelopeKind } from '../src/envelope/types.js';
import { DEFAULT_MAX_QUEUED_REPLY_BYTES, QUEUED_MESSAGE_OVERHEAD } from '../src/rpc/byte-budget.js';
import { createPolicy } from '../src/rpc/policy.js';
import { memoryRpc } from './fixtures/memory-rpc.js';
import { rawChannelToServer } from './fixtures/raw-rpc-peer.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// A peer that writes requests and never reads the answers must not make the server buffer them
// without bound: past maxQueuedReplyBytes of queued answers it stops reading that peer
// (byte-budget-process.test.ts measures the same with the server in its own process).
test('a peer that never reads its answers cannot make the server queue them without bound', async (t) => {
  const { server, channel: ch } = await rawChannelToServer(t);
  // No 'message' listener: this end reads nothing, so the server's answers back up.
  const total = 6000;
  const payload = new Uint8Array(4096);
  let accepted = 0;
  const sends: Promise<void>[] = [];
  for (let id = 1; id <= total; id++) {
    const p = ch.send(encodeEnvelope({ k: EnvelopeKind.Request, id, m: '$ping', p: payload }));
    sends.push(p.then(() => void accepted++));
  }
  // Let the flood settle: the server reads until its high-water mark, then stops reading.
  let last = -1;
  while (accepted !== last) {
    last = accepted;
    await sleep(200);
  }
  const peer = [...server.peers][0]!;
  t.log(
    `accepted ${accepted} of ${total}; server holds ${peer.queuedReplies} queued answers, ${peer.queuedReplyBytes} bytes charged`,
  );
  const oneAnswer = payload.byteLength + 64 + QUEUED_MESSAGE_OVERHEAD;
  t.true(peer.queuedReplyBytes > 0);
  t.true(
    peer.queuedReplyBytes <= DEFAULT_MAX_QUEUED_REPLY_BYTES + oneAnswer,
    `${peer.queuedReplyBytes} bytes of answers queued`,
  );
  t.true(accepted < total, 'the server stopped reading the flood');
  // Reading again drains everything: each request answered exactly once, nothing lost.
  const seen = new Set<number>();
  await new Promise<void>((resolve) => {
    ch.on('message', (m: Uint8Array) => {
      const r = decodeEnvelope(m);
      if (r.ok && r.envelope.k === EnvelopeKind.Response) seen.add(r.envelope.id!);
      if (seen.size === total) resolve();
    });
  });
  await Promise.all(sends);
  t.is(seen.size, total);
  t.is(peer.queuedReplies, 0);
  t.is(peer.queuedReplyBytes, 0);
});

test('a throwing audit or event listener is reported on the server and the session goes on', async (t) => {
  const { server, client } = await memoryRpc(t, {
    policy: createPolicy({ roles: { all: { publish: ['*'] } }, defaultRoles: ['all'] }),
  });
  const errors: unknown[] = [];
  server.on('error', (err) => errors.push(err));
  server.on('decision', () => {
    throw new Error('audit sink down');
  });
  server.subscribe('x', () => {
    throw new Error('listener bug');
  });
  await client.publish('x', 1);
  t.is(await client.ping('ok'), 'ok');
  t.deepEqual(
    errors.map((e) => (e as Error).message),
    ['audit sink down', 'listener bug', 'audit sink down'],
  );
});
