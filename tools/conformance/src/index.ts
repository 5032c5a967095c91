/**
 * @secure-ipc/conformance (private): the conformance suite every secure-ipc transport runs.
 * `runTransportConformance(test, options)` registers all sub-suites with the caller's ava `test`;
 * each sub-suite is also exported on its own subpath (`@secure-ipc/conformance/basic`, `close`,
 * `large`, `stress`, `channel`, `hostile`) for a transport that needs only part of it.
 *
 * @example
 * ```ts
 * // packages/transport-tcp/test/conformance.test.ts
 * import { runTransportConformance } from '@secure-ipc/conformance';
 * import test from 'ava';
 * import { tcpTransport } from '../src/index.js';
 *
 * runTransportConformance(test, {
 *   name: 'tcp',
 *   transport: tcpTransport(),
 *   address: () => 'tcp://127.0.0.1:0',
 *   child: { module: new URL('../src/index.js', import.meta.url).href, factory: 'tcpTransport' },
 * });
 * ```
 *
 * @packageDocumentation
 */
import { basicSuite } from './basic.js';
import { channelSuite } from './channel.js';
import { closeSuite } from './close.js';
import { hostileSuite } from './hostile.js';
import { largeSuite } from './large.js';
import type { ConformanceOptions, Test } from './options.js';
import { stressSuite } from './stress.js';

export { basicSuite } from './basic.js';
export { channelSuite } from './channel.js';
export { closeSuite } from './close.js';
export { hostileSuite } from './hostile.js';
export { largeSuite } from './large.js';
export type { ChildTransportSpec, ConformanceOptions, Test } from './options.js';
export { stressSuite } from './stress.js';

/** Register every conformance case for one transport. */
export function runTransportConformance(test: Test, options: ConformanceOptions): void {
  basicSuite(test, options);
  closeSuite(test, options);
  largeSuite(test, options);
  stressSuite(test, options);
  channelSuite(test, options);
  hostileSuite(test, options);
}
