/**
 * Pick-and-mix install check: pack workspace packages with `npm pack`, install only the tarballs into a
 * fresh temporary project, import them from plain ESM JavaScript and type-check a TypeScript consumer.
 * This is what a user does (`npm install @secure-ipc/core @secure-ipc/transport-tcp`), so a broken
 * `exports`, `files` or dependency range fails here before it fails for them.
 */
import { execFile } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The monorepo root (tools/pack-test/dist/src → ../../../..). */
export const repoRoot = resolve(new URL('../../../..', import.meta.url).pathname);

/**
 * The directory names under packages/ whose package.json is not private: what a release publishes
 * and what a user can install. Read from the tree so a new package cannot be left out of the
 * install tests.
 */
export function publicPackages(): string[] {
  const dir = join(repoRoot, 'packages');
  return readdirSync(dir, { withFileTypes: true })
    .filter((e) => e.isDirectory())
    .map((e) => e.name)
    .filter((name) => {
      const pkg = JSON.parse(readFileSync(join(dir, name, 'package.json'), 'utf8')) as { private?: boolean };
      return pkg.private !== true;
    })
    .sort();
}

/** One step's outcome; `ok: false` keeps the captured output for the test log. */
export interface StepResult {
  readonly ok: boolean;
  readonly step: string;
  readonly output: string;
}

/** What to install and check. */
export interface PackCheck {
  /** Package directories to pack (absolute). */
  readonly packageDirs: readonly string[];
  /** Plain ESM JavaScript run with `node` after the install; must exit 0. */
  readonly esm: string;
  /** A TypeScript consumer type-checked with `tsc` (NodeNext, strict). */
  readonly ts: string;
  /** Also compile the TypeScript consumer and run it with `node` (it must exit 0). */
  readonly runTs?: boolean;
  /** Registry packages installed beside the tarballs, at exact versions (e.g. `ava@7.0.0`). */
  readonly registryPackages?: readonly string[];
  /** Further steps after the TypeScript consumer: files written into the consumer, then `node ARGS` there. */
  readonly extraSteps?: ReadonlyArray<ExtraStep>;
}

/** One more step in the consumer project; it passes if `node ...args` exits 0. */
export interface ExtraStep {
  /** Step name in the results. */
  readonly name: string;
  /** Files to write first, by path relative to the consumer project. */
  readonly files?: Readonly<Record<string, string>>;
  /** Arguments of `node`, run in the consumer project. */
  readonly args: readonly string[];
}

async function step(name: string, cmd: string, args: string[], cwd: string): Promise<StepResult> {
  try {
    const { stdout, stderr } = await run(cmd, args, {
      cwd,
      maxBuffer: 16 * 1024 * 1024,
      env: { ...process.env },
    });
    return { ok: true, step: name, output: stdout + stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, step: name, output: `${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}` };
  }
}

/** Make a throw-away copy of a package directory (package.json, README, dist) for negative tests. */
export async function copyPackage(dir: string, into: string): Promise<string> {
  const dest = join(into, 'copy');
  await mkdir(dest, { recursive: true });
  for (const entry of ['package.json', 'README.md', 'dist']) {
    await cp(join(dir, entry), join(dest, entry), { recursive: true, force: true }).catch(() => undefined);
  }
  return dest;
}

/** Rewrite a package.json in place. */
export async function editPackageJson(
  dir: string,
  edit: (pkg: Record<string, unknown>) => void,
): Promise<void> {
  const file = join(dir, 'package.json');
  const pkg = JSON.parse(await readFile(file, 'utf8')) as Record<string, unknown>;
  edit(pkg);
  await writeFile(file, `${JSON.stringify(pkg, null, 2)}\n`);
}

/**
 * Pack, install into a fresh project, run the ESM check, type-check the TS consumer (and run it),
 * then the extra steps.
 * Returns every step's result; stops at the first failure. Removes its temporary directory.
 */
export async function packInstallAndCheck(check: PackCheck): Promise<StepResult[]> {
  const work = await mkdtemp(join(tmpdir(), 'sipc-pack-'));
  const results: StepResult[] = [];
  try {
    // One npm for every package (an npm start is most of a small package's pack time).
    const r = await step(
      `pack ${check.packageDirs.join(' ')}`,
      'npm',
      ['pack', '--json', '--pack-destination', work, ...check.packageDirs],
      work,
    );
    results.push(r);
    if (!r.ok) return results;
    const json = r.output.slice(r.output.indexOf('['));
    const infos = JSON.parse(json.slice(0, json.lastIndexOf(']') + 1)) as Array<{ filename: string }>;
    if (infos.length !== check.packageDirs.length) {
      results.push({
        ...r,
        ok: false,
        output: `${r.output}\nnpm pack made ${infos.length} tarballs for ${check.packageDirs.length} packages`,
      });
      return results;
    }
    const tarballs = infos.map((info) => join(work, info.filename));
    const app = join(work, 'app');
    await mkdir(app);
    await writeFile(
      join(app, 'package.json'),
      JSON.stringify({ name: 'consumer', version: '1.0.0', private: true, type: 'module' }),
    );
    const install = await step(
      'npm install tarballs',
      'npm',
      [
        'install',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        ...tarballs,
        '@types/node@20',
        ...(check.registryPackages ?? []),
      ],
      app,
    );
    results.push(install);
    if (!install.ok) return results;
    await writeFile(join(app, 'check.mjs'), check.esm);
    const esm = await step('import from plain ESM', process.execPath, ['check.mjs'], app);
    results.push(esm);
    if (!esm.ok) return results;
    await writeFile(join(app, 'consumer.ts'), check.ts);
    await writeFile(
      join(app, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          strict: true,
          noEmit: check.runTs !== true,
          outDir: 'out',
          skipLibCheck: false,
          types: ['node'],
        },
        files: ['consumer.ts'],
      }),
    );
    const tsc = join(repoRoot, 'node_modules', 'typescript', 'bin', 'tsc');
    const typed = await step('type-check a TypeScript consumer', process.execPath, [tsc, '-p', '.'], app);
    results.push(typed);
    if (!typed.ok) return results;
    if (check.runTs === true) {
      const ran = await step(
        'run the TypeScript consumer',
        process.execPath,
        [join('out', 'consumer.js')],
        app,
      );
      results.push(ran);
      if (!ran.ok) return results;
    }
    for (const extra of check.extraSteps ?? []) {
      for (const [file, text] of Object.entries(extra.files ?? {})) {
        await mkdir(dirname(join(app, file)), { recursive: true });
        await writeFile(join(app, file), text);
      }
      const r = await step(extra.name, process.execPath, [...extra.args], app);
      results.push(r);
      if (!r.ok) return results;
    }
    return results;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}
