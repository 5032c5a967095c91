/**
 * The child-process side of the conformance suite. Run as
 * `node fixture.js '<json FixtureSpec>'`; it builds the transport from the spec, plays one role,
 * prints `ready <address>` on stdout once it is listening or connected, and exits when stdin
 * closes (so it never outlives the test process) or on SIGTERM.
 *
 * Secret keys arrive in the environment (`SIPC_FIXTURE_SECRET_KEY`), never on the command line.
 */
import type { Connection, Listener, Transport } from '@secure-ipc/core';
import type { AbuseServerArgs } from './abuse-server.js';
import type { SecureFixtureArgs } from './fixture-channel.js';
import type { ChildTransportSpec } from './options.js';

/** The roles a fixture process can play. */
export type FixtureRole =
  | 'echo-server'
  | 'stream-server'
  | 'stream-client'
  | 'channel-echo-server'
  | 'rpc-server'
  | 'abuse-server';

/** The JSON argument of the fixture process. */
export interface FixtureSpec {
  /** How to build the transport. */
  readonly transport: Pick<ChildTransportSpec, 'module' | 'factory' | 'options'>;
  /** What to do. */
  readonly role: FixtureRole;
  /** Where to listen or connect. */
  readonly address: string;
  /** Role-specific settings (channel options as JSON). */
  readonly extra?: Record<string, unknown>;
}

const CHUNK = Buffer.alloc(16 * 1024, 0x5a);

/** Write forever, honouring backpressure, until the connection goes away. */
async function stream(conn: Connection): Promise<void> {
  conn.on('error', () => {});
  while (!conn.destroyed && !conn.writableEnded) {
    if (!conn.write(CHUNK)) {
      // Remove both listeners whichever fires, or each wait would leave a 'close' listener behind.
      await new Promise<void>((resolve) => {
        const done = () => {
          conn.off('drain', done);
          conn.off('close', done);
          resolve();
        };
        conn.once('drain', done);
        conn.once('close', done);
      });
    }
  }
}

async function serve(listener: Listener, role: FixtureRole, extra: Record<string, unknown>): Promise<void> {
  if (role === 'abuse-server') {
    const { serveAbuse } = await import('./abuse-server.js');
    serveAbuse(listener, extra as unknown as AbuseServerArgs).attachToStdio();
    return;
  }
  if (role === 'channel-echo-server' || role === 'rpc-server') {
    // Loaded only for these roles, so the byte-level fixture never touches the crypto stack.
    const { serveSecure } = await import('./fixture-channel.js');
    serveSecure(listener, role, extra as unknown as SecureFixtureArgs);
    return;
  }
  listener.on('connection', (conn) => {
    conn.on('error', () => {});
    if (role === 'echo-server') conn.pipe(conn);
    else void stream(conn);
  });
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as FixtureSpec;
  const mod = (await import(spec.transport.module)) as Record<string, (options: unknown) => Transport>;
  const transport = mod[spec.transport.factory]!(spec.transport.options ?? {});
  let stop: () => Promise<void>;
  if (spec.role === 'stream-client') {
    const conn = await transport.connect(spec.address);
    stop = async () => void conn.destroy();
    process.stdout.write(`ready ${spec.address}\n`);
    void stream(conn);
  } else {
    const listener = await transport.listen(spec.address);
    stop = () => listener.close();
    await serve(listener, spec.role, spec.extra ?? {});
    process.stdout.write(`ready ${listener.address}\n`);
  }
  const exit = () => void stop().finally(() => process.exit(0));
  process.stdin.on('end', exit).on('close', exit).resume();
  process.on('SIGTERM', exit);
}

main().catch((err: unknown) => {
  process.stdout.write(`failed ${(err as { code?: string }).code ?? 'ERROR'} ${(err as Error).message}\n`);
  process.exit(1);
});
