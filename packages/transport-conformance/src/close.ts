/** Close sub-suite: client close, server close with clients connected, a peer process killed mid-stream. */
import { once } from 'node:events';
import type { Connection } from '@secure-ipc/core';
import { closed, echo, hungUp } from './bytes.js';
import { connect, listen, needsChild } from './harness.js';
import type { ConformanceOptions, Test } from './options.js';
import { type Fixture, startFixture } from './spawn.js';

const MID_STREAM = 1024 * 1024;

/** Once `MID_STREAM` bytes have arrived on `conn`, SIGKILL the fixture; resolve with the byte count when `conn` closes. */
async function killMidStream(conn: Connection, fixture: Fixture): Promise<number> {
  let received = 0;
  conn.on('data', (chunk: Buffer) => {
    received += chunk.length;
    if (received >= MID_STREAM && fixture.child.exitCode === null) fixture.child.kill('SIGKILL');
  });
  await closed(conn);
  await fixture.exited;
  return received;
}

/** Register the close cases. */
export function closeSuite(test: Test, o: ConformanceOptions): void {
  const crossProcess = o.child === undefined ? test.skip : test;
  test(`${o.name}: a client's end() reaches the server as end-of-stream, then both sides close`, async (t) => {
    t.timeout(20_000);
    const listener = await listen(t, o.transport, o.address());
    const accepted = once(listener, 'connection') as Promise<[Connection]>;
    const conn = await connect(t, o.transport, listener.address);
    const [server] = await accepted;
    const ended = once(server, 'end');
    server.resume();
    conn.end();
    await ended;
    server.end();
    conn.resume();
    await Promise.all([closed(server), closed(conn)]);
    t.pass();
  });

  test(`${o.name}: listener.close() with clients connected hangs up on them, emits close and frees the address`, async (t) => {
    t.timeout(20_000);
    const listener = await listen(t, o.transport, o.address());
    listener.on('connection', (c) => c.pipe(c));
    const clients = await Promise.all(
      Array.from({ length: 5 }, () => connect(t, o.transport, listener.address)),
    );
    // Every client is really connected (served) before the close.
    for (const c of clients) t.is((await echo(c, Buffer.from('x'))).toString(), 'x');
    const emitted = once(listener, 'close');
    await listener.close();
    await emitted;
    await Promise.all(clients.map(hungUp));
    // Idempotent, and the address can be bound again.
    await listener.close();
    const again = await listen(t, o.transport, listener.address);
    t.is(again.address, listener.address);
  });

  crossProcess(
    `${o.name}: the client process killed with SIGKILL mid-stream closes the server's connection ${needsChild(o)}`,
    async (t) => {
      // Generous: a child process under Wine on a loaded machine can take many seconds to start.
      t.timeout(60_000);
      const listener = await listen(t, o.transport, o.address());
      const accepted = once(listener, 'connection') as Promise<[Connection]>;
      const fixture = await startFixture(t, o.child!, 'stream-client', listener.address);
      const [server] = await accepted;
      t.true((await killMidStream(server, fixture)) >= MID_STREAM);
      t.is(fixture.child.signalCode, 'SIGKILL');
    },
  );

  crossProcess(
    `${o.name}: the server process killed with SIGKILL mid-stream closes the client's connection ${needsChild(o)}`,
    async (t) => {
      // Generous: a child process under Wine on a loaded machine can take many seconds to start.
      t.timeout(60_000);
      const fixture = await startFixture(t, o.child!, 'stream-server', o.address());
      const conn = await connect(t, o.transport, fixture.address);
      t.true((await killMidStream(conn, fixture)) >= MID_STREAM);
      t.is(fixture.child.signalCode, 'SIGKILL');
    },
  );
}
