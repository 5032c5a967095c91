import { memoryTransport } from '@secure-ipc/core/transport';
import test from 'ava';
import { runTransportConformance } from '../src/index.js';

// The in-memory transport lives in one process: the suite runs every cross-process case as an
// explicit skip that says so, and its errors carry no OS cause.
let n = 0;
runTransportConformance(test, {
  name: 'memory',
  transport: memoryTransport(),
  address: () => `memory://conformance-${process.pid}-${n++}`,
  osErrors: false,
});
