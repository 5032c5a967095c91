/**
 * PROTOTYPE, measurement only (not used by any row): the per-process slab suggested in README.md
 * ("RSS per idle connection") for channel key blocks. One sodium_malloc'd region (locked, guard
 * pages around it) is cut into fixed 80-byte blocks (two 40-byte transport cipher states); a free
 * list hands them out and takes them back, wiping each block on release. It puts a number on the
 * per-connection cost next to one sodium_malloc per key block, which is what core does now.
 */
import sodium from 'sodium-native';

/** Two Noise cipher states (32-byte key + 8-byte nonce each). */
export const KEY_BLOCK = 80;

export class KeySlab {
  readonly #region: Buffer;
  readonly #free: number[] = [];

  constructor(bytes = 64 * 1024) {
    this.#region = sodium.sodium_malloc(bytes);
    for (let off = bytes - KEY_BLOCK; off >= 0; off -= KEY_BLOCK) this.#free.push(off);
  }

  /** A wiped 80-byte block, or undefined when the slab is full (the caller opens another slab). */
  take(): Buffer | undefined {
    const off = this.#free.pop();
    return off === undefined ? undefined : this.#region.subarray(off, off + KEY_BLOCK);
  }

  /** Wipe the block and make it available again. */
  release(block: Buffer): void {
    sodium.sodium_memzero(block);
    this.#free.push(block.byteOffset - this.#region.byteOffset);
  }
}
