// Every ```ts snippet of README.md, packages/*/README.md and docs/*.md is type-checked against the
// built packages and run as a program (exit 0 within 30 s), unless marked compile-only or no-run
// with a reason (listed in this test's output).
import { join } from 'node:path';
import test from 'ava';
import {
  allSnippets,
  type Compiled,
  compileSnippets,
  extractSnippets,
  platformReason,
  runSnippet,
  type Snippet,
} from '../src/snippets.js';

const here = new URL('..', import.meta.url).pathname; // tools/docs-check/dist
const snippets = allSnippets();
const checked = snippets.filter((s) => s.mode !== 'no-run' && s.markerProblem === undefined);
let compiled: Promise<Map<Snippet, Compiled>> | undefined;
const compileAll = () => {
  compiled ??= Promise.resolve().then(
    () => new Map(compileSnippets(checked, join(here, 'snippets')).map((c) => [c.snippet, c])),
  );
  return compiled;
};

test('the docs have snippets, and every marker gives a reason', (t) => {
  t.true(snippets.length >= 20, `found ${snippets.length} snippets`);
  const problems = snippets.filter((s) => s.markerProblem !== undefined);
  t.deepEqual(
    problems.map((s) => `${s.file}:${s.line}: ${s.markerProblem}`),
    [],
  );
  for (const s of snippets)
    if (s.mode !== 'run' || platformReason(s) !== undefined)
      t.log(
        `${s.file}:${s.line} ${s.mode === 'run' ? 'compile-only' : s.mode}: ${s.reason ?? platformReason(s)}`,
      );
  const counts = { run: 0, 'compile-only': 0, 'no-run': 0 };
  for (const s of snippets)
    counts[s.mode === 'run' && platformReason(s) !== undefined ? 'compile-only' : s.mode]++;
  t.log(
    `${snippets.length} snippets: ${counts.run} run, ${counts['compile-only']} compile-only, ${counts['no-run']} no-run`,
  );
});

for (const s of checked) {
  const run = s.mode === 'run' && platformReason(s) === undefined;
  test(`${s.file}:${s.line} ${run ? 'compiles and runs' : 'compiles'}`, async (t) => {
    const c = (await compileAll()).get(s)!;
    t.deepEqual(c.errors, [], 'type errors');
    if (!run || c.errors.length > 0) return;
    const r = await runSnippet(c.js);
    if (r.output !== '') t.log(r.output.trimEnd());
    t.true(r.ok, r.timedOut ? 'did not exit within 30 s (something left open?)' : `exited with ${r.code}`);
  });
}

// The checker itself: a snippet that does not compile, throws or hangs must fail.
const fixture = [
  '```ts',
  "const n: number = 'not a number';",
  '```',
  '',
  '<!-- snippet: compile-only (a fixture) -->',
  '```ts',
  "throw new Error('boom');",
  '```',
  '',
  '  ```ts',
  '  setInterval(() => {}, 1000);',
  '  ```',
  '<!-- snippet: no-run -->',
  '```ts',
  '```',
  '',
  '```ts no-run: a reason where no reader looks',
  'export {};',
  '```',
  '```tsx',
  '```',
].join('\n');

test('the checker fails a snippet that does not compile, throws or never exits', async (t) => {
  const [bad, throws, hangs, unmarked, infoString, ...rest] = extractSnippets(fixture, 'fixture.md');
  t.is(bad?.mode, 'run');
  t.is(throws?.mode, 'compile-only');
  t.is(throws?.reason, 'a fixture');
  t.is(hangs?.code, 'setInterval(() => {}, 1000);\n', 'an indented fence loses its indentation');
  t.regex(unmarked?.markerProblem ?? '', /not "compile-only \(reason\)"/);
  t.regex(infoString?.markerProblem ?? '', /has "no-run: a reason where no reader looks" after the language/);
  t.deepEqual(rest, [], 'a tsx fence is not a ts snippet');
  const [c1, c2, c3] = compileSnippets([bad!, throws!, hangs!], join(here, 'snippets-selftest'));
  t.is(c1?.errors.length, 1);
  t.regex(c1?.errors[0] ?? '', /^fixture\.md:2:7 Type 'string' is not assignable to type 'number'/);
  t.deepEqual(c2?.errors, []);
  const thrown = await runSnippet(c2!.js);
  t.false(thrown.ok);
  t.regex(thrown.output, /boom/);
  const hung = await runSnippet(c3!.js, 1_000);
  t.false(hung.ok);
  t.true(hung.timedOut);
});
