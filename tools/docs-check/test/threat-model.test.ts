// docs/threat-model.md cannot rot: every threat row has a mitigation linking to a doc section
// that exists and a test that exists, by file and exact title, or says it is residual.
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import test from 'ava';
import { repoRoot } from '../src/snippets.js';
import {
  checkThreatModel,
  declaredTests,
  headingSlugs,
  isResidual,
  THREAT_MODEL,
  testRefs,
  threatRows,
} from '../src/threat-model.js';

test('docs/threat-model.md: every row has a mitigation, its links resolve, and each test it names exists by exact title', (t) => {
  const problems = checkThreatModel();
  t.deepEqual(problems, []);
  const rows = threatRows(readPage());
  const residual = rows.filter(isResidual);
  const refs = rows.flatMap((r) => testRefs(r.test));
  t.true(rows.length >= 60, `${rows.length} rows`);
  t.log(
    `${rows.length} threats (${residual.length} residual), ${refs.length} test references in ${new Set(refs.map((r) => r.file)).size} files`,
  );
  // Every layer the page promises has its table (ids T-LAYER-NN).
  const layers = new Set(rows.map((r) => r.id.split('-')[1]));
  t.deepEqual(
    [...layers].sort(),
    ['AU', 'BUS', 'CFG', 'CH', 'CLI', 'HS', 'ID', 'KEY', 'OB', 'POL', 'RES', 'RPC', 'TR'].sort(),
  );
});

function readPage(): string {
  return readFileSync(join(repoRoot, THREAT_MODEL), 'utf8');
}

test('titles are read from the source as ava registers them: wrappers, conditions, concatenations, the conformance name, a table of cases', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'sipc-threat-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const file = 'pkg/test/x.test.ts';
  mkdirSync(dirname(join(root, file)), { recursive: true });
  writeFileSync(
    join(root, file),
    [
      "import test from 'ava';",
      "test('plain', (t) => t.pass());",
      'test.serial(`template without expressions`, (t) => t.pass());',
      "test('a title ' +",
      "  'on two lines', (t) => t.pass());",
      'const maybe = process.env.X ? test : test.skip;',
      "maybe('through a condition', () => {});",
      "(Math.random() > 2 ? test : test.skip)('an inline condition', () => {});",
      'function asRoot(title: string, fn: () => void) {',
      '  if (process.getuid?.() === 0) test(title, fn);',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the source of a test file, not a template
      '  else test.skip(`${title} (skipped: needs root)`, fn);',
      '}',
      "asRoot('through a wrapper', () => {});",
      'export function suite(test: any, o: { name: string }) {',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the source of a test file, not a template
      '  test(`${o.name}: conformance`, () => {});',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the source of a test file, not a template
      '  for (const c of cases) test.serial(`${o.name}: abuse, row ${c.row}: ${c.title}`, () => {});',
      // biome-ignore lint/suspicious/noTemplateCurlyInString: the source of a test file, not a template
      '  test(`${o.name}: ${where} is unknown`, () => {});',
      '}',
      "const cases = [{ row: 1, title: 'first' }, { row: 2, title: 'second ' + 'case' }];",
      "const where = 'x';",
      "server.handle('not.a.test', () => {});",
    ].join('\n'),
  );
  t.deepEqual(
    [...declaredTests(file, root)].sort(),
    [
      '<transport>: abuse, row 1: first',
      '<transport>: abuse, row 2: second case',
      '<transport>: conformance',
      'a title on two lines',
      'an inline condition',
      'plain',
      'template without expressions',
      'through a condition',
      'through a wrapper',
    ].sort(),
  );
});

test('the checker fails a row without a mitigation, a broken link, a missing file or title, a row with no test', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'sipc-threat-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  mkdirSync(join(root, 'docs'), { recursive: true });
  mkdirSync(join(root, 'pkg', 'test'), { recursive: true });
  writeFileSync(
    join(root, 'pkg/test/a.test.ts'),
    "import test from 'ava';\ntest('it holds', (t) => t.pass());\n",
  );
  writeFileSync(join(root, 'docs/other.md'), '# Other\n\n## 3.5 Trust decisions and their order\n');
  const page = [
    '# Threat model',
    '',
    '| id | threat | mitigation | test |',
    '| --- | --- | --- | --- |',
    '| T-OK-01 | **S** fine | see [other](other.md#35-trust-decisions-and-their-order) | `pkg/test/a.test.ts` "it holds" |',
    '| T-OK-02 | **D** none yet | nothing ([other](other.md)) | residual: says why |',
    '| T-BAD-01 | **T** no mitigation |  | `pkg/test/a.test.ts` "it holds" |',
    '| T-BAD-02 | **T** a link to nowhere | [x](missing.md) and [y](other.md#no-such-heading) | `pkg/test/a.test.ts` "it holds" |',
    '| T-BAD-03 | **T** wrong title | [x](other.md) | `pkg/test/a.test.ts` "it holds, almost" |',
    '| T-BAD-04 | **T** missing file | [x](other.md) | `pkg/test/gone.test.ts` "it holds" |',
    '| T-BAD-05 | **T** no test | [x](other.md) | later |',
    '| T-BAD-05 | **T** same id | no link | `pkg/test/a.test.ts` "it holds" |',
  ].join('\n');
  writeFileSync(join(root, 'docs/threat-model.md'), page);
  t.deepEqual(checkThreatModel(root, 'docs/threat-model.md'), [
    'docs/threat-model.md:7: T-BAD-01: no mitigation',
    'docs/threat-model.md:7: T-BAD-01: the mitigation links to no doc section',
    'docs/threat-model.md:8: T-BAD-02: links to docs/missing.md, which does not exist',
    'docs/threat-model.md:8: T-BAD-02: links to docs/other.md#no-such-heading, which is no heading there',
    'docs/threat-model.md:9: T-BAD-03: pkg/test/a.test.ts declares no test titled "it holds, almost"',
    'docs/threat-model.md:10: T-BAD-04: pkg/test/gone.test.ts does not exist',
    'docs/threat-model.md:11: T-BAD-05: names no test (`path/to/file.test.ts` "exact title") and is not marked residual',
    'docs/threat-model.md:12: T-BAD-05: the id is used twice',
    'docs/threat-model.md:12: T-BAD-05: the mitigation links to no doc section',
  ]);
});

test('heading anchors as GitHub makes them: punctuation dropped, spaces to hyphens, duplicates numbered, fences skipped', (t) => {
  const slugs = headingSlugs(
    [
      '## 3.5 Trust decisions and their order',
      '### Linux and macOS (`@secure-ipc/transport-unix`)',
      '## Limits',
      '## Limits',
      '```sh',
      '# not a heading',
      '```',
    ].join('\n'),
  );
  t.deepEqual(
    [...slugs],
    ['35-trust-decisions-and-their-order', 'linux-and-macos-secure-ipctransport-unix', 'limits', 'limits-1'],
  );
});
