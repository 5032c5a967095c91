/**
 * The RFC 9162 §2.1 Merkle tree (RFC 6962 hashing, SHA-256) of the audit log:
 *
 *   leaf  = SHA-256(0x00 || data)          node = SHA-256(0x01 || left || right)
 *   MTH   of an empty tree = SHA-256()     MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n])), k = the
 *                                          largest power of two below n
 *
 * `MerkleTree` keeps the leaf hashes and the roots of the complete (perfect, aligned) subtrees of
 * height 4 and up, one array per level, as transparency-dev/merkle's in-memory tree keeps its
 * levels: node (h, i) is the root of leaves [i·2^h, (i+1)·2^h). Appending costs one hash per leaf
 * amortized; the root of any size and every proof node is a lookup or the fold of at most
 * log2(n) of them, so rootAt, inclusionProof and consistencyProof are O(log n) whatever the size.
 * Heights 1-3 are not stored but rehashed from at most 8 leaves (≤ 7 hashes): that is what makes
 * the tree 36 bytes per leaf (32 + 32·(1/16 + 1/32 + …)) instead of 64.
 *
 * Proofs follow the RFC's recursive definitions (PATH §2.1.3.1, SUBPROOF §2.1.4.1); along the way
 * at most one range is not a perfect subtree (the first right-hand sibling of an incomplete
 * range: below it every range is perfect), so a proof is O(log n) lookups and hashes. They are
 * checked by the RFC's iterative algorithms (§2.1.3.2, §2.1.4.2), which is what other verifiers
 * run. Tree sizes and indexes are safe integers; the bit operations are done with division
 * because JavaScript's shifts are 32-bit.
 */
import { hash } from 'node:crypto';
import { bytesEqual } from '../crypto/sodium.js';
import { createError } from '../errors.js';

/** Bytes of a SHA-256 hash. */
export const HASH_BYTES = 32;

/**
 * One-shot `crypto.hash` over a prefixed copy rather than a `createHash` object per hash: about
 * 30 % less per node, and the tree hashes about two per appended record
 * (tools/bench/src/audit-cost.ts times appends).
 */
const sha256 = (data: Uint8Array): Uint8Array => {
  const b = hash('sha256', data, 'buffer');
  return new Uint8Array(b.buffer, b.byteOffset, b.byteLength);
};
/** 0x01 || left || right, reused: hashing is synchronous, so no two nodes share it at once. */
const nodeInput = new Uint8Array(1 + 2 * HASH_BYTES);
nodeInput[0] = 1;

/** RFC 9162 leaf hash: SHA-256(0x00 || data). */
export function hashLeaf(data: Uint8Array): Uint8Array {
  const input = new Uint8Array(1 + data.byteLength); // input[0] = 0x00
  input.set(data, 1);
  return sha256(input);
}

/** RFC 9162 interior node hash: SHA-256(0x01 || left || right) (each 32 bytes). */
export function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  if (left.byteLength !== HASH_BYTES || right.byteLength !== HASH_BYTES)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `A Merkle node's children are ${HASH_BYTES} bytes each`);
  nodeInput.set(left, 1);
  nodeInput.set(right, 1 + HASH_BYTES);
  return sha256(nodeInput);
}

/** The root of the empty tree: SHA-256 of no bytes. */
export function emptyRoot(): Uint8Array {
  return sha256(new Uint8Array(0));
}

/** Hashes per storage chunk (1 MiB): a column grows by chunks, never by copying all of it. */
const CHUNK_HASHES = 32_768;
/** Lowest interior height the tree stores (16-leaf subtrees); lower ones are rehashed. */
const STORED_HEIGHT = 4;
const STORED_SPAN = 2 ** STORED_HEIGHT;

/**
 * An append-only array of 32-byte hashes in 1 MiB chunks (the last one grows by doubling from 8
 * hashes): 32 bytes per hash plus at most one chunk of slack, instead of an object per hash.
 */
class HashColumn {
  readonly #chunks: Uint8Array[] = [];
  #length = 0;

  get length(): number {
    return this.#length;
  }

