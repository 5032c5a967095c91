import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTransportConformance } from '@secure-ipc/transport-conformance';
import test from 'ava';
import { unixTransport } from '../src/index.js';

const dir = mkdtempSync(join(tmpdir(), 'sipc-conf-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
runTransportConformance(test, {
  name: 'unix',
  transport: unixTransport(),
  address: () => `unix://${dir}/s${n++}.sock`,
  child: { module: new URL('../src/index.js', import.meta.url).href, factory: 'unixTransport' },
});
