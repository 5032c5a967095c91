import type { StandardSchemaV1 as SpecSchema } from '@standard-schema/spec';
import test from 'ava';
import * as v from 'valibot';
import { z } from 'zod';
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