  push(h: Uint8Array): void {
    const c = Math.floor(this.#length / CHUNK_HASHES);
    const at = (this.#length % CHUNK_HASHES) * HASH_BYTES;
    let chunk = this.#chunks[c];
    if (chunk === undefined) {
      chunk = new Uint8Array(8 * HASH_BYTES);
      this.#chunks.push(chunk);
    } else if (at === chunk.byteLength) {
      const grown = new Uint8Array(Math.min(chunk.byteLength * 2, CHUNK_HASHES * HASH_BYTES));
      grown.set(chunk);
      this.#chunks[c] = chunk = grown;
    }
    chunk.set(h, at);
    this.#length++;
  }

  /** A view of hash `i` (< length): internal, never handed out. */
  at(i: number): Uint8Array {
    const at = (i % CHUNK_HASHES) * HASH_BYTES;
    return this.#chunks[Math.floor(i / CHUNK_HASHES)]!.subarray(at, at + HASH_BYTES);
  }
}

function checkSize(size: number, what: string, max: number): void {
  if (!Number.isSafeInteger(size) || size < 0 || size > max)
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `${what} must be an integer from 0 to ${max}, not ${size}`,
    );
}

/** The largest power of two strictly below n (n > 1). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

/**
 * An RFC 9162 Merkle tree over appended leaf hashes, with O(log n) roots of every size and
 * inclusion and consistency proofs (the file comment has the layout). Hashes given out are copies.
 */
export class MerkleTree {
  readonly #leaves = new HashColumn();
  /** `#levels[h - STORED_HEIGHT][i]`: node (h, i), for the complete subtrees of height h ≥ 4. */
  readonly #levels: HashColumn[] = [];
  #rootCache: { size: number; root: Uint8Array } | undefined;

  /** A tree of these leaf hashes, in order. */
  static from(leafHashes: Iterable<Uint8Array>): MerkleTree {
    const tree = new MerkleTree();
    for (const h of leafHashes) tree.push(h);
    return tree;
  }

  /** Leaves appended so far. */
  get size(): number {
    return this.#leaves.length;
  }

