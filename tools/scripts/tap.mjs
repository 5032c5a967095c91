// TAP reports: where they live, how they are read, and the one line printed per report.
// Every ava run in this repo (each package's `npm test`, the Wine run, the runtime matrix) writes
// ava's TAP output (`ava --tap`, TAP version 13) to `.reports/<name>.tap`; CI's closing line is
// summed from these files only (tools/scripts/sum-results.mjs), never from what a log looks like.
import { readFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';

/** The repository root (this file is tools/scripts/tap.mjs). */
export const repoRoot = resolve(new URL('../..', import.meta.url).pathname);
/** The gitignored report directory; .ci/run empties it before a run. SIPC_REPORT_DIR moves it
 * (tools/repo-checks/test/tap-reports.test.ts checks the wrapper and the summer in a scratch one). */
export const reportDir = resolve(process.env.SIPC_REPORT_DIR || join(repoRoot, '.reports'));
export const reportPath = (name) => join(reportDir, `${name}.tap`);
/** A report's path as printed: relative to the repository root when it is inside it. */
export function shown(file) {
  const rel = relative(repoRoot, file);
  return rel && !rel.startsWith('..') ? rel : file;
}

/** A package's short name: `@secure-ipc/transport-unix` -> `transport-unix`. */
export function shortName(packageDir) {
  const pkg = JSON.parse(readFileSync(join(packageDir, 'package.json'), 'utf8'));
  return pkg.name.replace(/^@secure-ipc\//, '');
}

// A test point: `ok 3 - title` or `not ok 3 - title # TODO`. ava escapes `#` in titles as `\#`,
// so a directive is a `#` not preceded by a backslash.
const POINT = /^(not )?ok\b(?:\s+\d+)?(.*)$/;
const DIRECTIVE = /(?<!\\)#\s*(SKIP|TODO)\b/i;
const PLAN = /^1\.\.(\d+)\b/;
const BAIL = /^Bail out!\s*(.*)$/;
// A test the runtime matrix did not run on purpose (tools/scripts/runtimes.mjs says why).
const EXCLUDED = /^# excluded: /;
// The run's wall time, appended by tools/scripts/ava-tap.mjs.
const TIME = /^# time: (\d+) s$/;

/**
 * Count a TAP 13 text: passed (`ok`), failed (`not ok`), skipped (`# SKIP`), todo (`# TODO`, never a
 * failure), excluded (`# excluded: ...` comments, see runtimes.mjs), the plan, a bail-out, the run's wall time
 * (`# time: N s`, written by ava-tap.mjs; undefined in a report without it). `problem` says why the report as a whole is a failure even if no
 * test point failed: a bail-out, no plan (the run never finished), a plan that does not match the
 * points counted, or no test at all. YAML diagnostics (indented `---` ... `...`) are skipped.
 */
export function parseTap(text) {
  const r = {
    passed: 0,
    failed: 0,
    skipped: 0,
    todo: 0,
    excluded: 0,
    points: 0,
    plan: undefined,
    bailOut: undefined,
    seconds: undefined,
  };
  let yaml = false;
  for (const raw of text.split(/\r?\n/)) {
    if (yaml) {
      if (/^\s+\.\.\.\s*$/.test(raw)) yaml = false;
      continue;
    }
    if (/^\s+---\s*$/.test(raw)) {
      yaml = true;
      continue;
    }
    const line = raw.trimEnd();
    const time = TIME.exec(line);
    if (time) {
      r.seconds = Number(time[1]);
      continue;
    }
    if (EXCLUDED.test(line)) {
      r.excluded++;
      continue;
    }
    const bail = BAIL.exec(line);
    if (bail) {
      r.bailOut = bail[1] || 'no reason given';
      continue;
    }
    const plan = PLAN.exec(line);
    if (plan) {
      r.plan = Number(plan[1]);
      continue;
    }
    const point = POINT.exec(line);
    if (!point) continue;
    r.points++;
    const directive = DIRECTIVE.exec(point[2])?.[1]?.toUpperCase();
    if (directive === 'SKIP') r.skipped++;
    else if (directive === 'TODO') r.todo++;
    else if (point[1]) r.failed++;
    else r.passed++;
  }
  r.problem = r.bailOut
    ? `bail out: ${r.bailOut}`
    : r.plan === undefined
      ? 'no plan line: the run did not finish'
      : r.plan !== r.points
        ? `plan 1..${r.plan} but ${r.points} results`
        : r.points === 0
          ? 'no tests ran'
          : undefined;
  return r;
}

/** Read and count one report file; a missing or unreadable file is a problem, not an exception. */
export function readReport(file) {
  let text;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const why = err.code === 'ENOENT' ? 'missing: the run wrote no report' : `unreadable: ${err.message}`;
    return { ...parseTap('1..0'), problem: why };
  }
  return parseTap(text);
}

/** Tests a report did not run: skipped, todo, and excluded on this runtime. */
export const skippedOf = (r) => r.skipped + r.todo + r.excluded;

/** Failures a report contributes: its failed points, and at least one if the report is broken. */
export const failuresOf = (r) => (r.problem && r.failed === 0 ? 1 : r.failed);

/**
 * The line printed for one report. Deliberately never `N passed, N failed` alone on a line: only
 * the summer's closing line has that shape.
 */
export function reportLine(name, r, file) {
  const failed = failuresOf(r);
  const status = failed > 0 ? 'FAIL' : 'PASS';
  const skipped = skippedOf(r);
  const counts = `${r.passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`;
  const notes = [r.problem, r.excluded ? `${r.excluded} excluded on this runtime, see the report` : undefined]
    .filter(Boolean)
    .join('; ');
  const time = r.seconds === undefined ? '' : `${r.seconds} s, `;
  return `[tap] ${status} ${name}: ${counts}${notes ? ` (${notes})` : ''} in ${time}${shown(file)}`;
}
