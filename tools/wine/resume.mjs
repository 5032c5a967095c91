#!/usr/bin/env node
// Resume a Windows suite after Wine's wineserver crashed (tools/wine/run-ava.sh).
//
// Wine 8.0's wineserver sometimes crashes under transport-win's suite (packages/transport-win/
// README.md, "What Wine does not enforce", item 7); every Windows process then hangs and the
// attempt never completes. Rerunning the whole suite made a CI run fail when four attempts in a
// row crashed. Instead, the test points an attempt *completed* before the crash are kept (a
// failure among them stays a failure: nothing that ran is ever retried) and the next attempt runs
// only the tests that did not complete, by ava's `--match='!title'`. One exception: a failure by
// ava's inactivity timeout in a crashed attempt is not kept (the crash hangs every test in flight),
// so that test runs again, and a test that really hangs fails again there.
//
//   node resume.mjs keep --tap=ATTEMPT.tap --kept=KEPT.tap --attempt=N
//       appends the test points ATTEMPT.tap completed to KEPT.tap (created if missing), each with
//       its diagnostics; prints how many it kept
//   node resume.mjs match --kept=KEPT.tap
//       prints one `--match=!title` argument per kept test, NUL-separated, for the next attempt
//   node resume.mjs merge --tap=LAST.tap --kept=KEPT.tap --out=REPORT.tap
//       writes the report: the kept points, then the completing attempt's, renumbered, one plan
//
// A title is ava's: `file › title` in the TAP (files here are flat, so the first ` › ` ends the
// file part), `#` escaped as `\#`. A kept title holding `*` (a wildcard for ava's matcher, which
// has no escape), a backslash or a double quote (see `excludable`) is not excluded: it runs again
// and the later result is dropped as a duplicate, so a pattern never hides a test that has not run.
import { appendFileSync, existsSync, readFileSync, writeFileSync } from 'node:fs';
import { pathToFileURL } from 'node:url';

const POINT = /^(not )?ok\b(?:\s+\d+)?(?:\s+-)?\s?(.*)$/;
const END =
  /^(1\.\.\d+|# (tests|pass|fail|skip|todo|known failure|unhandled rejection|uncaught exception)\b)/;
const SEPARATOR = ' › ';

/**
 * The test points of a TAP text, each `{ title, ok, lines }`: its point line (without its number)
 * and the diagnostics after it (YAML, `#` comments), up to the next point or the closing summary.
 * `complete` is false for the last point of a crashed run when its YAML block never closed.
 */
export function pointsOf(text) {
  const points = [];
  let current;
  let yaml = false;
  for (const raw of text.replace(/\r/g, '').split('\n')) {
    if (yaml) {
      current.lines.push(raw);
      if (/^\s+\.\.\.\s*$/.test(raw)) {
        yaml = false;
        current.complete = true;
      }
      continue;
    }
    const point = POINT.exec(raw);
    if (point) {
      current = { title: point[2], ok: !point[1], lines: [], complete: true };
      points.push(current);
      continue;
    }
    if (current === undefined || raw.startsWith('TAP version') || END.test(raw)) {
      current = undefined;
      continue;
    }
    if (/^\s+---\s*$/.test(raw)) {
      yaml = true;
      current.complete = false;
    }
    current.lines.push(raw);
  }
  return points;
}

/**
 * A failure by ava's inactivity timeout: in a crashed attempt, the tests in flight when the
 * wineserver died fail this way (their processes hang) before the crash is seen. It is not kept:
 * the test runs again, and a test that really hangs fails again there.
 */
const hungOn = (p) => !p.ok && p.lines.some((l) => /^\s+message: '?Test timeout exceeded/.test(l));

/** The test's own title, as ava's `--match` sees it: no file part, `\#` unescaped. */
export function matchTitle(title) {
  const bare = title.replace(/\s+(?<!\\)#\s*(SKIP|TODO)\b.*$/i, '');
  const i = bare.indexOf(SEPARATOR);
  return (i < 0 ? bare : bare.slice(i + SEPARATOR.length)).replace(/\\#/g, '#');
}

function render(point, n) {
  const head = `${point.ok ? 'ok' : 'not ok'} ${n} - ${point.title}`;
  return [head, ...point.lines.filter((l, i, all) => i < all.length - 1 || l !== '')].join('\n');
}

function option(args, key) {
  const found = args.find((a) => a.startsWith(`--${key}=`));
  if (found === undefined) throw new Error(`resume.mjs: --${key}= is required`);
  return found.slice(key.length + 3);
}

const keptOf = (file) => (existsSync(file) ? pointsOf(readFileSync(file, 'utf8')) : []);

export function keep(tapFile, keptFile, attempt) {
  const already = keptOf(keptFile);
  const seen = new Set(already.map((p) => matchTitle(p.title)));
  const done = pointsOf(readFileSync(tapFile, 'utf8')).filter(
    (p) => p.complete && !hungOn(p) && !seen.has(matchTitle(p.title)),
  );
  const before = already.length;
  const text = done.map((p, i) => render(p, before + i + 1)).join('\n');
  appendFileSync(
    keptFile,
    `# wineserver crashed in attempt ${attempt}: ${done.length} test(s) it completed are kept\n${text}${text ? '\n' : ''}`,
  );
  return done.length;
}

/**
 * Whether `--match='!title'` excludes exactly this title: not with `*` (ava's wildcard, no escape)
 * nor `\\` or `"` (Wine rebuilds a Windows command line from the arguments, and Windows' rules for
 * backslashes before quotes change them). Such a test runs again; its later result is dropped.
 */
const excludable = (title) => !/[*\\"]/.test(title);

export function matchArgs(keptFile) {
  return keptOf(keptFile)
    .map((p) => matchTitle(p.title))
    .filter(excludable)
    .map((t) => `--match=!${t}`);
}

export function merge(lastFile, keptFile, outFile) {
  const kept = keptOf(keptFile);
  const seen = new Set(kept.map((p) => matchTitle(p.title)));
  const last = pointsOf(readFileSync(lastFile, 'utf8'));
  const fresh = last.filter((p) => !seen.has(matchTitle(p.title)));
  const dropped = last.length - fresh.length;
  const all = [...kept, ...fresh];
  const notes = readFileSync(keptFile, 'utf8')
    .split('\n')
    .filter((l) => l.startsWith('# wineserver crashed'));
  const body = all.map((p, i) => render(p, i + 1)).join('\n');
  writeFileSync(
    outFile,
    [
      'TAP version 13',
      ...notes,
      `# the completing attempt ran the other ${last.length} test(s)${dropped ? `; ${dropped} already kept (a title with * \\ or " cannot be excluded) dropped as duplicates` : ''}`,
      body,
      `1..${all.length}`,
      `# tests ${all.length}`,
      `# pass ${all.filter((p) => p.ok).length}`,
      `# fail ${all.filter((p) => !p.ok).length}`,
      '',
    ].join('\n'),
  );
  return all.length;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [verb, ...args] = process.argv.slice(2);
  if (verb === 'keep') {
    console.log(keep(option(args, 'tap'), option(args, 'kept'), option(args, 'attempt')));
  } else if (verb === 'match') {
    process.stdout.write(
      matchArgs(option(args, 'kept'))
        .map((a) => `${a}\0`)
        .join(''),
    );
  } else if (verb === 'merge') {
    merge(option(args, 'tap'), option(args, 'kept'), option(args, 'out'));
  } else {
    console.error('usage: resume.mjs keep|match|merge ... (see the header)');
    process.exitCode = 2;
  }
}
