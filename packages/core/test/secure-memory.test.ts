import { readFileSync } from 'node:fs';
import test from 'ava';
import { SecureBlockPool, secureBlockPool } from '../src/crypto/secure-memory.js';

function mappings(): number {
  return readFileSync('/proc/self/maps', 'utf8').split('\n').length;
}

test('blocks come zeroed, are wiped on release and are reused', (t) => {
  const pool = new SecureBlockPool(64);
  const a = pool.allocate();
  t.is(a.buffer.byteLength, 64);
  t.true(a.buffer.every((x) => x === 0));
  const view = a.buffer;
  view.fill(0xab);
  const b = pool.allocate(); // keeps the slab alive so the view stays readable
  a.release();
  t.true(
    view.every((x) => x === 0),
    'wiped on release',
  );
  t.true(a.released);
  const c = pool.allocate();
  t.is(c.buffer.byteOffset, view.byteOffset, 'the released block is reused');
  b.release();
  c.release();
  pool.trim();
});

test('live blocks never overlap', (t) => {
  const pool = new SecureBlockPool(40);
  t.is(pool.blockSize, 48);
  const blocks = Array.from({ length: 2000 }, () => pool.allocate());
  // Writing every block with its index must read back intact: no two blocks share a byte.
  blocks.forEach((b, i) => {
    b.buffer.fill(i & 0xff);
  });
  t.true(blocks.every((b, i) => b.buffer.every((x) => x === (i & 0xff))));
  for (const b of blocks) b.release();
  t.is(pool.liveBlocks, 0);
  t.is(pool.slabCount, 1, 'only the reserve slab remains');
  pool.trim();
  t.is(pool.slabCount, 0);
});

test('double release is a no-op and a released block refuses use', (t) => {
  const pool = new SecureBlockPool(64);
  const a = pool.allocate();
  const b = pool.allocate();
  a.release();
  t.notThrows(() => a.release());
  t.is(pool.liveBlocks, 1, 'the second release did not free anything twice');
  t.throws(() => a.buffer, { code: 'SIPC_ERR_CHANNEL_CLOSED' } as never);
  b.release();
  pool.trim();
});

test('empty slabs are freed (one kept as a reserve)', (t) => {
  const pool = new SecureBlockPool(64);
  const blocks = Array.from({ length: 5000 }, () => pool.allocate());
  t.true(pool.slabCount > 1);
  for (const b of blocks) b.release();
  t.is(pool.slabCount, 1);
  pool.trim();
  t.is(pool.slabCount, 0);
});

test('key blocks of 20,000 live channels (both ends) need only a few memory mappings', (t) => {
  if (process.platform !== 'linux') return t.pass('counts /proc/self/maps: Linux only');
  const pool = secureBlockPool(64);
  const before = mappings();
  const blocks = Array.from({ length: 40_000 }, () => pool.allocate());
  const added = mappings() - before;
  // One sodium_malloc per block took 4 mappings each (160,000 here, past vm.max_map_count).
  // The count below also includes whatever the V8 heap mapped for 40,000 block objects.
  t.true(pool.slabCount <= 12, `${pool.slabCount} slabs`);
  t.true(added <= 200, `${added} mappings for 40,000 blocks`);
  for (const b of blocks) b.release();
  pool.trim();
});

test('invalid block sizes are refused', (t) => {
  for (const size of [0, -1, 1.5, 1 << 20])
    t.throws(() => new SecureBlockPool(size), { code: 'SIPC_ERR_INVALID_ARGUMENT' } as never);
});
