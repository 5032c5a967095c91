/**
 * Append batching (issue 19, docs/audit.md "Batching"): the appends of one event-loop turn are one
 * write to the segment, each record still its own frame and leaf, in call order; each append
 * resolves once its batch is written; a failed write (a real EFBIG under `ulimit -f`, in a child
 * process) rejects every append of the batch with SIPC_ERR_AUDIT_CORRUPT and closes the log; a
 * server with 64 calls in flight in front of a disk slower than its calls makes them wait (back-pressure)
 * instead of dropping or refusing their records.
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
  type AuditLog,
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
  memoryTransport,
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

/**
 * The real log behind a slower disk: every append waits `delayMs` first (concurrently, as writes
 * queued to a slow device), and the most appends outstanding at once is kept.
 */
function slowLog(log: AuditLog, delayMs: number) {
  let outstanding = 0;
  const seen = { most: 0 };
  const slow = Object.create(log) as AuditLog;
  Object.defineProperty(slow, 'append', {
    value: async (record: Parameters<AuditLog['append']>[0]) => {
      outstanding++;
      seen.most = Math.max(seen.most, outstanding);
      try {
        await new Promise((r) => setTimeout(r, delayMs));
        return await log.append(record);
      } finally {
        outstanding--;
      }
    },
  });
  return { slow, seen };
}

for (const required of [false, true])
  test.serial(
    `64 calls in flight over a socket in front of a disk slower than the calls${required ? ' (required)' : ''}: calls wait for the backlog, none is dropped or refused, the backlog stays under maxPending`,
    async (t) => {
      if (process.platform === 'win32') return t.pass('Unix sockets only');
      const dir = await auditDir(t);
      const log = await openAuditLog({ dir, origin: ORIGIN });
      const { slow, seen } = slowLog(log, 5);
      const MAX_PENDING = 16;
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
        audit: { log: slow, hashKey: new Uint8Array(32).fill(7), maxPending: MAX_PENDING, required },
      });
      const client = await connect({
        transport,
        address,
        keyPair: clientKeys,
        trust: { keys: [serverKeys.publicKey] },
      });
      const CALLS = 3_000;
      const payload = new Uint8Array(64);
      let started = 0;
      let failed = 0;
      const worker = async () => {
        while (started < CALLS) {
          started++;
          await client.ping(payload).catch(() => failed++);
        }
      };
      await Promise.all(Array.from({ length: 64 }, worker));
      await client.close();
      await server.close();
      await new Promise((r) => setTimeout(r, 50));
      const dropped = server.audit?.dropped;
      await log.close();
      t.is(failed, 0, 'no call refused');
      t.is(dropped, 0, 'no record dropped');
      t.is(server.audit?.failure, undefined);
      t.true(
        seen.most <= MAX_PENDING,
        `at most ${seen.most} appends outstanding (maxPending ${MAX_PENDING})`,
      );
      t.true(seen.most >= MAX_PENDING / 2, `the gate was reached (${seen.most} outstanding at most)`);
      const state = await readAuditLog(dir);
      t.is(state.records.filter((r) => r?.type === 'rpc.call').length, CALLS);
      t.true((await verifyAuditLog(dir, { anchorKey: log.anchorVerifierKey })).ok);
    },
  );

test.serial(
  'calls waiting for a stuck log: at most maxIncoming wait (the rest SIPC_ERR_UNAVAILABLE, not run), all run once it moves; a close while waiting runs nothing',
  async (t) => {
    const dir = await auditDir(t);
    const log = await openAuditLog({ dir, origin: ORIGIN });
    let release!: () => void;
    let stuck = new Promise<void>((r) => {
      release = r;
    });
    const gated = Object.create(log) as AuditLog;
    Object.defineProperty(gated, 'append', {
      value: async (record: Parameters<AuditLog['append']>[0]) => {
        await stuck;
        return log.append(record);
      },
    });
    const serverKeys = generateKeyPair();
    const clientKeys = generateKeyPair();
    const transport = memoryTransport();
    let ran = 0;
    const server = await serve({
      transport,
      address: 'memory://audit-gate',
      keyPair: serverKeys,
      trust: { keys: [clientKeys.publicKey] },
      policy: createPolicy({
        roles: { app: { call: ['work.*'] } },
        peers: [{ key: clientKeys.publicKey, roles: ['app'] }],
      }),
      audit: { log: gated, maxPending: 4 },
    });
    server.handle('work.do', () => ++ran);
    const client = await connect({
      transport,
      address: 'memory://audit-gate',
      keyPair: clientKeys,
      trust: { keys: [serverKeys.publicKey] },
      maxInFlight: 200,
    });
    // The channel.open record and the first call fill the backlog to its gate (2 of 4).
    const first = client.request('work.do');
    await new Promise((r) => setTimeout(r, 20));
    let settled = 0;
    const calls = Array.from({ length: 70 }, () =>
      client
        .request('work.do')
        .then(
          () => 'ok',
          (e: { code?: string }) => e.code,
        )
        .finally(() => settled++),
    );
    // Released only once all 70 have reached the gate: the 6 over maxIncoming are answered at once
    // (a loaded machine may take longer than any fixed wait to deliver 70 requests).
    for (const deadline = Date.now() + 10_000; settled < 6 && Date.now() < deadline; )
      await new Promise((r) => setTimeout(r, 10));
    await new Promise((r) => setTimeout(r, 20));
    t.is(ran, 1, 'only the call before the gate ran');
    release();
    const outcomes = await Promise.all(calls);
    await first;
    t.is(outcomes.filter((o) => o === 'ok').length, 64, 'maxIncoming (64) waited and ran');
    t.is(outcomes.filter((o) => o === 'SIPC_ERR_UNAVAILABLE').length, 6, 'the rest were refused, not run');
    t.is(ran, 65);
    // Stuck again: calls wait, then the client leaves; none of them runs.
    stuck = new Promise<void>((r) => {
      release = r;
    });
    for (let i = 0; i < 4; i++) void client.request('work.do').catch(() => {});
    await new Promise((r) => setTimeout(r, 50));
    const before = ran;
    await client.close();
    release();
    await new Promise((r) => setTimeout(r, 50));
    t.true(ran - before <= 2, `at most the calls before the gate ran after the close (${ran - before})`);
    await server.close();
    await log.close();
    t.is(server.audit?.dropped, 0);
  },
);
