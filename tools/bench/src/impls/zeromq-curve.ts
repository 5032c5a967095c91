/**
 * Peer: zeromq DEALER (client) / ROUTER (server) with CURVE over ipc:// (a Unix socket).
 *
 * CURVE alone authenticates only the server; libzmq asks a ZAP handler about the client's key when
 * one is bound at inproc://zeromq.zap.01, so the server runs one that admits exactly the expected
 * client key. That gives the row mutual authentication like the others (the ZAP round trip is
 * in-process and part of zeromq's connect cost).
 *
 * zeromq.js allows one send and one receive in progress per socket, so the client chains its sends
 * and runs a single receive loop; replies come back in order on one DEALER.
 */
import path from 'node:path';
import { curveKeyPair, Dealer, Reply, Router } from 'zeromq';
import { type Impl, KIND_ECHO, makeMessage } from '../impl.js';
import { ReplyQueue } from '../reply-queue.js';

export function zeromqCurve(): Impl {
  return {
    id: 'zeromq-curve-ipc',
    label: 'zeromq DEALER/ROUTER + CURVE (ipc://)',
    baseline: 'raw-unix',
    security: 'CURVE (Curve25519, XSalsa20-Poly1305); client key checked by a ZAP handler',
    packages: ['zeromq'],
    async secrets() {
      const s = curveKeyPair();
      const c = curveKeyPair();
      return {
        server: { publicKey: s.publicKey, secretKey: s.secretKey, peer: c.publicKey },
        client: { publicKey: c.publicKey, secretKey: c.secretKey, peer: s.publicKey },
      };
    },
    async serve(ctx) {
      const allowed = ctx.secrets.peer as string;
      const zap = new Reply();
      await zap.bind('inproc://zeromq.zap.01');
      void (async () => {
        // ZAP request frames (RFC 27): version, request id, domain, address, identity, mechanism, credentials.
        for await (const frames of zap) {
          const [version, requestId, , , , mechanism, key] = frames;
          const ok = mechanism?.toString() === 'CURVE' && key !== undefined && z85(key) === allowed;
          await zap.send([version!, requestId!, ok ? '200' : '400', ok ? 'OK' : 'denied', '', '']);
        }
      })().catch(() => {});
      const router = new Router({
        curveServer: true,
        curvePublicKey: ctx.secrets.publicKey as string,
        curveSecretKey: ctx.secrets.secretKey as string,
        sendHighWaterMark: 0,
        receiveHighWaterMark: 0,
      });
      const address = `ipc://${path.join(ctx.dir, 'z.sock')}`;
      await router.bind(address);
      void (async () => {
        for await (const [identity, m] of router) {
          if (m !== undefined && m[0] === KIND_ECHO) await router.send([identity!, m]);
        }
      })().catch(() => {});
      return {
        address,
        close: async () => {
          router.close();
          zap.close();
        },
      };
    },
    async connect(address, secrets) {
      const dealer = new Dealer({
        curveServerKey: secrets.peer as string,
        curvePublicKey: secrets.publicKey as string,
        curveSecretKey: secrets.secretKey as string,
        linger: 0,
      });
      dealer.connect(address);
      const replies = new ReplyQueue();
      void (async () => {
        for await (const [m] of dealer) replies.deliver(m!);
      })().catch((e: Error) => replies.failAll(e));
      let chain: Promise<void> = Promise.resolve();
      const enqueue = (m: Buffer) => {
        chain = chain.then(() => dealer.send(m));
        return chain;
      };
      const request = (m: Buffer) => {
        const p = replies.expect();
        enqueue(m).catch((e: Error) => replies.failAll(e));
        return p;
      };
      // zeromq connects lazily: the CURVE handshake happens under the first message, so the
      // connect scenario's first request is what proves this connection is authenticated.
      return {
        request,
        send: (m) => enqueue(m),
        flush: async () => {
          await request(makeMessage(KIND_ECHO, 1));
        },
        close: async () => {
          dealer.close();
        },
      };
    },
  };
}

// ZAP hands the client key over as 32 raw bytes; the configured keys are Z85 text.
const Z85 = '0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.-:+=^!/*?&<>()[]{}@%$#';
function z85(bytes: Buffer): string {
  let out = '';
  for (let i = 0; i < bytes.length; i += 4) {
    let v = bytes.readUInt32BE(i);
    let chunk = '';
    for (let j = 0; j < 5; j++) {
      chunk = Z85[v % 85]! + chunk;
      v = Math.floor(v / 85);
    }
    out += chunk;
  }
  return out;
}
