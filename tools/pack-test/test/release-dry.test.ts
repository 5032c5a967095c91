import { execFile } from 'node:child_process';
import { join } from 'node:path';
import test from 'ava';
import { publicPackages, repoRoot } from '../src/index.js';

test('release:dry versions every public package in a scratch copy and packs it, leaving this checkout alone', async (t) => {
  const before = await import(join(repoRoot, 'packages', 'core', 'package.json'), { with: { type: 'json' } });
  const out = await new Promise<string>((resolve, reject) =>
    execFile(
      process.execPath,
      [join(repoRoot, 'tools', 'release', 'release-dry.mjs')],
      { timeout: 240_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stdout}\n${stderr}`)) : resolve(stdout),
    ),
  );
  for (const name of publicPackages())
    t.regex(
      out,
      new RegExp(
        `@secure-ipc/${name}\\s+\\d+\\.\\d+\\.\\d+\\s+\\d+\\.\\d+\\.\\d+\\s+secure-ipc-${name}-\\S+\\.tgz`,
      ),
    );
  t.notRegex(out, /bench|pack-test|repo-checks/, 'private packages are never versioned or packed');
  t.regex(out, /nothing was published/);
  const after = await import(`${join(repoRoot, 'packages', 'core', 'package.json')}?again`, {
    with: { type: 'json' },
  });
  t.is(after.default.version, before.default.version, 'the checkout keeps its versions');
});
