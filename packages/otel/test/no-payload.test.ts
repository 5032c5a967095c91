/**
 * No payload and no key ever reaches telemetry: payloads of every shape (fuzzed with fast-check),
 * each holding a sentinel as a value, a key, bytes or deep inside, go through calls, results,
 * handler errors (public and opaque, the sentinel in their message and data), streams and events;
 * then every finished span (name, attributes, events, status), every metric data point, every
 * log line both ends' `logger` got (at debug), and every message on every secure-ipc diagnostics
 * and tracing channel is searched for the sentinel and for both ends' secret keys.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import {
  connect,
  createPolicy,
  DIAGNOSTICS_CHANNELS,
  generateKeyPair,
  type Logger,
  PublicError,
  serve,
  TRACING_CHANNELS,
} from '@secure-ipc/core';
import { memoryTransport } from '@secure-ipc/core/transport';
import test from 'ava';
import fc from 'fast-check';
import { otelWorld, spanText } from './fixtures/world.js';

const SENTINEL = 'SENTINEL-0tel-5ecret-payl0ad';
const SENTINEL_BYTES = Buffer.from(SENTINEL);

/** A payload holding the sentinel somewhere, in one of several shapes around a random value. */
const payloads = fc.tuple(fc.jsonValue({ maxDepth: 3 }), fc.nat(4)).map(([value, shape]): unknown => {
  switch (shape) {
    case 0:
      return SENTINEL;
    case 1:
      return { value, [SENTINEL]: 1 }; // as a key
    case 2:
      return { value, bytes: new Uint8Array(SENTINEL_BYTES) }; // as bytes
    case 3:
      return { deep: { deeper: [value, { x: `prefix ${SENTINEL} suffix` }] } };
    default:
      return [value, SENTINEL, value];
  }
});

type Api = {
  'echo.back'(p: unknown): unknown;
  'echo.public'(p: unknown): unknown;
  'echo.opaque'(p: unknown): unknown;
  'echo.stream'(p: unknown): AsyncIterable<unknown>;
};

test.serial(
  'a sentinel in any payload shape and the secret keys never reach a span, a metric, a log line or a diagnostics message',
  async (t) => {
    const world = otelWorld();
    const seen: unknown[] = [];
    const record = (m: unknown) => seen.push(structuredClone(m));
    const names = [
      ...Object.values(DIAGNOSTICS_CHANNELS),
      ...Object.values(TRACING_CHANNELS).flatMap((n) =>
        ['start', 'end', 'asyncStart', 'asyncEnd', 'error'].map((e) => `tracing:${n}:${e}`),
      ),
    ];
    for (const name of names) subscribe(name, record);
    const logLines: unknown[] = [];
    const line = (fields: unknown, message: string) => logLines.push({ fields, message });
    const logger: Logger = { error: line, warn: line, info: line, debug: line };
    const serverKeys = generateKeyPair(),
      clientKeys = generateKeyPair();
    const transport = memoryTransport();
    const server = await serve<Api, { 'tick.now': unknown }>({
      transport,
      address: 'memory://otel-no-payload',
      keyPair: serverKeys,
      trust: { keys: [clientKeys.publicKey] },
      policy: createPolicy({
        roles: { app: { call: ['echo.*'], publish: ['tick.*'], subscribe: ['tick.*'] } },
        peers: [{ key: clientKeys.publicKey, roles: ['app'] }],
      }),
      logger,
    });
    server
      .handle('echo.back', (p) => p)
      .handle('echo.public', (p) => {
        throw new PublicError('BAD_INPUT', `refused ${SENTINEL}`, { data: p });
      })
      .handle('echo.opaque', () => {
        throw new Error(`internal ${SENTINEL}`);
      })
      .handle('echo.stream', async function* (p) {
        yield p;
        yield SENTINEL;
      });
    let events = 0;
    server.subscribe('tick.*', () => {
      events++;
    });
    const client = await connect<Api, { 'tick.now': unknown }>({
      transport,
      address: 'memory://otel-no-payload',
      keyPair: clientKeys,
      trust: { keys: [serverKeys.publicKey] },
      logger,
    });
    try {
      await fc.assert(
        fc.asyncProperty(payloads, async (payload) => {
          await client.request('echo.back', payload);
          await client.request('echo.public', payload).catch(() => {});
          await client.request('echo.opaque', payload).catch(() => {});
          for await (const _ of await client.request('echo.stream', payload)) {
            // read to the end
          }
          await client.publish('tick.now', payload);
        }),
        { numRuns: 40 },
      );
      while (events < 40) await new Promise((r) => setImmediate(r));
      await client.close();
      await server.close();
      const metrics = await world.collect();
      const text = [
        spanText(world.spans()),
        JSON.stringify(metrics),
        JSON.stringify(seen),
        JSON.stringify(logLines),
      ].join('\n');
      t.true(logLines.length >= 40, `${logLines.length} log lines searched (the rest rate-limited)`);
      t.true(world.spans().length >= 40 * 9, `${world.spans().length} spans searched`);
      t.true(seen.length > 0, `${seen.length} diagnostics messages searched`);
      t.false(text.includes(SENTINEL), 'the sentinel is nowhere');
      for (const key of [serverKeys.secretKey, clientKeys.secretKey]) {
        t.false(text.includes(Buffer.from(key).toString('hex')), 'no secret key (hex)');
        t.false(text.includes(Buffer.from(key).toString('base64')), 'no secret key (base64)');
      }
    } finally {
      for (const name of names) unsubscribe(name, record);
      await world.stop();
    }
  },
);
