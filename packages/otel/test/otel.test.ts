/**
 * @secure-ipc/otel against the real SDK (sdk-trace-base with an in-memory exporter, sdk-metrics
 * read on demand, OpenTelemetry's AsyncLocalStorage context manager): spans, their attributes and
 * parents, the handler running inside its SERVER span, the metrics and their buckets, events as
 * messaging spans, bounded cardinality, and a Prometheus endpoint scraped over HTTP.
 */
import { channel, tracingChannel } from 'node:diagnostics_channel';
import { once } from 'node:events';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { SpanKind, SpanStatusCode, trace } from '@opentelemetry/api';
import { PrometheusExporter } from '@opentelemetry/exporter-prometheus';
import { MeterProvider } from '@opentelemetry/sdk-metrics';
import {
  type ChannelCloseMessage,
  type ChannelOpenMessage,
  certificateTrust,
  connect,
  createPolicy,
  DEFAULT_CLOCK_SKEW_MS,
  DIAGNOSTICS_CHANNELS,
  generateAuthority,
  generateKeyPair,
  issueCertificate,
  PublicError,
  type ServerRequestMessage,
  serve,
  TRACING_CHANNELS,
} from '@secure-ipc/core';
import { memoryTransport } from '@secure-ipc/core/transport';
import test from 'ava';
import { CALL_DURATION_BUCKETS, instrumentSecureIpc } from '../src/index.js';
import { globalContext, otelWorld, points } from './fixtures/world.js';

// The channels are process-wide: one test at a time, each with its own instrumentation.

type Api = {
  'echo.say'(p: { text: string }): string;
  'echo.nested'(): string;
  'echo.fail'(): string;
  'admin.wipe'(): void;
};
type Events = { 'tick.now': { n: number } };

async function pair(address: string) {
  const serverKeys = generateKeyPair(),
    clientKeys = generateKeyPair();
  const transport = memoryTransport();
  const server = await serve<Api, Events>({
    transport,
    address,
    keyPair: serverKeys,
    trust: { keys: [clientKeys.publicKey] },
    policy: createPolicy({
      roles: { user: { call: ['echo.*'], publish: ['tick.*'], subscribe: ['tick.*'] } },
      peers: [{ key: clientKeys.publicKey, roles: ['user'] }],
    }),
  });
  const client = await connect<Api, Events>({
    transport,
    address,
    keyPair: clientKeys,
    trust: { keys: [serverKeys.publicKey] },
  });
  return { server, client };
}

test.serial(
  'spans: CLIENT and SERVER per call with rpc.* attributes, one trace, the handler inside its span',
  async (t) => {
    const world = otelWorld();
    try {
      const { server, client } = await pair('memory://otel-spans');
      const inHandler: (string | undefined)[] = [];
      server
        .handle('echo.say', ({ text }) => {
          inHandler.push(trace.getActiveSpan()?.spanContext().spanId);
          return text;
        })
        .handle('echo.fail', () => {
          throw new PublicError('NOPE', 'refused');
        });
      await world.tracer.startActiveSpan('app.root', async (root) => {
        await client.request('echo.say', { text: 'hello' });
        await t.throwsAsync(client.request('echo.fail'));
        await t.throwsAsync(client.request('admin.wipe'));
        root.end();
      });
      await client.close();
      await server.close();
      const spans = world.spans();
      const byName = (name: string, kind: SpanKind) => spans.find((s) => s.name === name && s.kind === kind)!;
      const root = spans.find((s) => s.name === 'app.root')!;
      const call = byName('echo.say', SpanKind.CLIENT);
      const served = byName('echo.say', SpanKind.SERVER);
      t.is(
        call.parentSpanContext?.spanId,
        root.spanContext().spanId,
        'the CLIENT span is a child of the active span',
      );
      t.is(
        served.parentSpanContext?.spanId,
        call.spanContext().spanId,
        'the SERVER span is a child of the CLIENT span',
      );
      t.true(served.parentSpanContext?.isRemote === true);
      t.is(served.spanContext().traceId, root.spanContext().traceId);
      t.deepEqual(inHandler, [served.spanContext().spanId], 'the handler ran inside its SERVER span');
      t.like(call.attributes, {
        'rpc.system.name': 'secure-ipc',
        'rpc.method': 'echo.say',
        'rpc.response.status_code': 'OK',
      });
      t.is(call.attributes['error.type'], undefined);
      const failed = byName('echo.fail', SpanKind.SERVER);
      t.like(failed.attributes, { 'rpc.response.status_code': 'NOPE', 'error.type': 'NOPE' });
      t.is(failed.status.code, SpanStatusCode.ERROR);
      // A method the policy refused is not one the server reveals: `_OTHER`, named after the system.
      const refused = spans.find(
        (s) => s.kind === SpanKind.SERVER && s.attributes['rpc.method'] === '_OTHER',
      )!;
      t.is(refused.name, 'secure-ipc');
      t.like(refused.attributes, {
        'rpc.method_original': 'admin.wipe',
        'rpc.response.status_code': 'SIPC_ERR_FORBIDDEN',
      });

      const metrics = await world.collect();
      const client_ = points(metrics, 'rpc.client.call.duration');
      const server_ = points(metrics, 'rpc.server.call.duration');
      t.deepEqual(
        server_.map((p) => [p.attributes['rpc.method'], p.attributes['rpc.response.status_code']]).sort(),
        [
          ['_OTHER', 'SIPC_ERR_FORBIDDEN'],
          ['echo.fail', 'NOPE'],
          ['echo.say', 'OK'],
        ],
      );
      t.is(client_.length, 3);
      const histogram = server_[0]!.value as {
        buckets: { boundaries: number[]; counts: number[] };
        count: number;
      };
      t.deepEqual(histogram.buckets.boundaries, [...CALL_DURATION_BUCKETS], 'buckets from 10 µs to 10 s');
      t.is(histogram.count, 1);
      const handshakes = points(metrics, 'secure_ipc.handshake.duration');
      t.deepEqual(
        handshakes
          .map((p) => [p.attributes['secure_ipc.role'], p.attributes['secure_ipc.handshake.outcome']])
          .sort(),
        [
          ['initiator', 'OK'],
          ['responder', 'OK'],
        ],
      );
      const active = points(metrics, 'secure_ipc.connection.active');
      t.true(
        active.every((p) => p.value === 0),
        'both channels closed again',
      );
      t.is(points(metrics, 'secure_ipc.connection.duration').length, 2);
      const decisions = points(metrics, 'secure_ipc.policy.decisions');
      t.deepEqual(decisions.map((p) => [p.attributes['secure_ipc.policy.allowed'], p.value]).sort(), [
        [false, 1],
        [true, 2],
      ]);
    } finally {
      await world.stop();
    }
  },
);

