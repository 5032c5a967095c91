import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import test from 'ava';

// tools/wine/resume.mjs keeps what a crashed Wine attempt completed and lets the next attempt run
// only the rest (tools/wine/run-ava.sh). Here a real ava run (Linux node) stands in for the crashed
// attempt: its TAP is cut after some test points, as a wineserver crash cuts it; then the real
// script keeps those, ava runs again with the script's `--match` arguments, and the merged report
// must hold every test exactly once, failures included, with the summer's counts.
const root = resolve(new URL('../../../..', import.meta.url).pathname);
const resume = join(root, 'tools', 'wine', 'resume.mjs');
const ava = join(root, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');

const TITLES = [
  'plain',
  'fails on purpose',
  'a title with \\# in it',
  'a `$subscribe` pattern of many * wildcards',
  'a * b',
  'quotes "double" and \'single\', commas 10,000',
  'pipe://NAME maps to \\\\.\\pipe\\NAME',
  'last one',
];

function node(args: string[], cwd: string) {
  const r = spawnSync(process.execPath, args, { cwd, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

test('a crashed attempt keeps its completed tests; the next runs only the rest; the report has each once', async (t) => {
  const pkg = mkdtempSync(join(tmpdir(), 'sipc-resume-'));
  t.teardown(() => rmSync(pkg, { recursive: true, force: true }));
  symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'));
  writeFileSync(
    join(pkg, 'package.json'),
    JSON.stringify({ type: 'module', ava: { files: ['*.test.js'], workerThreads: false } }),
  );
  const body = (titles: string[]) =>
    `import test from 'ava';\n${titles
      .map((title) => {
        const raw = title.replace(/\\#/g, '#');
        return raw.startsWith('fails')
          ? `test(${JSON.stringify(raw)}, (t) => t.is(1, 2));`
          : `test(${JSON.stringify(raw)}, (t) => { t.log('diagnostic of ' + ${JSON.stringify(raw)}); t.pass(); });`;
      })
      .join('\n')}\n`;
  writeFileSync(join(pkg, 'a.test.js'), body(TITLES.slice(0, 4)));
  writeFileSync(join(pkg, 'b.test.js'), body(TITLES.slice(4)));

  const full = node([ava, '--tap', '--concurrency=1', '--serial'], pkg);
  const points = full.out.split('\n').filter((l) => /^(not )?ok \d+ /.test(l));
  t.is(points.length, TITLES.length, full.out + full.err);

  // The crash: the TAP stops in the middle of the fifth point's diagnostics.
  const lines = full.out.split('\n');
  const fifth = lines.indexOf(points[4] ?? '');
  const cut = join(pkg, 'attempt1.tap');
  writeFileSync(cut, `${lines.slice(0, fifth + 1).join('\n')}\n`);
  const kept = join(pkg, 'kept.tap');
  const k = node([resume, 'keep', `--tap=${cut}`, `--kept=${kept}`, '--attempt=1'], pkg);
  t.is(k.out.trim(), '5', k.err);

  const match = node([resume, 'match', `--kept=${kept}`], pkg)
    .out.split('\0')
    .filter(Boolean);
  // Titles with '*' (ava's matcher has no escape), '\\' or '"' (Wine's command line) are not
  // excluded; the other kept ones are.
  const keptPoints = points.slice(0, 5);
  const starred = keptPoints.filter((p) => /[*\\"]/.test(p)).length;
  t.is(match.length, 5 - starred);
  const second = node([ava, '--tap', '--concurrency=1', '--serial', ...match], pkg);
  const secondPoints = second.out.split('\n').filter((l) => /^(not )?ok \d+ /.test(l));
  t.is(secondPoints.length, TITLES.length - 5 + starred, second.out + second.err);

  const merged = join(pkg, 'report.tap');
  writeFileSync(join(pkg, 'attempt2.tap'), second.out);
  t.is(
    node([resume, 'merge', `--tap=${join(pkg, 'attempt2.tap')}`, `--kept=${kept}`, `--out=${merged}`], pkg)
      .code,
    0,
  );
  const report = readFileSync(merged, 'utf8');
  const reported = report.split('\n').filter((l) => /^(not )?ok \d+ /.test(l));
  t.is(reported.length, TITLES.length, report);
  for (const [i, line] of reported.entries()) t.regex(line, new RegExp(`^(not )?ok ${i + 1} - `));
  const strip = (l: string) => l.replace(/^(not )?ok \d+ - /, '');
  t.deepEqual(new Set(reported.map(strip)), new Set(points.map(strip)), 'each test once, none lost');
  t.is(
    reported.filter((l) => l.startsWith('not ok')).length,
    1,
    'the failure that ran before the crash stays',
  );
  t.regex(report, new RegExp(`^1\\.\\.${TITLES.length}$`, 'm'));
  t.regex(report, /# wineserver crashed in attempt 1: 5 test\(s\) it completed are kept/);
  t.regex(report, /diagnostic of last one/, "the completing attempt's diagnostics are kept");
  if (starred > 0) t.regex(report, /dropped as duplicates/);

  // The summer reads the merged report like any other.
  const { parseTap } = (await import(join(root, 'tools', 'scripts', 'tap.mjs'))) as {
    parseTap: (s: string) => { passed: number; failed: number; problem?: string };
  };
  const counted = parseTap(report);
  t.is(counted.passed, TITLES.length - 1);
  t.is(counted.failed, 1);
  t.is(counted.problem, undefined);
});

test("a test failed by ava's inactivity timeout in a crashed attempt is not kept: it runs again", (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'sipc-resume-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const tap = join(dir, 'attempt.tap');
  writeFileSync(
    tap,
    [
      'TAP version 13',
      'ok 1 - a › ran',
      'not ok 2 - a › failed for real',
      '  ---',
      '    name: AssertionError',
      '    message: Difference',
      '  ...',
      'not ok 3 - a › in flight when the wineserver died',
      '  ---',
      '    name: Error',
      '    message: Test timeout exceeded',
      '  ...',
      'ok 4 - a › half-written',
      '  ---',
      '',
    ].join('\n'),
  );
  const kept = join(dir, 'kept.tap');
  const k = node([resume, 'keep', `--tap=${tap}`, `--kept=${kept}`, '--attempt=2'], dir);
  t.is(k.out.trim(), '2', k.err);
  // A later attempt that ran a kept test again (its title could not be excluded) keeps it once.
  t.is(node([resume, 'keep', `--tap=${tap}`, `--kept=${kept}`, '--attempt=3'], dir).out.trim(), '0');
  const match = node([resume, 'match', `--kept=${kept}`], dir)
    .out.split('\0')
    .filter(Boolean);
  t.deepEqual(match, ['--match=!ran', '--match=!failed for real']);
});
