// The saga file journal (issue 16, item 8): created 0600 with the format's header, records back
// after a reopen, a torn last record (cut at every byte, or zero-filled) dropped and the file
// repaired, damage before the last record refused, links, foreign modes and oversize records
// refused, finished sagas compacted away, a full journal compacted then refused.
import {
  chmodSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { SecureIpcError } from '../src/errors.js';
import { defineSaga, resumeSagas, runSaga, type SagaStepContext } from '../src/resilience/saga.js';
import { fileJournal, SAGA_JOURNAL_HEADER } from '../src/resilience/saga-file-journal.js';
import { MAX_SAGA_RECORD_BYTES, type SagaJournal, type SagaRecord } from '../src/resilience/saga-journal.js';

function tempPath(t: ExecutionContext): string {
  const dir = mkdtempSync(join(tmpdir(), 'sipc-saga-journal-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return join(dir, 'journal');
}

const RECORDS: SagaRecord[] = [
  {
    type: 'begin',
    sagaId: 's-1',
    saga: 'order',
    input: { order: 'o1', bytes: new Uint8Array([1, 2]), big: 2n ** 60n },
  },
  { type: 'step-started', sagaId: 's-1', step: 0, name: 'reserve' },
  { type: 'step-done', sagaId: 's-1', step: 0, result: { id: 'r-1', at: new Date(0) } },
  { type: 'step-started', sagaId: 's-1', step: 1, name: 'charge' },
];

async function written(path: string, records = RECORDS): Promise<number[]> {
  const journal = await fileJournal(path);
  const sizes: number[] = [statSync(path).size];
  for (const r of records) {
    await journal.append(r);
    sizes.push(statSync(path).size);
  }
  await journal.close();
  return sizes;
}

test('a new journal is created 0600 with the header; its records come back after a reopen', async (t) => {
  const path = tempPath(t);
  const sizes = await written(path);
  t.is(statSync(path).mode & 0o777, 0o600);
  t.is(readFileSync(path).subarray(0, 20).toString('ascii'), SAGA_JOURNAL_HEADER);
  t.is(sizes[0], SAGA_JOURNAL_HEADER.length);
  const journal = await fileJournal(path);
  t.is(journal.tornBytes, 0);
  t.deepEqual(await journal.unfinished(), [{ sagaId: 's-1', records: RECORDS }]);
  await journal.close();
});

test('a record is length, msgpack map, CRC-32 (the normative layout)', async (t) => {
  const path = tempPath(t);
  await written(path, RECORDS.slice(0, 1));
  const bytes = readFileSync(path).subarray(SAGA_JOURNAL_HEADER.length);
  const length = bytes.readUInt32BE(0);
  t.is(bytes.byteLength, 4 + length + 4);
  const { crc32 } = await import('node:zlib');
  t.is(bytes.readUInt32BE(4 + length), crc32(bytes.subarray(4, 4 + length)));
  t.is(bytes[4]! & 0xf0, 0x80, 'a msgpack fixmap');
});

test('a torn last record, cut at every byte, is dropped and the file repaired', async (t) => {
  const path = tempPath(t);
  const sizes = await written(path);
  const whole = readFileSync(path);
  const lastStart = sizes.at(-2)!;
  for (let cut = lastStart + 1; cut < whole.byteLength; cut++) {
    writeFileSync(path, whole.subarray(0, cut), { mode: 0o600 });
    const journal = await fileJournal(path);
    t.is(journal.tornBytes, cut - lastStart);
    t.deepEqual(await journal.unfinished(), [{ sagaId: 's-1', records: RECORDS.slice(0, -1) }]);
    t.is(statSync(path).size, lastStart, 'the torn bytes are gone from the file');
    await journal.append(RECORDS.at(-1)!);
    await journal.close();
    t.deepEqual(readFileSync(path), whole, 'the record appended after the repair is where the torn one was');
  }
});

test('a last record with a bad CRC or zero-filled tail is torn; damage before the last record is refused', async (t) => {
  const path = tempPath(t);
  const sizes = await written(path);
  const whole = readFileSync(path);
  const flipped = Buffer.from(whole);
  flipped[flipped.byteLength - 1]! ^= 1; // the last record's CRC
  writeFileSync(path, flipped);
  const crc = await fileJournal(path);
  t.is(crc.tornBytes, whole.byteLength - sizes.at(-2)!);
  await crc.close();
  writeFileSync(path, Buffer.concat([whole, Buffer.alloc(100)]));
  const zeros = await fileJournal(path);
  t.is(zeros.tornBytes, 100);
  t.is((await zeros.unfinished())[0]!.records.length, RECORDS.length);
  await zeros.close();
  const damaged = Buffer.from(whole);
  damaged[sizes[1]! + 6]! ^= 0xff; // inside the second record's body
  writeFileSync(path, damaged);
  const err = await t.throwsAsync<SecureIpcError>(fileJournal(path));
  t.is(err.code, 'SIPC_ERR_INVALID_ARGUMENT');
  t.is(err.details?.reason, 'corrupt');
  t.deepEqual(readFileSync(path), damaged, 'a refused file is left as it was');
});

test('a file that is not a journal, a link, or open to others is refused', async (t) => {
  const path = tempPath(t);
  writeFileSync(path, 'SIPC-SAGA-JOURNAL 2\n', { mode: 0o600 });
  t.like(await t.throwsAsync<SecureIpcError>(fileJournal(path)), {
    code: 'SIPC_ERR_INVALID_ARGUMENT',
    details: { reason: 'header' },
  });
  rmSync(path);
  await written(path);
  chmodSync(path, 0o640);
  t.is((await t.throwsAsync<SecureIpcError>(fileJournal(path))).code, 'SIPC_ERR_INSECURE_KEY_FILE');
  chmodSync(path, 0o600);
  const link = `${path}.link`;
  symlinkSync(path, link);
  t.like(await t.throwsAsync<SecureIpcError>(fileJournal(link)), {
    code: 'SIPC_ERR_INVALID_ARGUMENT',
    details: { reason: 'symlink' },
  });
  t.is((await t.throwsAsync<SecureIpcError>(fileJournal(''))).code, 'SIPC_ERR_INVALID_ARGUMENT');
  for (const maxBytes of [0, 1024, 2 ** 27, 2 ** 20 + 0.5])
    t.is(
      (await t.throwsAsync<SecureIpcError>(fileJournal(path, { maxBytes }))).code,
      'SIPC_ERR_INVALID_ARGUMENT',
    );
});

test('a header cut short (a crash while creating) is a new journal', async (t) => {
  const path = tempPath(t);
  writeFileSync(path, SAGA_JOURNAL_HEADER.slice(0, 7), { mode: 0o600 });
  const journal = await fileJournal(path);
  t.deepEqual(await journal.unfinished(), []);
  t.is(statSync(path).size, SAGA_JOURNAL_HEADER.length);
  await journal.close();
});

test('records over the size limit, unencodable, or of no saga are refused and not written', async (t) => {
  const path = tempPath(t);
  const journal = await fileJournal(path);
  const size = statSync(path).size;
  const big = { type: 'begin', sagaId: 'b', saga: 'x', input: 'x'.repeat(MAX_SAGA_RECORD_BYTES) } as const;
  t.like(await t.throwsAsync<SecureIpcError>(journal.append(big)), {
    code: 'SIPC_ERR_INVALID_ARGUMENT',
    details: { type: 'begin' },
  });
  t.is(
    (
      await t.throwsAsync<SecureIpcError>(
        journal.append({ type: 'begin', sagaId: 'f', saga: 'x', input: () => 1 }),
      )
    ).code,
    'SIPC_ERR_INVALID_ARGUMENT',
  );
  t.is(
    (await t.throwsAsync<SecureIpcError>(journal.append({ type: 'undo-done', sagaId: 'none', step: 0 })))
      .code,
    'SIPC_ERR_INVALID_ARGUMENT',
  );
  t.is(
    (await t.throwsAsync<SecureIpcError>(journal.append({ type: 'what', sagaId: 'x' } as never))).code,
    'SIPC_ERR_INVALID_ARGUMENT',
  );
  t.is(statSync(path).size, size);
  await journal.close();
  t.is(
    (await t.throwsAsync<SecureIpcError>(journal.append(RECORDS[0]!))).code,
    'SIPC_ERR_INVALID_ARGUMENT',
    'closed',
  );
});

test('finished sagas are compacted away at the next open; the unfinished stay', async (t) => {
  const path = tempPath(t);
  const journal = await fileJournal(path);
  for (const r of RECORDS) await journal.append(r);
  await journal.append({ type: 'begin', sagaId: 's-2', saga: 'order' });
  await journal.append({ type: 'end', sagaId: 's-2', outcome: 'compensated' });
  t.deepEqual(
    (await journal.unfinished()).map((l) => l.sagaId),
    ['s-1'],
  );
  const before = statSync(path).size;
  await journal.append({ type: 'begin', sagaId: 's-3', saga: 'order' });
  await journal.append({ type: 'end', sagaId: 's-3', outcome: 'completed' });
  await journal.compact(); // by hand: the same rewrite, and the journal stays open
  t.true(statSync(path).size < before);
  await journal.append({ type: 'begin', sagaId: 's-4', saga: 'order' });
  await journal.append({ type: 'end', sagaId: 's-4', outcome: 'completed' });
  await journal.close();
  const reopened = await fileJournal(path);
  t.true(statSync(path).size < before);
  t.is(statSync(path).mode & 0o777, 0o600, 'the rewritten file is 0600 too');
  t.deepEqual(await reopened.unfinished(), [{ sagaId: 's-1', records: RECORDS }]);
  await reopened.close();
});

test('a full journal compacts itself, then refuses with SIPC_ERR_BUSY while unfinished sagas fill it', async (t) => {
  const path = tempPath(t);
  const maxBytes = 1024 * 1024;
  const journal = await fileJournal(path, { maxBytes });
  const input = 'x'.repeat(60_000);
  // Finished sagas: the file fills, compaction makes room each time.
  for (let i = 0; i < 40; i++) {
    await journal.append({ type: 'begin', sagaId: `done-${i}`, saga: 'x', input });
    await journal.append({ type: 'end', sagaId: `done-${i}`, outcome: 'completed' });
  }
  t.true(statSync(path).size <= maxBytes);
  let i = 0;
  const err = await t.throwsAsync<SecureIpcError>(async () => {
    for (; i < 40; i++) await journal.append({ type: 'begin', sagaId: `open-${i}`, saga: 'x', input });
  });
  t.is(err.code, 'SIPC_ERR_BUSY');
  t.true(i > 10 && i < 20, `${i} unfinished sagas fit`);
  t.is((await journal.unfinished()).length, i);
  await journal.close();
  truncateSync(path, statSync(path).size); // still a valid journal
  const reopened = await fileJournal(path, { maxBytes });
  t.is((await reopened.unfinished()).length, i);
  await reopened.close();
});

test('one journal object per file in a process: a second open is refused until the first closes', async (t) => {
  const path = tempPath(t);
  const first = await fileJournal(path);
  const err = await t.throwsAsync<SecureIpcError>(fileJournal(path));
  t.like(err, { code: 'SIPC_ERR_INVALID_ARGUMENT', details: { reason: 'open' } });
  await first.append(RECORDS[0]!);
  await first.close();
  const second = await fileJournal(path);
  t.is((await second.unfinished()).length, 1);
  await second.close();
});

test('sagas running side by side on one file journal: appends are serialized, every record comes back', async (t) => {
  const path = tempPath(t);
  const journal = await fileJournal(path);
  const def = defineSaga({
    name: 'parallel',
    steps: ['a', 'b', 'c'].map((name) => ({
      name,
      run: async (ctx: SagaStepContext) => `${ctx.sagaId}-${name}`,
      compensate: () => {},
    })),
  });
  // Each saga stops after its second step's record (a crash), so the journal keeps them all.
  const gate = new Error('stop here');
  const stopping: SagaJournal = {
    async append(record) {
      if (record.type === 'step-started' && record.step === 2) throw gate;
      await journal.append(record);
    },
    unfinished: () => journal.unfinished(),
  };
  const ids = Array.from({ length: 8 }, (_, i) => `p-${i}`);
  const outcomes = await Promise.allSettled(
    ids.map((sagaId) => runSaga(def, null, { journal: stopping, sagaId })),
  );
  t.true(outcomes.every((o) => o.status === 'rejected' && o.reason === gate));
  await journal.close();
  const reopened = await fileJournal(path);
  const logs = await reopened.unfinished();
  t.deepEqual(logs.map((l) => l.sagaId).sort(), ids);
  for (const log of logs)
    t.deepEqual(log.records, [
      { type: 'begin', sagaId: log.sagaId, saga: 'parallel', input: null },
      { type: 'step-started', sagaId: log.sagaId, step: 0, name: 'a' },
      { type: 'step-done', sagaId: log.sagaId, step: 0, result: `${log.sagaId}-a` },
      { type: 'step-started', sagaId: log.sagaId, step: 1, name: 'b' },
      { type: 'step-done', sagaId: log.sagaId, step: 1, result: `${log.sagaId}-b` },
    ]);
  const recovered = await resumeSagas(reopened, [def]);
  t.deepEqual(new Set(recovered.map((r) => r.outcome)), new Set(['compensated']));
  t.deepEqual(await reopened.unfinished(), []);
  await reopened.close();
});
