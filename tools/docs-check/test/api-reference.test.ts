// The API reference (`npm run docs:api`, TypeDoc over the public packages, see typedoc.json) builds
// without a warning: every export documented, no type referenced but not exported, no broken link.
import { execFile } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import test, { type ExecutionContext } from 'ava';
import { repoRoot } from '../src/snippets.js';

const run = promisify(execFile);
const typedoc = join(repoRoot, 'node_modules', 'typedoc', 'bin', 'typedoc');

/** TypeDoc's exit code and output, colours off. */
async function typedocRun(args: string[], cwd = repoRoot): Promise<{ code: number; output: string }> {
  try {
    const r = await run(process.execPath, [typedoc, ...args], {
      cwd,
      env: { ...process.env, NO_COLOR: '1' },
    });
    return { code: 0, output: r.stdout + r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: e.code ?? 1, output: `${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

test('the API reference of the public packages builds with no warning', async (t) => {
  const r = await typedocRun(['--emit', 'none']);
  t.log(r.output.trim().split('\n').at(-1) ?? '');
  t.is(r.code, 0, r.output);
  t.notRegex(r.output, /\[warning\]/);
});

/** Convert a one-file package under the repository (dist is git-ignored) with the root settings. */
async function convertFixture(t: ExecutionContext, name: string, source: string) {
  const dir = join(repoRoot, 'tools', 'docs-check', 'dist', name);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(join(dir, 'src'), { recursive: true });
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name, version: '0.0.0', type: 'module' }));
  writeFileSync(
    join(dir, 'tsconfig.json'),
    JSON.stringify({ compilerOptions: { module: 'NodeNext', strict: true, noEmit: true }, include: ['src'] }),
  );
  writeFileSync(join(dir, 'src', 'index.ts'), source);
  return typedocRun([
    '--options',
    join(repoRoot, 'typedoc.json'),
    '--entryPoints',
    dir,
    '--packagesRequiringDocumentation',
    name,
    '--emit',
    'none',
  ]);
}

test("the reference's settings fail on an undocumented export", async (t) => {
  const r = await convertFixture(
    t,
    'typedoc-fixture-doc',
    '/** Documented. */\nexport const a = 1;\nexport const undocumented = 1;\n',
  );
  t.not(r.code, 0);
  t.regex(r.output, /undocumented \(Variable\), defined in .* does not have any documentation/);
});

test("the reference's settings fail on a type referenced but not exported", async (t) => {
  const r = await convertFixture(
    t,
    'typedoc-fixture-export',
    'interface Hidden { a: number }\n/** Its parameter type is not exported. */\nexport function f(h: Hidden): number { return h.a; }\n',
  );
  t.not(r.code, 0);
  t.regex(r.output, /Hidden, defined in .* is referenced by f\.h but not included in the documentation/);
});
