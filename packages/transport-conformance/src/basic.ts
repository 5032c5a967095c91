/** Basic sub-suite: listen, connect, echo, peer info, connect to nothing, address in use, abort signals. */
import { type Connection, isSecureIpcError } from '@secure-ipc/core';
import { addressScheme, isTransport, selectTransport } from '@secure-ipc/core/transport';
import { echo, random } from './bytes.js';
import { connect, echoServer, listen } from './harness.js';
import type { ConformanceOptions, Test } from './options.js';

/** Register the basic cases. */
export function basicSuite(test: Test, o: ConformanceOptions): void {
  const where = o.child === undefined ? 'in process' : 'server in a child process';
  test(`${o.name}: listen, connect, echo (${where})`, async (t) => {
    t.timeout(20_000);
    const address = await echoServer(t, o);
    const conn = await connect(t, o.transport, address);
    t.is(conn.peer.transport, o.transport.name);
    const data = random(1000);
    t.deepEqual(await echo(conn, data), data);
  });

  test(`${o.name}: the transport is branded and handles the scheme of its addresses`, (t) => {
    t.true(isTransport(o.transport));
    const address = o.address();
    t.true(o.transport.schemes.includes(addressScheme(address)!), `${address} vs ${o.transport.schemes}`);
    t.is(selectTransport(address, [o.transport]), o.transport);
  });

  test(`${o.name}: both ends of a connection carry peer info from the transport`, async (t) => {
    t.timeout(20_000);
    const listener = await listen(t, o.transport, o.address());
    const accepted = new Promise<Connection>((resolve) => listener.once('connection', resolve));
    const conn = await connect(t, o.transport, listener.address);
    const server = await accepted;
    t.is(server.peer.transport, o.transport.name);
    t.is(conn.peer.transport, o.transport.name);
  });

  test(`${o.name}: connect to nothing rejects with SIPC_ERR_CONNECT_FAILED${o.osErrors === false ? '' : ' and the OS error as cause'}`, async (t) => {
    t.timeout(20_000);
    const address = await (o.unusedAddress ?? o.address)();
    const err = await t.throwsAsync(o.transport.connect(address));
    t.true(isSecureIpcError(err, 'SIPC_ERR_CONNECT_FAILED'), String(err));
    if (o.osErrors !== false) {
      t.regex(String((err?.cause as NodeJS.ErrnoException | undefined)?.code), /^E[A-Z]+$/);
    }
  });

  test(`${o.name}: listening on an address in use rejects with SIPC_ERR_ADDRESS_IN_USE, the first server unharmed`, async (t) => {
    t.timeout(20_000);
    const first = await listen(t, o.transport, o.address());
    first.on('connection', (conn) => conn.pipe(conn));
    const err = await t.throwsAsync(o.transport.listen(first.address));
    t.true(isSecureIpcError(err, 'SIPC_ERR_ADDRESS_IN_USE'), String(err));
    const conn = await connect(t, o.transport, first.address);
    const data = random(10);
    t.deepEqual(await echo(conn, data), data);
  });

  test(`${o.name}: an aborted signal rejects listen and connect with SIPC_ERR_ABORTED and binds nothing`, async (t) => {
    t.timeout(20_000);
    const address = o.address();
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    const listenErr = await t.throwsAsync(o.transport.listen(address, { signal: controller.signal }));
    t.true(isSecureIpcError(listenErr, 'SIPC_ERR_ABORTED'), String(listenErr));
    // Nothing was bound: the same address can be listened on right away.
    const listener = await listen(t, o.transport, address);
    const connectErr = await t.throwsAsync(
      o.transport.connect(listener.address, { signal: controller.signal }),
    );
    t.true(isSecureIpcError(connectErr, 'SIPC_ERR_ABORTED'), String(connectErr));
    // An abort after the fact changes nothing for an established connection.
    const late = new AbortController();
    const conn = await o.transport.connect(listener.address, { signal: late.signal });
    t.teardown(() => void conn.destroy());
    late.abort();
    t.false(conn.destroyed);
  });
}
