/**
 * The RFC 9162 §2.1 Merkle tree (RFC 6962 hashing, SHA-256) of the audit log, pure:
 *
 *   leaf  = SHA-256(0x00 || data)          node = SHA-256(0x01 || left || right)
 *   MTH   of an empty tree = SHA-256()     MTH(D[n]) = node(MTH(D[0:k]), MTH(D[k:n])), k = the
 *                                          largest power of two below n
 *
 * `MerkleFrontier` is the compact range [0, size): one subtree root per set bit of the size, so an
 * append costs O(log n) hashes and the root is one fold. Proofs are built from the leaf hashes by
 * the RFC's recursive definitions (PATH §2.1.3.1, SUBPROOF §2.1.4.1) and checked by the RFC's
 * iterative algorithms (§2.1.3.2, §2.1.4.2), which is what other verifiers run. Tree sizes and
 * indexes are safe integers; the bit operations are done with division because JavaScript's
 * shifts are 32-bit.
 */
import { createHash } from 'node:crypto';
import { bytesEqual } from '../crypto/sodium.js';
import { createError } from '../errors.js';

/** Bytes of a SHA-256 hash. */
export const HASH_BYTES = 32;

const LEAF_PREFIX = Buffer.from([0]);
const NODE_PREFIX = Buffer.from([1]);

/** A digest as a plain Uint8Array view (hashes compare and print as bytes, not as Buffers). */
const bytes = (b: Buffer): Uint8Array => new Uint8Array(b.buffer, b.byteOffset, b.byteLength);

/** RFC 9162 leaf hash: SHA-256(0x00 || data). */
export function hashLeaf(data: Uint8Array): Uint8Array {
  return bytes(createHash('sha256').update(LEAF_PREFIX).update(data).digest());
}

/** RFC 9162 interior node hash: SHA-256(0x01 || left || right). */
export function hashChildren(left: Uint8Array, right: Uint8Array): Uint8Array {
  return bytes(createHash('sha256').update(NODE_PREFIX).update(left).update(right).digest());
}

/** The root of the empty tree: SHA-256 of no bytes. */
export function emptyRoot(): Uint8Array {
  return bytes(createHash('sha256').digest());
}

/**
 * The compact range [0, size) of a tree: the roots of its perfect subtrees, largest first. Append
 * is O(log n); `root()` folds them right to left.
 */
export class MerkleFrontier {
  readonly #nodes: Uint8Array[] = [];
  #size = 0;

  /** Leaves appended so far. */
  get size(): number {
    return this.#size;
  }

  /** Append one leaf hash. */
  push(leafHash: Uint8Array): void {
    let cur = leafHash;
    // Each trailing 1 bit of the old size is a full subtree of the same height: merge it.
    for (let s = this.#size; s % 2 === 1; s = Math.floor(s / 2)) cur = hashChildren(this.#nodes.pop()!, cur);
    this.#nodes.push(cur);
    this.#size++;
  }

  /** The tree head (MTH) of the leaves appended so far. */
  root(): Uint8Array {
    if (this.#nodes.length === 0) return emptyRoot();
    let r = this.#nodes[this.#nodes.length - 1]!;
    for (let i = this.#nodes.length - 2; i >= 0; i--) r = hashChildren(this.#nodes[i]!, r);
    return r;
  }
}

/** MTH over the leaf hashes `leaves[from, to)` (RFC 9162 §2.1.1). */
function subtreeRoot(leaves: readonly Uint8Array[], from: number, to: number): Uint8Array {
  const frontier = new MerkleFrontier();
  for (let i = from; i < to; i++) frontier.push(leaves[i]!);
  return frontier.root();
}

/** The largest power of two strictly below n (n > 1). */
function splitPoint(n: number): number {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
}

function checkSize(size: number, what: string, max: number): void {
  if (!Number.isSafeInteger(size) || size < 0 || size > max)
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `${what} must be an integer from 0 to ${max}, not ${size}`,
    );
}

/** The root (MTH) of a tree whose leaves have these hashes (RFC 9162 §2.1.1). */
export function merkleRoot(leafHashes: readonly Uint8Array[]): Uint8Array {
  return subtreeRoot(leafHashes, 0, leafHashes.length);
}

/**
 * The inclusion proof (audit path, RFC 9162 §2.1.3.1) of leaf `index` in the tree of the first
 * `size` leaf hashes (default all of them).
 */
export function inclusionProof(
  leafHashes: readonly Uint8Array[],
  index: number,
  size: number = leafHashes.length,
): Uint8Array[] {
  checkSize(size, 'size', leafHashes.length);
  if (!Number.isSafeInteger(index) || index < 0 || index >= size)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `index must be an integer below the tree size ${size}`);
  const path: Uint8Array[] = [];
  // PATH(m, D[lo:hi]) unrolled: the siblings are collected leaf-first.
  const walk = (m: number, lo: number, hi: number): void => {
    if (hi - lo <= 1) return;
    const k = splitPoint(hi - lo);
    if (m < k) {
      walk(m, lo, lo + k);
      path.push(subtreeRoot(leafHashes, lo + k, hi));
    } else {
      walk(m - k, lo + k, hi);
      path.push(subtreeRoot(leafHashes, lo, lo + k));
    }
  };
  walk(index, 0, size);
  return path;
}

/**
 * The consistency proof (RFC 9162 §2.1.4.1) from the tree of the first `size1` leaves to the
 * tree of the first `size2` (default all of them): empty when the sizes are equal.
 */
export function consistencyProof(
  leafHashes: readonly Uint8Array[],
  size1: number,
  size2: number = leafHashes.length,
): Uint8Array[] {
  checkSize(size2, 'size2', leafHashes.length);
  checkSize(size1, 'size1', size2);
  if (size1 === 0)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'A consistency proof from the empty tree is meaningless');
  const proof: Uint8Array[] = [];
  // SUBPROOF(m, D[lo:hi], b)
  const sub = (m: number, lo: number, hi: number, b: boolean): void => {
    const n = hi - lo;
    if (m === n) {
      if (!b) proof.push(subtreeRoot(leafHashes, lo, hi));
      return;
    }
    const k = splitPoint(n);
    if (m <= k) {
      sub(m, lo, lo + k, b);
      proof.push(subtreeRoot(leafHashes, lo + k, hi));
    } else {
      sub(m - k, lo + k, hi, false);
      proof.push(subtreeRoot(leafHashes, lo, lo + k));
    }
  };
  sub(size1, 0, size2, true);
  return proof;
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
