/**
 * A second verifier written from docs/audit.md alone, sharing no code with src/audit: node:crypto
 * for SHA-256 and Ed25519, @msgpack/msgpack for the records, its own frames, tree, notes and key
 * IDs. It must accept a log openAuditLog wrote (several segments, two rotations, checkpoints) and
 * reject the same log with one byte changed, so the spec is enough to verify a log.
 */
import { createHash, createPublicKey, verify } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decode } from '@msgpack/msgpack';
import test from 'ava';
import { openAuditLog } from '../src/audit/log.js';

const sha = (...parts: Uint8Array[]) => {
  const h = createHash('sha256');
  for (const p of parts) h.update(p);
  return h.digest();
};
const leaf = (d: Uint8Array) => sha(Buffer.from([0]), d);
const node = (l: Uint8Array, r: Uint8Array) => sha(Buffer.from([1]), l, r);
function mth(leaves: Buffer[]): Buffer {
  if (leaves.length === 0) return sha();
  if (leaves.length === 1) return leaves[0]!;
  let k = 1;
  while (k * 2 < leaves.length) k *= 2;
  return node(mth(leaves.slice(0, k)), mth(leaves.slice(k)));
}
function frames(b: Buffer): Buffer[] {
  const out: Buffer[] = [];
  for (let at = 0; at < b.length; ) {
    const n = b.readUInt32BE(at);
    out.push(b.subarray(at + 4, at + 4 + n));
    at += 4 + n;
  }
  return out;
}
// Ed25519 raw public key → KeyObject: the SPKI DER prefix of RFC 8410.
const edKey = (raw: Uint8Array) =>
  createPublicKey({
    key: Buffer.concat([Buffer.from('302a300506032b6570032100', 'hex'), raw]),
    format: 'der',
    type: 'spki',
  });
const keyId = (name: string, raw: Uint8Array) =>
  sha(Buffer.from(`${name}\n`), Buffer.from([1]), raw).readUInt32BE(0);

/** True when the directory verifies per docs/audit.md. */
async function specVerify(dir: string, anchor: Uint8Array): Promise<boolean> {
  const names = (await readdir(dir)).sort();
  const records: Buffer[] = [];
  for (const n of names.filter((x) => /^audit-\d{20}\.log$/.test(x))) {
    if (Number(n.slice(6, 26)) !== records.length) return false;
    records.push(...frames(await readFile(join(dir, n))));
  }
  const leaves = records.map(leaf);
  const decoded = records.map((r) => decode(r) as Record<string, any>);
  // Chain.
  for (let i = 0; i < decoded.length; i++) {
    if (decoded[i]!.n !== i) return false;
    if (i > 0 && !Buffer.from(decoded[i]!.p).equals(leaves[i - 1]!)) return false;
  }
  // Epochs.
  const g = decoded[0]!;
  if (g.t !== 'epoch' || g.f.e !== 0 || !Buffer.from(g.f.k).equals(Buffer.from(anchor))) return false;
  const origin: string = g.f.o;
  const epochs = [{ start: 0, key: Buffer.from(g.f.k) }];
  for (let i = 1; i < decoded.length; i++) {
    const r = decoded[i]!;
    if (r.t !== 'epoch') continue;
    const prev = epochs[epochs.length - 1]!;
    const text = `${origin}\n${i}\n${Buffer.from(r.f.r).toString('base64')}\nsecure-ipc-epoch ${r.f.e} ${Buffer.from(r.f.k).toString('base64')}\n`;
    if (!verify(null, Buffer.from(text), edKey(prev.key), r.f.s)) return false;
    if (!Buffer.from(r.f.r).equals(mth(leaves.slice(0, i)))) return false;
    epochs.push({ start: i, key: Buffer.from(r.f.k) });
  }
  // Checkpoints: each signed by the key in force at its size, each root the records' root.
  let covered = 0;
  for (const note of frames(await readFile(join(dir, 'checkpoints.log'))).map((b) => b.toString('utf8'))) {
    const cut = note.lastIndexOf('\n\n');
    const text = note.slice(0, cut + 1);
    const [o, sizeText, rootText] = text.split('\n');
    const size = Number(sizeText);
    if (o !== origin || size > records.length) return false;
    const inForce = epochs.filter((e) => e.start < size || e.start === 0).at(-1)!;
    const sig = note
      .slice(cut + 2, -1)
      .split('\n')
      .map((l) => l.split(' '))
      .map(([, name, b64]) => ({ name, raw: Buffer.from(b64!, 'base64') }))
      .find((s) => s.name === origin && s.raw.readUInt32BE(0) === keyId(origin, inForce.key));
    if (sig === undefined || !verify(null, Buffer.from(text), edKey(inForce.key), sig.raw.subarray(4)))
      return false;
    if (!Buffer.from(rootText!, 'base64').equals(mth(leaves.slice(0, size)))) return false;
    covered = Math.max(covered, size);
  }
  return covered === records.length;
}

test('a log openAuditLog wrote verifies with a verifier written from docs/audit.md; a changed byte does not', async (t) => {
  const base = await mkdtemp(join(tmpdir(), 'sipc-audit-spec-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  const dir = join(base, 'log');
  const log = await openAuditLog({
    dir,
    origin: 'example.com/spec',
    checkpointEvery: 5,
    maxSegmentBytes: 300,
  });
  for (let i = 0; i < 30; i++) {
    if (i === 10 || i === 20) await log.rotateEpoch();
    await log.append({
      type: 'event',
      fields: { i, tag: new Uint8Array([i, i]), nested: { ok: i % 2 === 0, list: [i, 'x'] } },
    });
  }
  const anchor = log.anchorKey;
  await log.close();
  t.true((await readdir(dir)).filter((n) => n.startsWith('audit-')).length > 2);
  t.true(await specVerify(dir, anchor));
  const seg = join(dir, `audit-${'0'.repeat(20)}.log`);
  const bytes = await readFile(seg);
  bytes[bytes.length - 3]! ^= 1;
  await writeFile(seg, bytes);
  t.false(await specVerify(dir, anchor).catch(() => false));
});
