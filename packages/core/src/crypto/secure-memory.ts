/**
 * Fixed-size secret blocks carved out of a few sodium_malloc'd slabs.
 *
 * Why not one sodium_malloc per block: each call maps guard pages around page-rounded memory and
 * mlocks it, so a 64-byte key block costs 4 memory mappings, ~10 KiB of RSS and ~42 µs per
 * malloc + free pair (measured here, tools/bench micro). A process holding ~16,000 channel ends
 * then hits vm.max_map_count (65,530) and V8 aborts. A slab keeps what matters (the whole slab
 * is locked, guarded and freed with sodium_free; every block is wiped with sodium_memzero when it
 * is released) at 80 bytes and well under a microsecond per block.
 *
 * Slabs grow geometrically (16 KiB up to 1 MiB) so a process with one channel stays small and one
 * with tens of thousands needs a handful of slabs. A slab is freed once its last block is released,
 * except that one empty slab per pool is kept as a reserve: without it a process that connects and
 * closes one channel at a time would pay a sodium_malloc + sodium_free per connection again. The
 * reserve holds no secret (every block was wiped on release) and `trimSecureMemory()` frees it.
 */

import { createError } from '../errors.js';
import { sodium } from './sodium.js';

const MIN_SLAB_BYTES = 16 * 1024;
const MAX_SLAB_BYTES = 1024 * 1024;
const ALIGN = 16;

class Slab {
  readonly memory: Buffer;
  readonly free: number[] = [];
  readonly capacity: number;
  live = 0;

  constructor(bytes: number, blockSize: number) {
    this.memory = sodium.sodium_malloc(bytes);
    sodium.sodium_memzero(this.memory); // sodium_malloc fills with 0xdb; blocks are handed out zeroed
    this.capacity = Math.floor(bytes / blockSize);
    // Lowest offsets first out (pop from the end).
    for (let i = this.capacity - 1; i >= 0; i--) this.free.push(i * blockSize);
  }
}

/** One secret block; `buffer` is valid until `release()`. */
export class SecureBlock {
  #buffer: Buffer | undefined;
  readonly #pool: SecureBlockPool;
  readonly #slab: Slab;

  /** @internal */
  constructor(pool: SecureBlockPool, slab: Slab, buffer: Buffer) {
    this.#pool = pool;
    this.#slab = slab;
    this.#buffer = buffer;
  }

  /** The block's memory; throws `SIPC_ERR_CHANNEL_CLOSED` once released. */
  get buffer(): Buffer {
    if (this.#buffer === undefined)
      throw createError('SIPC_ERR_CHANNEL_CLOSED', 'The secure memory block was released');
    return this.#buffer;
  }

  /** True once released. */
  get released(): boolean {
    return this.#buffer === undefined;
  }

  /** Wipe the block and return it to its slab; a second call does nothing. */
  release(): void {
    const buffer = this.#buffer;
    if (buffer === undefined) return;
    this.#buffer = undefined;
    sodium.sodium_memzero(buffer);
    this.#pool.give(this.#slab, buffer.byteOffset - this.#slab.memory.byteOffset);
  }
}

/** Hands out zeroed blocks of one size from sodium_malloc'd slabs. */
export class SecureBlockPool {
  /** Bytes per block (rounded up to 16). */
  readonly blockSize: number;
  readonly #slabs: Slab[] = [];
  #reserve: Slab | undefined;
  #current: Slab | undefined; // the slab blocks are taken from while it has room

  /** A pool of `size`-byte blocks. */
  constructor(size: number) {
    if (!Number.isInteger(size) || size <= 0 || size > MIN_SLAB_BYTES)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'Secure block size out of range');
    this.blockSize = Math.ceil(size / ALIGN) * ALIGN;
  }

  /** Slabs currently allocated (live or reserve). */
  get slabCount(): number {
    return this.#slabs.length + (this.#reserve === undefined ? 0 : 1);
  }

  /** Blocks handed out and not yet released. */
  get liveBlocks(): number {
    let n = 0;
    for (const slab of this.#slabs) n += slab.live;
    return n;
  }

  /** A zeroed block. */
  allocate(): SecureBlock {
    let slab = this.#current;
    if (slab === undefined || slab.free.length === 0) slab = this.#current = this.#pick();
    const offset = slab.free.pop()!;
    slab.live++;
    const buffer = slab.memory.subarray(offset, offset + this.blockSize);
    return new SecureBlock(this, slab, buffer);
  }

  /** Free the empty reserve slab, if any. */
  trim(): void {
    if (this.#reserve === undefined) return;
    sodium.sodium_free(this.#reserve.memory);
    this.#reserve = undefined;
  }

  /** @internal A released (already wiped) block goes back to its slab. */
  give(slab: Slab, offset: number): void {
    slab.free.push(offset);
    if (--slab.live > 0) return;
    // Empty: keep it as the reserve (freeing any older one) or free it.
    const at = this.#slabs.indexOf(slab);
    if (at >= 0) this.#slabs.splice(at, 1);
    if (this.#current === slab) this.#current = undefined;
    this.trim();
    this.#reserve = slab;
  }

  // A slab with room: an existing one, the reserve, or a new one twice the size of the last.
  #pick(): Slab {
    for (const slab of this.#slabs) if (slab.free.length > 0) return slab;
    let slab = this.#reserve;
    if (slab !== undefined) this.#reserve = undefined;
    else {
      let capacity = 0;
      for (const s of this.#slabs) capacity += s.capacity * this.blockSize;
      const bytes = Math.min(MAX_SLAB_BYTES, Math.max(MIN_SLAB_BYTES, capacity));
      slab = new Slab(bytes, this.blockSize);
    }
    this.#slabs.push(slab);
    return slab;
  }
}

const pools = new Map<number, SecureBlockPool>();

/** The process-wide pool for blocks of `size` bytes (one pool per size). */
export function secureBlockPool(size: number): SecureBlockPool {
  let pool = pools.get(size);
  if (pool === undefined) {
    pool = new SecureBlockPool(size);
    pools.set(size, pool);
  }
  return pool;
}

/** Free every pool's empty reserve slab (nothing live is touched). */
export function trimSecureMemory(): void {
  for (const pool of pools.values()) pool.trim();
}
