/**
 * `secure-ipc outbox inspect DIR` and `secure-ipc outbox verify DIR` (docs/outbox.md, "The CLI"):
 * core's `inspectOutbox`, which reads an outbox with its key without taking its lock and without
 * changing a byte. `inspect` prints what is queued (counts, sizes, ages, per lane), the anchor's
 * status and the quarantine; `verify` prints one line per problem and exits 1 when the outbox
 * would not be trusted. Neither prints a method, params, idempotency key or key.
 */
import {
  inspectOutbox,
  isSecureIpcError,
  type OutboxKeySource,
  type OutboxReport,
  type QuarantinedRecord,
} from '@secure-ipc/core';
import { jsonOption, parse } from '../args.js';
import { CliError, type CliIo, ExitCode, printable, println } from '../io.js';
import { readPassphrase } from '../passphrase.js';

const KEY_OPTIONS =
  '(--keystore ACCOUNT [--linux-store secret-service|keyutils] | --key-file FILE [--passphrase-file FILE])';

/** Usage lines. */
export const usage =
  `secure-ipc outbox inspect DIR ${KEY_OPTIONS} [--json]\n` +
  `  secure-ipc outbox verify DIR ${KEY_OPTIONS} [--json]`;

/** The subcommands (error lines name them: `secure-ipc outbox verify: ...`). */
export const subcommands = ['inspect', 'verify'] as const;

const options = {
  keystore: { type: 'string' },
  'linux-store': { type: 'string' },
  'key-file': { type: 'string' },
  'passphrase-file': { type: 'string' },
  ...jsonOption,
} as const;

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'inspect' && sub !== 'verify')
    throw new CliError(`unknown outbox subcommand ${JSON.stringify(sub ?? '')} (expected inspect or verify)`);
  const { values, positionals } = parse(rest, options, true);
  if (positionals.length !== 1) throw new CliError(`outbox ${sub} takes one DIR (got ${positionals.length})`);
  const dir = positionals[0]!;
  const report = await withKey(values, (key) => inspect(dir, key));
  return sub === 'inspect'
    ? printInspect(report, dir, io, values.json === true)
    : printVerify(report, io, values.json === true);
}

type Values = ReturnType<typeof parse<typeof options>>['values'];

async function inspect(dir: string, key: OutboxKeySource): Promise<OutboxReport> {
  try {
    return await inspectOutbox({ dir, key });
  } catch (err) {
    // Core reports an outbox directory others can open as it does a socket's directory; here it
    // is a file problem (exit 3), like an insecure journal.
    if (isSecureIpcError(err, 'SIPC_ERR_INSECURE_DIRECTORY'))
      throw new CliError(`cannot inspect the outbox ${dir}`, ExitCode.KeyOrFile, { cause: err });
    throw err;
  }
}

/** The key source the options name (exactly one of --keystore, --key-file); the passphrase wiped after. */
async function withKey<T>(values: Values, use: (key: OutboxKeySource) => Promise<T>): Promise<T> {
  if ((values.keystore === undefined) === (values['key-file'] === undefined))
    throw new CliError('give exactly one of --keystore ACCOUNT or --key-file FILE');
  if (values.keystore !== undefined) {
    if (values['passphrase-file'] !== undefined)
      throw new CliError('--passphrase-file goes with --key-file (a keystore key has no passphrase)');
    const linuxStore = values['linux-store'];
    if (linuxStore !== undefined && linuxStore !== 'secret-service' && linuxStore !== 'keyutils')
      throw new CliError('--linux-store must be secret-service or keyutils');
    return use({ keystore: values.keystore, ...(linuxStore === undefined ? {} : { linuxStore }) });
  }
  if (values['linux-store'] !== undefined) throw new CliError('--linux-store goes with --keystore');
  const passphrase = await readPassphrase(values['passphrase-file'], '--key-file');
  try {
    return await use({ file: values['key-file']!, passphrase });
  } finally {
    passphrase.fill(0);
  }
}

/** `1.2 KiB`. */
function humanBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let u = 0;
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024;
    u++;
  }
  return `${v < 10 ? v.toFixed(1) : Math.round(v)} ${units[u]}`;
}

