/**
 * The audit log's Merkle tree against the published RFC 6962 vectors (test/vectors/
 * merkle-rfc6962.json, from transparency-dev/merkle: the RFC reference leaves, every root of sizes
 * 0-8, the node hashes, the generator's proofs and all 196 inclusion/consistency probes, valid and
 * mutated), against a second implementation written here from the RFC's recursive definitions
 * for every index and size pair up to 8, and as properties over random trees. `MerkleTree` (the
 * stored levels) is checked against the same vectors and, for every size and proof up to 70
 * leaves and at random sizes past the stored heights, against the reference definitions.
 */
import { readFileSync } from 'node:fs';
import { fc, testProp } from '@fast-check/ava';
import test from 'ava';
import {
  consistencyProof,
  emptyRoot,
  hashChildren,
  hashLeaf,
  inclusionProof,
  MerkleTree,
  merkleRoot,
  verifyConsistency,
  verifyInclusion,
} from '../src/audit/merkle.js';

const doc = JSON.parse(
  readFileSync(new URL('../../test/vectors/merkle-rfc6962.json', import.meta.url), 'utf8'),
);
const unhex = (s: string) => new Uint8Array(Buffer.from(s, 'hex'));
const unb64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));
const hex = (b: Uint8Array) => Buffer.from(b).toString('hex');
const leaves: Uint8Array[] = (doc.leaves as string[]).map(unhex);
const leafHashes = leaves.map(hashLeaf);

const k = (n: number) => 2 ** Math.ceil(Math.log2(n) - 1);
// The RFC 6962 definitions, recursively over leaf hashes and without sharing code with
// src/audit/merkle.ts (hashLeaf, hashChildren and emptyRoot are checked by the vectors).
const mthOf = (h: Uint8Array[]): Uint8Array =>
  h.length === 0
    ? emptyRoot()
    : h.length === 1
      ? h[0]!
      : hashChildren(mthOf(h.slice(0, k(h.length))), mthOf(h.slice(k(h.length))));
const pathOf = (m: number, h: Uint8Array[]): Uint8Array[] => {
  if (h.length <= 1) return [];
  const s = k(h.length);
  return m < s
    ? [...pathOf(m, h.slice(0, s)), mthOf(h.slice(s))]
    : [...pathOf(m - s, h.slice(s)), mthOf(h.slice(0, s))];
};
const subproofOf = (m: number, h: Uint8Array[], b: boolean): Uint8Array[] => {
  if (m === h.length) return b ? [] : [mthOf(h)];
  const s = k(h.length);
  return m <= s
    ? [...subproofOf(m, h.slice(0, s), b), mthOf(h.slice(s))]
    : [...subproofOf(m - s, h.slice(s), false), mthOf(h.slice(0, s))];
};

const mth = (d: Uint8Array[]) => mthOf(d.map(hashLeaf));
const path = (m: number, d: Uint8Array[]) => pathOf(m, d.map(hashLeaf));
const subproof = (m: number, d: Uint8Array[], b: boolean) => subproofOf(m, d.map(hashLeaf), b);

test('the empty root, leaf hashes and the roots of sizes 0-8 are the published ones', (t) => {
  t.is(hex(merkleRoot([])), doc.roots[0]);
  t.deepEqual(leafHashes.map(hex), doc.nodes[0]);
  const tree = new MerkleTree();
  for (let n = 0; n <= 8; n++) {
    t.is(hex(merkleRoot(leafHashes.slice(0, n))), doc.roots[n], `size ${n}`);
    t.is(hex(tree.root()), doc.roots[n], `tree at size ${n}`);
    t.is(hex(mth(leaves.slice(0, n))), doc.roots[n], `reference at size ${n}`);
    if (n < 8) tree.push(leafHashes[n]!);
  }
  for (let n = 0; n <= 8; n++) t.is(hex(tree.rootAt(n)), doc.roots[n], `rootAt(${n}) of the full tree`);
});

