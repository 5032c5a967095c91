// Shared test fixtures (not a test file: ava only runs *.test.js).
import { once } from 'node:events';
import { createServer, type Socket, connect as tcpConnect } from 'node:net';
import type { ExecutionContext } from 'ava';
import type {
  ChannelOptions,
  EstablishOptions as HandshakeOptions,
  SecureChannel,
} from '../src/channel/options.js';
import { establish, type SecureChannelImpl } from '../src/channel/secure-channel.js';
import type { SecureIpcError } from '../src/errors.js';
import { FrameDecoder } from '../src/framing.js';
import { generateKeyPair, type KeyPair } from '../src/keys/key-pair.js';
import type { Connection } from '../src/transport/contract.js';
import { memoryPair } from '../src/transport/memory-transport.js';

export type Kind = 'memory' | 'tcp';

/** A node:net socket wrapped as a Connection (core has no OS transport of its own). */
export function asConnection(socket: Socket): Connection {
  return Object.assign(socket, { peer: { transport: 'test' } }) as Connection;
}

/** Two connected Connections over the chosen medium; everything is torn down with the test. */
export async function connectionPair(t: ExecutionContext, kind: Kind): Promise<[Connection, Connection]> {
  if (kind === 'memory') {
    const [a, b] = memoryPair();
    t.teardown(() => {
      a.destroy();
      b.destroy();
    });
    return [a, b];
  }
  const [client, serverSide] = await tcpSocketPair(t);
  return [asConnection(client), asConnection(serverSide)];
}

/** Two ends of a real loopback TCP connection (kernel buffers, real pause()), torn down with the test. */
export async function tcpSocketPair(t: ExecutionContext): Promise<[Socket, Socket]> {
  const server = createServer();
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  const accepted = once(server, 'connection') as Promise<[Socket]>;
  const client = tcpConnect(port, '127.0.0.1');
  await once(client, 'connect');
  const [serverSide] = await accepted;
  server.close();
  t.teardown(() => {
    client.destroy();
    serverSide.destroy();
  });
  return [client, serverSide];
}

/** Key pairs that trust each other. */
export function trustedKeys(): { client: KeyPair; server: KeyPair } {
  return { client: generateKeyPair(), server: generateKeyPair() };
}

type Extra = Partial<HandshakeOptions>;

/** Handshake both ends over the given connections. */
export async function handshake(
  a: Connection,
  b: Connection,
  keys = trustedKeys(),
  clientExtra: Extra = {},
  serverExtra: Extra = {},
): Promise<[SecureChannelImpl, SecureChannelImpl]> {
  const clientOptions: HandshakeOptions = {
    keyPair: keys.client,
    trust: { keys: [keys.server.publicKey] },
    initiator: true,
    ...clientExtra,
  };
  const serverOptions: HandshakeOptions = {
    keyPair: keys.server,
    trust: { keys: [keys.client.publicKey] },
    initiator: false,
    ...serverExtra,
  };
  return Promise.all([establish(a, clientOptions), establish(b, serverOptions)]);
}

/** A connected, handshaken channel pair; closed with the test. */
export async function channelPair(
  t: ExecutionContext,
  kind: Kind = 'memory',
  clientExtra: Extra = {},
  serverExtra: Extra = {},
): Promise<[SecureChannelImpl, SecureChannelImpl]> {
  const [a, b] = await connectionPair(t, kind);
  const pair = await handshake(a, b, trustedKeys(), clientExtra, serverExtra);
  t.teardown(() => {
    pair[0].close(new Error('test over')).catch(() => {});
    pair[1].close(new Error('test over')).catch(() => {});
  });
  return pair;
}

/** Resolves with the next `count` messages. */
export function messages(channel: SecureChannel, count: number): Promise<Uint8Array[]> {
  return new Promise((resolve) => {
    const got: Uint8Array[] = [];
    const on = (m: Uint8Array) => {
      got.push(m);
      if (got.length === count) {
        channel.off('message', on);
        resolve(got);
      }
    };
    channel.on('message', on);
  });
}

/** Resolves with the channel's close error (undefined for graceful). */
export function closed(channel: SecureChannel): Promise<SecureIpcError | undefined> {
  return new Promise((resolve) => channel.once('close', resolve));
}

/** Options for a side, with sensible test defaults. */
export function sideOptions(
  keyPair: KeyPair,
  peerKey: Uint8Array,
  extra: Partial<ChannelOptions> = {},
): ChannelOptions {
  return { keyPair, trust: { keys: [peerKey] }, ...extra };
}

/** What a man in the middle does with one frame: forward it (return it), change it, or drop it (undefined). */
export type FrameHook = (frame: Buffer, index: number) => Buffer | Buffer[] | undefined;

/**
 * A relay between a client end and a server end that parses frames in both directions and lets
 * the test rewrite them; `wire` records every byte that crossed (copies, taken before delivery).
 */
export function mitm(
  t: ExecutionContext,
  hooks: { toServer?: FrameHook; toClient?: FrameHook } = {},
): { client: Connection; server: Connection; wire: Buffer[]; toServer: Connection; toClient: Connection } {
  const [client, relayA] = memoryPair();
  const [relayB, server] = memoryPair();
  const wire: Buffer[] = [];
  const pipe = (from: Connection, to: Connection, hook: FrameHook | undefined) => {
    const decoder = new FrameDecoder(65_535);
    let index = 0;
    from.on('data', (chunk: Buffer) => {
      decoder.push(Buffer.from(chunk));
      for (let f = decoder.next(); f !== undefined; f = decoder.next()) {
        const result = hook ? hook(Buffer.from(f), index++) : Buffer.from(f);
        const out = result === undefined ? [] : Array.isArray(result) ? result : [result];
        for (const body of out) {
          const framed = Buffer.alloc(2 + body.length);
          framed.writeUInt16BE(body.length, 0);
          body.copy(framed, 2);
          wire.push(Buffer.from(framed));
          if (!to.destroyed) to.write(framed);
        }
      }
    });
    from.on('end', () => to.end());
    from.on('close', () => to.destroy());
    from.on('error', () => {});
  };
  pipe(relayA, relayB, hooks.toServer);
  pipe(relayB, relayA, hooks.toClient);
  t.teardown(() => {
    for (const c of [client, relayA, relayB, server]) c.destroy();
  });
  // toServer/toClient write raw bytes straight to one end (injection of malformed frames).
  return { client, server, wire, toServer: relayB, toClient: relayA };
}

/** Deterministic, non-repeating bytes (so a misplaced chunk cannot look right). */
export function pattern(size: number, seed = 1): Buffer {
  const out = Buffer.allocUnsafe(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/**
 * An endless input for a streamed call: yields `item(i)` for i = 0, 1, ...; `state.returned` is
 * set once whoever iterates it stopped it (its `return()`, which runs the generator's finally).
 */
export function endless<T>(item: (i: number) => T): {
  source: AsyncGenerator<T>;
  state: { pulled: number; returned: boolean };
} {
  const state = { pulled: 0, returned: false };
  const source = (async function* () {
    try {
      for (;;) yield item(state.pulled++);
    } finally {
      state.returned = true;
    }
  })();
  return { source, state };
}

/** Everything one raw end receives until the connection ends or closes. */
export function collect(conn: Connection): Promise<Buffer> {
  const chunks: Buffer[] = [];
  conn.on('data', (c: Buffer) => chunks.push(Buffer.from(c)));
  conn.on('error', () => {});
  return new Promise((resolve) => {
    const done = () => resolve(Buffer.concat(chunks));
    conn.once('end', done);
    conn.once('close', done);
  });
}
