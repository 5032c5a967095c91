/**
 * Sagas (issue 16, item 8; Garcia-Molina & Salem, 1987): a sequence of steps, each with a
 * compensation that semantically undoes it. The steps run in order; when one fails, the
 * compensations of the steps that completed run in reverse (backward recovery), each under its
 * own idempotency key. Every step is journaled before and after its effect
 * (./saga-journal.ts), so a process that crashed mid-saga finishes it on restart
 * (`resumeSagas`):
 *
 *   runSaga:    begin ─► for each step: [aborted? fail] step-started ─► run ─► step-done
 *               a step fails ─► step-failed ─► backward ─► end(compensated) ─► SIPC_ERR_SAGA_FAILED
 *               every step done ─► end(completed) ─► { sagaId, results }
 *   backward:   for the started steps, highest first, not failed, not yet undone:
 *               undo-started ─► compensate (attempts with backoff through the Clock) ─► undo-done
 *               out of attempts ─► undo-stuck, stop (reverse order is kept): the saga stays in
 *               the journal and the next resumeSagas retries from there
 *   resume:     a started step without step-done is ambiguous (its effect may have happened):
 *               backward compensates it too, with result undefined (`outcome: 'unknown'`);
 *               recovery 'forward' instead re-runs it under the same key and goes on
 *
 * A step or compensation reaches other processes through keyed requests
 * (`client.request(m, p, { idempotencyKey: ctx.idempotencyKey })`): the key is derived from the
 * saga's name and id, the step's name and the phase, so a re-run after a crash reuses it and the
 * server runs the effect once (within its idempotency window).
 */
import { createHash, randomUUID } from 'node:crypto';
import { createError, isSecureIpcError, type SecureIpcError } from '../errors.js';
import { type Clock, systemClock } from './clock.js';
import { encodeSagaRecord, type SagaJournal, type SagaLog, type SagaRecord } from './saga-journal.js';

/** Most steps of a saga. */
export const MAX_SAGA_STEPS = 64;
/** Longest saga name, step name or saga id, in UTF-8 bytes. */
export const MAX_SAGA_NAME_BYTES = 128;
/** Default attempts of a compensation before it is recorded as stuck. */
export const DEFAULT_SAGA_COMPENSATION_ATTEMPTS = 3;
/** Default wait before a compensation's second attempt, in ms (doubled for each further one). */
export const DEFAULT_SAGA_COMPENSATION_BACKOFF_MS = 100;
/** Most attempts `maxCompensationAttempts` may ask for. */
export const MAX_SAGA_COMPENSATION_ATTEMPTS = 10;

/** What a step's `run` gets. */
export interface SagaStepContext<I = unknown> {
  /** The saga definition's name. */
  readonly saga: string;
  /** This saga's id (unique per saga: the keys derive from it). */
  readonly sagaId: string;
  /** The step's name. */
  readonly step: string;
  /** The saga's input (as the journal gives it back after a restart). */
  readonly input: I;
  /** The results of the steps done so far, by step name. */
  readonly results: Readonly<Record<string, unknown>>;
  /** The key of this run or compensation (`sagaIdempotencyKey`): pass it to keyed requests. */
  readonly idempotencyKey: string;
  /**
   * Aborted when the caller aborts the saga (`runSaga`'s `signal`); a compensation's signal is
   * never aborted: an abort stops forward progress, never the undoing.
   */
  readonly signal: AbortSignal;
  /** True when this runs after a restart (`resumeSagas`), not in the process that began the saga. */
  readonly resumed: boolean;
}

/** What a step's `compensate` gets. */
export interface SagaCompensationContext<I = unknown> extends SagaStepContext<I> {
  /**
   * `done`: the step returned (its result is the second argument). `unknown`: it started and the
   * process stopped before its result was journaled; the effect may or may not have happened,
   * the result is undefined and `runKey` names the effect to undo (a compensation must treat an
   * effect that never happened as undone).
   */
  readonly outcome: 'done' | 'unknown';
  /** The idempotency key the step's run used. */
  readonly runKey: string;
  /** 1 for the first attempt of this compensation in this process, then 2, 3... */
  readonly attempt: number;
}

/** One step: its effect and the compensation that undoes it. */
export interface SagaStep<I = unknown> {
  /** Unique within the saga; part of the keys (renaming a step changes its keys). */
  readonly name: string;
  /** The effect. Its result (core's value model: what an RPC result can be) is journaled. */
  run(ctx: SagaStepContext<I>): unknown;
  /** Undo the effect; must be idempotent under `ctx.idempotencyKey` (it may run again after a crash). */
  compensate(ctx: SagaCompensationContext<I>, result: unknown): unknown;
}

