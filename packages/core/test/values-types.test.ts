// The TS types agree with the value model (docs/protocol.md, "Values"): a service method whose
// params or result cannot cross fails to compile (tsc -b fails the build if any @ts-expect-error
// below stops being an error), and what arrives is typed as it arrives.
import test from 'ava';
import type { RpcClient } from '../src/rpc/client.js';
import { createPolicy } from '../src/rpc/policy.js';
import type { RpcServer } from '../src/rpc/server.js';
import type { CrossesWire, Received } from '../src/rpc/service-types.js';
import { memoryRpc } from './fixtures/memory-rpc.js';

interface Good {
  'a.big'(p: { n: bigint; at: Date; data: Buffer }): { keys: Map<number, string>; tags: Set<string> };
  'a.none'(p: undefined): void;
  'a.tuple'(p: [string, number | null]): readonly string[];
  'a.stream'(p: { from: number }): AsyncIterable<{ n: bigint }>;
  'a.optional'(p: { name?: string; label: string | undefined }): null;
  'a.unknown'(p: unknown): unknown;
}

interface Bad {
  'b.fn'(p: { onDone: () => void }): null;
  'b.error'(p: null): { err: Error };
  'b.symbol'(p: { s: symbol }): null;
  'b.hole'(p: (string | undefined)[]): null;
  'b.key'(p: Map<{ id: number }, string>): null;
  'b.typed'(p: null): Float64Array;
  'b.class'(p: { when: Promise<number> }): null;
}

// Compile-time checks of the predicate itself.
const yes: [
  CrossesWire<{ a: bigint; b: Uint8Array; c: Date[]; d: Map<Uint8Array | number, null>; e?: string }>,
  CrossesWire<undefined>,
  CrossesWire<AsyncIterable<string>>,
  CrossesWire<unknown>,
] = [true, true, true, true];
const no: [
  CrossesWire<{ f: () => void }>,
  CrossesWire<{ deep: { deeper: [{ s: symbol }] } }>,
  CrossesWire<Error>,
  CrossesWire<Set<WeakMap<object, 1>>>,
  CrossesWire<string | (() => 1)>,
] = [false, false, false, false, false];
void yes;
void no;

export function clientTypes(client: RpcClient<Good & Bad>): void {
  // What arrives: a bigint as number | bigint, a Buffer as Uint8Array.
  const received: Promise<{ keys: Map<number, string>; tags: Set<string> }> = client.request('a.big', {
    n: 1n,
    at: new Date(),
    data: Buffer.from([1]),
  });
  void received;
  void client.request('a.none', undefined);
  void client.request('a.tuple', ['x', null]);
  void client.request('a.optional', { label: undefined });
  void client.request('a.unknown', { anything: 1 });
  // @ts-expect-error a function cannot cross
  void client.request('b.fn', { onDone: () => {} });
  // @ts-expect-error a symbol cannot cross
  void client.request('b.symbol', { s: Symbol() });
  // @ts-expect-error undefined in an array cannot cross
  void client.request('b.hole', ['a', undefined]);
  // @ts-expect-error an object Map key cannot cross
  void client.request('b.key', new Map([[{ id: 1 }, 'x']]));
  // @ts-expect-error a Promise cannot cross
  void client.request('b.class', { when: Promise.resolve(1) });
}

export function serverTypes(server: RpcServer<Good & Bad>): void {
  server.handle('a.big', (p) => {
    const n: number | bigint = p.n;
    const data: Uint8Array = p.data;
    // @ts-expect-error a bigint param arrives as number | bigint, not bigint only
    const only: bigint = p.n;
    // @ts-expect-error a Buffer param arrives as a Uint8Array
    const buffer: Buffer = p.data;
    void [n, data, only, buffer];
    return { keys: new Map([[1, 'a']]), tags: new Set(['t']) };
  });
  // @ts-expect-error a result holding an Error cannot cross
  server.handle('b.error', () => ({ err: new Error('x') }));
  // @ts-expect-error a Float64Array result cannot cross
  server.handle('b.typed', () => new Float64Array(1));
}

interface Events {
  'e.ok': { n: bigint; at: Date };
  'e.fn': { onDone: () => void };
}

export function publishTypes(client: RpcClient<Good, Events>, server: RpcServer<Good, Events>): void {
  void client.publish('e.ok', { n: 1n, at: new Date() });
  void server.publish('e.ok', { n: 1n, at: new Date() });
  // @ts-expect-error an event payload holding a function cannot cross
  void client.publish('e.fn', { onDone: () => {} });
  // @ts-expect-error the same on the server
  void server.publish('e.fn', { onDone: () => {} });
  // Listeners get what arrives: a bigint as number | bigint.
  client.subscribe('e.ok', (p) => {
    const n: number | bigint = p.n;
    // @ts-expect-error a bigint payload field arrives as number | bigint
    const only: bigint = p.n;
    void [n, only];
  });
  server.subscribe('e.o*', (p) => {
    const at: Date = p.at;
    void at;
  });
}

// The received mapping, checked structurally.
const mapped: Received<{ n: bigint; b: Buffer; m: ReadonlyMap<string, bigint[]> }> = {
  n: 1,
  b: new Uint8Array(0),
  m: new Map([['k', [1, 2n]]]),
};
void mapped;

const everything = createPolicy({ defaultRoles: ['all'], roles: { all: { call: ['*'] } } });

test('values typed as Good cross at run time as their types say', async (t) => {
  const { server, client } = await memoryRpc(t, { policy: everything });
  const typed = server as unknown as RpcServer<Good>;
  typed.handle('a.big', (p) => ({
    keys: new Map([[Number(p.n), p.data.length.toString()]]),
    tags: new Set([p.at.toISOString()]),
  }));
  const result = await (client as unknown as RpcClient<Good>).request('a.big', {
    n: 2n ** 60n,
    at: new Date(0),
    data: Buffer.from([1, 2, 3]),
  });
  t.deepEqual(result, { keys: new Map([[2 ** 60, '3']]), tags: new Set(['1970-01-01T00:00:00.000Z']) });
});
