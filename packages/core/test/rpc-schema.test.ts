import type { StandardSchemaV1 as SpecSchema } from '@standard-schema/spec';
import test from 'ava';
import * as v from 'valibot';
import { z } from 'zod';
import { PublicError } from '../src/envelope/wire-errors.js';
import { isSecureIpcError, type SecureIpcError } from '../src/errors.js';
import type { HandlerFailure } from '../src/rpc/dispatcher.js';
import { createPolicy } from '../src/rpc/policy.js';
import {
  MAX_ISSUE_MESSAGE_BYTES,
  MAX_ISSUE_PATH,
  MAX_ISSUES,
  type StandardSchemaV1,
  type ValidationErrorData,
} from '../src/rpc/schema.js';
import { createServer } from '../src/rpc/server.js';
import { memoryRpc } from './fixtures/memory-rpc.js';
import { endless } from './helpers.js';

const policy = createPolicy({ roles: { all: { call: ['*'] } }, defaultRoles: ['all'] });

interface Api {
  'files.read'(p: { path: string; limit?: number }): { path: string; limit: number };
  'math.add'(p: { a: number; b: number }): number;
  'user.get'(p: { id: string }): { id: string; name: string };
  'slow.check'(p: { name: string }): string;
  'custom.take'(p: unknown): number;
}

/** Exact type equality, for compile-time assertions. */
type Equal<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
const assertType = <T extends true>(_: T) => {};

async function invalid(
  t: import('ava').ExecutionContext,
  promise: Promise<unknown>,
): Promise<SecureIpcError> {
  const err = await t.throwsAsync(promise);
  t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), String(err));
  return err as SecureIpcError;
}

const dataOf = (err: SecureIpcError) => err.details?.data as ValidationErrorData;

test('zod: params are validated before the handler, which gets the schema output (typed)', async (t) => {
  const { server, client } = await memoryRpc<Api>(t, { policy });
  const seen: unknown[] = [];
  server.handle(
    'files.read',
    { params: z.object({ path: z.string().min(1), limit: z.number().int().default(10) }) },
    (p) => {
      assertType<Equal<typeof p, { path: string; limit: number }>>(true);
      seen.push(p);
      return p;
    },
  );
  t.deepEqual(await client.request('files.read', { path: '/a' }), { path: '/a', limit: 10 });
  const err = await invalid(t, client.request('files.read', { path: '', limit: 1.5 }));
  t.deepEqual(seen, [{ path: '/a', limit: 10 }], 'the handler never ran for invalid params');
  const data = dataOf(err);
  t.is(data.total, 2);
  t.deepEqual(
    data.issues.map((i) => i.path),
    [['path'], ['limit']],
  );
  for (const issue of data.issues) t.true(issue.message.length > 0);
  t.regex(err.message, /^Invalid params\.path: .+ \(and 1 more issue\)$/);
  t.is(err.details?.remote, true);
});

test('valibot: an async schema is awaited; its issues cross with their paths, never the value', async (t) => {
  const { server, client } = await memoryRpc<Api>(t, { policy });
  const taken = new Set(['alice']);
  server.handle(
    'slow.check',
    {
      params: v.pipeAsync(
        v.object({ name: v.string() }),
        v.checkAsync(async (p) => {
          await new Promise((r) => setTimeout(r, 5));
          return !taken.has(p.name);
        }, 'That name is taken'),
      ),
    },
    (p) => `ok ${p.name}`,
  );
  t.is(await client.request('slow.check', { name: 'bob' }), 'ok bob');
  const err = await invalid(t, client.request('slow.check', { name: 'alice' }));
  t.deepEqual(dataOf(err), { issues: [{ path: [], message: 'That name is taken' }], total: 1 });
  // What crossed is the issue list only: no input, no expected/received fields of the library.
  const wrong = await invalid(t, client.request('slow.check', { name: 42 } as never));
  const issue = dataOf(wrong).issues[0]!;
  t.deepEqual(Object.keys(issue).sort(), ['message', 'path']);
  t.deepEqual(issue.path, ['name']);
});

