// Issue 12, deliverable 6: the shared handshake flood over loopback TCP. Any local user can connect;
// the listener tells users apart by the uid the kernel lists for the client socket (Linux).
import { handshakeFloodSuite } from '@secure-ipc/transport-conformance/flood';
import test from 'ava';
import { tcpTransport } from '../src/index.js';

// Explicit platform gate: the per-identity caps need osIdentity, which TCP has only on Linux (/proc/net/tcp*).
if (process.platform === 'linux') {
  handshakeFloodSuite(test, {
    name: 'tcp',
    transport: tcpTransport(),
    address: () => 'tcp://127.0.0.1:0',
    child: { module: new URL('../src/index.js', import.meta.url).href, factory: 'tcpTransport' },
  });
} else {
  test.skip('tcp: handshake flood (skipped: TCP peers have an OS identity on Linux only)', () => {});
}
