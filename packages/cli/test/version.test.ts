import { execFile } from 'node:child_process';
import { copyFile, mkdir, readFile, realpath } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test from 'ava';
import { tempDir } from './helpers.js';

// The committed bin file npm links, not dist/src/main.js: this is what `npx secure-ipc` runs.
const bin = fileURLToPath(new URL('../../bin/secure-ipc.js', import.meta.url));
const repoRoot = fileURLToPath(new URL('../../../../', import.meta.url));
const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

function run(file: string, args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    execFile(file, args, { timeout: 30_000 }, (err, stdout, stderr) => {
      const code = err ? ((err as { code?: unknown }).code ?? 1) : 0;
      resolve({ code: typeof code === 'number' ? code : 1, stdout, stderr });
    });
  });
}

for (const flag of ['--version', '-V']) {
  test(`bin/secure-ipc.js ${flag} prints the package version (run through its #! line)`, async (t) => {
    const r = await run(bin, [flag]);
    t.is(r.code, 0, r.stderr);
    t.is(r.stdout, `${pkg.version}\n`);
    t.is(r.stderr, '');
  });
}

test('--version takes no arguments (exit 2, one line)', async (t) => {
  const r = await run(process.execPath, [bin, '--version', 'extra']);
  t.is(r.code, 2);
  t.is(r.stdout, '');
  t.regex(r.stderr, /^secure-ipc --version: --version takes no arguments \(got "extra"\)\n$/);
});

test('npm linked node_modules/.bin/secure-ipc to the committed bin file, and it runs', async (t) => {
  const link = join(repoRoot, 'node_modules', '.bin', 'secure-ipc');
  t.is(await realpath(link), await realpath(bin));
  const r = await run(link, ['--version']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stdout, `${pkg.version}\n`);
});

test('the bin file without a build says to run `npm run build` in one line (exit 1)', async (t) => {
  const dir = await tempDir(t);
  await mkdir(join(dir, 'bin'));
  await copyFile(bin, join(dir, 'bin', 'secure-ipc.js'));
  const r = await run(process.execPath, [join(dir, 'bin', 'secure-ipc.js'), '--version']);
  t.is(r.code, 1);
  t.is(r.stdout, '');
  t.regex(
    r.stderr,
    /^secure-ipc: the CLI is not built \(.*dist\/src\/main\.js is missing\): run `npm run build`/,
  );
  t.is(r.stderr.trim().split('\n').length, 1);
});
