import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import {
  cycles,
  layerTableCycles,
  layerViolations,
  packageViolations,
  parseLayers,
  parsePackages,
  REPO_ROOT,
  readSources,
  type SourceFile,
} from './layering.js';

const doc = readFileSync(join(REPO_ROOT, 'docs/architecture.md'), 'utf8');
const layers = parseLayers(doc);
const coreFiles = readSources(join(REPO_ROOT, 'packages/core/src'));

test('docs/architecture.md: the layer table names every layer it allows and has no cycle', (t) => {
  t.true(layers.length >= 10, 'the layer table was parsed');
  const known = new Set(layers.map((l) => l.name));
  for (const l of layers)
    for (const m of l.mayImport) t.true(known.has(m), `${l.name} may import unknown ${m}`);
  t.deepEqual(layerTableCycles(layers), []);
});

test('core: every file belongs to a layer and imports only what docs/architecture.md allows', (t) => {
  t.true(coreFiles.length > 40, 'core sources were read');
  t.deepEqual(layerViolations(coreFiles, layers), []);
});

test('core: no import cycle between files (type imports included)', (t) => {
  t.deepEqual(cycles(coreFiles), []);
});

test('packages: each imports only the workspace packages docs/architecture.md allows, never by a relative path', (t) => {
  const rules = parsePackages(doc);
  const pkgs = new Map<string, SourceFile[]>();
  for (const dir of readdirSync(join(REPO_ROOT, 'packages'))) {
    const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'packages', dir, 'package.json'), 'utf8')) as {
      name: string;
    };
    pkgs.set(manifest.name, readSources(join(REPO_ROOT, 'packages', dir, 'src')));
  }
  t.true(pkgs.size >= 5);
  t.deepEqual(rules.map((r) => r.name).sort(), [...pkgs.keys()].sort(), 'one row per package in packages/');
  t.deepEqual(packageViolations(pkgs, rules), []);
});

// The checks themselves, on fabricated sources: each must catch what it is for. (The fabricated
// layers are named after folders this package has, so the repository's outside-path check, which
// reads every string, sees paths that exist.)
const fakeLayers = parseLayers(`## Layers of \`@secure-ipc/core\`

| layer | owns | may import |
|---|---|---|
| base | \`README.md\` | (nothing) |
| low | \`src/\` | base |
| high | \`test/\` | low, base |
`);

test('the checker flags a forbidden edge, a file outside every layer and an import out of the package', (t) => {
  const files: SourceFile[] = [
    { path: 'src/a.ts', imports: ['../test/b.js', '../README.md'] },
    { path: 'test/b.ts', imports: ['../src/a.js', 'node:fs'] },
    { path: 'stray.ts', imports: [] },
    { path: 'README.md', imports: ['../transport-unix/src/index.js'] },
  ];
  const problems = layerViolations(files, fakeLayers);
  t.true(
    problems.some((p) => p.startsWith('src/a.ts (low) imports ../test/b.js (high)')),
    problems.join('\n'),
  );
  t.true(problems.some((p) => p.startsWith('stray.ts belongs to no layer')));
  t.true(problems.some((p) => p.includes('outside the package')));
  t.false(
    problems.some((p) => p.startsWith('test/b.ts')),
    'high may import low',
  );
});

test('the checker flags a cycle of type imports and a cycle in the layer table', (t) => {
  const files: SourceFile[] = [
    { path: 'high/a.ts', imports: ['./b.js'] },
    { path: 'high/b.ts', imports: ['./c.js'] },
    { path: 'high/c.ts', imports: ['./a.js'] },
    { path: 'high/d.ts', imports: ['./a.js'] },
  ];
  t.deepEqual(cycles(files), [['high/a.ts', 'high/b.ts', 'high/c.ts', 'high/a.ts']]);
  const cyclic = parseLayers(`## Layers of \`@secure-ipc/core\`

| layer | owns | may import |
|---|---|---|
| x | \`x/\` | y |
| y | \`y/\` | x |
`);
  t.is(layerTableCycles(cyclic).length, 1);
});

test('the checker flags a package importing a workspace package it may not', (t) => {
  const rules = parsePackages(`## Packages

| package | may import (workspace packages) |
|---|---|
| \`@secure-ipc/core\` | (none) |
| \`@secure-ipc/transport-x\` | \`@secure-ipc/core\` |
`);
  const files = new Map<string, SourceFile[]>([
    ['@secure-ipc/core', [{ path: 'a.ts', imports: ['@secure-ipc/transport-x'] }]],
    [
      '@secure-ipc/transport-x',
      [{ path: 'b.ts', imports: ['@secure-ipc/core', '@secure-ipc/core/transport', '../../core/src/x.js'] }],
    ],
  ]);
  const problems = packageViolations(files, rules);
  t.deepEqual(problems, [
    '@secure-ipc/core: a.ts imports @secure-ipc/transport-x: not allowed',
    '@secure-ipc/transport-x: b.ts imports ../../core/src/x.js, outside its package',
  ]);
});