/** What `defineSaga` takes. */
export interface SagaDefinitionOptions<I = unknown> {
  /** The saga's name: `resumeSagas` finds the definition of a journaled saga by it. */
  readonly name: string;
  /** The steps, run in order (1 to MAX_SAGA_STEPS). */
  readonly steps: readonly SagaStep<I>[];
  /**
   * What `resumeSagas` does with a saga a crash interrupted before any step failed: `backward`
   * (default) compensates every started step; `forward` re-runs the interrupted step under the
   * same key and continues (for steps that can be retried to completion).
   */
  readonly recovery?: 'backward' | 'forward';
}

/** A checked, frozen saga definition (`defineSaga`). */
export interface SagaDefinition<I = unknown> {
  /** The saga's name. */
  readonly name: string;
  /** The steps, in order. */
  readonly steps: readonly SagaStep<I>[];
  /** What `resumeSagas` does with an interrupted saga of this definition. */
  readonly recovery: 'backward' | 'forward';
}

/** Options of `runSaga` and `resumeSagas`. */
export interface SagaExecutionOptions {
  /** Timers of the compensation backoff (default `systemClock`). */
  clock?: Clock;
  /** Attempts of a compensation before it is stuck (1 to 10, default 3). */
  maxCompensationAttempts?: number;
  /** Wait before the second attempt, doubled for each further one, in ms (0 to 60,000, default 100). */
  compensationBackoffMs?: number;
}

/** Options of `runSaga`. */
export interface RunSagaOptions extends SagaExecutionOptions {
  /** Where the saga is journaled (`memoryJournal()`, `await fileJournal(path)`). */
  journal: SagaJournal;
  /** The saga's id, 1 to 128 UTF-8 bytes, unique for all time (default: a random UUID). */
  sagaId?: string;
  /** Abort: no further step starts; the steps done are compensated (cause SIPC_ERR_ABORTED). */
  signal?: AbortSignal;
}

/** What a saga that completed returns. */
export interface SagaResult {
  /** The saga's id. */
  readonly sagaId: string;
  /** Every step's result, by step name. */
  readonly results: Readonly<Record<string, unknown>>;
}

/** What `resumeSagas` did with one unfinished saga. */
export interface SagaRecovery {
  /** The saga's id. */
  readonly sagaId: string;
  /** The saga's name (from its begin record). */
  readonly saga: string;
  /**
   * `compensated`: backward recovery finished; `completed`: forward recovery finished; `stuck`: a
   * compensation is still failing (left in the journal); `skipped`: not touched (no definition
   * of that name, a definition whose steps differ from the journal, or running in this process).
   */
  readonly outcome: 'compensated' | 'completed' | 'stuck' | 'skipped';
  /** Why, for `stuck` (SIPC_ERR_SAGA_FAILED) and `skipped` (SIPC_ERR_INVALID_ARGUMENT). */
  readonly error?: SecureIpcError;
}

/**
 * The idempotency key of a step's run (`do`) or compensation (`undo`): `saga1.` and the
 * unpadded base64url SHA-256 of the saga name, saga id, step name and phase joined by NUL bytes
 * (49 ASCII bytes, within the RPC's 128). The same inputs give the same key in every process.
 */
export function sagaIdempotencyKey(saga: string, sagaId: string, step: string, phase: 'do' | 'undo'): string {
  const digest = createHash('sha256')
    .update([saga, sagaId, step, phase].join('\0'), 'utf8')
    .digest('base64url');
  return `saga1.${digest}`;
}

function nameProblem(value: unknown, what: string): void {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    Buffer.byteLength(value, 'utf8') > MAX_SAGA_NAME_BYTES
  )
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `${what} must be a string of 1 to ${MAX_SAGA_NAME_BYTES} UTF-8 bytes`,
    );
  // A lone surrogate would become U+FFFD in UTF-8: two names would share their keys.
  if (Buffer.from(value, 'utf8').toString('utf8') !== value)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `${what} must be well-formed UTF-16 (no lone surrogate)`);
}

