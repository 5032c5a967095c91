// Sagas in one process (issue 16, item 8): a failure injected at every step compensates exactly
// the completed steps, in reverse, each once, under the expected keys; a failing compensation is
// retried through the clock and, out of attempts, left stuck for resumeSagas; resumeSagas'
// backward and forward recovery from a journal a crash left behind; bad definitions and options
// are typed errors. The crash itself, across processes: saga-crash.test.ts.
import test from 'ava';
import { isSecureIpcError, type SecureIpcError } from '../src/errors.js';
import { manualClock } from '../src/resilience/clock.js';
import {
  defineSaga,
  resumeSagas,
  runSaga,
  type SagaCompensationContext,
  type SagaStep,
  type SagaStepContext,
  sagaIdempotencyKey,
} from '../src/resilience/saga.js';
import { memoryJournal, type SagaJournal, type SagaRecord } from '../src/resilience/saga-journal.js';

const NAMES = ['reserve', 'charge', 'ship', 'notify'];

interface Call {
  op: 'do' | 'undo';
  step: string;
  key: string;
  result?: unknown;
  outcome?: string;
  runKey?: string;
  resumed?: boolean;
  seen?: string[];
}

/** A saga of four steps recording every call; `failAt` throws in that step, `undoFails` per step. */
function recordingSaga(options: { failAt?: number; undoFails?: Record<string, number> } = {}) {
  const calls: Call[] = [];
  const undoFails = { ...options.undoFails };
  const steps: SagaStep<{ order: string }>[] = NAMES.map((name, i) => ({
    name,
    run(ctx: SagaStepContext<{ order: string }>) {
      calls.push({
        op: 'do',
        step: name,
        key: ctx.idempotencyKey,
        resumed: ctx.resumed,
        seen: Object.keys(ctx.results),
      });
      if (i === options.failAt) throw new Error(`${name} failed`);
      return { id: `${ctx.input.order}-${name}`, seen: Object.keys(ctx.results) };
    },
    compensate(ctx: SagaCompensationContext<{ order: string }>, result: unknown) {
      calls.push({
        op: 'undo',
        step: name,
        key: ctx.idempotencyKey,
        result,
        outcome: ctx.outcome,
        runKey: ctx.runKey,
      });
      if ((undoFails[name] ?? 0) > 0) {
        undoFails[name]!--;
        throw new Error(`undo ${name} failed`);
      }
    },
  }));
  return { calls, def: defineSaga({ name: 'order', steps }) };
}

const key = (step: string, phase: 'do' | 'undo') => sagaIdempotencyKey('order', 's-1', step, phase);

test('a saga that succeeds: every step once in order, results by name, the journal ends empty', async (t) => {
  const journal = memoryJournal();
  const { calls, def } = recordingSaga();
  const out = await runSaga(def, { order: 'o1' }, { journal, sagaId: 's-1' });
  t.is(out.sagaId, 's-1');
  t.deepEqual(Object.keys(out.results), NAMES);
  t.deepEqual(out.results.ship, { id: 'o1-ship', seen: ['reserve', 'charge'] });
  t.deepEqual(
    calls.map((c) => [c.op, c.step, c.key, c.resumed]),
    NAMES.map((n) => ['do', n, key(n, 'do'), false]),
  );
  t.deepEqual(await journal.unfinished(), []);
});

for (let failAt = 0; failAt < NAMES.length; failAt++) {
  test(`a failure at step ${failAt} compensates the ${failAt} steps before it in reverse, each once, keyed`, async (t) => {
    const journal = memoryJournal();
    const { calls, def } = recordingSaga({ failAt });
    const err = await t.throwsAsync<SecureIpcError>(
      runSaga(def, { order: 'o1' }, { journal, sagaId: 's-1' }),
    );
    t.true(isSecureIpcError(err, 'SIPC_ERR_SAGA_FAILED'));
    t.is((err.cause as Error).message, `${NAMES[failAt]} failed`);
    const undone = NAMES.slice(0, failAt).reverse();
    t.deepEqual(err.details, { saga: 'order', sagaId: 's-1', step: NAMES[failAt], compensated: undone });
    const undos = calls.filter((c) => c.op === 'undo');
    t.deepEqual(
      undos.map((c) => [c.step, c.key, c.runKey, c.outcome]),
      undone.map((n) => [n, key(n, 'undo'), key(n, 'do'), 'done']),
    );
    // Each compensation got its step's result, and nothing ran after the failed step.
    for (const u of undos) t.like(u.result, { id: `o1-${u.step}` });
    t.is(calls.filter((c) => c.op === 'do').length, failAt + 1);
    t.deepEqual(await journal.unfinished(), [], 'the compensated saga is finished');
  });
}

