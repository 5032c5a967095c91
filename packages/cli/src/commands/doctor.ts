/**
 * `secure-ipc doctor CONFIG [--max-score N] [--json]` (docs/configuration.md, "Doctor"): the
 * exposure check of a configuration file and of the files it names (@secure-ipc/config's
 * doctorConfig), like `systemd-analyze security`; `secure-ipc doctor ADDRESS [--profile P]
 * [--app-id ID]` the same of a live endpoint (doctorAddress: the socket and its directory, the
 * TCP address, the pipe's DACL, and what the server shows an untrusted initiator in the
 * handshake). One line per finding, heaviest first, then (for an address) what could not be
 * checked, then the score; exit 0 at or under the maximum score, 1 above it, 2 for a file that
 * does not validate (its problems printed as `config validate` prints them) or bad usage, 3 for a
 * file that cannot be read or an endpoint that cannot be reached.
 */
import type { DoctorFinding } from '@secure-ipc/config';
import { isSecureIpcError } from '@secure-ipc/core';
import { jsonOption, parse } from '../args.js';
import { printProblems, readConfigText } from '../config-file.js';
import { configPackage } from '../config-package.js';
import { CliError, type CliIo, ExitCode, printable, printJSON, println } from '../io.js';
import { transportFor } from '../transports.js';

/** Usage line. */
export const usage =
  'secure-ipc doctor (CONFIG | ADDRESS [--profile baseline|strict] [--app-id ID]) [--max-score N] [--json]';

/** The score above which the doctor exits 1 unless --max-score says otherwise. */
export const DEFAULT_MAX_SCORE = 5;

// `unix://…`, `tcp://…`, `local://…`, `pipe://…`, `unix-abstract:…`, `systemd:…`: a scheme, which a
// file path never starts with (a Windows drive letter `C:\` is one letter, followed by a slash).
const ADDRESS = /^[A-Za-z][A-Za-z0-9+.-]+:/;

function maxScoreOf(text: string | undefined, highest: number): number {
  if (text === undefined) return DEFAULT_MAX_SCORE;
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || n > highest)
    throw new CliError(`--max-score must be a number from 0 to ${highest} (got ${JSON.stringify(text)})`);
  return n;
}

/** `high 3.0 key-file-mode: message (identity/key/file); fix: ...` */
function findingLine(f: DoctorFinding): string {
  const setting = f.pointer === '' ? '(file)' : f.pointer.slice(1);
  return printable(`${f.severity} ${f.weight.toFixed(1)} ${f.id}: ${f.message} (${setting}); fix: ${f.fix}`);
}

/** What both doctors report, as far as printing goes. */
interface Judged {
  readonly findings: readonly DoctorFinding[];
  readonly score: number;
}

/**
 * Print a report: `--json` as one object (`head` first, then score, maxScore, findings and
 * `tail`), or one line per finding, the `notes`, and the score; resolves the exit code.
 */
function printReport(
  io: CliIo,
  json: boolean,
  maxScore: number,
  highest: number,
  report: Judged,
  head: Record<string, unknown>,
  tail: Record<string, unknown>,
  notes: readonly string[] = [],
): number {
  const ok = report.score <= maxScore;
  if (json)
    printJSON(io.stdout, { ok, ...head, score: report.score, maxScore, findings: report.findings, ...tail });
  else {
    for (const f of report.findings) println(io.stdout, findingLine(f));
    for (const n of notes) println(io.stdout, printable(n));
    println(io.stdout, `exposure ${report.score.toFixed(1)}/${highest}`);
    if (!ok)
      println(
        io.stderr,
        `secure-ipc doctor: exposure ${report.score.toFixed(1)} is above --max-score ${maxScore.toFixed(1)}`,
      );
  }
  return ok ? ExitCode.Ok : ExitCode.Failed;
}

const PROFILES = new Set(['baseline', 'strict']);

/** `doctor ADDRESS`: the live endpoint. */
async function runAddress(
  config: Awaited<ReturnType<typeof configPackage>>,
  address: string,
  values: { profile?: string | undefined; 'app-id'?: string | undefined },
  maxScore: number,
  json: boolean,
  io: CliIo,
): Promise<number> {
  const profile = values.profile ?? 'baseline';
  if (!PROFILES.has(profile))
    throw new CliError(`--profile must be baseline or strict (got ${JSON.stringify(profile)})`);
  let report: Awaited<ReturnType<typeof config.doctorAddress>>;
  try {
    report = await config.doctorAddress(address, {
      transport: () => transportFor(address),
      profile: profile as 'baseline' | 'strict',
      ...(values['app-id'] === undefined ? {} : { appId: values['app-id'] }),
    });
  } catch (err) {
    if (isSecureIpcError(err, 'SIPC_ERR_CONNECT_FAILED'))
      throw new CliError(`${printable(address)} is not reachable`, ExitCode.KeyOrFile, { cause: err });
    if (isSecureIpcError(err, 'SIPC_ERR_UNSUPPORTED_PLATFORM'))
      throw new CliError(`${printable(address)} cannot be checked on ${process.platform}`, ExitCode.Usage, {
        cause: err,
      });
    throw err;
  }
  return printReport(
    io,
    json,
    maxScore,
    config.DOCTOR_MAX_SCORE,
    report,
    { address, profile: report.profile },
    { checked: report.checked, notChecked: report.notChecked, server: report.server ?? null },
    [
      ...report.checked.map((c) => `checked ${c}`),
      ...report.notChecked.map((n) => `not checked ${n.what}: ${n.reason}`),
    ],
  );
}

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      ...jsonOption,
      'max-score': { type: 'string' },
      profile: { type: 'string' },
      'app-id': { type: 'string' },
    },
    true,
  );
  if (positionals.length !== 1)
    throw new CliError(`doctor takes one CONFIG file or ADDRESS (got ${positionals.length})`);
  const file = positionals[0]!;
  const config = await configPackage();
  const { DOCTOR_MAX_SCORE, doctorConfig, validateConfigText } = config;
  const maxScore = maxScoreOf(values['max-score'], DOCTOR_MAX_SCORE);
  const json = values.json === true;
  if (ADDRESS.test(file)) return runAddress(config, file, values, maxScore, json, io);
  if (values.profile !== undefined || values['app-id'] !== undefined)
    throw new CliError(
      '--profile and --app-id are for an ADDRESS: a configuration file names its profile and application id',
    );
  const text = await readConfigText(file);
  const v = validateConfigText(text, file);
  if (v.config === undefined) {
    if (json)
      printJSON(io.stdout, {
        ok: false,
        file,
        profile: null,
        score: null,
        maxScore,
        findings: [],
        problems: v.problems,
      });
    else await printProblems(io.stdout, file, v.problems);
    return ExitCode.Usage;
  }
  const report = await doctorConfig({ file, config: v.config, text });
  return printReport(
    io,
    json,
    maxScore,
    DOCTOR_MAX_SCORE,
    report,
    { file, profile: report.profile },
    { problems: [] },
  );
}