/** `5 min`, `3 h`: a duration in its largest whole unit. */
function humanDuration(ms: number): string {
  const s = Math.floor(Math.abs(ms) / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86_400)} d`;
}

const ago = (at: number, now: number) =>
  at > now ? `in ${humanDuration(at - now)}` : `${humanDuration(now - at)} ago`;
const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;
/** A lane as printed: its name quoted (control characters escaped), or the default lane. */
const laneName = (lane: string | undefined) =>
  lane === undefined ? '(default lane)' : printable(JSON.stringify(lane));

/** The report as JSON: an absent value (the default lane, no entry's time, no anchor seq) is null. */
function reportJSON(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (v === undefined ? null : v));
}

function entriesLine(r: OutboxReport, now: number): string {
  const e = r.entries;
  const parts = [plural(e.count, 'entry', 'entries'), humanBytes(e.bytes)];
  if (e.oldestEnqueuedAt !== undefined) parts.push(`oldest ${ago(e.oldestEnqueuedAt, now)}`);
  if (e.newestEnqueuedAt !== undefined && e.count > 1) parts.push(`newest ${ago(e.newestEnqueuedAt, now)}`);
  if (e.earliestExpiresAt !== undefined)
    parts.push(
      e.earliestExpiresAt > now
        ? `first expiry in ${humanDuration(e.earliestExpiresAt - now)}`
        : 'one expired (removed at the next open)',
    );
  return parts.join(', ');
}

function laneTable(r: OutboxReport): string[] {
  const rows = r.lanes.map((l) => [laneName(l.lane), String(l.count), humanBytes(l.bytes)]);
  const head = ['lane', 'entries', 'bytes'];
  const width = head.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  return [head, ...rows].map((row) => `  ${row.map((c, i) => c.padEnd(width[i]!)).join('  ')}`.trimEnd());
}

function anchorLine(r: OutboxReport): string {
  const a = r.anchor;
  const seqs = `journal at seq ${r.highestSeq}, anchor at seq ${a.seq}`;
  const what: Record<OutboxReport['anchor']['status'], string> = {
    ok: `ok, seq ${a.seq}`,
    ahead: `ahead, ${seqs}: normal after a crash, the next open brings the anchor up`,
    behind: `behind, ${seqs}: a rollback`,
    missing: r.ok
      ? 'missing: a new outbox, its first open writes it'
      : 'missing, but the journal holds records',
    invalid: 'invalid: it does not verify under this key',
    'other-outbox': 'other-outbox: it names another outbox',
  };
  return `anchor: ${what[a.status]} (${printable(a.where)})`;
}

function printInspect(r: OutboxReport, dir: string, io: CliIo, json: boolean): number {
  if (json) {
    println(io.stdout, reportJSON(r));
    return ExitCode.Ok;
  }
  const now = Date.now();
  const out = (line: string) => println(io.stdout, line);
  out(`outbox ${r.id} in ${printable(dir)}`);
  out(`journal: ${humanBytes(r.journalBytes)}, ${plural(r.records, 'record')}, highest seq ${r.highestSeq}`);
  out(entriesLine(r, now));
  if (r.lanes.length > 0) for (const line of laneTable(r)) out(line);
  out(
    `done records: ${r.done.ok} ok, ${r.done.failed} failed, ${r.done.expired} expired (since the last compaction)`,
  );
  out(anchorLine(r));
  out(`quarantined: ${plural(r.quarantined.length, 'record')}`);
  out(`torn tail: ${plural(r.tornBytes, 'byte')}`);
  out(r.lockedBy === undefined ? 'lock: free' : `lock: held by process ${r.lockedBy}`);
  out(r.ok ? 'status: ok' : 'status: PROBLEMS (secure-ipc outbox verify lists them)');
  return ExitCode.Ok;
}

/** One problem `verify` found; `fails` says whether it makes the outbox fail verification. */
type Problem = Record<string, unknown> & { kind: string; fails: boolean; text: string };

function quarantineProblem(q: QuarantinedRecord): Problem {
  const seq =
    q.seq === undefined ? '' : q.reason === 'missing' ? ` (seq ${q.seq} absent)` : ` (seq ${q.seq})`;
  const len = q.length === 0 ? '' : `, ${plural(q.length, 'byte')}`;
  return {
    kind: 'quarantined',
    offset: q.offset,
    length: q.length,
    seq: q.seq,
    reason: q.reason,
    fails: true,
    text: `quarantined record at byte ${q.offset}${len}${seq}: ${q.reason}`,
  };
}

function anchorProblem(r: OutboxReport): Problem | undefined {
  const a = r.anchor;
  const where = printable(a.where);
  const base = {
    kind: 'anchor',
    status: a.status,
    where: a.where,
    anchorSeq: a.seq,
    journalSeq: r.highestSeq,
  };
  switch (a.status) {
    case 'ok':
      return undefined;
    case 'ahead':
      return {
        ...base,
        fails: false,
        text: `anchor at seq ${a.seq}, journal at seq ${r.highestSeq}: normal after a crash (the next open brings the anchor up)`,
      };
    case 'behind':
      return {
        ...base,
        fails: true,
        text: `anchor behind: the journal ends at seq ${r.highestSeq} but the anchor (${where}) is at seq ${a.seq}: rollback (an older copy was restored, or records were cut)`,
      };
    case 'invalid':
      return { ...base, fails: true, text: `anchor invalid: ${where} does not verify under this key` };
    case 'other-outbox':
      return {
        ...base,
        fails: true,
        text: `anchor of another outbox: ${where} does not name outbox ${r.id}`,
      };
    case 'missing':
      return r.ok
        ? undefined // a new outbox: its first open writes the anchor
        : {
            ...base,
            fails: true,
            text: `anchor missing: ${where} is absent but the journal holds records (openOutbox refuses it unless adoptUnanchored)`,
          };
  }
}

function problemsOf(r: OutboxReport): Problem[] {
  const problems = r.quarantined.map(quarantineProblem);
  const anchor = anchorProblem(r);
  if (anchor !== undefined) problems.push(anchor);
  if (r.tornBytes > 0)
    problems.push({
      kind: 'torn-tail',
      bytes: r.tornBytes,
      fails: false,
      text: `torn tail of ${plural(r.tornBytes, 'byte')}: a write cut by a crash, never acknowledged (the next open cuts it)`,
    });
  return problems;
}

function printVerify(r: OutboxReport, io: CliIo, json: boolean): number {
  const problems = problemsOf(r);
  const code = r.ok ? ExitCode.Ok : ExitCode.Failed;
  if (json) {
    println(
      io.stdout,
      reportJSON({ ok: r.ok, id: r.id, problems: problems.map(({ text: _text, ...p }) => p) }),
    );
    return code;
  }
  for (const p of problems) println(io.stdout, p.text);
  const failing = problems.filter((p) => p.fails).length;
  println(
    io.stdout,
    r.ok
      ? `ok: outbox ${r.id}, ${plural(r.entries.count, 'entry', 'entries')}, ${plural(r.records, 'record')} verified`
      : `FAILED: outbox ${r.id}, ${plural(failing, 'problem')}`,
  );
  return code;
}