test('a compensation that fails is retried after a backoff on the clock, with the same key', async (t) => {
  const clock = manualClock();
  const { calls, def } = recordingSaga({ failAt: 2, undoFails: { charge: 2 } });
  const run = runSaga(
    def,
    { order: 'o1' },
    { journal: memoryJournal(), sagaId: 's-1', clock, compensationBackoffMs: 10 },
  );
  const settled = run.then(
    () => 'resolved',
    (err: SecureIpcError) => err,
  );
  const undos = () => calls.filter((c) => c.op === 'undo' && c.step === 'charge').length;
  await waitFor(() => clock.pendingTimers === 1);
  t.is(undos(), 1, 'first attempt ran, the second waits for the clock');
  clock.advance(9);
  await flush();
  t.is(undos(), 1, 'not before 10 ms');
  clock.advance(1);
  await waitFor(() => clock.pendingTimers === 1 && undos() === 2);
  clock.advance(20); // the backoff doubles
  const err = (await settled) as SecureIpcError;
  t.is(err.code, 'SIPC_ERR_SAGA_FAILED');
  t.deepEqual(err.details?.compensated, ['charge', 'reserve']);
  const keys = calls.filter((c) => c.op === 'undo' && c.step === 'charge').map((c) => c.key);
  t.deepEqual(keys, [key('charge', 'undo'), key('charge', 'undo'), key('charge', 'undo')]);
});

test('a compensation out of attempts is stuck: reported, the saga stays in the journal, resumeSagas retries it', async (t) => {
  const journal = memoryJournal();
  const { calls, def } = recordingSaga({ failAt: 3, undoFails: { charge: 5 } });
  const err = await t.throwsAsync<SecureIpcError>(
    runSaga(
      def,
      { order: 'o1' },
      { journal, sagaId: 's-1', maxCompensationAttempts: 2, compensationBackoffMs: 0 },
    ),
  );
  t.is(err.code, 'SIPC_ERR_SAGA_FAILED');
  t.deepEqual(err.details, {
    saga: 'order',
    sagaId: 's-1',
    step: 'notify',
    compensated: ['ship'],
    stuck: { step: 'charge', attempts: 2 },
    pending: ['charge', 'reserve'],
  });
  t.is(
    calls.filter((c) => c.op === 'undo' && c.step === 'reserve').length,
    0,
    'reverse order kept: reserve waits',
  );
  const [log] = await journal.unfinished();
  t.deepEqual(
    log!.records.map((r) => r.type),
    [
      'begin',
      ...Array(4).fill(['step-started', 'step-done']).flat().slice(0, 6),
      'step-started',
      'step-failed',
    ].concat(['undo-started', 'undo-done', 'undo-started', 'undo-stuck']),
  );
  // Still stuck on the next resume (3 failures left, 2 attempts), then through on the one after.
  const [again] = await resumeSagas(journal, [def], { maxCompensationAttempts: 2, compensationBackoffMs: 0 });
  t.is(again!.outcome, 'stuck');
  t.is(again!.error?.code, 'SIPC_ERR_SAGA_FAILED');
  t.deepEqual(await resumeSagas(journal, [def], { compensationBackoffMs: 0 }), [
    { sagaId: 's-1', saga: 'order', outcome: 'compensated' },
  ]);
  const undos = calls.filter((c) => c.op === 'undo').map((c) => c.step);
  t.deepEqual(undos, ['ship', 'charge', 'charge', 'charge', 'charge', 'charge', 'charge', 'reserve']);
  t.is(calls.filter((c) => c.op === 'undo' && c.step === 'ship').length, 1, 'ship is not undone twice');
  t.deepEqual(await journal.unfinished(), []);
});