function checkStep(step: unknown, i: number, seen: Set<string>): void {
  if (typeof step !== 'object' || step === null)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `defineSaga: steps[${i}] must be an object`);
  const s = step as Record<string, unknown>;
  nameProblem(s.name, `defineSaga: steps[${i}].name`);
  if (seen.has(s.name as string))
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `defineSaga: steps[${i}].name repeats an earlier step's name`,
    );
  seen.add(s.name as string);
  for (const fn of ['run', 'compensate'])
    if (typeof s[fn] !== 'function')
      throw createError(
        'SIPC_ERR_INVALID_ARGUMENT',
        `defineSaga: steps[${i}].${fn} must be a function (a step with nothing to undo compensates with () => {})`,
      );
}

/**
 * Check and freeze a saga definition. Throws SIPC_ERR_INVALID_ARGUMENT for a missing or too long
 * name, no steps or more than MAX_SAGA_STEPS, a step without `run` or `compensate`, two steps of
 * one name, or an unknown `recovery`.
 */
export function defineSaga<I = unknown>(options: SagaDefinitionOptions<I>): SagaDefinition<I> {
  if (typeof options !== 'object' || options === null)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'defineSaga takes { name, steps }');
  nameProblem(options.name, 'defineSaga: name');
  const { steps } = options;
  if (!Array.isArray(steps) || steps.length === 0 || steps.length > MAX_SAGA_STEPS)
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `defineSaga: steps must be an array of 1 to ${MAX_SAGA_STEPS} steps`,
    );
  const seen = new Set<string>();
  for (const [i, step] of steps.entries()) checkStep(step, i, seen);
  const recovery = options.recovery ?? 'backward';
  if (recovery !== 'backward' && recovery !== 'forward')
    throw createError('SIPC_ERR_INVALID_ARGUMENT', "defineSaga: recovery is 'backward' or 'forward'");
  return Object.freeze({ name: options.name, steps: Object.freeze([...steps]), recovery });
}

function isDefinition(def: unknown): def is SagaDefinition {
  return (
    typeof def === 'object' &&
    def !== null &&
    Object.isFrozen(def) &&
    Array.isArray((def as SagaDefinition).steps)
  );
}

/** The execution settings, checked. */
interface Settings {
  readonly journal: SagaJournal;
  readonly clock: Clock;
  readonly attempts: number;
  readonly backoffMs: number;
}

function settings(journal: SagaJournal, options: SagaExecutionOptions): Settings {
  if (typeof journal?.append !== 'function' || typeof journal.unfinished !== 'function')
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      'A saga needs a journal (memoryJournal() or fileJournal(path))',
    );
  const attempts = options.maxCompensationAttempts ?? DEFAULT_SAGA_COMPENSATION_ATTEMPTS;
  if (!Number.isInteger(attempts) || attempts < 1 || attempts > MAX_SAGA_COMPENSATION_ATTEMPTS)
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `maxCompensationAttempts must be an integer from 1 to ${MAX_SAGA_COMPENSATION_ATTEMPTS}`,
    );
  const backoffMs = options.compensationBackoffMs ?? DEFAULT_SAGA_COMPENSATION_BACKOFF_MS;
  if (typeof backoffMs !== 'number' || !(backoffMs >= 0 && backoffMs <= 60_000))
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'compensationBackoffMs must be a number from 0 to 60000');
  return { journal, clock: options.clock ?? systemClock, attempts, backoffMs };
}

/** What the journal says about one step. */
interface StepState {
  started: boolean;
  done: boolean;
  failed: boolean;
  undone: boolean;
  result: unknown;
}

const freshStep = (): StepState => ({
  started: false,
  done: false,
  failed: false,
  undone: false,
  result: undefined,
});

/** A journal append failed: the saga stops where it is (left for resumeSagas), the error surfaces. */
class JournalFailure {
  constructor(readonly error: unknown) {}
}

/** A step failed: its index and error. */
class StepFailure {
  constructor(
    readonly step: number,
    readonly error: unknown,
  ) {}
}

/** Sagas running in this process, per journal: resumeSagas leaves them alone. */
const running = new WeakMap<SagaJournal, Set<string>>();

function claim(journal: SagaJournal, sagaId: string): boolean {
  const ids = running.get(journal) ?? new Set<string>();
  running.set(journal, ids);
  if (ids.has(sagaId)) return false;
  ids.add(sagaId);
  return true;
}

const NEVER_ABORTED = new AbortController().signal;

/** One saga in progress: its steps' states, and the forward and backward passes over them. */
class Execution<I> {
  // No prototype: a step named __proto__ is a result like any other, never a prototype change.
  readonly results: Record<string, unknown> = Object.create(null);

