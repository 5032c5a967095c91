/**
 * Audit witnesses (docs/audit.md, "Witnesses"): a witness follows a log's checkpoints and epochs,
 * cosigns what it accepts (C2SP tlog-cosignature/v1), and raises a fork when a log (a copy of
 * its directory with the key, as a thief has it) shows a history that does not extend the one it
 * signed before; tampered updates are rejected; over RPC, `$audit.checkpoint` and
 * `$audit.cosign` need exact grants and the server records each cosignature once per size.
 */
import { createHash } from 'node:crypto';
import { cp, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { sodium } from '../src/crypto/sodium.js';
import {
  type AuditLog,
  type AuditWitnessUpdate,
  connect,
  cosignatureKeyId,
  createAuditWitness,
  createPolicy,
  generateKeyPair,
  generateWitnessKey,
  isSecureIpcError,
  MAX_WITNESS_EPOCHS,
  openAuditLog,
  parseCheckpoint,
  readAuditLog,
  serve,
  verifyAuditLog,
  verifyCosignature,
} from '../src/index.js';
import { memoryTransport } from '../src/transport/index.js';

const ORIGIN = 'test.example/witnessed';

const witnessKey = generateWitnessKey;

async function base(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sipc-witness-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A witness anchored to `log` that has accepted its current checkpoint. */
function anchoredWitness(log: AuditLog) {
  const witness = createAuditWitness({
    origin: ORIGIN,
    name: 'w',
    secretKey: witnessKey(),
    anchorKey: log.anchorKey,
  });
  witness.update(log.witnessUpdate(witness.request()));
  return { witness, held: witness.state! };
}

async function append(log: AuditLog, n: number, tag: string): Promise<void> {
  for (let i = 0; i < n; i++) await log.append({ type: 'rpc.call', fields: { tag, i } });
}

test('a witness follows the log from its genesis, cosigns (tlog-cosignature/v1) and its checkpoint is a witness checkpoint for verify', async (t) => {
  const dir = join(await base(t), 'log');
  const log = await openAuditLog({ dir, origin: ORIGIN });
  await append(log, 5, 'a');
  await log.checkpoint();
  const sk = witnessKey();
  let now = 1_700_000_000_123;
  const witness = createAuditWitness({
    origin: ORIGIN,
    name: 'witness.example/w1',
    secretKey: sk,
    anchorKey: log.anchorKey,
    now: () => now,
  });
  t.deepEqual(witness.request(), { size: 0 });
  const first = witness.update(log.witnessUpdate(witness.request()));
  t.is(first.size, 6);
  t.true(first.advanced);
  t.false(first.more);
  t.deepEqual(witness.request(), { size: 6, epoch: 0 });

  // The cosignature line, checked byte by byte against the C2SP text.
  const note = parseCheckpoint(first.cosigned).note;
  const line = note.signatures.find((s) => s.name === 'witness.example/w1')!;
  const pub = sk.subarray(32);
  const id = createHash('sha256')
    .update(Buffer.concat([Buffer.from('witness.example/w1\n'), Buffer.from([0x04]), pub]))
    .digest()
    .readUInt32BE(0);
  t.is(line.keyId, id);
  t.is(cosignatureKeyId('witness.example/w1', pub), id);
  t.is(line.signature.byteLength, 8 + 64);
  t.is(Buffer.from(line.signature.subarray(0, 8)).readBigUInt64BE(0), 1_700_000_000n);
  const message = Buffer.from(`cosignature/v1\ntime 1700000000\n${note.text}`);
  t.true(sodium.crypto_sign_verify_detached(line.signature.subarray(8), message, pub));
  t.is(verifyCosignature(note, 'witness.example/w1', pub)?.time, 1_700_000_000);
  t.is(verifyCosignature(note, 'witness.example/w1', witnessKey().subarray(32)), undefined);

  // Rotations and records later: the witness follows the epochs.
  await log.rotateEpoch();
  await append(log, 3, 'b');
  await log.rotateEpoch();
  await log.checkpoint();
  now += 60_000;
  const second = witness.update(log.witnessUpdate(witness.request()));
  t.true(second.advanced);
  t.is(second.size, log.size);
  t.deepEqual(witness.request(), { size: log.size, epoch: 2 });
  // Nothing new: the same size is accepted again (a fresh cosignature), not an advance.
  const third = witness.update(log.witnessUpdate(witness.request()));
  t.false(third.advanced);

  await log.close();
  const report = await verifyAuditLog(dir, {
    anchorKey: log.anchorVerifierKey,
    witnessCheckpoints: [witness.state!.checkpoint],
  });
  t.true(report.ok, JSON.stringify(report.problems));
});

test('trust on first use without an anchor; with a wrong anchor the genesis is refused', async (t) => {
  const dir = join(await base(t), 'log');
  const log = await openAuditLog({ dir, origin: ORIGIN });
  await append(log, 2, 'a');
  await log.rotateEpoch();
  const tofu = createAuditWitness({ origin: ORIGIN, name: 'w', secretKey: witnessKey() });
  t.is(tofu.update(log.witnessUpdate(tofu.request())).size, log.size);
  t.deepEqual(tofu.state!.publicKey, log.publicKey);
  const other = await openAuditLog({ dir: join(await base(t), 'other'), origin: ORIGIN });
  const anchored = createAuditWitness({
    origin: ORIGIN,
    name: 'w',
    secretKey: witnessKey(),
    anchorKey: other.anchorKey,
  });
  const err = t.throws(() => anchored.update(log.witnessUpdate(anchored.request())));
  t.true(isSecureIpcError(err, 'SIPC_ERR_AUDIT_CORRUPT'));
  t.is(anchored.state, undefined, 'nothing kept');
  const wrongOrigin = createAuditWitness({ origin: 'elsewhere/log', name: 'w', secretKey: witnessKey() });
  t.throws(() => wrongOrigin.update(log.witnessUpdate({ size: 0 })), { code: 'SIPC_ERR_AUDIT_CORRUPT' });
  await log.close();
  await other.close();
});

test('forks: a copy of the directory with its key, shown after the original, is caught (rollback, two roots for one size, no consistency)', async (t) => {
  const root = await base(t);
  const dir = join(root, 'log');
  const first = await openAuditLog({ dir, origin: ORIGIN });
  await append(first, 3, 'a');
  await first.close();
  // The thief's copy: the segments, the checkpoints and the current epoch key.
  await cp(dir, join(root, 'copy-1'), { recursive: true });
  await cp(dir, join(root, 'copy-2'), { recursive: true });
  await cp(dir, join(root, 'copy-3'), { recursive: true });
  const log = await openAuditLog({ dir, origin: ORIGIN });
  await append(log, 2, 'a');
  await log.checkpoint();
  const { witness, held } = anchoredWitness(log);
  t.is(held.size, 6);

  const fork = async (copy: string, extra: number): Promise<unknown> => {
    const forged = await openAuditLog({ dir: join(root, copy), origin: ORIGIN });
    await append(forged, extra, 'forged');
    await forged.checkpoint();
    const update = forged.witnessUpdate(witness.request());
    await forged.close();
    return t.throws(() => witness.update(update));
  };
  // Rolled back: fewer records than the checkpoint the witness holds.
  const back = await fork('copy-1', 0);
  t.true(isSecureIpcError(back, 'SIPC_ERR_AUDIT_FORK'), String(back));
  // The same size with other records: two roots signed for one size.
  const same = await fork('copy-2', 2);
  t.true(isSecureIpcError(same, 'SIPC_ERR_AUDIT_FORK'), String(same));
  t.regex((same as Error).message, /two roots/);
  // Longer, but not an extension of what the witness holds.
  const longer = await fork('copy-3', 4);
  t.true(isSecureIpcError(longer, 'SIPC_ERR_AUDIT_FORK'), String(longer));
  t.regex((longer as Error).message, /does not extend/);
  // The evidence: both notes, each signed by the log.
  const details = (longer as { details: { held: string; presented: string } }).details;
  t.is(details.held, held.checkpoint);
  t.not(parseCheckpoint(details.presented).size, held.size);
  t.deepEqual(witness.state, held, 'a fork changes nothing');
  // The real log still extends what the witness holds.
  await append(log, 1, 'a');
  await log.checkpoint();
  t.true(witness.update(log.witnessUpdate(witness.request())).advanced);
  await log.close();
});

test('tampered updates are rejected and change nothing: dropped epoch, edited epoch record, bad proofs, a checkpoint by a later key', async (t) => {
  const dir = join(await base(t), 'log');
  const log = await openAuditLog({ dir, origin: ORIGIN });
  await append(log, 4, 'a');
  const { witness, held } = anchoredWitness(log);
  await log.rotateEpoch();
  await append(log, 2, 'b');
  await log.rotateEpoch();
  await log.checkpoint();
  const good = log.witnessUpdate(witness.request());
  t.is(good.epochs.length, 2);
  const bad = (u: AuditWitnessUpdate, what: string) => {
    const err = t.throws(() => witness.update(u), undefined, what);
    t.true(
      isSecureIpcError(err, 'SIPC_ERR_AUDIT_CORRUPT') || isSecureIpcError(err, 'SIPC_ERR_AUDIT_FORK'),
      what,
    );
    t.deepEqual(witness.state, held, what);
  };
  bad({ ...good, epochs: good.epochs.slice(1) }, 'epoch 1 left out');
  bad({ ...good, epochs: [] }, 'no epochs: signed by a key the witness does not hold');
  const edited = new Uint8Array(good.epochs[0]!.record);
  edited[edited.length - 1]! ^= 1;
  bad({ ...good, epochs: [{ ...good.epochs[0]!, record: edited }, good.epochs[1]!] }, 'edited epoch record');
  const wrongPath = good.epochs[0]!.inclusion.map((h) => new Uint8Array(h).fill(7));
  bad({ ...good, epochs: [{ ...good.epochs[0]!, inclusion: wrongPath }, good.epochs[1]!] }, 'bad inclusion');
  bad({ ...good, consistency: good.consistency.map((h) => new Uint8Array(h).fill(1)) }, 'bad consistency');
  bad({ ...good, checkpoint: good.checkpoint.replace(/\n\n.*$/s, '\n\n— w AAAAAAAA\n') }, 'bad signature');
  bad({ checkpoint: 'x' } as unknown as AuditWitnessUpdate, 'malformed');
  bad({ ...good, epochs: new Array(MAX_WITNESS_EPOCHS + 1).fill(good.epochs[0]) }, 'too many epochs');
  t.true(witness.update(good).advanced, 'the real update still goes through');
  await log.close();
});

test(`an update is paged at ${MAX_WITNESS_EPOCHS} epochs: its checkpoint is the next handover, and the witness catches up`, async (t) => {
  const dir = join(await base(t), 'log');
  const log = await openAuditLog({ dir, origin: ORIGIN });
  for (let e = 0; e < MAX_WITNESS_EPOCHS + 6; e++) {
    await append(log, 1, 'r');
    await log.rotateEpoch();
  }
  const witness = createAuditWitness({
    origin: ORIGIN,
    name: 'w',
    secretKey: witnessKey(),
    anchorKey: log.anchorKey,
  });
  const page1 = log.witnessUpdate(witness.request());
  t.is(page1.epochs.length, MAX_WITNESS_EPOCHS);
  const r1 = witness.update(page1);
  t.true(r1.more);
  t.is(witness.state!.epoch, MAX_WITNESS_EPOCHS - 1);
  const r2 = witness.update(log.witnessUpdate(witness.request()));
  t.false(r2.more);
  t.is(witness.state!.epoch, log.epoch);
  t.is(r2.size, log.size);
  await log.close();
  // The paged checkpoint (a handover note) counts as a witness checkpoint too.
  const report = await verifyAuditLog(dir, {
    anchorKey: log.anchorVerifierKey,
    witnessCheckpoints: [r1.cosigned],
  });
  t.true(report.ok, JSON.stringify(report.problems));
});

test('over RPC: $audit.checkpoint and $audit.cosign by exact grant; one cosign record per size; bad params are the caller’s error', async (t) => {
  const dir = join(await base(t), 'log');
  const log = await openAuditLog({ dir, origin: ORIGIN });
  const serverKeys = generateKeyPair();
  const witnessPeer = generateKeyPair();
  const plainPeer = generateKeyPair();
  const transport = memoryTransport();
  const address = 'memory://audit-witness';
  const server = await serve({
    transport,
    address,
    keyPair: serverKeys,
    trust: { keys: [witnessPeer.publicKey, plainPeer.publicKey] },
    policy: createPolicy({
      roles: { witness: { call: ['$audit.checkpoint', '$audit.cosign'] }, all: { call: ['*'] } },
      peers: [
        { key: witnessPeer.publicKey, roles: ['witness'] },
        { key: plainPeer.publicKey, roles: ['all'] },
      ],
    }),
    audit: { log },
  });
  t.teardown(() => server.close());
  const dial = (keyPair: typeof witnessPeer) =>
    connect({ transport, address, keyPair, trust: { keys: [serverKeys.publicKey] } });
  const witness = createAuditWitness({
    origin: ORIGIN,
    name: 'peer.example/w',
    secretKey: witnessKey(),
    anchorKey: log.anchorKey,
  });
  const client = await dial(witnessPeer);
  await log.checkpoint();
  const first = await client.witnessAudit(witness);
  t.true(first.recorded);
  const again = await client.witnessAudit(witness);
  t.false(again.recorded, 'the same size is recorded once per channel');
  t.is(again.size, first.size);

  await t.throwsAsync(client.request('$audit.checkpoint', { size: -1 }), {
    code: 'SIPC_ERR_INVALID_ARGUMENT',
  });
  await t.throwsAsync(client.request('$audit.checkpoint', 'nope'), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  await t.throwsAsync(client.request('$audit.cosign', { note: log.lastCheckpoint, key: witness.publicKey }), {
    code: 'SIPC_ERR_INVALID_ARGUMENT',
    message: /exactly one cosignature/,
  });
  await t.throwsAsync(client.request('$audit.cosign', { note: first.cosigned, key: new Uint8Array(32) }), {
    code: 'SIPC_ERR_INVALID_ARGUMENT',
  });
  // `*` does not grant a `$` name.
  const plain = await dial(plainPeer);
  await t.throwsAsync(
    plain.witnessAudit(createAuditWitness({ origin: ORIGIN, name: 'x', secretKey: witnessKey() })),
    {
      code: 'SIPC_ERR_FORBIDDEN',
    },
  );
  await client.close();
  await plain.close();
  await server.close();
  await log.close();

  const state = await readAuditLog(dir);
  const cosigns = state.records.filter((r) => r?.type === 'witness.cosign');
  t.is(cosigns.length, 1);
  const f = cosigns[0]!.fields as Record<string, unknown>;
  t.is(f.witness, 'peer.example/w');
  t.is(f.size, first.size);
  t.deepEqual(f.key, witness.publicKey);
  // The record rebuilds the cosigned note: the log's checkpoint of that size plus the line.
  const cpNote = state.checkpointNotes.find((n) => parseCheckpoint(n).size === f.size)!;
  const rebuilt = parseCheckpoint(cpNote).note;
  const cos = verifyCosignature(parseCheckpoint(first.cosigned).note, 'peer.example/w', witness.publicKey)!;
  t.is(f.time, cos.time);
  t.deepEqual(f.sig, cos.signature);
  t.is(rebuilt.text, parseCheckpoint(first.cosigned).note.text);
  const report = await verifyAuditLog(dir, { anchorKey: log.anchorVerifierKey });
  t.true(report.ok, JSON.stringify(report.problems));
});
