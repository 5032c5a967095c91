/**
 * The encrypted outbox (docs/outbox.md) end to end on real files and a real server over a real
 * Unix socket: enqueue while the server is down and after a restart of the client, delivery in
 * order per lane with idempotency keys, the DONE records, TTL expiry, limits, and what a
 * journal on disk holds (no byte of params in the clear).
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { isSecureIpcError } from '../src/errors.js';
import {
  deliveringClient,
  events,
  ledgerServer,
  openTestOutbox,
  outboxPlace,
} from './fixtures/outbox-world.js';

const SENTINEL = 'SENTINEL-c0ffee-7f3a9e';

test('enqueue resolves once durable; entries survive a client restart and are delivered on connect, each once, in order per lane', async (t) => {
  const place = outboxPlace(t);
  const first = await openTestOutbox(place);
  const ids: string[] = [];
  for (let n = 1; n <= 3; n++) ids.push((await first.add('record', { n, tag: 'a' }, { lane: 'a' })).id);
  for (let n = 4; n <= 5; n++) ids.push((await first.add('record', { n, tag: 'b' }, { lane: 'b' })).id);
  ids.push((await first.add('record', { n: 6 })).id);
  t.is(first.size, 6);
  await first.close(); // the client "crashes" before any server exists

  const again = await openTestOutbox(place);
  t.deepEqual(
    again.entries().map((e) => e.id),
    ids,
    'the same ids, in order, after a reopen',
  );
  const { ledger, connect } = await ledgerServer(t, place.root);
  const delivered = events(again, 'delivered', 6);
  deliveringClient(t, connect, again);
  const seen = (await delivered) as { id: string; value: string }[];
  t.is(again.size, 0, 'every answered entry removed');
  t.deepEqual(
    ledger.filter((l) => l.tag === 'a').map((l) => l.n),
    [1, 2, 3],
  );
  t.deepEqual(
    ledger.filter((l) => l.tag === 'b').map((l) => l.n),
    [4, 5],
  );
  t.is(ledger.length, 6, 'each executed once');
  t.true(
    ledger.every((l) => l.key === `obx-${again.id}-${ids[l.n - 1]}`),
    'every request carried its generated idempotency key',
  );
  t.deepEqual(seen.map((s) => s.value).sort(), ['ok 1', 'ok 2', 'ok 3', 'ok 4', 'ok 5', 'ok 6']);
  await again.close();
  const reopened = await openTestOutbox(place);
  t.is(reopened.size, 0, 'DONE records are durable: nothing is delivered again');
  await reopened.close();
});

test('rc.enqueue while the server is down: delivered when it comes up; a handler error fails the entry for good', async (t) => {
  const place = outboxPlace(t);
  const outbox = await openTestOutbox(place);
  t.teardown(() => outbox.close());
  const world = await ledgerServer(t, place.root, { down: true });
  const rc = deliveringClient(t, world.connect, outbox);
  const a = await rc.enqueue('record', { n: 1 }, { idempotencyKey: 'my-key-1' });
  t.deepEqual(a, { id: a.id, idempotencyKey: 'my-key-1' });
  const f = await rc.enqueue('fail', null);
  t.is(outbox.size, 2, 'queued while nobody listens');
  await new Promise((r) => setTimeout(r, 200));
  t.is(outbox.size, 2, 'still queued after failed connection attempts');
  t.not(rc.state, 'ready');
  const delivered = events(outbox, 'delivered', 1);
  const failed = events(outbox, 'failed', 1);
  await world.start();
  const [d] = (await delivered) as { id: string; value: unknown }[];
  t.deepEqual(d, { id: a.id, value: 'ok 1' });
  const [e] = (await failed) as { id: string; error: unknown }[];
  t.is(e!.id, f.id);
  t.true(isSecureIpcError(e!.error, 'SIPC_ERR_HANDLER'), String(e!.error));
  t.deepEqual(world.ledger, [{ n: 1, tag: undefined, key: 'my-key-1' }]);
  t.is(outbox.size, 0);
});

test('enqueue without an outbox, and bad entries, are typed errors at the call', async (t) => {
  const place = outboxPlace(t);
  const world = await ledgerServer(t, place.root);
  const { createReconnectingClient } = await import('../src/resilience/reconnect.js');
  const plain = createReconnectingClient(world.connect);
  t.teardown(() => plain.close());
  await t.throwsAsync(plain.enqueue('record', { n: 1 }), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  const outbox = await openTestOutbox(place);
  t.teardown(() => outbox.close());
  await t.throwsAsync(outbox.add('', null), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  await t.throwsAsync(outbox.add('m', null, { lane: '' }), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  await t.throwsAsync(outbox.add('m', null, { ttlMs: 0 }), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  await t.throwsAsync(outbox.add('m', null, { ttlMs: 1.5 }), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  await t.throwsAsync(outbox.add('m', null, { idempotencyKey: 'x'.repeat(129) }), {
    code: 'SIPC_ERR_INVALID_ARGUMENT',
  });
  async function* stream() {
    yield 1;
  }
  await t.throwsAsync(outbox.add('m', stream()), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  await t.throwsAsync(
    outbox.add('m', () => 1),
    { code: 'SIPC_ERR_INVALID_ARGUMENT' },
  );
  await t.throwsAsync(outbox.add('m', new Uint8Array(1024 * 1024 + 1)), {
    code: 'SIPC_ERR_MESSAGE_TOO_LARGE',
  });
  t.is(outbox.size, 0, 'nothing refused was stored');
});

test('maxEntries and maxBytes: SIPC_ERR_OUTBOX_FULL with the numbers; room again once delivered', async (t) => {
  const place = outboxPlace(t);
  const outbox = await openTestOutbox(place, { maxEntries: 3, maxBytes: 4096 });
  t.teardown(() => outbox.close());
  for (let n = 1; n <= 3; n++) await outbox.add('record', { n });
  const full = await t.throwsAsync(outbox.add('record', { n: 4 }), { code: 'SIPC_ERR_OUTBOX_FULL' });
  t.like((full as unknown as { details: object }).details, { entries: 3, maxEntries: 3 });
  const world = await ledgerServer(t, place.root);
  const delivered = events(outbox, 'delivered', 3);
  deliveringClient(t, world.connect, outbox);
  await delivered;
  await outbox.add('record', { n: 4 });
  const big = await t.throwsAsync(outbox.add('record', { n: 5, tag: 'x'.repeat(5000) }), {
    code: 'SIPC_ERR_OUTBOX_FULL',
  });
  t.like((big as unknown as { details: object }).details, { maxBytes: 4096 });
});

test('TTL: an entry not delivered in time expires with its id and is never sent', async (t) => {
  const place = outboxPlace(t);
  const outbox = await openTestOutbox(place);
  t.teardown(() => outbox.close());
  const expired = events(outbox, 'expired', 1);
  const { id } = await outbox.add('record', { n: 1 }, { ttlMs: 50 });
  const kept = await outbox.add('record', { n: 2 });
  const [e] = (await expired) as { id: string; sent: boolean }[];
  t.deepEqual(e, { id, sent: false });
  t.deepEqual(
    outbox.entries().map((x) => x.id),
    [kept.id],
  );
  await outbox.close();
  const again = await openTestOutbox(place);
  t.teardown(() => again.close());
  t.deepEqual(
    again.entries().map((x) => x.id),
    [kept.id],
    'the expiry is durable',
  );
  const world = await ledgerServer(t, place.root);
  const delivered = events(again, 'delivered', 1);
  deliveringClient(t, world.connect, again);
  await delivered;
  t.deepEqual(
    world.ledger.map((l) => l.n),
    [2],
  );
});

test('at rest: the files hold no byte of the params, method or key in the clear; modes 0700 / 0600', async (t) => {
  const place = outboxPlace(t);
  const outbox = await openTestOutbox(place);
  await outbox.add(
    `method-${SENTINEL}`,
    { secret: SENTINEL, nested: [SENTINEL] },
    { lane: `lane-${SENTINEL}`, idempotencyKey: `key-${SENTINEL}` },
  );
  await outbox.add('m', Buffer.from(SENTINEL));
  await outbox.close();
  const files = [
    place.keyFile,
    `${place.keyFile}.anchor`,
    ...readdirSync(place.dir).map((f) => join(place.dir, f)),
  ];
  t.true(files.length >= 3);
  const needles = [
    Buffer.from(SENTINEL),
    Buffer.from(SENTINEL, 'utf16le'),
    Buffer.from(Buffer.from(SENTINEL).toString('base64')),
  ];
  for (const f of files) {
    const bytes = readFileSync(f);
    for (const n of needles) t.is(bytes.indexOf(n), -1, `${f} holds the sentinel`);
  }
  t.is(statSync(place.dir).mode & 0o777, 0o700);
  t.is(statSync(join(place.dir, 'outbox.log')).mode & 0o777, 0o600);
  t.is(statSync(`${place.keyFile}.anchor`).mode & 0o777, 0o600);
});