  constructor(
    readonly def: SagaDefinition<I>,
    readonly sagaId: string,
    readonly input: I,
    readonly states: StepState[],
    readonly settings: Settings,
    readonly resumed: boolean,
  ) {
    def.steps.forEach((step, i) => {
      if (states[i]!.done) this.results[step.name] = states[i]!.result;
    });
  }

  async #append(record: SagaRecord): Promise<void> {
    try {
      await this.settings.journal.append(record);
    } catch (err) {
      throw new JournalFailure(err);
    }
  }

  #context(step: string, phase: 'do' | 'undo', signal: AbortSignal): SagaStepContext<I> {
    const { def, sagaId } = this;
    return {
      saga: def.name,
      sagaId,
      step,
      input: this.input,
      results: { ...this.results },
      idempotencyKey: sagaIdempotencyKey(def.name, sagaId, step, phase),
      signal,
      resumed: this.resumed,
    };
  }

  /** Run the steps from `from` on; throws StepFailure (after journaling it) or JournalFailure. */
  async forward(from: number, signal: AbortSignal): Promise<void> {
    const { sagaId } = this;
    for (let i = from; i < this.def.steps.length; i++) {
      const step = this.def.steps[i]!;
      const state = this.states[i]!;
      if (signal.aborted)
        await this.#fail(i, createError('SIPC_ERR_ABORTED', undefined, { cause: signal.reason }));
      await this.#append({ type: 'step-started', sagaId, step: i, name: step.name });
      state.started = true;
      let result: unknown;
      try {
        result = await step.run(this.#context(step.name, 'do', signal));
      } catch (err) {
        await this.#fail(i, err);
      }
      const done: SagaRecord = { type: 'step-done', sagaId, step: i, result };
      try {
        encodeSagaRecord(done);
      } catch (err) {
        // The effect happened but its result cannot be journaled: the step counts as done here
        // (compensated with the result in memory) and as started-not-done in the journal (a
        // restart compensates it with outcome 'unknown'), never as failed.
        Object.assign(state, { done: true, result });
        throw new StepFailure(i, err);
      }
      await this.#append(done);
      Object.assign(state, { done: true, result });
      this.results[step.name] = result;
    }
  }

  async #fail(step: number, error: unknown): Promise<never> {
    this.states[step]!.failed = true;
    const code = isSecureIpcError(error) ? error.code : undefined;
    await this.#append({
      type: 'step-failed',
      sagaId: this.sagaId,
      step,
      ...(code === undefined ? {} : { code }),
    });
    throw new StepFailure(step, error);
  }

  /** Compensate the started steps in reverse; the stuck one (if any) and the ones still to undo. */
  async backward(): Promise<{
    compensated: string[];
    stuck?: { step: string; attempts: number; code?: string };
  }> {
    const compensated: string[] = [];
    for (let i = this.states.length - 1; i >= 0; i--) {
      const state = this.states[i]!;
      if (!state.started || state.failed || state.undone) continue;
      const stuck = await this.#compensate(i);
      if (stuck !== undefined) return { compensated, stuck };
      compensated.push(this.def.steps[i]!.name);
    }
    return { compensated };
  }

  async #compensate(i: number): Promise<{ step: string; attempts: number; code?: string } | undefined> {
    const { sagaId, settings: s } = this;
    const step = this.def.steps[i]!;
    const state = this.states[i]!;
    await this.#append({ type: 'undo-started', sagaId, step: i });
    const base = {
      ...this.#context(step.name, 'undo', NEVER_ABORTED),
      outcome: state.done ? ('done' as const) : ('unknown' as const),
      runKey: sagaIdempotencyKey(this.def.name, sagaId, step.name, 'do'),
    };
    let lastError: unknown;
    for (let attempt = 1; attempt <= s.attempts; attempt++) {
      if (attempt > 1) await sleep(s.clock, s.backoffMs * 2 ** (attempt - 2));
      try {
        await step.compensate({ ...base, attempt }, state.result);
        await this.#append({ type: 'undo-done', sagaId, step: i });
        state.undone = true;
        return undefined;
      } catch (err) {
        if (err instanceof JournalFailure) throw err;
        lastError = err;
      }
    }
    await this.#append({ type: 'undo-stuck', sagaId, step: i, attempts: s.attempts });
    const code = isSecureIpcError(lastError) ? lastError.code : undefined;
    return { step: step.name, attempts: s.attempts, ...(code === undefined ? {} : { code }) };
  }

  /** Backward recovery after `failure`: end the saga if every compensation ran; the error to report. */
  async recover(failure: StepFailure): Promise<SecureIpcError> {
    const { compensated, stuck } = await this.backward();
    if (stuck === undefined) await this.#append({ type: 'end', sagaId: this.sagaId, outcome: 'compensated' });
    return this.#failed(this.def.steps[failure.step]?.name, failure.error, compensated, stuck);
  }

  #failed(
    step: string | undefined,
    cause: unknown,
    compensated: string[],
    stuck: { step: string; attempts: number; code?: string } | undefined,
  ): SecureIpcError {
    const pending = this.def.steps
      .filter((_, i) => this.states[i]!.started && !this.states[i]!.failed && !this.states[i]!.undone)
      .map((s) => s.name)
      .reverse();
    const where = step === undefined ? 'was interrupted' : `failed at step ${step}`;
    const how =
      stuck === undefined ? 'compensated' : `not fully compensated: ${stuck.step}'s compensation is stuck`;
    return createError('SIPC_ERR_SAGA_FAILED', `Saga ${this.def.name} ${where}; ${how}`, {
      cause,
      details: {
        saga: this.def.name,
        sagaId: this.sagaId,
        ...(step === undefined ? {} : { step }),
        compensated,
        ...(stuck === undefined ? {} : { stuck, pending }),
      },
    });
  }

  /** Backward recovery of an interrupted saga (no step failed in this process). */
  async recoverInterrupted(): Promise<SagaRecovery> {
    const failedAt = this.states.findIndex((s) => s.failed);
    const { compensated, stuck } = await this.backward();
    const base = { sagaId: this.sagaId, saga: this.def.name };
    if (stuck === undefined) {
      await this.#append({ type: 'end', sagaId: this.sagaId, outcome: 'compensated' });
      return { ...base, outcome: 'compensated' };
    }
    const step = failedAt < 0 ? undefined : this.def.steps[failedAt]!.name;
    return { ...base, outcome: 'stuck', error: this.#failed(step, undefined, compensated, stuck) };
  }

  async end(): Promise<void> {
    await this.#append({ type: 'end', sagaId: this.sagaId, outcome: 'completed' });
  }
}