test("the generator's published inclusion and consistency proofs, byte for byte", (t) => {
  for (const v of doc.inclusionProofs) {
    const proof = inclusionProof(leafHashes, v.leafIndex1 - 1, v.treeSize);
    t.deepEqual(proof.map(hex), v.proof, `inclusion ${v.leafIndex1 - 1} in ${v.treeSize}`);
    t.true(
      verifyInclusion(
        leafHashes[v.leafIndex1 - 1]!,
        v.leafIndex1 - 1,
        v.treeSize,
        proof,
        unhex(doc.roots[v.treeSize]),
      ),
    );
  }
  for (const v of doc.consistencyProofs) {
    const proof = consistencyProof(leafHashes, v.size1, v.size2);
    t.deepEqual(proof.map(hex), v.proof, `consistency ${v.size1} -> ${v.size2}`);
    t.true(verifyConsistency(v.size1, v.size2, proof, unhex(doc.roots[v.size1]), unhex(doc.roots[v.size2])));
  }
});

test('every inclusion probe (valid and mutated) gets the published verdict', (t) => {
  t.is(doc.inclusionProbes.length, 98);
  for (const p of doc.inclusionProbes) {
    const ok = verifyInclusion(
      unb64(p.leafHash ?? ''),
      p.leafIdx,
      p.treeSize,
      (p.proof ?? []).map(unb64),
      unb64(p.root ?? ''),
    );
    t.is(ok, !p.wantErr, p.file);
  }
});

test('every consistency probe (valid and mutated) gets the published verdict (roots must be 32 bytes)', (t) => {
  t.is(doc.consistencyProbes.length, 98);
  for (const p of doc.consistencyProbes) {
    const r1 = unb64(p.root1 ?? '');
    const r2 = unb64(p.root2 ?? '');
    const ok = verifyConsistency(p.size1, p.size2, (p.proof ?? []).map(unb64), r1, r2);
    // One deliberate difference: the Go verifier compares equal-size roots of any length
    // ("sizes are equal (one) and proof is empty" uses 12-byte placeholders); ours refuses a root
    // that is not 32 bytes, so that probe is a refusal here.
    const strict = r1.byteLength === 32 && r2.byteLength === 32;
    t.is(ok, !p.wantErr && strict, p.file);
  }
});

test('all inclusion proofs (1 <= size <= 8) and consistency proofs (1 <= m <= n <= 8) of the RFC leaves', (t) => {
  for (let n = 1; n <= 8; n++) {
    const root = unhex(doc.roots[n]);
    for (let i = 0; i < n; i++) {
      const proof = inclusionProof(leafHashes, i, n);
      t.deepEqual(proof.map(hex), path(i, leaves.slice(0, n)).map(hex), `inclusion ${i} in ${n}`);
      t.true(verifyInclusion(leafHashes[i]!, i, n, proof, root));
      t.false(verifyInclusion(leafHashes[i]!, i, n, proof, unhex(doc.roots[n - 1])));
      if (n > 1) t.false(verifyInclusion(leafHashes[(i + 1) % n]!, i, n, proof, root));
    }
    for (let m = 1; m <= n; m++) {
      const proof = consistencyProof(leafHashes, m, n);
      t.deepEqual(proof.map(hex), subproof(m, leaves.slice(0, n), true).map(hex), `consistency ${m} -> ${n}`);
      t.true(verifyConsistency(m, n, proof, unhex(doc.roots[m]), root));
      if (m < n) t.false(verifyConsistency(m, n, proof, unhex(doc.roots[m - 1]), root));
    }
  }
});

