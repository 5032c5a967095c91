/**
 * `secure-ipc doctor CONFIG [--max-score N] [--json]` (docs/configuration.md, "Doctor"): the
 * exposure check of a configuration file and of the files it names (@secure-ipc/config's
 * doctorConfig), like `systemd-analyze security`. One line per finding, heaviest first, then the
 * score; exit 0 at or under the maximum score, 1 above it, 2 for a file that does not validate
 * (its problems printed as `config validate` prints them) or bad usage, 3 for a file that cannot
 * be read. Checking a live endpoint (`doctor ADDRESS`) is not built: an address is a usage error.
 */
import { DOCTOR_MAX_SCORE, type DoctorFinding, doctorConfig, validateConfigText } from '@secure-ipc/config';
import { jsonOption, parse } from '../args.js';
import { printProblems, readConfigText } from '../config-file.js';
import { CliError, type CliIo, ExitCode, printable, printJSON, println } from '../io.js';

/** Usage line. */
export const usage = 'secure-ipc doctor CONFIG [--max-score N] [--json]';

/** The score above which the doctor exits 1 unless --max-score says otherwise. */
export const DEFAULT_MAX_SCORE = 5;

// `unix://…`, `tcp://…`, `local://…`, `pipe://…`, `unix-abstract:…`, `systemd:…`: a scheme, which a
// file path never starts with (a Windows drive letter `C:\` is one letter, followed by a slash).
const ADDRESS = /^[A-Za-z][A-Za-z0-9+.-]+:/;

function maxScoreOf(text: string | undefined): number {
  if (text === undefined) return DEFAULT_MAX_SCORE;
  const n = Number(text);
  if (!/^\d+(\.\d+)?$/.test(text) || n > DOCTOR_MAX_SCORE)
    throw new CliError(
      `--max-score must be a number from 0 to ${DOCTOR_MAX_SCORE} (got ${JSON.stringify(text)})`,
    );
  return n;
}

/** `high 3.0 key-file-mode: message (identity/key/file); fix: ...` */
function findingLine(f: DoctorFinding): string {
  const setting = f.pointer === '' ? '(file)' : f.pointer.slice(1);
  return printable(`${f.severity} ${f.weight.toFixed(1)} ${f.id}: ${f.message} (${setting}); fix: ${f.fix}`);
}

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, { ...jsonOption, 'max-score': { type: 'string' } }, true);
  if (positionals.length !== 1)
    throw new CliError(`doctor takes one CONFIG file (got ${positionals.length})`);
  const file = positionals[0]!;
  if (ADDRESS.test(file))
    throw new CliError(
      `${printable(file)} is an address: doctor checks configuration files (.json, .jsonc, .toml) only; checking a live endpoint is not built yet`,
    );
  const maxScore = maxScoreOf(values['max-score']);
  const json = values.json === true;
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
    else printProblems(io.stdout, file, v.problems);
    return ExitCode.Usage;
  }
  const report = await doctorConfig({ file, config: v.config, text });
  const ok = report.score <= maxScore;
  if (json)
    printJSON(io.stdout, {
      ok,
      file,
      profile: report.profile,
      score: report.score,
      maxScore,
      findings: report.findings,
      problems: [],
    });
  else {
    for (const f of report.findings) println(io.stdout, findingLine(f));
    println(io.stdout, `exposure ${report.score.toFixed(1)}/${DOCTOR_MAX_SCORE}`);
    if (!ok)
      println(
        io.stderr,
        `secure-ipc doctor: exposure ${report.score.toFixed(1)} is above --max-score ${maxScore.toFixed(1)}`,
      );
  }
  return ok ? ExitCode.Ok : ExitCode.Failed;
}
