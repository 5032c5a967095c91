import test from 'ava';
import { KEY_BLOCK, KeySlab } from '../src/micro/key-slab.js';

test('slab blocks are disjoint, wiped on release and reused', (t) => {
  const slab = new KeySlab(4 * KEY_BLOCK);
  const blocks = [slab.take()!, slab.take()!, slab.take()!, slab.take()!];
  t.is(slab.take(), undefined, 'full after four blocks');
  blocks.forEach((b, i) => {
    b.fill(i + 1);
  });
  blocks.forEach((b, i) => {
    t.true(
      b.every((x) => x === i + 1),
      `block ${i} untouched by the others`,
    );
  });
  slab.release(blocks[2]!);
  const again = slab.take()!;
  t.is(again.byteOffset, blocks[2]!.byteOffset);
  t.true(
    again.every((x) => x === 0),
    'wiped',
  );
});
