/**
 * secure-ipc rows, built from the packages' public exports exactly as an application would:
 * a transport (unix, tcp, local://), Noise XX with pinned keys on both sides, and on top either
 * the RPC layer (`$ping` for the echo, an event for the one-way bulk) or, for the `chan-` row,
 * raw channel messages. RPC clients use core's high-level `connect()`. The server composes
 * `transport.listen` + `secureListen` + `RpcServer.listen`, which is what `serve()` does inside,
 * because `serve()` does not report the port it got for `tcp://127.0.0.1:0`. The channel row has no envelope and no
 * RPC bookkeeping, so RPC row minus channel row is what the RPC layer costs.
 */
import { randomBytes } from 'node:crypto';
import path from 'node:path';
import {
  connect,
  createPolicy,
  createServer,
  generateKeyPair,
  type KeyPair,
  keyPairFromSecretKey,
  openAuditLog,
  type RpcClient,
  type SecureChannel,
  secureConnect,
  secureListen,
  type Transport,
} from '@secure-ipc/core';
import { tcpTransport } from '@secure-ipc/transport-tcp';
import { unixTransport } from '@secure-ipc/transport-unix';
import { type BenchClient, type Impl, KIND_ECHO, makeMessage, type SideSecrets } from '../impl.js';
import { ReplyQueue } from '../reply-queue.js';

/** Channels the bench's server admits: above any --idle count it is run with (default 1,000). */
const BENCH_MAX_CONNECTIONS = 100_000;

export type SipcSocket = 'unix' | 'tcp' | 'local';
export type SipcLevel = 'rpc' | 'channel';

const SINK_TOPIC = 'bench.sink';
const SOCKET_LABEL: Record<SipcSocket, string> = {
  unix: 'unix:// socket',
  tcp: 'tcp:// loopback',
  local: 'local:// (per-user dir)',
};

function transportFor(socket: SipcSocket): Transport {
  return socket === 'tcp' ? tcpTransport() : unixTransport();
}

// Keys cross the IPC channel as plain bytes and are rebuilt into core's secure memory once per
// process, as an application loads its key once: not per connection.
const keyCache = new WeakMap<SideSecrets, KeyPair>();
function ownKeys(s: SideSecrets): KeyPair {
  let kp = keyCache.get(s);
  if (kp === undefined) {
    kp = keyPairFromSecretKey(s.secretKey as Uint8Array);
    keyCache.set(s, kp);
  }
  return kp;
}

/**
 * A secure-ipc row. With `v1`, both ends speak only protocol version 1 (`versions: [1]`): the
 * `-v1` rows, against which the version-2 acceptance (docs/protocol.md 3.8) is measured.
 */
