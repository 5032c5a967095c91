/** What a transport's test file tells the conformance suite. */
import type { Transport } from '@secure-ipc/core';
import type { TestFn } from 'ava';

/** ava's `test`, passed in by the caller (ava has no global `describe`). */
export type Test = TestFn;

/** How a child process builds the same transport (so client and server can be separate processes). */
export interface ChildTransportSpec {
  /** Module to import in the child, as a `file:` URL or a package name resolvable from this package. */
  readonly module: string;
  /** Name of the factory exported by `module`, e.g. `unixTransport`. */
  readonly factory: string;
  /** JSON-serialisable options passed to the factory. */
  readonly options?: unknown;
  /** Node executable for the child (default `process.execPath`; transport-win passes Wine's). */
  readonly execPath?: string;
  /** Arguments placed before the fixture script (e.g. the Windows node.exe run through `wine`). */
  readonly execArgv?: readonly string[];
  /** Extra environment for the child. */
  readonly env?: Readonly<Record<string, string>>;
}

/** Options of `runTransportConformance` and of every sub-suite. */
export interface ConformanceOptions {
  /** Prefix of every test title, e.g. `unix`. */
  readonly name: string;
  /** The transport under test, used in this process. */
  readonly transport: Transport;
  /** A fresh address per call, nobody listening on it yet (tcp: `tcp://127.0.0.1:0` is fine). */
  readonly address: () => string;
  /**
   * An address where nothing listens, for "connect to nothing" (default: `address()`; tcp needs a
   * concrete closed port, since port 0 cannot be connected to).
   */
  readonly unusedAddress?: () => string | Promise<string>;
  /** How to build the transport in a child process; without it, cross-process cases are skipped (and say so). */
  readonly child?: ChildTransportSpec | undefined;
  /** True when connect errors carry an OS error as `cause` (false for the in-memory transport). */
  readonly osErrors?: boolean;
  /**
   * Run every case one after the other (ava `test.serial`) instead of a file's cases concurrently.
   * For an environment that cannot take the suite's concurrent load: Wine 8.0's wineserver
   * segfaults when the 200 half-open handshakes run beside a 16 MiB echo over named pipes.
   */
  readonly serial?: boolean;
}