test('a hand-written Standard Schema: path segments of every form; issues bounded in number and size', async (t) => {
  const { server, client } = await memoryRpc<Api>(t, { policy });
  const sym = Symbol('where');
  const deep = Array.from({ length: MAX_ISSUE_PATH + 5 }, (_, i) => i);
  const many: StandardSchemaV1<unknown, number> = {
    '~standard': {
      version: 1,
      vendor: 'hand',
      validate: (value) =>
        typeof value === 'number'
          ? { value: value * 2 }
          : {
              issues: [
                { message: '€'.repeat(200), path: [{ key: 'a' }, 3, sym] },
                { message: 'deep', path: deep },
                { message: 'k'.repeat(10), path: [{ key: 'x'.repeat(1000) }] },
                ...Array.from({ length: 40 }, (_, i) => ({ message: `m${i}` })),
              ],
            },
    },
  };
  server.handle('custom.take', { params: many }, (n) => {
    assertType<Equal<typeof n, number>>(true);
    return n;
  });
  t.is(await client.request('custom.take', 21), 42);
  const data = dataOf(await invalid(t, client.request('custom.take', 'x')));
  t.is(data.total, 43);
  t.is(data.issues.length, MAX_ISSUES);
  const [first, second, third] = data.issues;
  t.deepEqual(first!.path, ['a', 3, 'Symbol(where)']);
  // 200 × 3-byte characters cut at a character boundary under the byte limit.
  t.is(first!.message, '€'.repeat(Math.floor(MAX_ISSUE_MESSAGE_BYTES / 3)));
  t.is(second!.path.length, MAX_ISSUE_PATH);
  t.is((third!.path[0] as string).length, MAX_ISSUE_MESSAGE_BYTES);
  t.deepEqual(data.issues[3], { path: [], message: 'm0' });
});

test('the result schema: a valid result is sent as its output; an invalid one is an opaque server bug, reported with its id', async (t) => {
  const { server, client } = await memoryRpc<Api>(t, { policy });
  const failures: HandlerFailure[] = [];
  server.on('handlerError', (f) => failures.push(f));
  const user = z.object({ id: z.string(), name: z.string().transform((s) => s.trim()) });
  server.handle('user.get', { params: z.object({ id: z.string() }), result: user }, (p) =>
    p.id === 'bad' ? ({ id: p.id, name: 7 } as never) : { id: p.id, name: '  Ann ' },
  );
  t.deepEqual(await client.request('user.get', { id: 'u1' }), { id: 'u1', name: 'Ann' });
  const err = await t.throwsAsync(client.request('user.get', { id: 'bad' }));
  t.true(isSecureIpcError(err, 'SIPC_ERR_HANDLER'));
  const correlationId = (err as SecureIpcError).details?.correlationId;
  t.is(typeof correlationId, 'string');
  t.notRegex((err as Error).message, /name|result/);
  t.is(failures.length, 1);
  t.is(failures[0]!.correlationId, correlationId as string);
  t.is(failures[0]!.method, 'user.get');
  const local = failures[0]!.error as SecureIpcError;
  t.true(isSecureIpcError(local, 'SIPC_ERR_HANDLER'));
  t.regex(local.message, /^The result of user\.get failed its schema: result\.name: /);
  t.deepEqual(
    (local.details!.issues as { path: unknown[] }[]).map((i) => i.path),
    [['name']],
  );
});

test('a schema that throws, and an async handler with a result schema, fail opaque / pass as they should', async (t) => {
  const { server, client } = await memoryRpc<Api>(t, { policy });
  const failures: HandlerFailure[] = [];
  server.on('handlerError', (f) => failures.push(f));
  const broken: StandardSchemaV1<{ a: number; b: number }> = {
    '~standard': {
      version: 1,
      vendor: 'hand',
      validate: () => {
        throw new Error('schema bug');
      },
    },
  };
  server.handle('math.add', { params: broken }, (p) => p.a + p.b);
  const err = await t.throwsAsync(client.request('math.add', { a: 1, b: 2 }));
  t.true(isSecureIpcError(err, 'SIPC_ERR_HANDLER'));
  t.is((failures[0]!.error as Error).message, 'schema bug');
  server.handle('custom.take', { result: v.number() }, async () => 5);
  t.is(await client.request('custom.take', null), 5);
});

test('registration refuses what is not a Standard Schema, and a missing handler', (t) => {
  const server = createServer<Api>();
  const bad = t.throws(() => server.handle('math.add', { params: { parse() {} } as never }, () => 1));
  t.true(isSecureIpcError(bad, 'SIPC_ERR_INVALID_ARGUMENT'));
  t.regex(bad!.message, /params schema of math\.add is not a Standard Schema/);
  const noHandler = t.throws(() => server.handle('math.add', { params: z.any() }, undefined as never));
  t.true(isSecureIpcError(noHandler, 'SIPC_ERR_INVALID_ARGUMENT'));
  // The first registration failed, so the method is still free.
  server.handle('math.add', { params: z.object({ a: z.number(), b: z.number() }) }, (p) => p.a + p.b);
  t.pass();
});

