// `secure-ipc audit verify|tail|proof` through the real binary on logs written by core's
// openAuditLog: verify's lines and exit codes (ok, an edited record at its index, a truncation
// caught by --witness, a wrong anchor), tail's JSON lines, proofs that verify with core's verifiers.

import { randomBytes } from 'node:crypto';
import { chmodSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  auditMessageHash,
  openAuditLog,
  parseCheckpoint,
  verifyCheckpoint,
  verifyConsistency,
  verifyInclusion,
} from '@secure-ipc/core';
import test, { type ExecutionContext } from 'ava';
import { cli, tempDir } from './helpers.js';

const ORIGIN = 'example.com/cli/audit';

/** docs/audit.md "Frames": a 4-byte big-endian length before each body. */
function frames(bodies: readonly Uint8Array[]): Buffer {
  return Buffer.concat(
    bodies.map((b) => {
      const h = Buffer.alloc(4);
      h.writeUInt32BE(b.byteLength);
      return Buffer.concat([h, b]);
    }),
  );
}

async function makeLog(t: ExecutionContext) {
  const base = await tempDir(t, 'sipc-cli-audit-');
  const dir = join(base, 'log');
  const log = await openAuditLog({ dir, origin: ORIGIN, checkpointEvery: 3 });
  for (let i = 0; i < 8; i++)
    await log.append({ type: 'rpc.call', fields: { method: `m${i}`, ok: i % 2 === 0 } });
  await log.close();
  return { base, dir, anchor: log.anchorVerifierKey, publicKey: log.publicKey, note: log.lastCheckpoint! };
}

test('audit verify: ok with exit 0; an edited record is a line with its index and exit 1', async (t) => {
  const { dir, anchor } = await makeLog(t);
  const ok = await cli(['audit', 'verify', dir, '--anchor', anchor]);
  t.is(ok.code, 0, ok.stderr);
  t.regex(ok.stdout, /^ok: example\.com\/cli\/audit, 9 records, 1 epochs, \d+ checkpoints verified\n$/);
  const seg = join(dir, `audit-${'0'.repeat(20)}.log`);
  const bytes = readFileSync(seg);
  const at = bytes.indexOf(Buffer.from('m4'));
  bytes[at + 1] = '5'.charCodeAt(0);
  writeFileSync(seg, bytes);
  const bad = await cli(['audit', 'verify', dir, '--anchor', anchor]);
  t.is(bad.code, 1);
  t.regex(bad.stdout, /^5 edited: record 5 was changed/m);
  t.regex(bad.stdout, /^FAILED: example\.com\/cli\/audit, 1 problems$/m);
  const json = await cli(['audit', 'verify', dir, '--anchor', anchor, '--json']);
  t.is(json.code, 1);
  const report = JSON.parse(json.stdout);
  t.false(report.ok);
  t.deepEqual(
    report.problems.map((p: { kind: string; index: number }) => [p.kind, p.index]),
    [['edited', 5]],
  );
});

test('audit verify --witness catches a truncation; a wrong anchor fails; usage errors exit 2', async (t) => {
  const { base, dir, anchor, note } = await makeLog(t);
  const witness = join(base, 'witness.note');
  writeFileSync(witness, note);
  const seg = join(dir, `audit-${'0'.repeat(20)}.log`);
  // Cut the last record and the checkpoints that cover it.
  const { readAuditLog } = await import('@secure-ipc/core');
  const state = await readAuditLog(dir);
  const keep = state.frames.slice(0, 7);
  writeFileSync(seg, frames(keep));
  const cps = state.checkpointNotes.filter((n) => parseCheckpoint(n).size <= 7);
  writeFileSync(join(dir, 'checkpoints.log'), frames(cps.map((n) => Buffer.from(n))));
  t.is((await cli(['audit', 'verify', dir, '--anchor', anchor])).code, 0);
  const cut = await cli(['audit', 'verify', dir, '--anchor', anchor, '--witness', witness]);
  t.is(cut.code, 1);
  t.regex(cut.stdout, /^7-8 truncated: /m);
  const wrong = await cli(['audit', 'verify', dir, '--anchor', Buffer.alloc(32, 1).toString('base64')]);
  t.is(wrong.code, 1);
  t.regex(wrong.stdout, /^0 bad-epoch: /m);
  t.is((await cli(['audit', 'verify', dir])).code, 2);
  t.is((await cli(['audit', 'verify', dir, '--anchor', 'nonsense'])).code, 3);
  t.is((await cli(['audit', 'tail', dir, '--anchor', anchor])).code, 2);
  t.is((await cli(['audit', 'frobnicate', dir])).code, 2);
});