test('an abort stops before the next step; the steps done are compensated', async (t) => {
  const ac = new AbortController();
  const calls: string[] = [];
  const def = defineSaga({
    name: 'abortable',
    steps: [
      { name: 'a', run: () => calls.push('do a'), compensate: () => calls.push('undo a') },
      { name: 'b', run: () => ac.abort(new Error('user cancelled')), compensate: () => calls.push('undo b') },
      { name: 'c', run: () => calls.push('do c'), compensate: () => calls.push('undo c') },
    ],
  });
  const err = await t.throwsAsync<SecureIpcError>(
    runSaga(def, null, { journal: memoryJournal(), signal: ac.signal }),
  );
  t.is(err.code, 'SIPC_ERR_SAGA_FAILED');
  t.is((err.cause as SecureIpcError).code, 'SIPC_ERR_ABORTED');
  t.is(err.details?.step, 'c');
  t.deepEqual(calls, ['do a', 'undo b', 'undo a']);
});

test('a result the journal cannot hold fails the saga, and that step is compensated too', async (t) => {
  const calls: string[] = [];
  const def = defineSaga({
    name: 'fn-result',
    steps: [
      { name: 'a', run: () => 1, compensate: () => calls.push('undo a') },
      { name: 'b', run: () => () => 'a function', compensate: (_ctx, r) => calls.push(`undo b ${typeof r}`) },
    ],
  });
  const err = await t.throwsAsync<SecureIpcError>(runSaga(def, null, { journal: memoryJournal() }));
  t.is(err.code, 'SIPC_ERR_SAGA_FAILED');
  t.is((err.cause as SecureIpcError).code, 'SIPC_ERR_INVALID_ARGUMENT');
  t.deepEqual(calls, ['undo b function', 'undo a']);
});

test('an input the journal cannot hold is refused before any step runs', async (t) => {
  let ran = false;
  const def = defineSaga({
    name: 'x',
    steps: [{ name: 'a', run: () => (ran = true), compensate: () => {} }],
  });
  const err = await t.throwsAsync<SecureIpcError>(
    runSaga(def, { when: Symbol('no') }, { journal: memoryJournal() }),
  );
  t.is(err.code, 'SIPC_ERR_INVALID_ARGUMENT');
  t.false(ran);
});

test('a saga id the journal holds, or one running, is refused', async (t) => {
  const journal = memoryJournal();
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const def = defineSaga({ name: 'slow', steps: [{ name: 'a', run: () => gate, compensate: () => {} }] });
  const first = runSaga(def, null, { journal, sagaId: 'same' });
  const err = await t.throwsAsync<SecureIpcError>(runSaga(def, null, { journal, sagaId: 'same' }));
  t.is(err.code, 'SIPC_ERR_INVALID_ARGUMENT');
  const [busy] = await resumeSagas(journal, [def]);
  t.like(busy, { sagaId: 'same', outcome: 'skipped', error: { code: 'SIPC_ERR_INVALID_ARGUMENT' } });
  release();
  await first;
  await journal.append({ type: 'begin', sagaId: 'held', saga: 'slow' });
  const held = await t.throwsAsync<SecureIpcError>(runSaga(def, null, { journal, sagaId: 'held' }));
  t.is(held.code, 'SIPC_ERR_INVALID_ARGUMENT');
});

/** A journal as a crash left it: `records` (sagaId s-1) appended, then nothing. */
type Unkeyed = SagaRecord extends infer R ? (R extends SagaRecord ? Omit<R, 'sagaId'> : never) : never;

async function crashedJournal(records: Unkeyed[]): Promise<SagaJournal> {
  const journal = memoryJournal();
  await journal.append({ type: 'begin', sagaId: 's-1', saga: 'order', input: { order: 'o1' } });
  for (const r of records) await journal.append({ ...r, sagaId: 's-1' } as SagaRecord);
  return journal;
}

const started = (step: number) => ({ type: 'step-started' as const, step, name: NAMES[step]! });
const done = (step: number) => ({ type: 'step-done' as const, step, result: { id: `o1-${NAMES[step]}` } });

test('resume, backward: a started step without a result is compensated as unknown, then the done ones', async (t) => {
  const journal = await crashedJournal([started(0), done(0), started(1), done(1), started(2)]);
  const { calls, def } = recordingSaga();
  t.deepEqual(await resumeSagas(journal, [def]), [{ sagaId: 's-1', saga: 'order', outcome: 'compensated' }]);
  t.deepEqual(
    calls.map((c) => [c.op, c.step, c.outcome, c.result]),
    [
      ['undo', 'ship', 'unknown', undefined],
      ['undo', 'charge', 'done', { id: 'o1-charge' }],
      ['undo', 'reserve', 'done', { id: 'o1-reserve' }],
    ],
  );
  t.deepEqual(await journal.unfinished(), []);
});

