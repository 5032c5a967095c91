// Every CLI run is a process start: the commands that do not read a configuration file must not
// import @secure-ipc/config, whose schema library (typebox) costs more CPU at import than core and
// both transports together (src/config-package.ts). A module-resolution hook in the CLI's process
// reports every module of @secure-ipc/config or typebox it resolves.
import { execFile } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import test from 'ava';
import { cliMain, tempDir } from './helpers.js';

const HOOKS = `
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  if (/\\/(packages\\/config|node_modules\\/typebox)\\//.test(r.url)) process.stderr.write('config module: ' + r.url + '\\n');
  return r;
}
`;

/** Run the CLI with the hook; resolves with the config modules it resolved. */
async function configModules(dir: string, args: string[]): Promise<string[]> {
  const register = join(dir, 'register.mjs');
  const stderr = await new Promise<string>((resolve) =>
    execFile(
      process.execPath,
      ['--import', pathToFileURL(register).href, cliMain, ...args],
      { timeout: 60_000 },
      (_err, _stdout, text) => resolve(text),
    ),
  );
  return stderr.split('\n').filter((l) => l.startsWith('config module: '));
}

test('keygen, serve, ping, call and --help start without importing @secure-ipc/config; config and doctor import it', async (t) => {
  const dir = await tempDir(t);
  await writeFile(join(dir, 'hooks.mjs'), HOOKS);
  await writeFile(
    join(dir, 'register.mjs'),
    "import { register } from 'node:module';\nregister('./hooks.mjs', import.meta.url);\n",
  );
  for (const args of [
    ['keygen', '--out', join(dir, 'k.key')],
    ['serve', '--help'],
    ['ping', '--help'],
    ['call', '--help'],
    ['--help'],
  ])
    t.deepEqual(await configModules(dir, args), [], args.join(' '));
  // The control: the hook sees the package where it is used, so an eager import would be seen.
  for (const args of [
    ['config', 'validate', join(dir, 'missing.toml')],
    ['doctor', join(dir, 'missing.toml')],
  ])
    t.true((await configModules(dir, args)).length > 0, args.join(' '));
});
