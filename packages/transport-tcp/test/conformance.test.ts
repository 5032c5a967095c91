import { createServer } from 'node:net';
import { runTransportConformance } from '@secure-ipc/transport-conformance';
import test from 'ava';
import { tcpTransport } from '../src/index.js';

/** A loopback port that was free a moment ago (bound then released), so nothing listens on it. */
async function closedPort(): Promise<string> {
  const s = createServer().listen(0, '127.0.0.1');
  await new Promise((resolve) => s.once('listening', resolve));
  const { port } = s.address() as { port: number };
  await new Promise((resolve) => s.close(resolve));
  return `tcp://127.0.0.1:${port}`;
}

runTransportConformance(test, {
  name: 'tcp',
  transport: tcpTransport(),
  address: () => 'tcp://127.0.0.1:0',
  unusedAddress: closedPort,
  child: { module: new URL('../src/index.js', import.meta.url).href, factory: 'tcpTransport' },
});