test('resume, backward: a compensation already done is not run again; the half-done one is', async (t) => {
  const journal = await crashedJournal([
    started(0),
    done(0),
    started(1),
    done(1),
    started(2),
    { type: 'step-failed', step: 2 },
    { type: 'undo-started', step: 1 },
    { type: 'undo-done', step: 1 },
    { type: 'undo-started', step: 0 },
  ]);
  const { calls, def } = recordingSaga();
  await resumeSagas(journal, [def]);
  t.deepEqual(
    calls.map((c) => [c.op, c.step, c.key]),
    [['undo', 'reserve', key('reserve', 'undo')]],
  );
});

test('resume, forward: the interrupted step runs again under the same key, then the rest', async (t) => {
  const journal = await crashedJournal([started(0), done(0), started(1)]);
  const { calls, def } = recordingSaga();
  const fwd = defineSaga({ name: 'order', steps: def.steps, recovery: 'forward' });
  t.deepEqual(await resumeSagas(journal, [fwd]), [{ sagaId: 's-1', saga: 'order', outcome: 'completed' }]);
  t.deepEqual(
    calls.map((c) => [c.op, c.step, c.key, c.resumed]),
    NAMES.slice(1).map((n) => ['do', n, key(n, 'do'), true]),
  );
  // The steps see the journaled results of the steps before them.
  t.deepEqual(calls.at(-1)?.seen, ['reserve', 'charge', 'ship']);
  t.deepEqual(await journal.unfinished(), []);
});

test('resume, forward: a step that then fails falls back to backward recovery', async (t) => {
  const journal = await crashedJournal([started(0), done(0), started(1)]);
  const { calls, def } = recordingSaga({ failAt: 2 });
  const fwd = defineSaga({ name: 'order', steps: def.steps, recovery: 'forward' });
  t.deepEqual(await resumeSagas(journal, [fwd]), [{ sagaId: 's-1', saga: 'order', outcome: 'compensated' }]);
  t.deepEqual(
    calls.map((c) => `${c.op} ${c.step}`),
    ['do charge', 'do ship', 'undo charge', 'undo reserve'],
  );
});

test('resume: an unknown saga or one whose steps changed is skipped and left in the journal', async (t) => {
  const journal = await crashedJournal([started(0), done(0)]);
  const other = defineSaga({ name: 'other', steps: [{ name: 'a', run: () => {}, compensate: () => {} }] });
  const [unknown] = await resumeSagas(journal, [other]);
  t.is(unknown!.outcome, 'skipped');
  t.is(unknown!.error?.code, 'SIPC_ERR_INVALID_ARGUMENT');
  const renamed = defineSaga({
    name: 'order',
    steps: [{ name: 'hold', run: () => {}, compensate: () => {} }],
  });
  const [changed] = await resumeSagas(journal, [renamed]);
  t.is(changed!.outcome, 'skipped');
  t.is((await journal.unfinished()).length, 1);
});

test('a step named __proto__ is a result like any other', async (t) => {
  const def = defineSaga({
    name: 'proto',
    steps: [
      { name: '__proto__', run: () => ({ polluted: true }), compensate: () => {} },
      { name: 'next', run: (ctx) => Object.keys(ctx.results), compensate: () => {} },
    ],
  });
  const { results } = await runSaga(def, null, { journal: memoryJournal() });
  t.deepEqual(Object.keys(results), ['__proto__', 'next']);
  t.deepEqual(results.next, ['__proto__']);
  t.is(Object.getPrototypeOf(results), Object.prototype);
  t.is((results as { polluted?: boolean }).polluted, undefined);
});

test('keys: deterministic, distinct per saga, id, step and phase, within the RPC limit', (t) => {
  const k = sagaIdempotencyKey('order', 's-1', 'charge', 'do');
  t.is(k, sagaIdempotencyKey('order', 's-1', 'charge', 'do'));
  t.regex(k, /^saga1\.[A-Za-z0-9_-]{43}$/);
  const others = [
    sagaIdempotencyKey('order', 's-1', 'charge', 'undo'),
    sagaIdempotencyKey('order', 's-2', 'charge', 'do'),
    sagaIdempotencyKey('order', 's-1', 'ship', 'do'),
    sagaIdempotencyKey('other', 's-1', 'charge', 'do'),
    sagaIdempotencyKey('order', 's-1\0charge', '', 'do'),
  ];
  t.is(new Set([k, ...others]).size, 6);
  t.true(Buffer.byteLength(k) <= 128);
});

