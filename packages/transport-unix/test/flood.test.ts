// Issue 12, deliverable 6: the shared handshake flood over Unix sockets. An abstract address (no
// socket file, so the other user can reach it) and a policy that lets uid 65534 connect: the flood
// then hits the secure listener's caps, not the transport's credential check.
import { handshakeFloodSuite } from '@secure-ipc/transport-conformance/flood';
import test from 'ava';
import { unixTransport } from '../src/index.js';

const NOBODY = 65534;
// Explicit platform gate: abstract sockets are Linux's.
if (process.platform === 'linux') {
  let n = 0;
  handshakeFloodSuite(test, {
    name: 'unix',
    transport: unixTransport({ allowedUids: [process.geteuid!(), NOBODY] }),
    address: () => `unix-abstract:sipc-flood-${process.pid}-${n++}`,
    child: { module: new URL('../src/index.js', import.meta.url).href, factory: 'unixTransport' },
    // The hostile child accepts a server of another uid (this one, root).
    hostileChild: {
      module: new URL('../src/index.js', import.meta.url).href,
      factory: 'unixTransport',
      options: { allowAnyUser: true },
    },
    hostileUid: NOBODY,
  });
} else {
  test.skip('unix: handshake flood (skipped: it uses unix-abstract: addresses, Linux only)', () => {});
}
