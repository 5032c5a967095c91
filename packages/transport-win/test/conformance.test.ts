/**
 * The shared conformance suite over Windows named pipes: client and server in separate Windows
 * processes where the suite crosses processes (its fixture runs with this same node.exe).
 * Windows only: CI runs it with the Windows node under Wine (tools/wine/run-ava.sh).
 */
import { runTransportConformance } from '@secure-ipc/transport-conformance';
import test from 'ava';
import { pipeTransport } from '../src/index.js';
import { uniqueName } from './helpers.js';

if (process.platform === 'win32') {
  runTransportConformance(test, {
    name: 'pipe',
    transport: pipeTransport(),
    address: () => `pipe://${uniqueName('conf')}`,
    child: { module: new URL('../src/index.js', import.meta.url).href, factory: 'pipeTransport' },
    // Under Wine 8.0 the cases run one at a time: concurrently, its wineserver segfaults (the 200
    // half-open handshakes beside a 16 MiB echo crashed it every time), which no Windows does.
    serial: true,
  });
} else {
  test.skip(`pipe conformance needs Windows (${process.platform}): run it with tools/wine/run-ava.sh`, (t) => {
    t.fail();
  });
}
