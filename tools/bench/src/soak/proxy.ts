/**
 * The fault-injecting proxy: a Unix-socket listener that forwards every connection to the
 * server's socket and, per connection, from a seeded random source: delays chunks, splits them
 * into small pieces written one by one (partial writes), and resets connections (destroys both
 * sides mid-stream). It counts what it injected.
 *
 * Resets are injected only once a connection has carried `graceBytes` from the server (past the
 * handshake and the server's acceptance): a hang-up between the client's last handshake message
 * and the acceptance is, by design (docs/resilience.md, "Terminal and transient failures"), how a
 * server refuses an untrusted client, so a reconnecting client must treat it as terminal; the
 * soak tests what happens to established channels. A connection whose server is down (killed,
 * not yet restarted) is closed at once: the client sees its handshake cut.
 */
import net from 'node:net';

/** Options of the proxy. */
export interface FaultProxyOptions {
  /** The socket path to listen on (removed first). */
  listenPath: string;
  /** The server's socket path. */
  targetPath: string;
  /** Seed of the fault choices. */
  seed: number;
  /** Probability that a chunk is delayed (0..1). */
  delayRate: number;
  /** Longest delay, ms. */
  maxDelayMs: number;
  /** Probability that a chunk is written as small pieces (0..1). */
  splitRate: number;
  /** Probability, per forwarded chunk past `graceBytes`, that the connection is reset (0..1). */
  resetRate: number;
  /** Server bytes a connection carries before it may be reset. */
  graceBytes: number;
}

/** What the proxy injected so far. */
export interface FaultCounts {
  connections: number;
  /** Connections closed because the server was not reachable. */
  upstreamDown: number;
  delays: number;
  partialWrites: number;
  resets: number;
}

/** A running proxy. */
export interface FaultProxy {
  readonly counts: Readonly<FaultCounts>;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

/** mulberry32: a small seeded PRNG, enough to make the fault pattern repeatable per seed. */
export function seededUniform(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Start the proxy; resolves once it listens. */
export async function startFaultProxy(options: FaultProxyOptions): Promise<FaultProxy> {
  const counts: FaultCounts = { connections: 0, upstreamDown: 0, delays: 0, partialWrites: 0, resets: 0 };
  const random = seededUniform(options.seed);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((down) => {
    counts.connections++;
    const up = net.connect(options.targetPath);
    for (const s of [down, up]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    let ended = false;
    const reset = () => {
      if (ended) return;
      ended = true;
      down.destroy();
      up.destroy();
    };
    let connected = false;
    up.once('connect', () => {
      connected = true;
    });
    up.on('error', () => {
      if (!connected && !ended) counts.upstreamDown++;
      reset();
    });
    down.on('error', reset);
    down.on('close', reset);
    up.on('close', reset);
    let fromServer = 0;
    const pump = (from: net.Socket, to: net.Socket, server: boolean) => {
      let tail: Promise<void> = Promise.resolve();
      from.on('data', (chunk: Buffer) => {
        if (server) fromServer += chunk.length;
        if (fromServer >= options.graceBytes && random() < options.resetRate) {
          counts.resets++;
          return reset();
        }
        const pieces = random() < options.splitRate ? split(chunk, random) : [chunk];
        if (pieces.length > 1) counts.partialWrites++;
        const delay = random() < options.delayRate ? Math.floor(random() * options.maxDelayMs) + 1 : 0;
        if (delay > 0) counts.delays++;
        tail = tail.then(() => forward(to, pieces, delay, () => ended));
      });
    };
    pump(down, up, false);
    pump(up, down, true);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.listenPath, () => resolve());
  });
  return {
    counts,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Cut a chunk into pieces of 1 to 64 bytes. */
function split(chunk: Buffer, random: () => number): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < chunk.length; ) {
    const n = Math.min(chunk.length - at, 1 + Math.floor(random() * 64));
    out.push(chunk.subarray(at, at + n));
    at += n;
  }
  return out;
}

/** Write the pieces in order, after `delayMs`, yielding to the event loop between pieces. */
async function forward(
  to: net.Socket,
  pieces: Buffer[],
  delayMs: number,
  ended: () => boolean,
): Promise<void> {
  if (delayMs > 0) await new Promise((r) => setTimeout(r, delayMs));
  for (const piece of pieces) {
    if (ended()) return;
    to.write(piece);
    if (pieces.length > 1) await new Promise((r) => setImmediate(r));
  }
}
