/**
 * The tracing channels (docs/observability.md, "Tracing channels") and the resilience channels:
 * the five events of every traced operation in order, outcomes and codes, a store bound to a
 * served request's `start` seen by its handler, a subscriber's traceparent carried to the peer,
 * a streamed answer finished at its end, handshakes that succeed and fail, events both ways,
 * retries, breaker changes and outbox entries; no payload in any message.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import { subscribe, tracingChannel, unsubscribe } from 'node:diagnostics_channel';
import test from 'ava';
import { PublicError } from '../src/envelope/wire-errors.js';
import {
  type BreakerStateMessage,
  type ClientRequestMessage,
  connect,
  createCircuitBreaker,
  createPolicy,
  DIAGNOSTICS_CHANNELS,
  type EventMessage,
  generateKeyPair,
  type HandshakeMessage,
  keyFingerprint,
  type OutboxMessage,
  type RetryMessage,
  type ServerRequestMessage,
  serve,
  TRACING_CHANNELS,
} from '../src/index.js';
import { manualClock } from '../src/resilience/clock.js';
import { memoryTransport } from '../src/transport/index.js';
import { openTestOutbox, outboxPlace } from './fixtures/outbox-world.js';
import { drive, retryWorld } from './fixtures/retry-memory.js';

// The channels are process-wide: tests in this file run one at a time so each sees its own traffic.

const SENTINEL = 'sentinel-51c0de-never-traced';
const EVENTS = ['start', 'end', 'asyncStart', 'asyncEnd', 'error'] as const;

/** Every event of tracing channel `name`, as [event, message] in publish order. */
function traceOf<M extends object>(name: string, onStart?: (m: M) => void) {
  const tc = tracingChannel<M>(name);
  const seen: [string, M][] = [];
  const handlers = Object.fromEntries(
    EVENTS.map((e) => [
      e,
      (m: M) => {
        seen.push([e, m]);
        if (e === 'start') onStart?.(m);
      },
    ]),
  ) as unknown as Parameters<typeof tc.subscribe>[0];
  tc.subscribe(handlers);
  return {
    seen,
    /** The distinct messages, in the order they started. */
    messages: () => [...new Set(seen.filter(([e]) => e === 'start').map(([, m]) => m))],
    /** The events one message went through. */
    eventsOf: (m: M) => seen.filter(([, x]) => x === m).map(([e]) => e),
    stop: () => tc.unsubscribe(handlers),
  };
}

function record<T>(name: string): { messages: T[]; stop: () => void } {
  const messages: T[] = [];
  const fn = (m: unknown) => messages.push(m as T);
  subscribe(name, fn);
  return { messages, stop: () => unsubscribe(name, fn) };
}

/** No message holds the sentinel. */
function noSentinel(t: import('ava').ExecutionContext, messages: readonly unknown[]): void {
  t.false(JSON.stringify(messages).includes(SENTINEL));
}

type Api = {
  'echo.say'(p: { text: string }): string;
  'echo.fail'(p: { text: string }): string;
  'echo.public'(): string;
  'echo.count'(p: { n: number }): AsyncIterable<number>;
  'admin.wipe'(): void;
};
type Events = { 'tick.now': { text: string }; 'admin.alarm': { text: string } };

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
  return { server, client, serverKeys, clientKeys, transport };
}

