/**
 * The audit log's in-process costs (docs/audit.md "Cost"), against whichever core is built:
 * `node dist/src/audit-cost.js [--leaves N]` prints one JSON line with
 *   - proof time at N leaves (default 2^20): median of 5 inclusion and 5 consistency proofs of
 *     old sizes, through `MerkleTree` when core exports it, else through the array functions
 *     (which is what the log used before it), and the tree's build time;
 *   - bytes per leaf the tree (or the array of leaf hashes) keeps, after GC (needs --expose-gc);
 *   - µs per record of 20,000 `append()`s made in one turn (an `rpc.call` record with a keyed
 *     hash), median of 3 rounds, in a temporary directory.
 * Run it on two checkouts to compare them; nothing here asserts a speed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as core from '@secure-ipc/core';
import { median } from './stats.js';

interface ProofTree {
  inclusionProof(index: number, size: number): Uint8Array[];
  consistencyProof(size1: number, size2: number): Uint8Array[];
}

const arg = process.argv.indexOf('--leaves');
const leaves = arg > 0 ? Number(process.argv[arg + 1]) : 2 ** 20;
const gc = (globalThis as { gc?: () => void }).gc;
const used = () => {
  gc?.();
  gc?.();
  const m = process.memoryUsage();
  return m.heapUsed + m.arrayBuffers;
};

function leafHashes(n: number): Uint8Array[] {
  const out: Uint8Array[] = [];
  const b = new Uint8Array(4);
  for (let i = 0; i < n; i++) {
    new DataView(b.buffer).setUint32(0, i);
    out.push(core.hashLeaf(b));
  }
  return out;
}

function proofs(): Record<string, number | boolean> {
  const Tree = (core as Record<string, unknown>).MerkleTree as
    | { from(h: Iterable<Uint8Array>): ProofTree }
    | undefined;
  const base = used();
  const hashes = leafHashes(leaves);
  const arrayBytes = (used() - base) / leaves;
  let t0 = performance.now();
  const tree: ProofTree =
    Tree?.from(hashes) ??
    ({
      inclusionProof: (i, n) => core.inclusionProof(hashes, i, n),
      consistencyProof: (a, b) => core.consistencyProof(hashes, a, b),
    } satisfies ProofTree);
  const buildMs = performance.now() - t0;
  const inclusion: number[] = [];
  const consistency: number[] = [];
  for (let r = 0; r < 5; r++) {
    t0 = performance.now();
    tree.inclusionProof((r * 200_003) % (leaves - r), leaves - r);
    inclusion.push(performance.now() - t0);
    t0 = performance.now();
    tree.consistencyProof(1 + ((r * 99_991) % (leaves - r - 1)), leaves - r);
    consistency.push(performance.now() - t0);
  }
  hashes.length = 0;
  const treeBytes = Tree === undefined ? arrayBytes : (used() - base) / leaves;
  return {
    merkleTree: Tree !== undefined,
    leaves,
    buildMs: Math.round(buildMs),
    inclusionMs: median(inclusion),
    consistencyMs: median(consistency),
    bytesPerLeaf: Math.round(treeBytes * 10) / 10,
  };
}

async function appends(): Promise<number> {
  const root = mkdtempSync(join(tmpdir(), 'sipc-audit-cost-'));
  try {
    const log = await core.openAuditLog({ dir: join(root, 'audit'), origin: 'bench/audit' });
    const key = new Uint8Array(32).fill(1);
    const payload = new Uint8Array(64);
    const rounds: number[] = [];
    for (let r = 0; r < 3; r++) {
      const n = 20_000;
      const t0 = performance.now();
      const pending: Promise<unknown>[] = [];
      for (let i = 0; i < n; i++)
        pending.push(
          log.append({
            type: 'rpc.call',
            fields: {
              channel: 1,
              peer: 'p'.repeat(43),
              method: '$ping',
              allowed: true,
              h: core.auditMessageHash(key, '$ping', payload),
            },
          }),
        );
      await Promise.all(pending);
      rounds.push(((performance.now() - t0) * 1000) / n);
    }
    await log.close();
    return median(rounds);
  } finally {
    rmSync(root, { recursive: true, force: true });
  }
}

const result = { ...proofs(), appendUsPerRecord: await appends(), gc: gc !== undefined };
console.log(JSON.stringify(result));
