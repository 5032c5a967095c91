/**
 * The hostile side of the handshake flood (flood.ts), run as another OS user:
 * `node flood-child.js '<json FloodChildSpec>'`. It holds `count` connections open to the
 * address, each of one kind, and reopens each one the server closes after `reconnectDelayMs`
 * (jittered), so the flood lasts as long as the test:
 * - `idle`: connects and sends nothing;
 * - `drip`: a frame header announcing a 44-byte message 1, then one byte every 200 ms (message 1
 *   is never complete within its 1 s deadline);
 * - `stalled`: a complete, valid message 1 (a random ephemeral key and `{ versions: [1] }`), then
 *   nothing: it waits for message 3 until the whole-handshake deadline.
 * Prints `ready <open>` once every connection was opened the first time; on a `stats` line on
 * stdin, `stats <opened> <closed> <open>`; exits when stdin ends.
 */
import { randomBytes } from 'node:crypto';
import { createInterface } from 'node:readline';
import type { Connection, Transport } from '@secure-ipc/core';
import type { ChildTransportSpec } from './options.js';

/** What a hostile connection does. */
export type FloodKind = 'idle' | 'drip' | 'stalled';

/** The JSON argument of the flood child. */
export interface FloodChildSpec {
  readonly transport: Pick<ChildTransportSpec, 'module' | 'factory' | 'options'>;
  readonly address: string;
  readonly count: number;
  readonly kinds: readonly FloodKind[];
  readonly reconnectDelayMs: number;
}

// `{ "versions": [1] }` (protocol.md 3.3), after the 32-byte ephemeral key.
const VERSIONS_PAYLOAD = Buffer.from('81a876657273696f6e739101', 'hex');
const MESSAGE1_LENGTH = 32 + VERSIONS_PAYLOAD.length;

function message1(): Buffer {
  const frame = Buffer.alloc(2 + MESSAGE1_LENGTH);
  frame.writeUInt16BE(MESSAGE1_LENGTH, 0);
  randomBytes(32).copy(frame, 2);
  VERSIONS_PAYLOAD.copy(frame, 34);
  return frame;
}

async function main(): Promise<void> {
  const spec = JSON.parse(process.argv[2] ?? '') as FloodChildSpec;
  const mod = (await import(spec.transport.module)) as Record<string, (options: unknown) => Transport>;
  const transport = mod[spec.transport.factory]!(spec.transport.options ?? {});
  let opened = 0;
  let closed = 0;
  let open = 0;
  let stopping = false;

  const hold = async (kind: FloodKind): Promise<void> => {
    let conn: Connection;
    try {
      conn = await transport.connect(spec.address);
    } catch {
      if (!stopping) setTimeout(() => void hold(kind), spec.reconnectDelayMs);
      return;
    }
    opened++;
    open++;
    conn.on('error', () => {});
    conn.on('data', () => {});
    let timer: NodeJS.Timeout | undefined;
    if (kind === 'stalled') conn.write(message1());
    if (kind === 'drip') {
      const bytes = message1();
      let at = 0;
      // The header, then one byte at a time (the rest of a message 1 that never completes in time).
      conn.write(bytes.subarray(0, 2));
      at = 2;
      timer = setInterval(() => {
        if (at < bytes.length && !conn.destroyed) conn.write(bytes.subarray(at, ++at));
      }, 200);
    }
    conn.once('close', () => {
      clearInterval(timer);
      closed++;
      open--;
      const delay = spec.reconnectDelayMs * (0.5 + Math.random());
      if (!stopping) setTimeout(() => void hold(kind), delay);
    });
  };

  const first: Promise<void>[] = [];
  for (let i = 0; i < spec.count; i++) first.push(hold(spec.kinds[i % spec.kinds.length]!));
  await Promise.all(first);
  process.stdout.write(`ready ${open}\n`);
  const lines = createInterface({ input: process.stdin });
  lines.on('line', (line) => {
    if (line === 'stats') process.stdout.write(`stats ${opened} ${closed} ${open}\n`);
  });
  lines.on('close', () => {
    stopping = true;
    process.exit(0);
  });
}

main().catch((err: unknown) => {
  process.stdout.write(`failed ${(err as Error).message}\n`);
  process.exit(1);
});
