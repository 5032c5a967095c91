/** Large sub-suite: 1 byte, 64 KiB and 16 MiB round trips, intact. */
import { digest, echo, random } from './bytes.js';
import { connect, echoServer } from './harness.js';
import type { ConformanceOptions, Test } from './options.js';

const SIZES: ReadonlyArray<[string, number]> = [
  ['1 byte', 1],
  ['64 KiB', 64 * 1024],
  ['16 MiB', 16 * 1024 * 1024],
];

/** Register the large-transfer cases. */
export function largeSuite(test: Test, o: ConformanceOptions): void {
  for (const [label, size] of SIZES) {
    test(`${o.name}: ${label} goes through an echo server and back intact`, async (t) => {
      t.timeout(60_000);
      const address = await echoServer(t, o);
      const conn = await connect(t, o.transport, address);
      const data = random(size);
      const back = await echo(conn, data);
      t.is(back.length, size);
      t.is(digest(back), digest(data));
    });
  }
}
