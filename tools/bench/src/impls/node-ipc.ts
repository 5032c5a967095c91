/**
 * Peer: node-ipc 9.2.1 (the last release before the protestware versions; pinned on purpose) over
 * a Unix socket, in its default JSON mode: each message is a `{ type, data }` JSON object ended by
 * a form feed. There is no encryption and no authentication: the row shows what a popular plain
 * IPC library costs, not a secure peer. Binary payloads travel as base64 strings, as JSON forces.
 */
import path from 'node:path';
import ipc from 'node-ipc';
import { type Impl, KIND_ECHO, makeMessage } from '../impl.js';
import { ReplyQueue } from '../reply-queue.js';
import { waitForDrain } from '../stream-util.js';

// Every node-ipc instance logs every message unless told not to; payloads must never reach a log.
function quietInstance(): any {
  const inst = new ipc.IPC();
  inst.config.silent = true;
  inst.config.stopRetrying = true;
  inst.config.maxConnections = 100_000;
  return inst;
}

export function nodeIpc(): Impl {
  return {
    id: 'node-ipc-unix',
    label: 'node-ipc 9.2.1, JSON (Unix socket)',
    baseline: 'raw-unix',
    security: 'NONE: no encryption, no authentication',
    packages: ['node-ipc'],
    secrets: async () => ({ server: {}, client: {} }),
    async serve(ctx) {
      const inst = quietInstance();
      const socketPath = path.join(ctx.dir, 'n.sock');
      await new Promise<void>((resolve) => {
        inst.serve(socketPath, () => {
          inst.server.on('m', (data: string, socket: unknown) => {
            const m = Buffer.from(data, 'base64');
            if (m[0] === KIND_ECHO) inst.server.emit(socket, 'r', m.toString('base64'));
          });
          resolve();
        });
        inst.server.start();
      });
      return {
        address: socketPath,
        close: async () => {
          inst.server.stop();
        },
      };
    },
    async connect(address) {
      const inst = quietInstance();
      const replies = new ReplyQueue();
      await new Promise<void>((resolve, reject) => {
        inst.connectTo('s', address, () => {
          inst.of.s.on('connect', () => resolve());
          inst.of.s.on('error', (e: Error) => reject(e));
        });
      });
      const client = inst.of.s;
      client.on('r', (data: string) => replies.deliver(Buffer.from(data, 'base64')));
      client.on('disconnect', () => replies.failAll(new Error('disconnected')));
      const request = (m: Buffer) => {
        const p = replies.expect();
        client.emit('m', m.toString('base64'));
        return p;
      };
      return {
        request,
        send: async (m) => {
          client.emit('m', m.toString('base64'));
          // node-ipc drops socket.write's return value; read the socket's own back-pressure flag.
          if (client.socket.writableNeedDrain) await waitForDrain(client.socket);
        },
        flush: async () => {
          await request(makeMessage(KIND_ECHO, 1));
        },
        close: async () => {
          inst.disconnect('s');
        },
      };
    },
  };
}
