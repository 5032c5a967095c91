/** Stress sub-suite: 10,000 small writes in order, 100 concurrent connections, a slow reader bounds the writer. */
import { once } from 'node:events';
import type { Connection } from '@secure-ipc/core';
import { STALL_BOUND, writeUntilBlocked } from './backpressure.js';
import { echo, readExactly } from './bytes.js';
import { connect, echoServer, listen } from './harness.js';
import type { ConformanceOptions, Test } from './options.js';

/** Register the stress cases. */
export function stressSuite(test: Test, o: ConformanceOptions): void {
  test(`${o.name}: 10,000 small writes arrive in order`, async (t) => {
    t.timeout(60_000);
    const address = await echoServer(t, o);
    const conn = await connect(t, o.transport, address);
    const count = 10_000;
    const reading = readExactly(conn, count * 4);
    for (let i = 0; i < count; i++) {
      const record = Buffer.alloc(4);
      record.writeUInt32BE(i);
      if (!conn.write(record)) await once(conn, 'drain');
    }
    const back = await reading;
    for (let i = 0; i < count; i++) {
      if (back.readUInt32BE(i * 4) !== i) return t.fail(`record ${i} out of order`);
    }
    t.pass();
  });

  test(`${o.name}: 100 concurrent connections each get their own bytes back`, async (t) => {
    t.timeout(60_000);
    const address = await echoServer(t, o);
    const conns = await Promise.all(Array.from({ length: 100 }, () => connect(t, o.transport, address)));
    const backs = await Promise.all(
      conns.map((conn, i) => echo(conn, Buffer.from(`connection ${i} `.repeat(100)))),
    );
    backs.forEach((back, i) => {
      t.is(back.toString(), `connection ${i} `.repeat(100));
    });
  });

  test(`${o.name}: a stalled reader stops the writer (backpressure) with bounded memory, and every byte arrives once it reads`, async (t) => {
    t.timeout(60_000);
    const listener = await listen(t, o.transport, o.address());
    const accepted = once(listener, 'connection') as Promise<[Connection]>;
    const writer = await connect(t, o.transport, listener.address);
    const [reader] = await accepted;
    reader.pause();
    const chunk = Buffer.alloc(64 * 1024, 7);
    const blocked = await writeUntilBlocked(async () => {
      if (!writer.write(chunk)) await once(writer, 'drain');
    }, chunk.length);
    t.log(`${blocked.accepted} bytes written when the writer blocked`);
    t.true(
      blocked.accepted <= STALL_BOUND,
      `the writer got ${blocked.accepted} bytes in with the reader stalled`,
    );
    t.true(writer.writableLength <= writer.writableHighWaterMark + chunk.length);
    let received = 0;
    reader.on('data', (c: Buffer) => {
      received += c.length;
    });
    const ended = once(reader, 'end');
    reader.resume();
    const written = await blocked.finish();
    writer.end();
    await ended;
    t.is(received, written);
  });
}