test('the types: schemas must agree with the service; the copied interface matches @standard-schema/spec', (t) => {
  const server = createServer<Api>();
  // A schema that needs a field the service type does not promise would refuse well-typed calls.
  server.handle(
    'math.add',
    // @ts-expect-error: the schema requires `c`, which callers of the service never send
    { params: z.object({ a: z.number(), b: z.number(), c: z.number() }) },
    () => 1,
  );
  server.handle(
    'user.get',
    // @ts-expect-error: the result schema must produce the service's result type
    { result: z.object({ id: z.number() }) },
    () => ({ id: 1 }),
  );
  // @ts-expect-error: the handler must return what the result schema accepts
  server.handle('custom.take', { result: z.number() }, () => 'not a number');
  // Untyped servers infer the handler's params from the schema alone.
  createServer().handle('anything', { params: z.object({ n: z.number() }) }, (p) => {
    assertType<Equal<typeof p, { n: number }>>(true);
    return p.n;
  });
  // Both directions: our copy of the interface and the published one are the same type.
  const ours: StandardSchemaV1<string> = z.string();
  const theirs: SpecSchema<string> = ours;
  const back: StandardSchemaV1<string> = theirs;
  t.is(back['~standard'].vendor, 'zod');
});

interface StreamApi {
  'files.upload'(p: AsyncIterable<{ name: string; size: number }>): number;
  'echo.double'(p: AsyncIterable<{ n: number }>): AsyncIterable<number>;
  'count.to'(p: { n: number }): AsyncIterable<number>;
  'custom.items'(p: AsyncIterable<unknown>): number;
}

test('zod, streamed input: each item is validated as the handler pulls it; the first invalid one ends the call and stops the input', async (t) => {
  const { server, client } = await memoryRpc<StreamApi>(t, { policy });
  const item = z.object({
    name: z.string().transform((s) => s.trim()),
    size: z.number().int().nonnegative(),
  });
  let seen: { name: string; size: number }[] = [];
  let thrown: unknown;
  let signalReason: unknown;
  let handlerDone!: () => void;
  const handlerEnded = new Promise<void>((r) => {
    handlerDone = r;
  });
  server.handle('files.upload', { params: item }, async (items, { signal }) => {
    assertType<Equal<typeof items, AsyncIterable<{ name: string; size: number }>>>(true);
    seen = [];
    try {
      for await (const file of items) seen.push(file);
    } catch (err) {
      thrown = err;
      signalReason = signal.reason;
      handlerDone();
      return -1; // dropped: the call has ended already
    }
    return seen.reduce((sum, f) => sum + f.size, 0);
  });
  const good = (async function* () {
    yield { name: ' a ', size: 1 };
    yield { name: 'b', size: 2 };
  })();
  t.is(await client.request('files.upload', good), 3);
  t.deepEqual(seen, [
    { name: 'a', size: 1 },
    { name: 'b', size: 2 },
  ]);

  // Item 3 is invalid; the caller's input is endless, so only stopping it ends the upload.
  const { source, state } = endless((i) => ({ name: `f${i}`, size: i === 3 ? -1.5 : i }));
  const err = await invalid(t, client.request('files.upload', source));
  const data = dataOf(err);
  t.is(data.total, 1);
  t.deepEqual(
    data.issues.map((i) => i.path),
    [[3, 'size']],
  );
  t.regex(err.message, /^Invalid input\[3\]\.size: .+$/);
  await handlerEnded;
  t.deepEqual(
    seen.map((f) => f.name),
    ['f0', 'f1', 'f2'],
    'the handler got the valid items before the invalid one, never that one',
  );
  // The handler's iteration threw the same public error, and its signal fired with it.
  t.true(thrown instanceof PublicError, String(thrown));
  t.is((thrown as PublicError).code, 'SIPC_ERR_INVALID_ARGUMENT');
  t.is((thrown as PublicError).message, err.message);
  t.deepEqual((thrown as PublicError).data, data);
  t.is(signalReason, thrown);
  // The answer ended the input at the caller: its endless iterable was returned.
  t.is(await client.request('files.upload', (async function* () {})()), 0);
  t.true(state.returned);
});

test('valibot, bidirectional: an async item schema on the input and a result schema on each output item', async (t) => {
  const { server, client } = await memoryRpc<StreamApi>(t, { policy });
  server.handle(
    'echo.double',
    {
      params: v.pipeAsync(
        v.object({ n: v.number() }),
        v.checkAsync(async (p) => {
          await new Promise((r) => setTimeout(r, 1));
          return p.n !== 13;
        }, 'unlucky'),
      ),
      result: v.pipe(v.number(), v.maxValue(100)),
    },
    async function* (items) {
      assertType<Equal<typeof items, AsyncIterable<{ n: number }>>>(true);
      for await (const { n } of items) yield n * 2;
    },
  );
  const up = (ns: number[]) =>
    (async function* () {
      for (const n of ns) yield { n };
    })();
  const out: number[] = [];
  for await (const n of await client.request('echo.double', up([1, 2, 3]))) out.push(n);
  t.deepEqual(out, [2, 4, 6]);
  // An invalid input item: the error ends the output stream after the items already sent.
  const got: number[] = [];
  const err = await t.throwsAsync(async () => {
    for await (const n of await client.request('echo.double', up([1, 13, 2]))) got.push(n);
  });
  t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), String(err));
  t.deepEqual(dataOf(err as SecureIpcError).issues, [{ path: [1], message: 'unlucky' }]);
  t.regex((err as Error).message, /^Invalid input\[1\]: unlucky$/);
  t.deepEqual(got, [2]);
});