const step = { name: 'a', run: () => {}, compensate: () => {} };
const badDefinitions: [string, unknown][] = [
  ['no options', undefined],
  ['no name', { steps: [step] }],
  ['an empty name', { name: '', steps: [step] }],
  ['a name over 128 bytes', { name: 'é'.repeat(65), steps: [step] }],
  ['a lone surrogate', { name: '\ud800', steps: [step] }],
  ['no steps', { name: 'x', steps: [] }],
  ['65 steps', { name: 'x', steps: Array.from({ length: 65 }, (_, i) => ({ ...step, name: `s${i}` })) }],
  ['a step that is not an object', { name: 'x', steps: [null] }],
  ['a step without run', { name: 'x', steps: [{ name: 'a', compensate: () => {} }] }],
  ['a step without compensate', { name: 'x', steps: [{ name: 'a', run: () => {} }] }],
  ['two steps of one name', { name: 'x', steps: [step, step] }],
  ['an unknown recovery', { name: 'x', steps: [step], recovery: 'sideways' }],
];

for (const [what, options] of badDefinitions) {
  test(`defineSaga refuses ${what} (SIPC_ERR_INVALID_ARGUMENT)`, (t) => {
    const err = t.throws<SecureIpcError>(() => defineSaga(options as never));
    t.is(err.code, 'SIPC_ERR_INVALID_ARGUMENT');
  });
}

test('runSaga and resumeSagas refuse bad options before journaling anything', async (t) => {
  const journal = memoryJournal();
  const def = defineSaga({ name: 'x', steps: [step] });
  const bad: [unknown, unknown][] = [
    [{ name: 'x', steps: [step] }, { journal }], // not from defineSaga
    [def, undefined],
    [def, {}],
    [def, { journal, sagaId: '' }],
    [def, { journal, sagaId: 'x'.repeat(129) }],
    [def, { journal, maxCompensationAttempts: 0 }],
    [def, { journal, maxCompensationAttempts: 11 }],
    [def, { journal, maxCompensationAttempts: 1.5 }],
    [def, { journal, compensationBackoffMs: -1 }],
    [def, { journal, compensationBackoffMs: Number.NaN }],
  ];
  for (const [d, o] of bad) {
    const err = await t.throwsAsync<SecureIpcError>(runSaga(d as never, null, o as never));
    t.is(err.code, 'SIPC_ERR_INVALID_ARGUMENT');
  }
  t.deepEqual(await journal.unfinished(), []);
  for (const [j, defs] of [
    [undefined, [def]],
    [journal, 'x'],
    [journal, [def, def]],
    [journal, [{ name: 'x' }]],
  ] as const) {
    const err = await t.throwsAsync<SecureIpcError>(resumeSagas(j as never, defs as never));
    t.is(err.code, 'SIPC_ERR_INVALID_ARGUMENT');
  }
});

test('a journal that fails stops the saga with its error, unfinished, for resumeSagas', async (t) => {
  const inner = memoryJournal();
  let failOn: SagaRecord['type'] | undefined = 'step-done';
  const journal: SagaJournal = {
    async append(record) {
      if (record.type === failOn) throw Object.assign(new Error('disk full'), { code: 'ENOSPC' });
      await inner.append(record);
    },
    unfinished: () => inner.unfinished(),
  };
  const { calls, def } = recordingSaga();
  const err = await t.throwsAsync(runSaga(def, { order: 'o1' }, { journal, sagaId: 's-1' }));
  t.is((err as NodeJS.ErrnoException).code, 'ENOSPC');
  t.deepEqual(
    calls.map((c) => `${c.op} ${c.step}`),
    ['do reserve'],
    'nothing ran after the failed append',
  );
  failOn = undefined;
  t.deepEqual(await resumeSagas(journal, [def]), [{ sagaId: 's-1', saga: 'order', outcome: 'compensated' }]);
  t.deepEqual(
    calls.map((c) => `${c.op} ${c.step} ${c.outcome ?? ''}`),
    ['do reserve ', 'undo reserve unknown'],
  );
});

/** Let pending promise callbacks run. */
async function flush(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}

/** Flush until `ready()` (bounded: the saga's awaits are a few microtask turns, never a timer). */
async function waitFor(ready: () => boolean): Promise<void> {
  for (let i = 0; i < 100 && !ready(); i++) await flush();
  if (!ready()) throw new Error('condition not reached');
}