test('audit tail prints the last records as JSON lines', async (t) => {
  const { dir } = await makeLog(t);
  const out = await cli(['audit', 'tail', dir, '--count', '3']);
  t.is(out.code, 0, out.stderr);
  const lines = out.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  t.deepEqual(
    lines.map((l) => [l.index, l.type, l.fields.method]),
    [
      [6, 'rpc.call', 'm5'],
      [7, 'rpc.call', 'm6'],
      [8, 'rpc.call', 'm7'],
    ],
  );
  t.is(typeof lines[0].at, 'number');
});

test('audit proof: inclusion and consistency proofs verify against the log’s checkpoints', async (t) => {
  const { dir, publicKey, note } = await makeLog(t);
  const head = verifyCheckpoint(note, publicKey, ORIGIN)!;
  const inc = await cli(['audit', 'proof', dir, '4', '--json']);
  t.is(inc.code, 0, inc.stderr);
  const p = JSON.parse(inc.stdout);
  const unb64 = (s: string) => new Uint8Array(Buffer.from(s, 'base64'));
  t.is(p.size, head.size);
  t.true(verifyInclusion(unb64(p.leafHash), 4, p.size, p.proof.map(unb64), head.root));
  const con = await cli(['audit', 'proof', dir, '--from', '4', '--json']);
  t.is(con.code, 0, con.stderr);
  const c = JSON.parse(con.stdout);
  t.true(verifyConsistency(4, c.size, c.proof.map(unb64), unb64(c.fromRoot), head.root));
  const text = await cli(['audit', 'proof', dir, '2', '--size', '4']);
  t.is(text.code, 0);
  t.regex(text.stdout, /^record 2 \(leaf .+\) in the tree of 4 \(root .+\)\n/);
  t.is((await cli(['audit', 'proof', dir, '99'])).code, 2);
});

test('audit hash --key FILE METHOD PARAMS: the keyed hash a server records, whatever the key order; the key file must be private', async (t) => {
  const base = await tempDir(t, 'sipc-cli-audit-hash-');
  const key = randomBytes(32);
  const keyFile = join(base, 'hash.key');
  writeFileSync(keyFile, `${key.toString('base64')}\n`, { mode: 0o600 });
  const expected = Buffer.from(auditMessageHash(key, 'files.read', { path: '/etc/hosts', n: 1 })).toString(
    'base64',
  );
  const run = await cli(['audit', 'hash', '--key', keyFile, 'files.read', '{"n":1,"path":"/etc/hosts"}']);
  t.is(run.code, 0, run.stderr);
  t.is(run.stdout.trim(), expected);
  const json = await cli([
    'audit',
    'hash',
    '--key',
    keyFile,
    'files.read',
    '{"path":"/etc/hosts","n":1}',
    '--json',
  ]);
  t.deepEqual(JSON.parse(json.stdout), { method: 'files.read', hash: expected });
  const hex = join(base, 'hex.key');
  writeFileSync(hex, key.toString('hex'), { mode: 0o600 });
  t.is(
    (await cli(['audit', 'hash', '--key', hex, 'files.read', '{"path":"/etc/hosts","n":1}'])).stdout.trim(),
    expected,
  );
  chmodSync(keyFile, 0o644);
  const open = await cli(['audit', 'hash', '--key', keyFile, 'files.read']);
  t.is(open.code, 3, 'a key file others can read is refused');
  const usage = await cli(['audit', 'hash', 'files.read']);
  t.is(usage.code, 2, '--key is required');
});