test('a result schema on a stream checks each item: an invalid one ends the stream, opaque, reported with its index', async (t) => {
  const { server, client } = await memoryRpc<StreamApi>(t, { policy });
  const failures: HandlerFailure[] = [];
  server.on('handlerError', (f) => failures.push(f));
  let returned = false;
  server.handle(
    'count.to',
    {
      result: z
        .number()
        .int()
        .transform((n) => n * 10),
    },
    async function* (p) {
      try {
        for (let i = 1; i <= p.n; i++) yield i === 3 ? 2.5 : i;
      } finally {
        returned = true;
      }
    },
  );
  const got: number[] = [];
  for await (const n of await client.request('count.to', { n: 2 })) got.push(n);
  t.deepEqual(got, [10, 20], 'each item is sent as the schema output');
  got.length = 0;
  const err = await t.throwsAsync(async () => {
    for await (const n of await client.request('count.to', { n: 100 })) got.push(n);
  });
  t.true(isSecureIpcError(err, 'SIPC_ERR_HANDLER'), String(err));
  t.deepEqual(got, [10, 20], 'the items before the invalid one arrived');
  t.true(returned, "the handler's generator was returned");
  const correlationId = (err as SecureIpcError).details?.correlationId;
  t.is(failures.length, 1);
  t.is(failures[0]!.correlationId, correlationId as string);
  const local = failures[0]!.error as SecureIpcError;
  t.regex(local.message, /^The result of count\.to failed its schema: result\[2\]: /);
  t.deepEqual(
    (local.details!.issues as { path: unknown[] }[]).map((i) => i.path),
    [[2]],
  );
});

test('streamed input: item paths stay within the bound with the index first; a schema that throws on an item is opaque', async (t) => {
  const { server, client } = await memoryRpc<StreamApi>(t, { policy });
  const failures: HandlerFailure[] = [];
  server.on('handlerError', (f) => failures.push(f));
  const deep = Array.from({ length: MAX_ISSUE_PATH + 5 }, (_, i) => `k${i}`);
  const hand: StandardSchemaV1<unknown, unknown> = {
    '~standard': {
      version: 1,
      vendor: 'hand',
      validate: (value) => {
        if (value === 'boom') throw new Error('schema bug');
        return value === 'ok' ? { value } : { issues: [{ message: 'deep', path: deep }] };
      },
    },
  };
  server.handle('custom.items', { params: hand }, async (items) => {
    let n = 0;
    for await (const _ of items) n++;
    return n;
  });
  const up = (xs: unknown[]) =>
    (async function* () {
      yield* xs;
    })();
  t.is(await client.request('custom.items', up(['ok', 'ok'])), 2);
  const data = dataOf(await invalid(t, client.request('custom.items', up(['ok', 'ok', 'ok', 'ok', 'no']))));
  t.is(data.issues[0]!.path.length, MAX_ISSUE_PATH);
  t.deepEqual(data.issues[0]!.path.slice(0, 3), [4, 'k0', 'k1']);
  const err = await t.throwsAsync(client.request('custom.items', up(['ok', 'boom'])));
  t.true(isSecureIpcError(err, 'SIPC_ERR_HANDLER'), String(err));
  t.is(failures.length, 1);
  t.is((failures[0]!.error as Error).message, 'schema bug');
});

test('the types of stream schemas: the params schema describes an input item, the result schema a stream item', (t) => {
  createServer<StreamApi>().handle(
    'files.upload',
    // @ts-expect-error: an item schema that requires `mode`, which the service's items lack
    { params: z.object({ name: z.string(), size: z.number(), mode: z.number() }) },
    async () => 1,
  );
  createServer<StreamApi>().handle(
    'count.to',
    // @ts-expect-error: the result schema must produce the stream's item type
    { result: z.string() },
    async function* () {},
  );
  createServer<StreamApi>().handle('count.to', { result: z.number() }, (p) => {
    assertType<Equal<typeof p, { n: number }>>(true);
    return (async function* () {
      yield 1;
    })();
  });
  t.pass();
});