test.serial(
  'events are messaging spans: send on the client, process on the server (current in the listener)',
  async (t) => {
    const world = otelWorld();
    try {
      const { server, client } = await pair('memory://otel-events');
      const got = new Promise<string | undefined>((resolve) =>
        server.subscribe('tick.*', () => resolve(trace.getActiveSpan()?.spanContext().spanId)),
      );
      await client.publish('tick.now', { n: 1 });
      const inListener = await got;
      await client.close();
      await server.close();
      const spans = world.spans();
      const send = spans.find((s) => s.kind === SpanKind.PRODUCER)!;
      const processed = spans.find((s) => s.kind === SpanKind.CONSUMER)!;
      t.is(send.name, 'send tick.now');
      t.is(processed.name, 'process tick.now');
      t.like(processed.attributes, {
        'messaging.system': 'secure-ipc',
        'messaging.operation.type': 'process',
        'messaging.destination.name': 'tick.now',
      });
      t.is(inListener, processed.spanContext().spanId, 'the listener ran inside the CONSUMER span');
      const sent = points(await world.collect(), 'messaging.client.sent.messages');
      t.is(
        sent.reduce((n, p) => n + (p.value as number), 0),
        1,
      );
    } finally {
      await world.stop();
    }
  },
);

test.serial(
  'cardinality: 10,000 distinct peers and 10,000 unknown methods leave the series count unchanged',
  async (t) => {
    const world = otelWorld();
    const opened = channel(DIAGNOSTICS_CHANNELS.channelOpen);
    const closed = channel(DIAGNOSTICS_CHANNELS.channelClose);
    const served = tracingChannel<ServerRequestMessage>(TRACING_CHANNELS.serverRequest);
    // What secure-ipc publishes for one connection that makes one call (the bridge sees only this).
    const connection = (n: number, method: string, code: string) => {
      const peer = `BLAKE2b:peer-${n}`;
      const open: ChannelOpenMessage = {
        v: 1,
        channelId: 1_000_000 + n,
        role: 'responder',
        peer,
        roles: [],
        protocolVersion: 4,
        at: Date.now(),
      };
      opened.publish(open);
      const m: ServerRequestMessage = {
        v: 1,
        channelId: open.channelId,
        peer,
        roles: [],
        method,
        attempt: 1,
        traceparent: undefined,
        tracestate: undefined,
        code: undefined,
      };
      served.start.runStores(m, () => {});
      served.end.publish(m);
      m.code = code;
      if (code !== 'OK') served.error.publish(m);
      served.asyncStart.publish(m);
      served.asyncEnd.publish(m);
      const close: ChannelCloseMessage = {
        v: 1,
        channelId: open.channelId,
        peer,
        reason: 'clean',
        code: undefined,
        durationMs: 5,
        at: Date.now(),
      };
      closed.publish(close);
    };
    const seriesCount = async () => {
      const metrics = await world.collect();
      let n = 0;
      for (const scope of metrics.scopeMetrics) for (const m of scope.metrics) n += m.dataPoints.length;
      return n;
    };
    try {
      for (let n = 0; n < 10; n++) {
        connection(n, 'files.read', 'OK');
        connection(n, `probe.${n}`, 'SIPC_ERR_NO_SUCH_METHOD');
      }
      const before = await seriesCount();
      for (let n = 10; n < 10_000; n++) {
        connection(n, 'files.read', 'OK');
        connection(n, `probe.${n}`, 'SIPC_ERR_NO_SUCH_METHOD');
      }
      t.is(await seriesCount(), before, `${before} series after 10 peers, the same after 10,000`);
    } finally {
      await world.stop();
    }
    // Opted in, the peer label is capped: at most maxPeers series, the rest `_OTHER`.
    const capped = otelWorld({ peerLabel: { maxPeers: 5 } });
    try {
      for (let n = 0; n < 1000; n++) connection(n, 'files.read', 'OK');
      const labels = new Set(
        points(await capped.collect(), 'rpc.server.call.duration').map(
          (p) => p.attributes['secure_ipc.peer'],
        ),
      );
      t.is(labels.size, 6);
      t.true(labels.has('_OTHER'));
    } finally {
      await capped.stop();
    }
    t.throws(() => instrumentSecureIpc({ peerLabel: { maxPeers: 0 } }), { instanceOf: TypeError });
    t.throws(() => instrumentSecureIpc({ maxMethods: 1.5 }), { instanceOf: TypeError });
  },
);

