/**
 * @secure-ipc/transport-conformance: the conformance suite every secure-ipc transport runs, ours
 * and third parties' alike. `runTransportConformance(test, options)` registers all sub-suites with
 * the caller's ava `test`; each sub-suite is also exported on its own subpath
 * (`@secure-ipc/transport-conformance/basic`, `close`, `large`, `stress`, `channel`, `hostile`,
 * `abuse`, `rpc-streams`)
 * for a transport that needs only part of it. It uses only `@secure-ipc/core`'s public API.
 * The handshake flood (`@secure-ipc/transport-conformance/flood`, `handshakeFloodSuite`) is not
 * registered by `runTransportConformance`: it needs root and a transport that fills
 * `PeerInfo.osIdentity` (see the README).
 *
 * @example
 * ```ts
 * // test/conformance.test.ts of a transport package, run by ava
 * import { runTransportConformance } from '@secure-ipc/transport-conformance';
 * import { unixTransport } from '@secure-ipc/transport-unix';
 * import test from 'ava';
 *
 * let n = 0;
 * runTransportConformance(test, {
 *   name: 'unix',
 *   transport: unixTransport(),
 *   address: () => `local://conformance-${process.pid}-${n++}`,
 *   child: { module: '@secure-ipc/transport-unix', factory: 'unixTransport' },
 * });
 * ```
 *
 * @packageDocumentation
 */
import { abuseSuite } from './abuse.js';
import { basicSuite } from './basic.js';
import { channelSuite } from './channel.js';
import { closeSuite } from './close.js';
import { hostileSuite } from './hostile.js';
import { largeSuite } from './large.js';
import type { ConformanceOptions, Test } from './options.js';
import { rpcStreamsSuite } from './rpc-streams.js';
import { stressSuite } from './stress.js';

export { abuseSuite } from './abuse.js';
export { basicSuite } from './basic.js';
export { channelSuite } from './channel.js';
export { closeSuite } from './close.js';
export { hostileSuite } from './hostile.js';
export { largeSuite } from './large.js';
export type { ChildTransportSpec, ConformanceOptions, Test } from './options.js';
export { rpcStreamsSuite } from './rpc-streams.js';
export { stressSuite } from './stress.js';

/** Register every conformance case for one transport. */
export function runTransportConformance(suiteTest: Test, options: ConformanceOptions): void {
  const test = options.serial === true ? serialOnly(suiteTest) : suiteTest;
  basicSuite(test, options);
  closeSuite(test, options);
  largeSuite(test, options);
  stressSuite(test, options);
  channelSuite(test, options);
  hostileSuite(test, options);
  abuseSuite(test, options);
  rpcStreamsSuite(test, options);
}

/**
 * `test` whose cases all run serially: `test(...)` is `test.serial(...)`. `test.skip` maps to
 * `test.serial.skip` only so that the suite's own skips (a cross-process case without `child`, an
 * abuse row that cannot run here: each states its reason in its title) keep their meaning.
 */
function serialOnly(test: Test): Test {
  const serial = test.serial;
  const run = (...args: Parameters<typeof serial>) => serial(...args);
  return Object.assign(run, test, {
    serial,
    skip: serial.skip,
    only: serial.only,
    failing: serial.failing,
  }) as unknown as Test;
}
