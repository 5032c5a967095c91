/**
 * Baselines: Node `net` with no crypto, no handshake, no envelope. `raw-unix` / `raw-tcp` frame
 * each message behind a plain 4-byte length (the physical limit: every secure row is divided by
 * the one over the same socket kind); `raw-v1-unix` / `raw-v1-tcp` use secure-ipc's v1 frame
 * layout instead (2-byte frames, flag byte, chunks), an extra row (raw-framing.ts).
 */
import { type Impl, KIND_ECHO, makeMessage } from '../impl.js';
import { connectNet, listenNet, type NetKind } from '../net-endpoint.js';
import { FrameReader, PrefixReader, writeFramedMessage, writePrefixedMessage } from '../raw-framing.js';
import { ReplyQueue } from '../reply-queue.js';
import { SealedReader, SealState, writeSealed } from '../sealed-framing.js';
import { waitForDrain } from '../stream-util.js';

/** How a raw row frames its messages (raw-framing.ts). */
export type RawFraming = 'prefix' | 'v1';

const FRAMINGS = {
  prefix: { Reader: PrefixReader, write: writePrefixedMessage, id: '', label: '4-byte length prefix' },
  v1: { Reader: FrameReader, write: writeFramedMessage, id: '-v1', label: 'v1 frames' },
} as const;

export function rawNet(kind: NetKind, framing: RawFraming = 'prefix'): Impl {
  const { Reader, write: writeMessage, id, label } = FRAMINGS[framing];
  return {
    id: `raw${id}-${kind}`,
    label: `raw net (${kind === 'unix' ? 'Unix socket' : 'TCP loopback'}), ${label}, no crypto`,
    baseline: `raw-${kind}`,
    security: 'none (baseline)',
    packages: [],
    secrets: async () => ({ server: {}, client: {} }),
    async serve(ctx) {
      return listenNet(kind, ctx.dir, (socket) => {
        const reader = new Reader((m) => {
          if (m[0] === KIND_ECHO) writeMessage(socket, m);
        });
        socket.on('data', (d: Buffer) => reader.push(d));
        socket.on('error', () => socket.destroy());
      });
    },
    async connect(address) {
      const socket = await connectNet(kind, address);
      const replies = new ReplyQueue();
      const reader = new Reader((m) => replies.deliver(m));
      socket.on('data', (d: Buffer) => reader.push(d));
      socket.on('error', (e) => replies.failAll(e));
      socket.on('close', () => replies.failAll(new Error('connection closed')));
      const flushMessage = makeMessage(KIND_ECHO, 1);
      const request = (m: Buffer) => {
        const p = replies.expect();
        writeMessage(socket, m);
        return p;
      };
      return {
        request,
        send: async (m) => {
          if (!writeMessage(socket, m)) await waitForDrain(socket);
        },
        flush: async () => {
          await request(flushMessage);
        },
        close: async () => {
          socket.destroy();
        },
      };
    },
  };
}

/**
 * The framing prototype (sealed-framing.ts) over a Unix socket: every message one AEAD record.
 * No handshake: a fresh random key per direction is handed to both processes in memory, so only
 * the data path is measured (round trips, pipelining, bulk); its connect and RSS columns are a
 * bare socket's and say nothing about a protocol. Not a default row.
 */
export function sealedNet(kind: NetKind): Impl {
  return {
    id: `sealed-${kind}`,
    label: `framing prototype (${kind === 'unix' ? 'Unix socket' : 'TCP loopback'}): one ChaCha20-Poly1305 record per message, no handshake`,
    baseline: `raw-${kind}`,
    security: 'ChaChaPoly records with pre-shared keys (data path only, no handshake)',
    packages: ['sodium-native'],
    async secrets() {
      const up = randomKey();
      const down = randomKey();
      return { server: { rx: up, tx: down }, client: { rx: down, tx: up } };
    },
    async serve(ctx) {
      const { rx, tx } = ctx.secrets as { rx: Uint8Array; tx: Uint8Array };
      return listenNet(kind, ctx.dir, (socket) => {
        const out = new SealState(Buffer.from(tx));
        const reader = new SealedReader(new SealState(Buffer.from(rx)), (m) => {
          if (m[0] === KIND_ECHO) writeSealed(socket, out, m);
        });
        socket.on('data', (d: Buffer) => {
          try {
            reader.push(d);
          } catch {
            socket.destroy();
          }
        });
        socket.on('error', () => socket.destroy());
      });
    },
    async connect(address, secrets) {
      const { rx, tx } = secrets as { rx: Uint8Array; tx: Uint8Array };
      const socket = await connectNet(kind, address);
      const out = new SealState(Buffer.from(tx));
      const replies = new ReplyQueue();
      const reader = new SealedReader(new SealState(Buffer.from(rx)), (m) => replies.deliver(m));
      socket.on('data', (d: Buffer) => {
        try {
          reader.push(d);
        } catch (e) {
          replies.failAll(e as Error);
          socket.destroy();
        }
      });
      socket.on('error', (e) => replies.failAll(e));
      socket.on('close', () => replies.failAll(new Error('connection closed')));
      const flushMessage = makeMessage(KIND_ECHO, 1);
      const request = (m: Buffer) => {
        const p = replies.expect();
        writeSealed(socket, out, m);
        return p;
      };
      return {
        request,
        send: async (m) => {
          if (!writeSealed(socket, out, m)) await waitForDrain(socket);
        },
        flush: async () => {
          await request(flushMessage);
        },
        close: async () => {
          socket.destroy();
        },
      };
    },
  };
}

function randomKey(): Uint8Array {
  const key = new Uint8Array(32);
  crypto.getRandomValues(key);
  return key;
}