  /** Append one leaf hash (32 bytes, else SIPC_ERR_INVALID_ARGUMENT). */
  push(leafHash: Uint8Array): void {
    if (!isHash(leafHash))
      throw createError('SIPC_ERR_INVALID_ARGUMENT', `A Merkle leaf hash is ${HASH_BYTES} bytes`);
    this.#leaves.push(leafHash);
    const size = this.#leaves.length;
    if (size % STORED_SPAN !== 0) return;
    // A 16-leaf subtree completed: store it, then each ancestor it completes (a trailing 1 bit).
    let i = size / STORED_SPAN - 1;
    let cur = this.#rehash(STORED_HEIGHT, i);
    for (let level = 0; ; level++) {
      if (this.#levels[level] === undefined) this.#levels.push(new HashColumn());
      const column = this.#levels[level]!;
      column.push(cur);
      if (i % 2 === 0) return;
      cur = hashChildren(column.at(i - 1), cur);
      i = (i - 1) / 2;
    }
  }

  /** The hash of leaf `index` (SIPC_ERR_INVALID_ARGUMENT when there is none). */
  leafHash(index: number): Uint8Array {
    if (!Number.isSafeInteger(index) || index < 0 || index >= this.size)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', `No leaf ${index} (the tree has ${this.size})`);
    return this.#leaves.at(index).slice();
  }

  /** The tree head (MTH) of all leaves. */
  root(): Uint8Array {
    return this.rootAt(this.size);
  }

  /** The tree head (MTH) of the first `size` leaves (0 to `this.size`). */
  rootAt(size: number): Uint8Array {
    checkSize(size, 'size', this.size);
    if (size === 0) return emptyRoot();
    // The log reads its current root at every checkpoint and witness update: keep the last one.
    if (this.#rootCache?.size !== size) this.#rootCache = { size, root: this.#range(0, size) };
    return this.#rootCache.root.slice();
  }

  /**
   * The inclusion proof (audit path, RFC 9162 §2.1.3.1) of leaf `index` in the tree of the first
   * `size` leaves (default all of them).
   */
  inclusionProof(index: number, size: number = this.size): Uint8Array[] {
    checkSize(size, 'size', this.size);
    if (!Number.isSafeInteger(index) || index < 0 || index >= size)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', `index must be an integer below the tree size ${size}`);
    const path: Uint8Array[] = [];
    // PATH(m, D[lo:hi]) as a loop from the root down; the RFC lists the siblings leaf-first.
    let m = index;
    let lo = 0;
    let hi = size;
    while (hi - lo > 1) {
      const k = splitPoint(hi - lo);
      if (m < k) {
        path.push(this.#range(lo + k, hi));
        hi = lo + k;
      } else {
        path.push(this.#range(lo, lo + k));
        lo += k;
        m -= k;
      }
    }
    return path.reverse();
  }

  /**
   * The consistency proof (RFC 9162 §2.1.4.1) from the tree of the first `size1` leaves to the
   * tree of the first `size2` (default all of them): empty when the sizes are equal.
   */
  consistencyProof(size1: number, size2: number = this.size): Uint8Array[] {
    checkSize(size2, 'size2', this.size);
    checkSize(size1, 'size1', size2);
    if (size1 === 0)
      throw createError(
        'SIPC_ERR_INVALID_ARGUMENT',
        'A consistency proof from the empty tree is meaningless',
      );
    const proof: Uint8Array[] = [];
    // SUBPROOF(m, D[lo:hi], b) as a loop from the root down; the RFC lists the nodes leaf-first.
    let m = size1;
    let lo = 0;
    let hi = size2;
    let b = true;
    while (m !== hi - lo) {
      const k = splitPoint(hi - lo);
      if (m <= k) {
        proof.push(this.#range(lo + k, hi));
        hi = lo + k;
      } else {
        proof.push(this.#range(lo, lo + k));
        lo += k;
        m -= k;
        b = false;
      }
    }
    if (!b) proof.push(this.#range(lo, hi));
    return proof.reverse();
  }

  /** Node (h, i): a leaf, a stored root, or (heights 1-3) rehashed from its leaves. */
  #node(h: number, i: number): Uint8Array {
    if (h === 0) return this.#leaves.at(i);
    if (h >= STORED_HEIGHT) return this.#levels[h - STORED_HEIGHT]!.at(i);
    return this.#rehash(h, i);
  }

  #rehash(h: number, i: number): Uint8Array {
    return hashChildren(this.#node(h - 1, 2 * i), this.#node(h - 1, 2 * i + 1));
  }

  /**
   * MTH of leaves [lo, hi), 0 < hi - lo, where lo is a multiple of the power of two at or above
   * hi - lo (every range of the RFC's recursions is): its perfect subtrees, largest first, folded
   * from the right.
   */
  #range(lo: number, hi: number): Uint8Array {
    const parts: Uint8Array[] = [];
    let at = lo;
    let span = 1;
    while (span * 2 <= hi - lo) span *= 2;
    for (let h = Math.log2(span); at < hi; span /= 2, h--)
      if (at + span <= hi) {
        parts.push(this.#node(h, at / span));
        at += span;
      }
    let r = parts[parts.length - 1]!;
    for (let j = parts.length - 2; j >= 0; j--) r = hashChildren(parts[j]!, r);
    // A lone part is a view into the columns: callers get a copy.
    return parts.length === 1 ? r.slice() : r;
  }
}

/** A tree of the first `size` of these leaf hashes (`size` checked against how many there are). */
function treeOf(leafHashes: readonly Uint8Array[], size: number, what: string): MerkleTree {
  checkSize(size, what, leafHashes.length);
  const tree = new MerkleTree();
  for (let i = 0; i < size; i++) tree.push(leafHashes[i]!);
  return tree;
}

/** The root (MTH) of a tree whose leaves have these hashes (RFC 9162 §2.1.1). */
export function merkleRoot(leafHashes: readonly Uint8Array[]): Uint8Array {
  return MerkleTree.from(leafHashes).root();
}

/**
 * The inclusion proof (audit path, RFC 9162 §2.1.3.1) of leaf `index` in the tree of the first
 * `size` leaf hashes (default all of them). Builds the tree (O(n)): to serve many proofs, keep a
 * `MerkleTree`.
 */
export function inclusionProof(
  leafHashes: readonly Uint8Array[],
  index: number,
  size: number = leafHashes.length,
): Uint8Array[] {
  return treeOf(leafHashes, size, 'size').inclusionProof(index, size);
}

/**
 * The consistency proof (RFC 9162 §2.1.4.1) from the tree of the first `size1` leaves to the
 * tree of the first `size2` (default all of them): empty when the sizes are equal. Builds the tree
 * (O(n)): to serve many proofs, keep a `MerkleTree`.
 */
export function consistencyProof(
  leafHashes: readonly Uint8Array[],
  size1: number,
  size2: number = leafHashes.length,
): Uint8Array[] {
  return treeOf(leafHashes, size2, 'size2').consistencyProof(size1, size2);
}

const isHash = (h: unknown): h is Uint8Array => h instanceof Uint8Array && h.byteLength === HASH_BYTES;
const odd = (x: number) => x % 2 === 1;
const half = (x: number) => Math.floor(x / 2);

/**
 * The walk up the tree that both RFC 9162 verifiers make (§2.1.3.2 and §2.1.4.2): `fn` is the
 * node's index, `sn` the last index at its level; `step(i, left)` combines path node i, which is
 * the left sibling when `left`. Whether the path ended exactly at the root (sn = 0).
 */
function walkPath(fn: number, sn: number, nodes: number, step: (i: number, left: boolean) => void): boolean {
  for (let i = 0; i < nodes; i++) {
    if (sn === 0) return false;
    const left = odd(fn) || fn === sn;
    step(i, left);
    if (left)
      while (!odd(fn) && fn !== 0) {
        fn = half(fn);
        sn = half(sn);
      }
    fn = half(fn);
    sn = half(sn);
  }
  return sn === 0;
}

/**
 * Whether `proof` proves that the leaf with hash `leafHash` is at `index` in the tree of `size`
 * leaves with root `root` (RFC 9162 §2.1.3.2). Malformed input is a false, never a throw.
 */
export function verifyInclusion(
  leafHash: Uint8Array,
  index: number,
  size: number,
  proof: readonly Uint8Array[],
  root: Uint8Array,
): boolean {
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(size) || index < 0 || index >= size) return false;
  if (!isHash(leafHash) || !isHash(root) || !proof.every(isHash)) return false;
  let r = leafHash;
  const ended = walkPath(index, size - 1, proof.length, (i, left) => {
    r = left ? hashChildren(proof[i]!, r) : hashChildren(r, proof[i]!);
  });
  return ended && bytesEqual(r, root);
}

/**
 * Whether `proof` proves that the tree of `size1` leaves with root `root1` is a prefix of the
 * tree of `size2` leaves with root `root2` (RFC 9162 §2.1.4.2). As the transparency-dev verifier
 * and its published vectors: size1 = 0 is refused (meaningless), equal sizes need an empty proof
 * and equal roots. Malformed input is a false, never a throw.
 */
export function verifyConsistency(
  size1: number,
  size2: number,
  proof: readonly Uint8Array[],
  root1: Uint8Array,
  root2: Uint8Array,
): boolean {
  if (!Number.isSafeInteger(size1) || !Number.isSafeInteger(size2) || size1 <= 0 || size2 < size1)
    return false;
  if (!isHash(root1) || !isHash(root2) || !proof.every(isHash)) return false;
  if (size1 === size2) return proof.length === 0 && bytesEqual(root1, root2);
  if (proof.length === 0) return false;
  // 1. If size1 is an exact power of two, the old root is the first node of the path.
  const path = isPow2(size1) ? [root1, ...proof] : proof;
  // 2-3. fn = size1 - 1, sn = size2 - 1, shifted right while fn is odd.
  let fn = size1 - 1;
  let sn = size2 - 1;
  while (odd(fn)) {
    fn = half(fn);
    sn = half(sn);
  }
  let fr = path[0]!;
  let sr = path[0]!;
  const ended = walkPath(fn, sn, path.length - 1, (i, left) => {
    const c = path[i + 1]!;
    if (left) {
      fr = hashChildren(c, fr);
      sr = hashChildren(c, sr);
    } else sr = hashChildren(sr, c);
  });
  return ended && bytesEqual(fr, root1) && bytesEqual(sr, root2);
}

function isPow2(n: number): boolean {
  let k = 1;
  while (k < n) k *= 2;
  return k === n;
}
