/**
 * Peer: @hyperswarm/secret-stream (Noise XX over ed25519 keys, then libsodium secretstream) over a
 * Unix socket. secret-stream keeps message boundaries (it frames every write), so one write is
 * one message. It has no trust policy of its own: both sides here check the remote static key
 * against the one expected, as secure-ipc does, so the row does the same authentication work.
 */
import SecretStream from '@hyperswarm/secret-stream';
import { type Impl, KIND_ECHO, makeMessage } from '../impl.js';
import { connectNet, listenNet } from '../net-endpoint.js';
import { ReplyQueue } from '../reply-queue.js';
import { waitForDrain } from '../stream-util.js';

interface Keys {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

const keyPair = (k: Keys) => ({ publicKey: Buffer.from(k.publicKey), secretKey: Buffer.from(k.secretKey) });

export function secretStream(): Impl {
  return {
    id: 'secret-stream-unix',
    label: '@hyperswarm/secret-stream (Unix socket)',
    baseline: 'raw-unix',
    security: 'Noise XX (ed25519), secretstream; remote keys checked',
    packages: ['@hyperswarm/secret-stream'],
    async secrets() {
      const s = SecretStream.keyPair();
      const c = SecretStream.keyPair();
      return {
        server: { keys: s, peer: c.publicKey },
        client: { keys: c, peer: s.publicKey },
      };
    },
    async serve(ctx) {
      const own = keyPair(ctx.secrets.keys as Keys);
      const allowed = Buffer.from(ctx.secrets.peer as Uint8Array);
      return listenNet('unix', ctx.dir, (socket) => {
        const s = new SecretStream(false, socket, { keyPair: own });
        let trusted = false;
        s.on('connect', () => {
          trusted = s.remotePublicKey !== null && allowed.equals(s.remotePublicKey);
          if (!trusted) s.destroy();
        });
        s.on('data', (m: Buffer) => {
          if (trusted && m[0] === KIND_ECHO) s.write(m);
        });
        s.on('error', () => s.destroy());
      });
    },
    async connect(address, secrets) {
      const own = keyPair(secrets.keys as Keys);
      const expected = Buffer.from(secrets.peer as Uint8Array);
      const socket = await connectNet('unix', address);
      const s = new SecretStream(true, socket, { keyPair: own });
      const replies = new ReplyQueue();
      s.on('error', (e: Error) => replies.failAll(e));
      s.on('close', () => replies.failAll(new Error('connection closed')));
      await new Promise<void>((resolve, reject) => {
        s.once('connect', () => {
          if (s.remotePublicKey !== null && expected.equals(s.remotePublicKey)) resolve();
          else reject(new Error('secret-stream: unexpected server key'));
        });
        s.once('error', reject);
      });
      s.on('data', (m: Buffer) => replies.deliver(m));
      const flushMessage = makeMessage(KIND_ECHO, 1);
      const request = (m: Buffer) => {
        const p = replies.expect();
        s.write(m);
        return p;
      };
      return {
        request,
        send: async (m) => {
          if (!s.write(m)) await waitForDrain(s);
        },
        flush: async () => {
          await request(flushMessage);
        },
        close: async () => {
          s.destroy();
        },
      };
    },
  };
}
