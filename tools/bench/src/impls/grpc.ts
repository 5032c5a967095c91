/**
 * Peer: @grpc/grpc-js over a `unix:` address, with mutual TLS. Node's crypto cannot issue X.509
 * certificates and the project takes no dependency for it, so the parent asks the system
 * `openssl` binary for two self-signed P-256 certificates (server and client) at run time; each
 * side trusts exactly the other's certificate. Without `openssl` the row falls back to insecure
 * credentials and its label says so.
 *
 * Services are defined with identity (de)serializers on Buffers (no protobuf), so the row measures
 * gRPC's HTTP/2 + TLS stack rather than a codec. Bulk uses one client-streaming call.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type Impl, KIND_ECHO } from '../impl.js';
import { waitForDrain } from '../stream-util.js';

const identity = (b: Buffer) => b;
const SERVICE = {
  echo: {
    path: '/bench.Bench/Echo',
    requestStream: false,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
  sink: {
    path: '/bench.Bench/Sink',
    requestStream: true,
    responseStream: false,
    requestSerialize: identity,
    requestDeserialize: identity,
    responseSerialize: identity,
    responseDeserialize: identity,
  },
} satisfies grpc.ServiceDefinition;

const CHANNEL_OPTIONS: grpc.ChannelOptions = {
  // grpc-js shares one connection between clients to the same target by default; a private pool
  // makes every client a real connection, as in the other rows.
  'grpc.use_local_subchannel_pool': 1,
  'grpc.ssl_target_name_override': 'localhost',
  'grpc.default_authority': 'localhost',
};

/** True when the `openssl` binary is on PATH. */
export function hasOpenssl(): boolean {
  try {
    execFileSync('openssl', ['version'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

// A self-signed P-256 certificate for CN/SAN localhost, valid one day; PEM strings in memory only.
function selfSigned(): { cert: string; key: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipc-bench-cert-'));
  try {
    execFileSync(
      'openssl',
      [
        'req',
        '-x509',
        '-newkey',
        'ec',
        '-pkeyopt',
        'ec_paramgen_curve:prime256v1',
        '-nodes',
        '-days',
        '1',
        '-subj',
        '/CN=localhost',
        '-addext',
        'subjectAltName=DNS:localhost',
        '-keyout',
        path.join(dir, 'k.pem'),
        '-out',
        path.join(dir, 'c.pem'),
      ],
      { stdio: 'ignore' },
    );
    return {
      cert: fs.readFileSync(path.join(dir, 'c.pem'), 'utf8'),
      key: fs.readFileSync(path.join(dir, 'k.pem'), 'utf8'),
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function grpcUnix(tls: boolean): Impl {
  return {
    id: tls ? 'grpc-mtls-unix' : 'grpc-insecure-unix',
    label: tls ? '@grpc/grpc-js, mutual TLS (unix:)' : '@grpc/grpc-js, INSECURE credentials (unix:)',
    baseline: 'raw-unix',
    security: tls
      ? 'TLS 1.3 both ways, self-signed certs made by the openssl CLI'
      : 'NONE: insecure credentials (no openssl binary to make a certificate)',
    packages: ['@grpc/grpc-js'],
    async secrets() {
      if (!tls) return { server: {}, client: {} };
      const s = selfSigned();
      const c = selfSigned();
      return {
        server: { cert: s.cert, key: s.key, peer: c.cert },
        client: { cert: c.cert, key: c.key, peer: s.cert },
      };
    },
    async serve(ctx) {
      const server = new grpc.Server();
      server.addService(SERVICE, {
        echo: (call: grpc.ServerUnaryCall<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
          cb(null, call.request);
        },
        sink: (call: grpc.ServerReadableStream<Buffer, Buffer>, cb: grpc.sendUnaryData<Buffer>) => {
          call.on('data', () => {});
          call.on('end', () => cb(null, Buffer.of(KIND_ECHO)));
        },
      });
      const creds = tls
        ? grpc.ServerCredentials.createSsl(
            Buffer.from(ctx.secrets.peer as string),
            [
              {
                cert_chain: Buffer.from(ctx.secrets.cert as string),
                private_key: Buffer.from(ctx.secrets.key as string),
              },
            ],
            true,
          )
        : grpc.ServerCredentials.createInsecure();
      const address = `unix://${path.join(ctx.dir, 'g.sock')}`;
      await new Promise<void>((resolve, reject) => {
        server.bindAsync(address, creds, (err) => (err ? reject(err) : resolve()));
      });
      return {
        address,
        close: () => new Promise<void>((resolve) => server.tryShutdown(() => resolve())),
      };
    },
    async connect(address, secrets) {
      const Client = grpc.makeGenericClientConstructor(SERVICE, 'Bench');
      const creds = tls
        ? grpc.credentials.createSsl(
            Buffer.from(secrets.peer as string),
            Buffer.from(secrets.key as string),
            Buffer.from(secrets.cert as string),
          )
        : grpc.credentials.createInsecure();
      const client = new Client(address, creds, CHANNEL_OPTIONS) as grpc.Client & Record<string, any>;
      let sink: grpc.ClientWritableStream<Buffer> | undefined;
      let sinkDone: Promise<void> | undefined;
      return {
        request: (m) =>
          new Promise<Buffer>((resolve, reject) => {
            client.echo(m, (err: grpc.ServiceError | null, res: Buffer) =>
              err ? reject(err) : resolve(res),
            );
          }),
        send: async (m) => {
          if (sink === undefined) {
            let call!: grpc.ClientWritableStream<Buffer>;
            sinkDone = new Promise<void>((resolve, reject) => {
              call = client.sink((err: grpc.ServiceError | null) => (err ? reject(err) : resolve()));
            });
            sink = call;
          }
          if (!sink.write(m)) await waitForDrain(sink);
        },
        // The sink call answers only after it has read every message: ending it is the barrier.
        flush: async () => {
          if (sink === undefined) return;
          sink.end();
          const done = sinkDone;
          sink = undefined;
          await done;
        },
        close: async () => {
          client.close();
        },
      };
    },
  };
}