function sleep(clock: Clock, ms: number): Promise<void> {
  return new Promise((resolve) => clock.setTimeout(resolve, ms));
}

function checkDefinition(def: unknown, what: string): asserts def is SagaDefinition {
  if (!isDefinition(def))
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `${what} takes a definition from defineSaga`);
}

/**
 * Run a saga: its steps in order, each journaled before and after. Resolves with every step's
 * result. When a step throws (or `signal` aborts between steps), the steps that completed are
 * compensated in reverse and the promise rejects with SIPC_ERR_SAGA_FAILED: `cause` is the step's
 * error, `details` { saga, sagaId, step, compensated } plus { stuck, pending } when a
 * compensation failed all its attempts (the saga then stays in the journal for `resumeSagas`).
 * Rejects with SIPC_ERR_INVALID_ARGUMENT, before any step, for a bad definition, option or id, an
 * input the journal cannot encode, or an id the journal already holds; with the journal's own
 * error when an append fails (the saga stops there, unfinished, for `resumeSagas`).
 */
export async function runSaga<I>(
  def: SagaDefinition<I>,
  input: I,
  options: RunSagaOptions,
): Promise<SagaResult> {
  checkDefinition(def, 'runSaga');
  if (typeof options !== 'object' || options === null)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'runSaga takes options with a journal');
  const s = settings(options.journal, options);
  const sagaId = options.sagaId ?? randomUUID();
  nameProblem(sagaId, 'runSaga: sagaId');
  const signal = options.signal ?? NEVER_ABORTED;
  if (!claim(s.journal, sagaId))
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'runSaga: a saga with this id is running', {
      details: { sagaId },
    });
  try {
    await s.journal.append({ type: 'begin', sagaId, saga: def.name, input });
    const exec = new Execution(def, sagaId, input, def.steps.map(freshStep), s, false);
    return await drive(exec, () => exec.forward(0, signal));
  } finally {
    running.get(s.journal)?.delete(sagaId);
  }
}

/** Run `pass` forward; end the saga, or recover backward and reject; unwrap a journal failure. */
async function drive<I>(exec: Execution<I>, pass: () => Promise<void>): Promise<SagaResult> {
  try {
    try {
      await pass();
    } catch (err) {
      if (err instanceof StepFailure) throw await exec.recover(err);
      throw err;
    }
    await exec.end();
    return { sagaId: exec.sagaId, results: { ...exec.results } };
  } catch (err) {
    throw err instanceof JournalFailure ? err.error : err;
  }
}

