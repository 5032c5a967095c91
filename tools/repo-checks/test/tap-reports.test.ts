import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import test, { type ExecutionContext } from 'ava';

// CI's closing line comes from TAP reports (tools/scripts/tap.mjs): these tests run the real
// wrapper (ava-tap.mjs) and the real summer (sum-results.mjs) as processes, in a scratch report
// directory, on fabricated reports and on a real ava run with a failing test.
const root = resolve(new URL('../../../..', import.meta.url).pathname);
const scripts = join(root, 'tools', 'scripts');

function scratch(t: ExecutionContext, prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function run(script: string, args: string[], reports: string, cwd = root) {
  const r = spawnSync(process.execPath, [join(scripts, script), ...args], {
    cwd,
    encoding: 'utf8',
    env: { ...process.env, SIPC_REPORT_DIR: reports },
  });
  return { code: r.status, out: r.stdout, lines: r.stdout.trim().split('\n'), err: r.stderr };
}

const REPORTS: Record<string, string> = {
  pass: 'TAP version 13\nok 1 - a\nok 2 - b\n\n1..2\n',
  fail: 'TAP version 13\nok 1 - a\nnot ok 2 - b\n  ---\n    name: AssertionError\n    message: ok 3 - not a test point\n  ...\n1..2\n',
  skips:
    "# excluded: d: it needs Node's loader\nTAP version 13\nok 1 - a # SKIP macOS only\nok 2 - b\nnot ok 3 - c # TODO later\nok 4 - title with \\# SKIP in it\n1..4\n",
  bail: 'TAP version 13\nok 1 - a\nBail out! the suite could not start\n',
  crashed: 'TAP version 13\nok 1 - a\nok 2 - b\n',
  mismatch: 'TAP version 13\nok 1 - a\n1..3\n',
  empty: 'TAP version 13\n1..0\n',
};

test('the summer counts each report, fails broken and missing ones, and closes with the summed line', (t) => {
  const reports = scratch(t, 'sipc-tap-');
  for (const [name, text] of Object.entries(REPORTS)) writeFileSync(join(reports, `${name}.tap`), text);
  writeFileSync(join(reports, 'crashed.tap.partial-1'), 'ok 1 - never counted\n1..1\n');
  const { code, lines } = run(
    'sum-results.mjs',
    [`--expect=${Object.keys(REPORTS).join(',')},missing`],
    reports,
  );
  const line = (name: string) => lines.find((l) => l.includes(` ${name}: `)) ?? '';
  t.regex(line('pass'), /^\[tap\] PASS pass: 2 passed, 0 failed in /);
  t.regex(line('fail'), /^\[tap\] FAIL fail: 1 passed, 1 failed in /);
  t.regex(
    line('skips'),
    /^\[tap\] PASS skips: 2 passed, 0 failed, 3 skipped \(1 excluded on this runtime, see the report\) in /,
  );
  t.regex(line('bail'), /FAIL bail: 1 passed, 1 failed \(bail out: the suite could not start\)/);
  t.regex(line('crashed'), /FAIL crashed: 2 passed, 1 failed \(no plan line: the run did not finish\)/);
  t.regex(line('mismatch'), /FAIL mismatch: 1 passed, 1 failed \(plan 1\.\.3 but 1 results\)/);
  t.regex(line('empty'), /FAIL empty: 0 passed, 1 failed \(no tests ran\)/);
  t.regex(line('missing'), /FAIL missing: 0 passed, 1 failed \(missing: the run wrote no report\)/);
  t.is(lines.at(-1), '9 passed, 6 failed, 3 skipped');
  t.is(code, 1);
});

test('the summer exits 0 only when every expected report passed, and 1 when nothing ran', (t) => {
  const reports = scratch(t, 'sipc-tap-');
  writeFileSync(join(reports, 'pass.tap'), REPORTS.pass!);
  const ok = run('sum-results.mjs', ['--expect=pass'], reports);
  t.is(ok.lines.at(-1), '2 passed, 0 failed');
  t.is(ok.code, 0);
  const none = run('sum-results.mjs', ['--expect='], scratch(t, 'sipc-tap-'));
  t.is(none.lines.at(-1), '0 passed, 0 failed');
  t.is(none.code, 1);
});

test('the wrapper runs ava with TAP, keeps the report, and a failing test fails the run and the sum', (t) => {
  const reports = scratch(t, 'sipc-tap-');
  const pkg = scratch(t, 'sipc-tap-pkg-');
  symlinkSync(join(root, 'node_modules'), join(pkg, 'node_modules'));
  writeFileSync(
    join(pkg, 'package.json'),
    JSON.stringify({
      name: '@secure-ipc/tap-demo',
      type: 'module',
      ava: { files: ['*.test.js'], workerThreads: false },
    }),
  );
  writeFileSync(
    join(pkg, 'a.test.js'),
    "import test from 'ava';\ntest('passes', (t) => t.pass());\ntest('fails', (t) => t.is(1, 2));\ntest.skip('skipped', (t) => t.pass());\n",
  );
  const ran = run('ava-tap.mjs', ['--variant=x'], reports, pkg);
  t.is(ran.code, 1, ran.out + ran.err);
  t.regex(ran.out, /^not ok \d+ - (a › )?fails$/m, 'the TAP is shown as it runs');
  t.regex(ran.lines.at(-1) ?? '', /^\[tap\] FAIL tap-demo-x: 1 passed, 1 failed, 1 skipped in /);
  const tap = readFileSync(join(reports, 'tap-demo-x.tap'), 'utf8');
  t.regex(tap, /^1\.\.3$/m);
  const sum = run('sum-results.mjs', ['--expect=tap-demo-x'], reports);
  t.is(sum.lines.at(-1), '1 passed, 1 failed, 1 skipped');
  t.is(sum.code, 1);
});

test('the wrapper files a bail-out, records a finished run, and discards a report', (t) => {
  const reports = scratch(t, 'sipc-tap-');
  const pkg = join(root, 'tools', 'repo-checks');
  const bailed = run('ava-tap.mjs', ['--variant=t1', '--bail-out=wine is not installed'], reports, pkg);
  t.is(bailed.code, 1);
  t.regex(readFileSync(join(reports, 'repo-checks-t1.tap'), 'utf8'), /^Bail out! wine is not installed$/m);
  // A run made elsewhere (the Wine runner): CRLF TAP that passed, but ava exited 1 after it.
  mkdirSync(join(reports, 'in'));
  const made = join(reports, 'in', 'run.tap');
  writeFileSync(made, 'TAP version 13\r\nok 1 - a\r\n1..1\r\n');
  const recorded = run('ava-tap.mjs', ['--variant=t2', `--record=${made}`, '--exit-code=1'], reports, pkg);
  t.is(recorded.code, 1);
  t.regex(
    recorded.out,
    /FAIL repo-checks-t2: 1 passed, 1 failed \(bail out: ava exited with code 1 although no test failed\)/,
  );
  writeFileSync(made, 'TAP version 13\nok 1 - a\n1..1\n');
  t.is(run('ava-tap.mjs', ['--variant=t3', `--record=${made}`, '--exit-code=0'], reports, pkg).code, 0);
  t.true(existsSync(join(reports, 'repo-checks-t3.tap')));
  t.is(run('ava-tap.mjs', ['--variant=t3', '--discard'], reports, pkg).code, 0);
  t.false(existsSync(join(reports, 'repo-checks-t3.tap')));
});
