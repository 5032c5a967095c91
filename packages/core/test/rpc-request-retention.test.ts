// Issue 12, row 1 (second half): the decoded request stayed referenced until its reply was written,
// because the dispatcher awaited the handler in a frame that still held the params (and an
// idempotent call's closure held the whole envelope). A handler that has what it needs from a
// large request must not make the server keep the request alive while its reply is pending.
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import test from 'ava';
import { createPolicy } from '../src/rpc/policy.js';
import type { HandlerContext } from '../src/rpc/service-types.js';
import { memoryRpc } from './fixtures/memory-rpc.js';

// A real full GC in this test process (ava runs each file in its own process).
setFlagsFromString('--expose-gc');
const gc = runInNewContext('gc') as () => void;

const policy = createPolicy({ roles: { all: { call: ['*'] } }, defaultRoles: ['all'] });
const tick = () => new Promise<void>((r) => setImmediate(r));

/** A large request: 20,000 small objects (about 2 MB of heap decoded, 0.3 MB on the wire). */
const largeParams = () => Array.from({ length: 20_000 }, (_, i) => ({ i, s: `item ${i}` }));

/** Collected after a few full GCs? */
async function collected(ref: WeakRef<object>): Promise<boolean> {
  for (let i = 0; i < 5 && ref.deref() !== undefined; i++) {
    await tick();
    gc();
  }
  return ref.deref() === undefined;
}

type Handle = (method: string, handler: (params: unknown, context: HandlerContext) => unknown) => void;

for (const variant of ['plain', 'idempotent', 'stream'] as const) {
  test(`${variant} request: its params are collectable while its handler runs and its reply is pending`, async (t) => {
    const { server, client } = await memoryRpc(t, { policy });
    let ref: WeakRef<object> | undefined;
    let release!: () => void;
    const released = new Promise<void>((r) => {
      release = r;
    });
    const called = new Promise<void>((entered) => {
      (server as unknown as { handle: Handle }).handle('hold', (params) => {
        // The handler keeps only a count; the request itself is no longer needed.
        const n = (params as unknown[]).length;
        ref = new WeakRef(params as object);
        entered();
        if (variant === 'stream')
          return (async function* () {
            await released;
            yield n;
          })();
        return released.then(() => n);
      });
    });
    const answer = client.request(
      'hold' as never,
      largeParams() as never,
      (variant === 'idempotent' ? { idempotencyKey: 'k1' } : {}) as never,
    ) as Promise<unknown>;
    await called;
    t.true(await collected(ref!), 'the decoded request was collected while its reply was pending');
    release();
    const result = await answer;
    if (variant === 'stream') {
      const items: unknown[] = [];
      for await (const item of result as AsyncIterable<unknown>) items.push(item);
      t.deepEqual(items, [20_000]);
    } else t.is(result, 20_000);
  });
}