test.serial(
  'requests: five events per request on both sides, codes, a bound store seen by the handler, the traceparent carried',
  async (t) => {
    const TP = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';
    const client = traceOf<ClientRequestMessage>(TRACING_CHANNELS.clientRequest, (m) => {
      if (m.method === 'echo.say') {
        m.traceparent = TP;
        m.tracestate = 'vendor=abc,other@sys=1';
      }
      if (m.method === 'echo.public') m.traceparent = 'not a traceparent'; // ignored
    });
    const server = traceOf<ServerRequestMessage>(TRACING_CHANNELS.serverRequest);
    const store = new AsyncLocalStorage<string>();
    const serverTc = tracingChannel<ServerRequestMessage>(TRACING_CHANNELS.serverRequest);
    serverTc.start.bindStore(store as never, ((m: ServerRequestMessage) => `span-of-${m.method}`) as never);
    try {
      const p = await pair('memory://trace-requests');
      const inHandler: (string | undefined)[] = [];
      p.server
        .handle('echo.say', async ({ text }, ctx) => {
          inHandler.push(store.getStore());
          await new Promise((r) => setImmediate(r));
          inHandler.push(store.getStore()); // still in the request's context after an await
          t.is(ctx.headers.traceparent, TP);
          t.is(ctx.headers.tracestate, 'vendor=abc,other@sys=1');
          return text;
        })
        .handle('echo.fail', () => {
          throw new Error(SENTINEL);
        })
        .handle('echo.public', () => {
          throw new PublicError('NOPE', 'refused');
        });
      t.is(await p.client.request('echo.say', { text: SENTINEL }), SENTINEL);
      await t.throwsAsync(p.client.request('echo.fail', { text: SENTINEL }));
      await t.throwsAsync(p.client.request('echo.public'));
      await t.throwsAsync(p.client.request('admin.wipe'));
      await new Promise((r) => setImmediate(r));
      t.deepEqual(inHandler, ['span-of-echo.say', 'span-of-echo.say']);

      const cm = client.messages();
      const sm = server.messages();
      t.deepEqual(
        cm.map((m) => [m.method, m.code]),
        [
          ['echo.say', 'OK'],
          ['echo.fail', 'SIPC_ERR_HANDLER'],
          ['echo.public', 'SIPC_ERR_REMOTE'],
          ['admin.wipe', 'SIPC_ERR_FORBIDDEN'],
        ],
      );
      t.deepEqual(
        sm.map((m) => [m.method, m.code]),
        [
          ['echo.say', 'OK'],
          ['echo.fail', 'SIPC_ERR_HANDLER'],
          ['echo.public', 'NOPE'],
          ['admin.wipe', 'SIPC_ERR_FORBIDDEN'],
        ],
      );
      t.deepEqual(client.eventsOf(cm[0]!), ['start', 'end', 'asyncStart', 'asyncEnd']);
      t.deepEqual(client.eventsOf(cm[3]!), ['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
      t.deepEqual(server.eventsOf(sm[0]!), ['start', 'end', 'asyncStart', 'asyncEnd']);
      t.deepEqual(server.eventsOf(sm[1]!), ['start', 'end', 'error', 'asyncStart', 'asyncEnd']);
      t.is(sm[0]!.traceparent, TP, "the subscriber's traceparent reached the server");
      t.is(sm[0]!.tracestate, 'vendor=abc,other@sys=1', 'and its tracestate (protocol version 4)');
      t.is(sm[2]!.traceparent, undefined, 'an invalid one was not sent');
      t.is(cm[0]!.peer, keyFingerprint(p.serverKeys.publicKey));
      t.is(sm[0]!.peer, keyFingerprint(p.clientKeys.publicKey));
      t.deepEqual(sm[0]!.roles, ['user']);
      t.is(typeof cm[0]!.channelId, 'number');
      t.is(cm[0]!.attempt, 1);
      for (const m of [...cm, ...sm]) t.false('error' in m, "no error object: its text may be a peer's");
      noSentinel(t, [...cm, ...sm]);
      await p.client.close();
      await p.server.close();
    } finally {
      serverTc.start.unbindStore(store as never);
      client.stop();
      server.stop();
    }
  },
);

test.serial(
  'a streamed answer is finished at its end; a request the close cut short ends with the close',
  async (t) => {
    const client = traceOf<ClientRequestMessage>(TRACING_CHANNELS.clientRequest);
    const server = traceOf<ServerRequestMessage>(TRACING_CHANNELS.serverRequest);
    try {
      const p = await pair('memory://trace-streams');
      let release!: () => void;
      const gate = new Promise<void>((r) => {
        release = r;
      });
      p.server
        .handle('echo.count', async function* ({ n }) {
          for (let i = 0; i < n; i++) yield i;
          await gate;
        })
        .handle('echo.say', () => new Promise<string>(() => {})); // never answers
      const stream = await p.client.request('echo.count', { n: 3 });
      const items: number[] = [];
      const reading = (async () => {
        for await (const item of stream) items.push(item);
      })();
      while (items.length < 3) await new Promise((r) => setImmediate(r));
      const [counting] = client.messages();
      t.deepEqual(client.eventsOf(counting!), ['start', 'end'], 'not finished at the first item');
      release();
      await reading;
      t.deepEqual(client.eventsOf(counting!), ['start', 'end', 'asyncStart', 'asyncEnd']);
      t.is(counting!.code, 'OK');

      const hanging = p.client.request('echo.say', { text: 'x' });
      while (server.messages().length < 2) await new Promise((r) => setImmediate(r));
      await p.client.close();
      await t.throwsAsync(hanging);
      await p.server.close();
      const cut = server.messages()[1]!;
      t.is(cut.method, 'echo.say');
      t.is(cut.code, 'SIPC_ERR_CONNECTION_CLOSED');
      t.is(client.messages()[1]!.code, 'SIPC_ERR_CONNECTION_CLOSED');
    } finally {
      client.stop();
      server.stop();
    }
  },
);

test.serial(
  'handshakes: both roles with channel id, peer and version; a refused one with its code',
  async (t) => {
    const hs = traceOf<HandshakeMessage>(TRACING_CHANNELS.handshake);
    try {
      const p = await pair('memory://trace-handshake');
      await new Promise((r) => setImmediate(r));
      const ok = hs.messages();
      t.deepEqual(ok.map((m) => m.role).sort(), ['initiator', 'responder']);
      for (const m of ok) {
        t.is(m.code, 'OK');
        t.is(typeof m.channelId, 'number');
        t.true((m.protocolVersion ?? 0) >= 1);
        t.deepEqual(hs.eventsOf(m), ['start', 'end', 'asyncStart', 'asyncEnd']);
      }
      t.is(ok.find((m) => m.role === 'initiator')!.peer, keyFingerprint(p.serverKeys.publicKey));
      // A stranger the server does not trust: refused, the initiator's handshake fails.
      await t.throwsAsync(
        connect({
          transport: p.transport,
          address: 'memory://trace-handshake',
          keyPair: generateKeyPair(),
          trust: { keys: [p.serverKeys.publicKey] },
        }),
      );
      await new Promise((r) => setTimeout(r, 20));
      const failed = hs.messages().slice(2);
      t.true(failed.length >= 1);
      for (const m of failed) {
        t.not(m.code, 'OK');
        t.true(m.code!.startsWith('SIPC_ERR_'), m.code);
        t.is(m.channelId, undefined);
        t.true(hs.eventsOf(m).includes('error'));
      }
      await p.client.close();
      await p.server.close();
    } finally {
      hs.stop();
    }
  },
);

test.serial(
  'events: publish and receive traced both ways, a refused publish as forbidden, no payload',
  async (t) => {
    const pub = traceOf<EventMessage>(TRACING_CHANNELS.eventPublish);
    const rcv = traceOf<EventMessage>(TRACING_CHANNELS.eventReceive);
    try {
      const p = await pair('memory://trace-events');
      const got: string[] = [];
      p.server.subscribe('tick.*', (payload) => {
        got.push(payload.text);
      });
      const received = new Promise<void>((resolve) =>
        p.client.subscribe('tick.*', () => resolve()).then(() => {}),
      );
      await new Promise((r) => setTimeout(r, 10));
      await p.client.publish('tick.now', { text: SENTINEL });
      await p.client.publish('admin.alarm', { text: SENTINEL });
      const result = await p.server.publish('tick.now', { text: SENTINEL });
      await received;
      while (got.length < 1) await new Promise((r) => setImmediate(r));
      await new Promise((r) => setTimeout(r, 10));
      const sent = pub.messages();
      t.deepEqual(
        sent.map((m) => [m.topic, m.code, m.peer === undefined, m.queued]),
        [
          ['tick.now', 'OK', false, 1],
          ['admin.alarm', 'OK', false, 1],
          ['tick.now', 'OK', true, result.queued],
        ],
      );
      t.is(result.queued, 1);
      const codes = rcv.messages().map((m) => [m.topic, m.code]);
      t.deepEqual(
        codes.sort(),
        [
          ['admin.alarm', 'SIPC_ERR_FORBIDDEN'],
          ['tick.now', 'OK'],
          ['tick.now', 'OK'],
        ].sort(),
      );
      noSentinel(t, [...sent, ...rcv.messages()]);
      await p.client.close();
      await p.server.close();
    } finally {
      pub.stop();
      rcv.stop();
    }
  },
);

test.serial(
  'retry, breaker and outbox channels: one message per retry, state change and entry event',
  async (t) => {
    const retries = record<RetryMessage>(DIAGNOSTICS_CHANNELS.retry);
    const changes = record<BreakerStateMessage>(DIAGNOSTICS_CHANNELS.breakerState);
    const outbox = record<OutboxMessage>(DIAGNOSTICS_CHANNELS.outbox);
    try {
      const world = retryWorld(t);
      const server = await world.start();
      let calls = 0;
      server.handle('flaky', () => {
        calls++;
        throw new PublicError('FLAKY', 'try again');
      });
      const rc = world.client({ retry: { policy: { maxAttempts: 3, retryableCodes: ['FLAKY'] } } });
      const outcome = await drive(
        world.clock,
        rc.request('flaky', { secret: SENTINEL }, { waitForReady: true }),
      );
      t.truthy(outcome.error);
      t.is(calls, 3);
      t.deepEqual(
        retries.messages.map((m) => [m.method, m.code, m.attempt, m.transparent]),
        [
          ['flaky', 'FLAKY', 2, false],
          ['flaky', 'FLAKY', 3, false],
        ],
      );
      t.true(retries.messages.every((m) => m.delayMs > 0));

      const clock = manualClock();
      const breaker = createCircuitBreaker({
        clock,
        name: 'b1',
        consecutiveFailures: 1,
        halfOpenAfterMs: 1000,
      });
      await t.throwsAsync(breaker.execute(() => Promise.reject(new Error('down'))));
      t.deepEqual(
        changes.messages.map((m) => [m.name, m.from, m.to, m.reason, m.openForMs]),
        [['b1', 'closed', 'open', 'consecutive', 1000]],
      );

      const box = await openTestOutbox(outboxPlace(t));
      const { id } = await box.add('record', { secret: SENTINEL });
      t.deepEqual(
        outbox.messages.map((m) => [m.event, m.id, m.method, m.depth]),
        [['enqueued', id, 'record', 1]],
      );
      await box.close();
      noSentinel(t, [...retries.messages, ...changes.messages, ...outbox.messages]);
    } finally {
      retries.stop();
      changes.stop();
      outbox.stop();
    }
  },
);