/** Rebuild the step states from a saga's records; undefined if they do not match `def`'s steps. */
function replay(def: SagaDefinition, records: readonly SagaRecord[]): StepState[] | undefined {
  const states = def.steps.map(freshStep);
  for (const r of records) {
    if (r.type === 'begin' || r.type === 'end') continue;
    const state = states[r.step];
    if (state === undefined) return undefined;
    if (r.type === 'step-started') {
      if (r.name !== def.steps[r.step]!.name) return undefined;
      state.started = true;
    } else if (r.type === 'step-done') Object.assign(state, { done: true, result: r.result });
    else if (r.type === 'step-failed') state.failed = true;
    else if (r.type === 'undo-done') state.undone = true;
  }
  return states;
}

function skipped(log: SagaLog, saga: string, message: string): SagaRecovery {
  return {
    sagaId: log.sagaId,
    saga,
    outcome: 'skipped',
    error: createError('SIPC_ERR_INVALID_ARGUMENT', message, { details: { saga, sagaId: log.sagaId } }),
  };
}

/**
 * Finish every unfinished saga of `journal` (call it at start-up, before new sagas): backward
 * recovery by default, compensating in reverse every step that started and did not fail (a step
 * started without a result is compensated with `outcome: 'unknown'`); a definition with
 * `recovery: 'forward'` whose saga was interrupted before any step failed or any compensation
 * started re-runs the interrupted step under the same key and continues, falling back to
 * backward recovery if a step then fails. Sagas are finished one at a time, oldest first.
 * Resolves with what happened to each; rejects only for bad arguments (SIPC_ERR_INVALID_ARGUMENT)
 * or a journal failure (its error).
 */
export async function resumeSagas(
  journal: SagaJournal,
  defs: readonly SagaDefinition[],
  options: SagaExecutionOptions = {},
): Promise<SagaRecovery[]> {
  const s = settings(journal, options);
  if (!Array.isArray(defs))
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'resumeSagas takes an array of definitions');
  const byName = new Map<string, SagaDefinition>();
  for (const def of defs as readonly unknown[]) {
    checkDefinition(def, 'resumeSagas');
    if (byName.has(def.name))
      throw createError('SIPC_ERR_INVALID_ARGUMENT', `resumeSagas: two definitions are named ${def.name}`);
    byName.set(def.name, def);
  }
  const out: SagaRecovery[] = [];
  for (const log of await journal.unfinished()) out.push(await resumeOne(log, byName, s));
  return out;
}

async function resumeOne(
  log: SagaLog,
  byName: Map<string, SagaDefinition>,
  s: Settings,
): Promise<SagaRecovery> {
  const begin = log.records[0];
  const name = begin?.type === 'begin' ? begin.saga : '';
  const def = byName.get(name);
  if (begin?.type !== 'begin' || def === undefined)
    return skipped(log, name, `resumeSagas: no definition named ${name} was given`);
  const states = replay(def, log.records);
  if (states === undefined)
    return skipped(
      log,
      name,
      `resumeSagas: the definition of ${name} has other steps than the journaled saga`,
    );
  if (!claim(s.journal, log.sagaId))
    return skipped(log, name, 'resumeSagas: the saga is running in this process');
  try {
    const exec = new Execution(def, log.sagaId, begin.input, states, s, true);
    const backwardStarted = log.records.some((r) => r.type === 'undo-started' || r.type === 'step-failed');
    const allDone = states.every((st) => st.done);
    // Every step done and only the end record missing: the saga completed, whatever the recovery.
    if (allDone || (def.recovery === 'forward' && !backwardStarted)) {
      const from = states.findIndex((st) => !st.done);
      try {
        await drive(exec, () => exec.forward(from < 0 ? states.length : from, NEVER_ABORTED));
        return { sagaId: log.sagaId, saga: name, outcome: 'completed' };
      } catch (err) {
        if (!isSecureIpcError(err, 'SIPC_ERR_SAGA_FAILED')) throw err;
        const stuck = err.details?.stuck !== undefined;
        return {
          sagaId: log.sagaId,
          saga: name,
          outcome: stuck ? 'stuck' : 'compensated',
          ...(stuck ? { error: err } : {}),
        };
      }
    }
    try {
      return await exec.recoverInterrupted();
    } catch (err) {
      throw err instanceof JournalFailure ? err.error : err;
    }
  } finally {
    running.get(s.journal)?.delete(log.sagaId);
  }
}
