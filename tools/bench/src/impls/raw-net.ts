/**
 * Baseline: Node `net` with secure-ipc's framing (raw-framing.ts) and no crypto, no handshake, no
 * envelope. Every secure-ipc row is divided by the raw row over the same socket kind.
 */
import { type Impl, KIND_ECHO, makeMessage } from '../impl.js';
import { connectNet, listenNet, type NetKind } from '../net-endpoint.js';
import { FrameReader, writeFramedMessage } from '../raw-framing.js';
import { ReplyQueue } from '../reply-queue.js';
import { waitForDrain } from '../stream-util.js';

export function rawNet(kind: NetKind): Impl {
  return {
    id: `raw-${kind}`,
    label: `raw net (${kind === 'unix' ? 'Unix socket' : 'TCP loopback'}), no crypto`,
    baseline: `raw-${kind}`,
    security: 'none (baseline)',
    packages: [],
    secrets: async () => ({ server: {}, client: {} }),
    async serve(ctx) {
      return listenNet(kind, ctx.dir, (socket) => {
        const reader = new FrameReader((m) => {
          if (m[0] === KIND_ECHO) writeFramedMessage(socket, m);
        });
        socket.on('data', (d: Buffer) => reader.push(d));
        socket.on('error', () => socket.destroy());
      });
    },
    async connect(address) {
      const socket = await connectNet(kind, address);
      const replies = new ReplyQueue();
      const reader = new FrameReader((m) => replies.deliver(m));
      socket.on('data', (d: Buffer) => reader.push(d));
      socket.on('error', (e) => replies.failAll(e));
      socket.on('close', () => replies.failAll(new Error('connection closed')));
      const flushMessage = makeMessage(KIND_ECHO, 1);
      const request = (m: Buffer) => {
        const p = replies.expect();
        writeFramedMessage(socket, m);
        return p;
      };
      return {
        request,
        send: async (m) => {
          if (!writeFramedMessage(socket, m)) await waitForDrain(socket);
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