export function secureIpc(socket: SipcSocket, level: SipcLevel, v1 = false, audit = false): Impl {
  const id = `${level === 'rpc' ? `sipc-${socket}` : `chan-${socket}`}${v1 ? '-v1' : ''}${audit ? '-audit' : ''}`;
  const versions = v1 ? { versions: [1] } : {};
  return {
    id,
    label: `${
      level === 'rpc'
        ? `secure-ipc RPC, ${SOCKET_LABEL[socket]}`
        : `secure-ipc channel, no RPC, ${SOCKET_LABEL[socket]}`
    }${v1 ? ', protocol version 1 only' : ''}${audit ? ', audited (every call recorded with its keyed hash)' : ''}`,
    baseline: socket === 'tcp' ? 'raw-tcp' : 'raw-unix',
    security: 'Noise XX (X25519, ChaChaPoly, BLAKE2b); both static keys pinned',
    packages: ['@secure-ipc/core', `@secure-ipc/transport-${socket === 'tcp' ? 'tcp' : 'unix'}`],
    async secrets() {
      const s = generateKeyPair();
      const c = generateKeyPair();
      const plain = (k: Uint8Array) => new Uint8Array(k);
      return {
        server: { secretKey: plain(s.secretKey), peer: plain(c.publicKey) },
        client: { secretKey: plain(c.secretKey), peer: plain(s.publicKey) },
      };
    },
    async serve(ctx) {
      const address =
        socket === 'unix'
          ? `unix://${path.join(ctx.dir, 's.sock')}`
          : socket === 'tcp'
            ? 'tcp://127.0.0.1:0'
            : `local://sipc-bench-${process.pid}-${path.basename(ctx.dir)}`;
      const listener = await transportFor(socket).listen(address);
      const peer = ctx.secrets.peer as Uint8Array;
      // The idle-RSS scenario holds --idle (default 1,000) channels of one key and one uid: the
      // connection caps (128 per key, 256 per uid, 1,024 in all; docs/limits.md) are raised for
      // it, since it measures what an idle channel costs, not the caps.
      const secure = secureListen(listener, {
        keyPair: ownKeys(ctx.secrets),
        trust: { keys: [peer] },
        ...versions,
        maxConnectionsPerKey: BENCH_MAX_CONNECTIONS,
        maxConnectionsPerIdentity: BENCH_MAX_CONNECTIONS,
        maxConnections: BENCH_MAX_CONNECTIONS,
      });
      if (level === 'channel') {
        secure.on('channel', (ch) => {
          ch.on('message', (m) => {
            if (m[0] === KIND_ECHO) ch.send(m).catch(() => {});
          });
        });
        return { address: listener.address, close: () => secure.close() };
      }
      // $ping (the echo) is open to every authenticated peer; the sink topic needs a grant.
      const policy = createPolicy({
        roles: { bench: { publish: [SINK_TOPIC] } },
        peers: [{ key: peer, roles: ['bench'] }],
      });
      // Audited: every call is a record (method, verdict, keyed BLAKE2b of its params) in a
      // tamper-evident log in the run's directory (docs/audit.md), as a server with `audit` does.
      const log = audit
        ? await openAuditLog({ dir: path.join(ctx.dir, 'audit'), origin: 'bench/audit' })
        : undefined;
      const server = createServer({
        policy,
        ...(log === undefined ? {} : { audit: { log, hashKey: randomBytes(32) } }),
      });
      server.subscribe(SINK_TOPIC, () => {});
      server.listen(secure);
      return {
        address: listener.address,
        close: async () => {
          await server.close();
          await log?.close();
          // What the audited row wrote and dropped (docs/audit.md "Cost"): on stderr, which the
          // parent shows, since the report has no column for it.
          if (log !== undefined)
            process.stderr.write(
              `${id}: ${log.size} records in the log, ${server.audit?.dropped ?? 0} dropped\n`,
            );
        },
      };
    },
    async connect(address, secrets) {
      const keyPair = ownKeys(secrets);
      const trust = { keys: [secrets.peer as Uint8Array] };
      const transport = transportFor(socket);
      if (level === 'rpc')
        return rpcClient(await connect({ transport, address, keyPair, trust, ...versions }));
      return channelClient(
        await secureConnect(await transport.connect(address), { keyPair, trust, ...versions }),
      );
    },
  };
}

const asBuffer = (u: Uint8Array) => Buffer.from(u.buffer, u.byteOffset, u.byteLength);

function rpcClient(client: RpcClient): BenchClient {
  const flushMessage = makeMessage(KIND_ECHO, 1);
  return {
    request: async (m) => asBuffer(await client.ping<Uint8Array>(m)),
    send: (m) => client.publish(SINK_TOPIC, m),
    flush: async () => {
      await client.ping(flushMessage);
    },
    close: () => client.close(),
  };
}

function channelClient(channel: SecureChannel): BenchClient {
  const replies = new ReplyQueue();
  channel.on('message', (m) => replies.deliver(asBuffer(m)));
  channel.once('close', (e) => replies.failAll(e ?? new Error('channel closed')));
  const flushMessage = makeMessage(KIND_ECHO, 1);
  const request = (m: Buffer) => {
    const p = replies.expect();
    channel.send(m).catch((e: Error) => replies.failAll(e));
    return p;
  };
  return {
    request,
    send: (m) => channel.send(m),
    flush: async () => {
      await request(flushMessage);
    },
    close: () => channel.close(),
  };
}
