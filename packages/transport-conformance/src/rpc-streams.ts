/**
 * RPC streams sub-suite: client streams and bidirectional streams over the transport
 * (docs/protocol.md, "Streamed input", protocol version 2): an upload bounded by the input window
 * under a slow handler, bidirectional echo, cancel from each side, a failing input iterable, a
 * handler answering before it read its input, refusal on a version-1 channel, and a hand-built
 * peer sending input beyond its credit.
 */
import { once } from 'node:events';
import { decode, encode } from '@msgpack/msgpack';
import {
  createClient,
  createPolicy,
  createServer,
  isSecureIpcError,
  type RpcServer,
  type SecureChannel,
  type SecureIpcError,
  secureListen,
} from '@secure-ipc/core';
import type { ExecutionContext } from 'ava';
import { listen } from './harness.js';
import type { ConformanceOptions, Test } from './options.js';
import { channelClosed, identities, nextMessage, secureClient, trusting } from './secure.js';

/** The input window of docs/protocol.md: items a requester may send before its first grant. */
const WINDOW = 16;

interface StreamService {
  upload(p: AsyncIterable<number>): number;
  upper(p: AsyncIterable<string>): AsyncIterable<string>;
  [method: string]: (params: any) => any;
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Resolves once `check()` holds (polled), or fails the test after `ms`. */
async function until(check: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** A counting input: yields 0, 1, … (`count` items, or forever), recording pulls and its `return()`. */
function counting(count = Number.POSITIVE_INFINITY, failAt?: number) {
  const state = {
    pulled: 0,
    finished: false,
    returned: undefined as unknown as Promise<void>,
    iterable: undefined as unknown as AsyncIterable<number>,
  };
  let onReturn: () => void = () => {};
  state.returned = new Promise<void>((resolve) => {
    onReturn = resolve;
  });
  state.iterable = (async function* () {
    try {
      for (let i = 0; i < count; i++) {
        if (i === failAt) throw new Error('the input failed');
        state.pulled++;
        yield i;
      }
    } finally {
      state.finished = true;
      onReturn();
    }
  })();
  return state;
}

/** A server in this process allowing every call; `setup` registers its handlers. */
async function streamServer(
  t: ExecutionContext,
  o: ConformanceOptions,
  ids: ReturnType<typeof identities>,
  setup: (server: RpcServer<StreamService>) => void,
): Promise<{ server: RpcServer<StreamService>; address: string; errors: unknown[] }> {
  const listener = await listen(t, o.transport, o.address());
  const server = createServer<StreamService>({
    policy: createPolicy({ roles: { any: { call: ['*'] } }, defaultRoles: ['any'] }),
  });
  const errors: unknown[] = [];
  server.on('error', (err) => errors.push(err));
  setup(server);
  server.listen(secureListen(listener, trusting(ids.server, ids.client)));
  t.teardown(() => server.close());
  return { server, address: listener.address, errors };
}

/** Register the client and bidirectional stream cases. */
export function rpcStreamsSuite(test: Test, o: ConformanceOptions): void {
  test(`${o.name}: a client-stream upload under a slow handler never has more than the window outstanding`, async (t) => {
    t.timeout(60_000);
    const ids = identities();
    const N = 200;
    const input = counting(N);
    let consumed = 0;
    let maxOutstanding = 0;
    const { address } = await streamServer(t, o, ids, (server) => {
      server.handle('upload', async (items, { signal }) => {
        // Read nothing until the client has used its whole window: it must then wait at zero.
        await until(() => input.pulled >= WINDOW, 'the client to fill the window');
        await sleep(100);
        t.is(input.pulled, WINDOW, 'the client pulled past its credit');
        let sum = 0;
        for await (const n of items) {
          consumed++;
          sum += n;
          if (consumed % 10 === 0) await sleep(1);
        }
        t.false(signal.aborted);
        return sum;
      });
    });
    const channel = await secureClient(t, o, address, ids);
    t.is(channel.version, 4);
    const client = createClient<StreamService>(channel);
    const watch = setInterval(() => {
      maxOutstanding = Math.max(maxOutstanding, input.pulled - consumed);
    }, 1);
    t.teardown(() => clearInterval(watch));
    const sum = await client.request('upload', input.iterable);
    clearInterval(watch);
    t.is(sum, (N * (N - 1)) / 2);
    t.is(consumed, N);
    t.is(input.pulled, N);
    t.true(maxOutstanding <= WINDOW, `outstanding ${maxOutstanding}`);
    t.true(input.finished);
  });

  test(`${o.name}: a bidirectional stream echoes every item in order`, async (t) => {
    t.timeout(60_000);
    const ids = identities();
    const { address } = await streamServer(t, o, ids, (server) => {
      server.handle('upper', async function* (items) {
        for await (const s of items) yield s.toUpperCase();
      });
    });
    const client = createClient<StreamService>(await secureClient(t, o, address, ids));
    const words = Array.from({ length: 300 }, (_, i) => `word-${i}`);
    async function* source() {
      for (const w of words) yield w;
    }
    const out: string[] = [];
    for await (const s of await client.request('upper', source())) out.push(s);
    t.deepEqual(
      out,
      words.map((w) => w.toUpperCase()),
    );
    t.is(client.inFlight, 0);
  });

  test(`${o.name}: the caller cancels a client stream and a bidirectional stream: the handler's input ends with SIPC_ERR_CANCELLED and its signal fires`, async (t) => {
    t.timeout(60_000);
    const ids = identities();
    const seen: Array<{ reason: unknown; inputError: unknown }> = [];
    let received = 0;
    const done: Array<() => void> = [];
    const handlerDone = () => new Promise<void>((resolve) => done.push(resolve));
    const { address } = await streamServer(t, o, ids, (server) => {
      const record = async (items: AsyncIterable<unknown>, signal: AbortSignal) => {
        try {
          for await (const _ of items) received++;
        } catch (err) {
          seen.push({ reason: signal.reason, inputError: err });
          done.shift()?.();
          throw err;
        }
      };
      server.handle('upload', async (items, { signal }) => {
        await record(items, signal);
        return 0;
      });
      server.handle('upper', async function* (items, { signal }) {
        yield 'first';
        await record(items, signal);
      });
    });
    const client = createClient<StreamService>(await secureClient(t, o, address, ids));

    // Client stream: abort the caller's signal.
    const upload = counting();
    const controller = new AbortController();
    const handled = handlerDone();
    const call = client.request('upload', upload.iterable, { signal: controller.signal });
    await until(() => received >= 5, 'items at the handler');
    controller.abort(new Error('enough'));
    const err = await t.throwsAsync(call);
    t.true(isSecureIpcError(err, 'SIPC_ERR_ABORTED'), String(err));
    await upload.returned;
    await handled;
    t.true(isSecureIpcError(seen[0]?.reason, 'SIPC_ERR_CANCELLED'), String(seen[0]?.reason));
    t.true(isSecureIpcError(seen[0]?.inputError, 'SIPC_ERR_CANCELLED'), String(seen[0]?.inputError));

    // Bidirectional: break out of the output stream.
    received = 0;
    const words = counting();
    const handled2 = handlerDone();
    const out = await client.request(
      'upper',
      (async function* () {
        for await (const n of words.iterable) yield String(n);
      })(),
    );
    for await (const s of out) {
      t.is(s, 'first');
      await until(() => received >= 5, 'items at the bidirectional handler');
      break;
    }
    await words.returned;
    await handled2;
    t.true(isSecureIpcError(seen[1]?.reason, 'SIPC_ERR_CANCELLED'), String(seen[1]?.reason));
    t.true(isSecureIpcError(seen[1]?.inputError, 'SIPC_ERR_CANCELLED'), String(seen[1]?.inputError));
    await until(() => client.inFlight === 0, 'the slots to be freed');
    t.is(await client.ping('still up'), 'still up');
  });

  test(`${o.name}: a handler that stops reading its input, or answers before reading it, stops the caller's iterable`, async (t) => {
    t.timeout(60_000);
    const ids = identities();
    let stopped: Promise<void> | undefined;
    const { address } = await streamServer(t, o, ids, (server) => {
      // Reads three items, breaks out, and answers only once the caller's iterable was returned.
      server.handle('upload', async (items) => {
        let sum = 0;
        let n = 0;
        for await (const x of items) {
          sum += x;
          if (++n === 3) break;
        }
        await stopped;
        return sum;
      });
      // Answers at once, input untouched.
      server.handle('ignore', () => 42);
      // Bidirectional: stops reading after two items, keeps answering.
      server.handle('upper', async function* (items) {
        let n = 0;
        for await (const s of items) {
          yield s;
          if (++n === 2) break;
        }
        await stopped;
        yield 'after';
      });
    });
    const client = createClient<StreamService>(await secureClient(t, o, address, ids));

    const first = counting();
    stopped = first.returned;
    t.is(await client.request('upload', first.iterable), 0 + 1 + 2);
    t.true(first.finished);
    t.true(first.pulled <= 3 + WINDOW, `pulled ${first.pulled}`);

    const second = counting();
    t.is(await client.request('ignore', second.iterable), 42);
    await second.returned;
    t.true(second.pulled <= WINDOW, `pulled ${second.pulled}`);

    const third = counting();
    stopped = third.returned;
    const out: string[] = [];
    const bidi = await client.request(
      'upper',
      (async function* () {
        for await (const n of third.iterable) yield String(n);
      })(),
    );
    for await (const s of bidi) out.push(s);
    t.deepEqual(out, ['0', '1', 'after']);
    t.true(third.finished);
    t.is(client.inFlight, 0);
  });

  test(`${o.name}: an error in the caller's input iterable cancels the request with SIPC_ERR_STREAM; the handler sees SIPC_ERR_CANCELLED`, async (t) => {
    t.timeout(60_000);
    const ids = identities();
    let handlerSaw: unknown;
    let signalReason: unknown;
    let resolveEnded: () => void = () => {};
    const ended = new Promise<void>((resolve) => {
      resolveEnded = resolve;
    });
    const { address } = await streamServer(t, o, ids, (server) => {
      server.handle('upload', async (items, { signal }) => {
        try {
          for await (const _ of items);
          return 1;
        } catch (err) {
          handlerSaw = err;
          signalReason = signal.reason;
          throw err;
        } finally {
          resolveEnded();
        }
      });
    });
    const client = createClient<StreamService>(await secureClient(t, o, address, ids));
    const input = counting(Number.POSITIVE_INFINITY, 5);
    const err = (await t.throwsAsync(client.request('upload', input.iterable))) as SecureIpcError;
    t.true(isSecureIpcError(err, 'SIPC_ERR_STREAM'), String(err));
    t.is((err.cause as Error | undefined)?.message, 'the input failed');
    await ended;
    t.true(isSecureIpcError(handlerSaw, 'SIPC_ERR_CANCELLED'), String(handlerSaw));
    t.true(isSecureIpcError(signalReason, 'SIPC_ERR_CANCELLED'), String(signalReason));
    // An input item that cannot be encoded fails the same way, and its iterable is returned.
    let badReturned = false;
    const bad = (async function* () {
      try {
        yield 1;
        yield (() => 1) as unknown as number;
        yield 3;
      } finally {
        badReturned = true;
      }
    })();
    const err2 = (await t.throwsAsync(client.request('upload', bad))) as SecureIpcError;
    t.true(isSecureIpcError(err2, 'SIPC_ERR_STREAM'), String(err2));
    t.true(badReturned);
    t.is(await client.ping('up'), 'up');
  });

  test(`${o.name}: on a version-1 channel a streamed input fails locally with SIPC_ERR_VERSION_MISMATCH; kind 9 is an invalid envelope there`, async (t) => {
    t.timeout(60_000);
    const ids = identities();
    let ran = false;
    const { address } = await streamServer(t, o, ids, (server) => {
      server.handle('upload', () => {
        ran = true;
        return 0;
      });
    });
    const channel = await secureClient(t, o, address, ids, { versions: [1] });
    t.is(channel.version, 1);
    const client = createClient<StreamService>(channel);
    const input = counting();
    const err = await t.throwsAsync(client.request('upload', input.iterable));
    t.true(isSecureIpcError(err, 'SIPC_ERR_VERSION_MISMATCH'), String(err));
    t.is(input.pulled, 0);
    t.is(await client.ping('v1'), 'v1');
    t.false(ran);
    // A hand-built version-1 sender of kind 9 gets SIPC_ERR_BAD_ENVELOPE for its id.
    const raw = await secureClient(t, o, address, ids, { versions: [1] });
    const reply = nextMessage(raw);
    await raw.send(encode({ v: 1, k: 9, id: 7, p: 1 }));
    const answer = decode(await reply) as { k: number; id: number; e: { code: string } };
    t.is(answer.k, 3);
    t.is(answer.id, 7);
    t.is(answer.e.code, 'SIPC_ERR_BAD_ENVELOPE');
  });

  test(`${o.name}: input items beyond the credit from a hand-built peer close the channel with SIPC_ERR_PROTOCOL`, async (t) => {
    t.timeout(60_000);
    const ids = identities();
    const { address, errors } = await streamServer(t, o, ids, (server) => {
      // Never reads its input: no credit is ever granted beyond the window.
      server.handle('upload', () => new Promise<number>(() => {}));
    });
    const raw: SecureChannel = await secureClient(t, o, address, ids);
    t.is(raw.version, 4);
    const closed = channelClosed(raw);
    await raw.send(encode({ v: 1, k: 1, id: 1, m: 'upload', h: { stream: true } }));
    for (let i = 0; i < WINDOW; i++) await raw.send(encode({ v: 1, k: 9, id: 1, p: i }));
    // Within the credit the channel still works.
    const pong = nextMessage(raw);
    await raw.send(encode({ v: 1, k: 1, id: 2, m: '$ping', p: 'alive' }));
    t.like(decode(await pong), { k: 2, id: 2, p: 'alive' });
    await raw.send(encode({ v: 1, k: 9, id: 1, p: WINDOW }));
    await Promise.race([closed, once(raw, 'close')]);
    t.true(raw.closed);
    await until(() => errors.length > 0, 'the server to report the violation');
    t.true(isSecureIpcError(errors[0], 'SIPC_ERR_PROTOCOL'), String(errors[0]));
  });
}
