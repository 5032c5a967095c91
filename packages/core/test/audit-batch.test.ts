/**
 * Append batching (issue 19, docs/audit.md "Batching"): the appends of one event-loop turn are one
 * write to the segment, each record still its own frame and leaf, in call order; each append
 * resolves once its batch is written; a failed write (a real EFBIG under `ulimit -f`, in a child
 * process) rejects every append of the batch with SIPC_ERR_AUDIT_CORRUPT and closes the log; a
 * server with 64 calls in flight loses no record at the default maxPending.
 */
import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import { promises as fs } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import {
  connect,
  createPolicy,
  generateKeyPair,
  openAuditLog,
  readAuditLog,
  serve,
  verifyAuditLog,
  verifyInclusion,
} from '../src/index.js';
import {
  awaitConnect,
  type Listener,
  socketConnection,
  TRANSPORT_BRAND,
  type Transport,
} from '../src/transport/index.js';

const ORIGIN = 'test.example/audit-batch';

async function auditDir(t: ExecutionContext): Promise<string> {
  const base = await mkdtemp(join(tmpdir(), 'sipc-audit-batch-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  return join(base, 'audit');
}

/**
 * Count the writes of every FileHandle while `fn` runs (a spy that calls the real write): the
 * tests of this file run serially, so the only writes are the log's.
 */
async function countingWrites<T>(
  dir: string,
  fn: () => Promise<T>,
): Promise<{ result: T; writes: number[] }> {
  const probe = await fs.open(join(dirname(dir), 'probe'), 'w');
  const proto = Object.getPrototypeOf(probe) as { write: (...a: unknown[]) => Promise<unknown> };
  await probe.close();
  const real = proto.write;
  const writes: number[] = [];
  proto.write = function (this: unknown, ...args: unknown[]) {
    writes.push((args[2] as number | undefined) ?? (args[0] as Uint8Array).byteLength);
    return real.apply(this, args);
  };
  try {
    return { result: await fn(), writes };
  } finally {
    proto.write = real;
  }
}

const segmentBytes = async (dir: string) => {
  const names = (await readdir(dir)).filter((n) => n.startsWith('audit-'));
  let total = 0;
  for (const n of names) total += (await stat(join(dir, n))).size;
  return total;
};

test.serial(
  '1,000 appends in one turn are one write, in call order, each its own frame and leaf; the log verifies',
  async (t) => {
    const dir = await auditDir(t);
    const log = await openAuditLog({ dir, origin: ORIGIN, checkpointEvery: 1_000_000 });
    const before = await segmentBytes(dir);
    const { result, writes } = await countingWrites(dir, () =>
      Promise.all(
        Array.from({ length: 1000 }, (_, i) => log.append({ type: 'rpc.call', fields: { method: 'm', i } })),
      ),
    );
    t.is(writes.length, 1, `${writes.length} writes: ${writes.slice(0, 5).join(', ')}`);
    t.is(writes[0], (await segmentBytes(dir)) - before, 'the one write is the whole batch');
    t.deepEqual(
      result.map((r) => r.index),
      Array.from({ length: 1000 }, (_, i) => i + 1),
    );
    t.is(log.size, 1001);
    const state = await readAuditLog(dir);
    t.is(state.records.length, 1001);
    for (let i = 1; i <= 1000; i++) {
      t.is(state.records[i]!.fields.i, i - 1, 'call order');
      t.deepEqual(state.leafHashes[i], result[i - 1]!.leafHash);
    }
    const note = await log.checkpoint();
    const root = log.root;
    for (const i of [1, 500, 1000])
      t.true(verifyInclusion(result[i - 1]!.leafHash, i, 1001, log.inclusionProof(i), root));
    await log.close();
    const report = await verifyAuditLog(dir, {
      anchorKey: log.anchorVerifierKey,
      witnessCheckpoints: [note],
    });
    t.true(report.ok, report.problems.map((p) => `${p.index} ${p.kind}`).join('; '));
    t.is(report.size, 1001);
  },
);

test.serial(
  'a batch keeps its place: appends before checkpoint() and close() are in them; a bad record fails alone',
  async (t) => {
    const dir = await auditDir(t);
    const log = await openAuditLog({ dir, origin: ORIGIN });
    const a = log.append({ type: 'a' });
    const bad = log.append({ type: 'b', fields: { f: () => 1 } as never });
    const c = log.append({ type: 'c' });
    const note = log.checkpoint(); // not awaited: it goes after the batch
    const d = log.append({ type: 'd' }); // a new batch, after the checkpoint
    const closed = log.close();
    await t.throwsAsync(bad, { code: 'SIPC_ERR_INVALID_ARGUMENT' });
    t.deepEqual(
      (await Promise.all([a, c, d])).map((r) => r.index),
      [1, 2, 3],
    );
    t.true((await note).includes('\n3\n'), 'the checkpoint covers a and c (size 3)');
    await closed;
    const state = await readAuditLog(dir);
    t.deepEqual(
      state.records.map((r) => r?.type),
      ['epoch', 'a', 'c', 'd'],
    );
    t.true((await verifyAuditLog(dir, { anchorKey: log.anchorVerifierKey })).ok);
  },
);

test.serial('appends made while a write is in flight join the next batch (group commit)', async (t) => {
  const dir = await auditDir(t);
  const log = await openAuditLog({ dir, origin: ORIGIN, checkpointEvery: 1_000_000 });
  const { result, writes } = await countingWrites(dir, async () => {
    const all: Promise<unknown>[] = [];
    // 20 turns of 50 appends each, one turn after the other.
    for (let turn = 0; turn < 20; turn++) {
      for (let i = 0; i < 50; i++) all.push(log.append({ type: 'x', fields: { turn, i } }));
      await new Promise((r) => setImmediate(r));
    }
    return Promise.all(all);
  });
  t.is(result.length, 1000);
  t.true(writes.length <= 20, `${writes.length} writes for 20 turns`);
  await log.close();
  t.true((await verifyAuditLog(dir, { anchorKey: log.anchorVerifierKey })).ok);
});

/** Run `script` (an ES module body; `core` is the built index) under `ulimit -f KIB`; its JSON. */
function underFileSizeLimit(kib: number, script: string, args: string[]): Promise<unknown> {
  const core = fileURLToPath(new URL('../src/index.js', import.meta.url));
  const body = `const core = await import(${JSON.stringify(core)});\n${script}`;
  return new Promise((resolve, reject) => {
    const child = spawn(
      '/bin/sh',
      [
        '-c',
        `ulimit -f ${kib} && exec "$0" --input-type=module -e "$1" -- "$@"`,
        process.execPath,
        body,
        ...args,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('close', (code) => {
      if (code !== 0) reject(new Error(`child exited ${code}: ${err}`));
      else resolve(JSON.parse(out));
    });
  });
}

test.serial(
  'a failed write (EFBIG) rejects every append of the batch with SIPC_ERR_AUDIT_CORRUPT and closes the log',
  async (t) => {
    if (process.platform === 'win32') return t.pass('no ulimit on Windows');
    const dir = await auditDir(t);
    // 1,000 records of ~300 bytes (~300 KB) in one batch, against a 64 KiB file size limit: the
    // first write is cut short by the kernel, the next fails with EFBIG.
    const out = (await underFileSizeLimit(
      64,
      `const [dir] = process.argv.slice(2);
const log = await core.openAuditLog({ dir, origin: ${JSON.stringify(ORIGIN)} });
const settled = await Promise.allSettled(
  Array.from({ length: 1000 }, (_, i) => log.append({ type: 'rpc.call', fields: { i, pad: 'x'.repeat(256) } })),
);
const codes = {};
for (const s of settled) {
  const k = s.status === 'fulfilled' ? 'ok' : s.reason.code + '/' + s.reason.details?.reason + '/' + s.reason.cause?.code;
  codes[k] = (codes[k] ?? 0) + 1;
}
const later = await log.append({ type: 'later' }).then(() => 'ok', (e) => e.code);
const cp = await log.checkpoint().then(() => 'ok', (e) => e.code);
console.log(JSON.stringify({ codes, later, cp, size: log.size, anchor: log.anchorVerifierKey }));`,
      [dir],
    )) as { codes: Record<string, number>; later: string; cp: string; size: number; anchor: string };
    t.deepEqual(out.codes, { 'SIPC_ERR_AUDIT_CORRUPT/write/EFBIG': 1000 });
    t.is(out.later, 'SIPC_ERR_AUDIT_CORRUPT');
    t.is(out.cp, 'SIPC_ERR_AUDIT_CORRUPT');
    t.is(out.size, 1, 'no record of the failed batch is in the tree');
    // What reached the disk before the failure is a prefix of the batch and a torn frame: the
    // verifier says so, and a reopened log cuts the tail and goes on after the last whole record.
    const report = await verifyAuditLog(dir, { anchorKey: out.anchor });
    t.true(report.problems.some((p) => p.kind === 'torn'));
    t.false(report.problems.some((p) => !['torn', 'unsigned'].includes(p.kind)));
    const log = await openAuditLog({ dir, origin: ORIGIN });
    const next = await log.append({ type: 'after' });
    t.is(next.index, report.size);
    await log.close();
    t.true((await verifyAuditLog(dir, { anchorKey: out.anchor })).ok);
  },
);

/**
 * A bare Unix socket transport (core cannot import transport-unix): the calls below must cross a
 * real socket, since the memory transport's ping-pong runs in microtasks and would never let the
 * event loop reach the disk.
 */
function socketTransport(): Transport {
  const pathOf = (address: string) => address.slice('unix://'.length);
  return {
    [TRANSPORT_BRAND]: true,
    name: 'unix',
    schemes: ['unix:'],
    async listen(address) {
      const server = net.createServer();
      const events = new EventEmitter();
      server.on('connection', (s) => events.emit('connection', socketConnection(s, { transport: 'unix' })));
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(pathOf(address), resolve);
      });
      return Object.assign(events, {
        address,
        close: () => new Promise<void>((r) => server.close(() => r())),
      }) as unknown as Listener;
    },
    async connect(address) {
      return socketConnection(await awaitConnect(net.connect(pathOf(address)), address), {
        transport: 'unix',
      });
    },
  };
}

test.serial(
  'a server with 64 calls in flight over a socket records every one at the default maxPending',
  async (t) => {
    if (process.platform === 'win32') return t.pass('Unix sockets only');
    const dir = await auditDir(t);
    const log = await openAuditLog({ dir, origin: ORIGIN });
    const serverKeys = generateKeyPair();
    const clientKeys = generateKeyPair();
    const transport = socketTransport();
    const address = `unix://${join(dirname(dir), 's.sock')}`;
    const server = await serve({
      transport,
      address,
      keyPair: serverKeys,
      trust: { keys: [clientKeys.publicKey] },
      policy: createPolicy({ roles: {}, peers: [{ key: clientKeys.publicKey, roles: [] }] }),
      audit: { log, hashKey: new Uint8Array(32).fill(7) },
    });
    const client = await connect({
      transport,
      address,
      keyPair: clientKeys,
      trust: { keys: [serverKeys.publicKey] },
    });
    const CALLS = 20_000;
    const payload = new Uint8Array(64);
    let started = 0;
    const worker = async () => {
      while (started < CALLS) {
        started++;
        await client.ping(payload);
      }
    };
    await Promise.all(Array.from({ length: 64 }, worker));
    await client.close();
    await server.close();
    const dropped = server.audit?.dropped;
    await log.close();
    t.is(dropped, 0);
    t.is(server.audit?.failure, undefined);
    const state = await readAuditLog(dir);
    t.is(state.records.filter((r) => r?.type === 'rpc.call').length, CALLS);
    t.true((await verifyAuditLog(dir, { anchorKey: log.anchorVerifierKey })).ok);
  },
);