test.serial(
  'Prometheus: the exporter endpoint is scraped over HTTP with the call, handshake and connection metrics',
  async (t) => {
    globalContext();
    const exporter = new PrometheusExporter({ preventServerStart: true });
    const meterProvider = new MeterProvider({ readers: [exporter] });
    const instrumentation = instrumentSecureIpc({ meterProvider });
    const http = createServer((req, res) => exporter.getMetricsRequestHandler(req, res));
    http.listen(0, '127.0.0.1');
    await once(http, 'listening');
    try {
      const { server, client } = await pair('memory://otel-prometheus');
      server.handle('echo.say', ({ text }) => text);
      for (let i = 0; i < 5; i++) await client.request('echo.say', { text: `call ${i}` });
      const { port } = http.address() as AddressInfo;
      const response = await fetch(`http://127.0.0.1:${port}/metrics`);
      t.is(response.status, 200);
      const text = await response.text();
      t.regex(text, /^# TYPE rpc_server_call_duration histogram$/m);
      t.regex(text, /^# UNIT rpc_server_call_duration s$/m);
      t.regex(
        text,
        /^rpc_server_call_duration_count\{rpc_system_name="secure-ipc",rpc_method="echo\.say",rpc_response_status_code="OK",[^}]*\} 5$/m,
      );
      t.regex(text, /^rpc_client_call_duration_bucket\{[^}]*le="0.00001"\} \d+$/m, 'the 10 µs bucket');
      t.regex(text, /^secure_ipc_connection_active\{secure_ipc_role="responder",[^}]*\} 1$/m);
      t.regex(
        text,
        /^secure_ipc_handshake_duration_count\{secure_ipc_role="initiator",secure_ipc_handshake_outcome="OK",[^}]*\} 1$/m,
      );
      t.false(text.includes('call 3'), 'no payload');
      await client.close();
      await server.close();
    } finally {
      http.close();
      instrumentation.stop();
      await meterProvider.shutdown();
    }
  },
);

test.serial("credential expiry: the soonest open channel's certificate, per side, in seconds", async (t) => {
  const world = otelWorld();
  const ca = generateAuthority();
  const serverKeys = generateKeyPair(),
    clientKeys = generateKeyPair();
  const cert = (publicKey: Uint8Array, ttlMs: number) =>
    issueCertificate(ca, { subjectKey: publicKey, name: 'peer', roles: ['app'], ttlMs }).bytes;
  const transport = memoryTransport();
  try {
    const server = await serve({
      transport,
      address: 'memory://otel-expiry',
      keyPair: serverKeys,
      trust: certificateTrust({ authorities: [ca.publicKey] }),
      payload: { cert: cert(serverKeys.publicKey, 3_600_000) },
    });
    const client = await connect({
      transport,
      address: 'memory://otel-expiry',
      keyPair: clientKeys,
      trust: certificateTrust({ authorities: [ca.publicKey] }),
      payload: { cert: cert(clientKeys.publicKey, 600_000) },
    });
    const expiry = points(await world.collect(), 'secure_ipc.peer.credential.time_to_expiry');
    const byRole = new Map(expiry.map((p) => [p.attributes['secure_ipc.role'], p.value as number]));
    // The server sees the client's 10-minute certificate, the client the server's hour: each its
    // notAfter plus the clock-skew allowance (30 s), when the channel will close.
    const skew = DEFAULT_CLOCK_SKEW_MS / 1000;
    const responder = byRole.get('responder')!;
    const initiator = byRole.get('initiator')!;
    t.true(responder > 590 + skew && responder <= 600 + skew, `responder ${responder}`);
    t.true(initiator > 3590 + skew && initiator <= 3600 + skew, `initiator ${initiator}`);
    await client.close();
    await server.close();
  } finally {
    await world.stop();
  }
});