test('bad arguments to the proof builders are typed errors', (t) => {
  t.throws(() => inclusionProof(leafHashes, 8, 8), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  t.throws(() => inclusionProof(leafHashes, 0, 9), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  t.throws(() => consistencyProof(leafHashes, 0, 4), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  t.throws(() => consistencyProof(leafHashes, 5, 4), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
});

/** Leaf hashes of `n` distinct leaves (their index as 4 bytes). */
const numbered = (n: number) =>
  Array.from({ length: n }, (_, i) => {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, i);
    return hashLeaf(b);
  });
test('MerkleTree: the vectors, byte for byte (roots, proofs of old sizes)', (t) => {
  const tree = MerkleTree.from(leafHashes);
  for (const v of doc.inclusionProofs)
    t.deepEqual(tree.inclusionProof(v.leafIndex1 - 1, v.treeSize).map(hex), v.proof);
  for (const v of doc.consistencyProofs)
    t.deepEqual(tree.consistencyProof(v.size1, v.size2).map(hex), v.proof);
  for (let i = 0; i < 8; i++) t.is(hex(tree.leafHash(i)), doc.nodes[0][i]);
});

test('MerkleTree: every root, inclusion and consistency proof up to 70 leaves is the reference one', (t) => {
  const hashes = numbered(70);
  const tree = new MerkleTree();
  for (let n = 1; n <= 70; n++) {
    tree.push(hashes[n - 1]!);
    const prefix = hashes.slice(0, n);
    t.is(hex(tree.root()), hex(mthOf(prefix)), `root ${n}`);
    for (let i = 0; i < n; i++) t.deepEqual(tree.inclusionProof(i, n).map(hex), pathOf(i, prefix).map(hex));
    for (let m = 1; m <= n; m++)
      t.deepEqual(tree.consistencyProof(m, n).map(hex), subproofOf(m, prefix, true).map(hex));
  }
  // Old sizes from the grown tree: the same answers.
  for (const n of [1, 15, 16, 17, 31, 32, 33, 63, 64, 65, 70]) {
    t.is(hex(tree.rootAt(n)), hex(mthOf(hashes.slice(0, n))));
    t.deepEqual(tree.inclusionProof(n - 1, n).map(hex), pathOf(n - 1, hashes.slice(0, n)).map(hex));
    t.deepEqual(tree.consistencyProof(n, 70).map(hex), subproofOf(n, hashes, true).map(hex));
  }
});

test('MerkleTree: at random sizes past the stored heights (up to 5,000 leaves) proofs verify and match', (t) => {
  const hashes = numbered(5000);
  const tree = MerkleTree.from(hashes);
  const rand = (n: number) => Math.floor(Math.random() * n);
  for (let j = 0; j < 40; j++) {
    const n = 1 + rand(5000);
    const m = 1 + rand(n);
    const i = rand(n);
    const root = tree.rootAt(n);
    t.is(hex(root), hex(mthOf(hashes.slice(0, n))), `root ${n}`);
    const path = tree.inclusionProof(i, n);
    t.deepEqual(path.map(hex), inclusionProof(hashes, i, n).map(hex));
    t.true(verifyInclusion(hashes[i]!, i, n, path, root), `inclusion ${i} in ${n}`);
    const proof = tree.consistencyProof(m, n);
    t.deepEqual(proof.map(hex), subproofOf(m, hashes.slice(0, n), true).map(hex));
    t.true(verifyConsistency(m, n, proof, tree.rootAt(m), root), `consistency ${m} -> ${n}`);
  }
});

test('MerkleTree: a leaf hash that is not 32 bytes, and bad sizes and indexes, are typed errors; hashes given out are copies', (t) => {
  const tree = MerkleTree.from(numbered(20));
  for (const bad of [new Uint8Array(31), new Uint8Array(33), new Uint8Array(0), 'x'.repeat(32)])
    t.throws(() => tree.push(bad as Uint8Array), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  t.throws(() => merkleRoot([new Uint8Array(16)]), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  t.is(tree.size, 20);
  t.throws(() => tree.rootAt(21), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  t.throws(() => tree.rootAt(-1), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  t.throws(() => tree.leafHash(20), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  t.throws(() => tree.inclusionProof(20, 20), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  t.throws(() => tree.inclusionProof(0, 21), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  t.throws(() => tree.inclusionProof(1.5, 20), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  t.throws(() => tree.consistencyProof(0, 20), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  t.throws(() => tree.consistencyProof(5, 21), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  t.throws(() => tree.consistencyProof(6, 5), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  const root = tree.root();
  const before = hex(root);
  root.fill(0);
  tree.leafHash(3).fill(0);
  for (const p of [...tree.inclusionProof(16, 20), ...tree.consistencyProof(16, 20)]) p.fill(0);
  t.is(hex(tree.root()), before);
  t.is(hex(tree.root()), hex(mthOf(numbered(20))));
});

test('MerkleTree: a proof in a tree of 2^18 leaves takes no rehash of the leaves, and the tree is about 36 bytes a leaf', (t) => {
  const n = 2 ** 18;
  const leaf = hashLeaf(new Uint8Array(1));
  // The columns grow by doubling: what they outgrew is garbage. V8 collects it as the tree grows;
  // Bun's JavaScriptCore later (measured 48.1 bytes a leaf once), so under Bun a full GC runs first.
  const collect = () => (globalThis as { Bun?: { gc(force: boolean): void } }).Bun?.gc(true);
  collect();
  const before = process.memoryUsage().arrayBuffers;
  const tree = new MerkleTree();
  for (let i = 0; i < n; i++) tree.push(leaf);
  collect();
  const perLeaf = (process.memoryUsage().arrayBuffers - before) / n;
  t.true(perLeaf < 48, `${perLeaf.toFixed(1)} bytes a leaf`);
  const start = process.hrtime.bigint();
  for (let j = 0; j < 100; j++) {
    tree.inclusionProof(n - 1 - j * 997, n - j);
    tree.consistencyProof(1 + j * 2503, n - j);
  }
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  // Rehashing from the leaves (the old builders) takes about a second a proof at this size: 200
  // proofs in 2 s is 100 times less, loose enough for a loaded shared machine.
  t.true(ms < 2000, `200 proofs took ${ms.toFixed(1)} ms`);
  t.log(`${perLeaf.toFixed(1)} bytes/leaf, ${((ms / 200) * 1000).toFixed(0)} µs/proof`);
});

const tree = fc
  .array(fc.uint8Array({ maxLength: 8 }), { minLength: 1, maxLength: 70 })
  .map((d) => d.map(hashLeaf));

testProp(
  'inclusion verifies for every leaf of a random tree, and any flipped byte fails',
  [tree, fc.nat(), fc.nat(), fc.nat(255)],
  (t, hashes, pick, at, bit) => {
    const n = hashes.length;
    const i = pick % n;
    const root = merkleRoot(hashes);
    const proof = inclusionProof(hashes, i);
    t.true(verifyInclusion(hashes[i]!, i, n, proof, root));
    const flip = (b: Uint8Array) => {
      const c = new Uint8Array(b);
      c[at % c.length]! ^= 1 << (bit % 8);
      return c;
    };
    t.false(verifyInclusion(flip(hashes[i]!), i, n, proof, root));
    t.false(verifyInclusion(hashes[i]!, i, n, proof, flip(root)));
    if (proof.length > 0) {
      const j = at % proof.length;
      t.false(
        verifyInclusion(
          hashes[i]!,
          i,
          n,
          proof.map((p, x) => (x === j ? flip(p) : p)),
          root,
        ),
      );
    }
  },
);

testProp(
  'consistency verifies between any two prefixes of a random tree, and any flipped byte fails',
  [tree, fc.nat(), fc.nat(), fc.nat(255)],
  (t, hashes, pick, at, bit) => {
    const n = hashes.length;
    const m = 1 + (pick % n);
    const proof = consistencyProof(hashes, m, n);
    const r1 = merkleRoot(hashes.slice(0, m));
    const r2 = merkleRoot(hashes);
    t.true(verifyConsistency(m, n, proof, r1, r2));
    const flip = (b: Uint8Array) => {
      const c = new Uint8Array(b);
      c[at % c.length]! ^= 1 << (bit % 8);
      return c;
    };
    t.false(verifyConsistency(m, n, proof, flip(r1), r2));
    t.false(verifyConsistency(m, n, proof, r1, flip(r2)));
    if (proof.length > 0) {
      const j = at % proof.length;
      t.false(
        verifyConsistency(
          m,
          n,
          proof.map((p, x) => (x === j ? flip(p) : p)),
          r1,
          r2,
        ),
      );
    }
  },
);
