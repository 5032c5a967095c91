/**
 * The audit log's Merkle tree against the published RFC 6962 vectors (test/vectors/
 * merkle-rfc6962.json, from transparency-dev/merkle: the RFC reference leaves, every root of sizes
 * 0-8, the node hashes, the generator's proofs and all 196 inclusion/consistency probes, valid and
 * mutated), against a second implementation written here from the RFC's recursive definitions
 * for every index and size pair up to 8, and as properties over random trees.
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
  MerkleFrontier,
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

// The RFC 6962 definitions, recursively and without sharing code with src/audit/merkle.ts.
const k = (n: number) => 2 ** Math.ceil(Math.log2(n) - 1);
const mth = (d: Uint8Array[]): Uint8Array =>
  d.length === 0
    ? emptyRoot()
    : d.length === 1
      ? hashLeaf(d[0]!)
      : hashChildren(mth(d.slice(0, k(d.length))), mth(d.slice(k(d.length))));
const path = (m: number, d: Uint8Array[]): Uint8Array[] => {
  if (d.length <= 1) return [];
  const s = k(d.length);
  return m < s
    ? [...path(m, d.slice(0, s)), mth(d.slice(s))]
    : [...path(m - s, d.slice(s)), mth(d.slice(0, s))];
};
const subproof = (m: number, d: Uint8Array[], b: boolean): Uint8Array[] => {
  if (m === d.length) return b ? [] : [mth(d)];
  const s = k(d.length);
  return m <= s
    ? [...subproof(m, d.slice(0, s), b), mth(d.slice(s))]
    : [...subproof(m - s, d.slice(s), false), mth(d.slice(0, s))];
};

test('the empty root, leaf hashes and the roots of sizes 0-8 are the published ones', (t) => {
  t.is(hex(merkleRoot([])), doc.roots[0]);
  t.deepEqual(leafHashes.map(hex), doc.nodes[0]);
  const frontier = new MerkleFrontier();
  for (let n = 0; n <= 8; n++) {
    t.is(hex(merkleRoot(leafHashes.slice(0, n))), doc.roots[n], `size ${n}`);
    t.is(hex(frontier.root()), doc.roots[n], `frontier at size ${n}`);
    t.is(hex(mth(leaves.slice(0, n))), doc.roots[n], `reference at size ${n}`);
    if (n < 8) frontier.push(leafHashes[n]!);
  }
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
