/** The bus suite over Unix sockets (a broker process, peers here; uids from SO_PEERCRED). */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { busSuite } from './suite.js';

const dir = mkdtempSync(join(tmpdir(), 'sipc-bus-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
if (process.platform === 'win32')
  test.skip('unix: the bus suite (skipped on Windows: no Unix socket transport there; win/bus-pipe runs it)', () => {});
else
  busSuite(test, {
    name: 'unix',
    address: () => `unix://${join(dir, `b${++n}.sock`)}`,
    osIdentity: process.platform === 'linux' || process.platform === 'darwin',
  });
