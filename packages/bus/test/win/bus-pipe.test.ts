/**
 * The bus suite over Windows named pipes: run by `npm test`'s second half with the Windows build
 * of Node under Wine (tools/wine/run-ava.sh), a broker process and peers on real pipes, SIDs from
 * the pipe's client token. Wine does not enforce DACLs (packages/transport-win/README.md); what
 * this suite checks is the bus, which is the same code over every transport.
 */
import { randomBytes } from 'node:crypto';
import test from 'ava';
import { busSuite } from '../suite.js';

const run = randomBytes(4).toString('hex');
let n = 0;
if (process.platform !== 'win32')
  test.skip('pipe: the bus suite (Windows only: it runs under Wine in npm test, ava.wine.config.mjs)', () => {});
else busSuite(test, { name: 'pipe', address: () => `pipe://sipc-bus-${run}-${++n}`, osIdentity: true });
