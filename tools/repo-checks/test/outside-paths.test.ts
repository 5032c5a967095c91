import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import {
  formatFindings,
  type OutsideRule,
  type RepositoryView,
  scannedFiles,
  scanRepository,
  scanText,
} from '../src/index.js';

// The offending strings below are assembled at run time, so that this file itself stays clean
// for the scan of the real repository at the end.
const up = (n: number) => '../'.repeat(n);
const machine = (name: string) => `/${name}/`;

// A small tree standing in for the repository in the fabricated cases.
const tree = new Set([
  'package.json',
  'tsconfig.base.json',
  'docs',
  'docs/errors.md',
  'packages',
  'packages/core',
  'packages/core/package.json',
  'packages/core/src',
  'packages/core/test',
  'packages/core/test/vectors',
  'tools',
  'tools/wine',
  'tools/bench',
  'tools/bench/package.json',
  'tools/bench/src',
  '.ci',
]);
const view: RepositoryView = { exists: (p) => tree.has(p), generated: new Set(['dist', 'node_modules']) };

const flagged: ReadonlyArray<[string, string, OutsideRule]> = [
  [
    'packages/core/test/noise-vectors.test.ts',
    `const file = new URL('${up(5)}shared/noise-vectors/xx-vectors.json', import.meta.url);`,
    'above-root',
  ],
  [
    'tools/wine/run-ava.sh',
    `# Adapted from ${up(1)}shared/windows-under-wine/ci-wine-node.sh`,
    'outside-name',
  ],
  [
    '.ci/run',
    `cp ${machine('work')}shared/noise-vectors/xx-vectors.json packages/core/test/`,
    'machine-path',
  ],
  ['packages/core/src/a.ts', `join(here, ${Array(5).fill("'..'").join(', ')}, 'shared')`, 'above-root'],
  ['packages/core/src/b.ts', `const p = '${'..\\\\'.repeat(5)}shared';`, 'above-root'],
  ['package.json', `"test": "node ${up(1)}other/run.js"`, 'above-root'],
  ['packages/core/src/c.ts', "const home = 'C:\\\\Users\\\\dev\\\\repo';", 'machine-path'],
  ['packages/core/tsconfig.json', `"extends": "${up(3)}tsconfig.base.json",`, 'above-root'],
  // Four levels from dist/test reach the root: allowed; but nothing named sibling-repo is there.
  ['packages/core/test/d.test.ts', `new URL('${up(4)}sibling-repo/x.json', import.meta.url)`, 'outside-name'],
  ['tools/bench/src/e.ts', `readFileSync('${machine('home')}dev/keys.json')`, 'machine-path'],
];

for (const [file, line, rule] of flagged) {
  test(`flags ${rule} in ${file}: ${line.slice(0, 60)}`, (t) => {
    const text = `// line one\n${line}\n`;
    const findings = scanText(file, text, view);
    t.is(findings.length, 1, formatFindings(findings));
    t.is(findings[0]?.rule, rule);
    t.is(findings[0]?.line, 2);
    t.true((findings[0]?.column ?? 0) > 0);
  });
}

const clean: ReadonlyArray<[string, string]> = [
  [
    'packages/core/test/errors.test.ts',
    "readFileSync(new URL('../../../../docs/errors.md', import.meta.url))",
  ],
  [
    'packages/core/test/noise-vectors.test.ts',
    "new URL('../../test/vectors/xx-vectors.json', import.meta.url)",
  ],
  ['packages/core/tsconfig.json', '"extends": "../../tsconfig.base.json",'],
  ['packages/core/test/f.test.ts', "new URL('../src/index.js', import.meta.url)"],
  ['packages/core/test/g.test.ts', "new URL('../dist/src/index.js', import.meta.url)"],
  [
    'tools/bench/src/machine.ts',
    "execFileSync('git', ['status', '--', '../../packages'], { cwd: BENCH_DIR })",
  ],
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a line of shell, not a template
  ['tools/wine/run-ava.sh', 'ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)'],
  ['.ci/run', 'cd "$(dirname "$0")/.."'],
  ['packages/core/src/h.ts', 'const all = [...args, ...rest]; const r = [1..5]; a..b;'],
  ['packages/core/test/i.test.ts', "const bad = ['unix:///a/../b.sock', 'local://../etc'];"],
  ['packages/core/src/j.ts', '// see https://example.com/work/notes and https://example.org/home/x'],
  ['packages/core/src/k.ts', "const dir = join(tmpdir(), 'sipc-'); const p = '/tmp/x.sock';"],
];

for (const [file, line] of clean) {
  test(`leaves alone ${file}: ${line.slice(0, 60)}`, (t) => {
    const findings = scanText(file, line, view);
    t.deepEqual(findings, [], formatFindings(findings));
  });
}

test('a whole fabricated repository: git-listed files are scanned, Markdown, package-lock and binaries are not', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'sipc-repo-check-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  const write = (file: string, text: string | Buffer) => {
    mkdirSync(dirname(join(root, file)), { recursive: true });
    writeFileSync(join(root, file), text);
  };
  execFileSync('git', ['init', '-q'], { cwd: root });
  write('.gitignore', 'dist/\nnode_modules/\n');
  write('package.json', '{ "name": "x" }\n');
  write('scripts/run.sh', `#!/bin/sh\ncat ${up(2)}shared/vectors.json\n`);
  write('notes.md', `The vectors came from ${machine('work')}shared and ${up(3)}shared.\n`);
  write('package-lock.json', `{ "resolved": "file:${machine('work')}shared" }\n`);
  write('blob.bin', Buffer.from(`\0${machine('work')}shared\0`));
  write('dist/out.js', `import '${up(9)}x.js';\n`);
  execFileSync('git', ['add', '.'], { cwd: root });
  // Untracked but not ignored: scanned too, so a new file fails before its first commit.
  write('src/new.ts', `const v = '${machine('home')}me/v.json';\n`);

  const files = scannedFiles(root);
  t.deepEqual(files, ['.gitignore', 'blob.bin', 'package.json', 'scripts/run.sh', 'src/new.ts']);
  const { findings } = scanRepository(root);
  t.deepEqual(
    findings.map((f) => [f.file, f.line, f.rule]),
    [
      ['scripts/run.sh', 2, 'above-root'],
      ['src/new.ts', 1, 'machine-path'],
    ],
    formatFindings(findings),
  );
});

test('nothing in this repository refers to a path outside it', (t) => {
  const root = fileURLToPath(new URL('../../../../', import.meta.url));
  const { files, findings } = scanRepository(root);
  t.true(files > 100, `scanned ${files} files`);
  t.deepEqual(findings, [], `\n${formatFindings(findings)}`);
});
