import { join } from 'node:path';
import test from 'ava';
import { packInstallAndCheck, repoRoot, type StepResult } from '../src/index.js';

// A third party's view of @secure-ipc/transport-conformance: only the packed tarballs and ava from
// the registry, its subpaths, its types, and the whole suite run against a packed transport.
const packages = ['core', 'transport-unix', 'transport-conformance'].map((p) =>
  join(repoRoot, 'packages', p),
);
const SUBPATHS = {
  basic: 'basicSuite',
  close: 'closeSuite',
  large: 'largeSuite',
  stress: 'stressSuite',
  channel: 'channelSuite',
  hostile: 'hostileSuite',
};

const esm = `
import * as root from '@secure-ipc/transport-conformance';
const subpaths = ${JSON.stringify(SUBPATHS)};
if (typeof root.runTransportConformance !== 'function') throw new Error('no runTransportConformance');
for (const [sub, fn] of Object.entries(subpaths)) {
  const mod = await import('@secure-ipc/transport-conformance/' + sub);
  if (typeof mod[fn] !== 'function' || mod[fn] !== root[fn]) throw new Error(sub + ' does not export ' + fn);
}
// Only the entry points are public: the fixture and the helpers are not.
for (const hidden of ['fixture', 'harness', 'mitm', 'dist/src/fixture.js']) {
  try { await import('@secure-ipc/transport-conformance/' + hidden); throw new Error(hidden + ' is exported'); }
  catch (err) { if (err.code !== 'ERR_PACKAGE_PATH_NOT_EXPORTED') throw err; }
}
console.log('ok');
`;

const ts = `
import { type ConformanceOptions, runTransportConformance } from '@secure-ipc/transport-conformance';
import { hostileSuite } from '@secure-ipc/transport-conformance/hostile';
import { unixTransport } from '@secure-ipc/transport-unix';
import test from 'ava';
const options: ConformanceOptions = {
  name: 'unix',
  transport: unixTransport(),
  address: () => 'local://typed',
  child: { module: '@secure-ipc/transport-unix', factory: 'unixTransport' },
};
export const register = () => { runTransportConformance(test, options); hostileSuite(test, options); };
`;

// The ten-line wiring of the README, against the packed transport-unix (its module named by package).
const wiring = `
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { runTransportConformance } from '@secure-ipc/transport-conformance';
import { unixTransport } from '@secure-ipc/transport-unix';
import test from 'ava';

const dir = mkdtempSync(join(tmpdir(), 'sipc-pack-conf-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
let n = 0;
runTransportConformance(test, {
  name: 'packed unix',
  transport: unixTransport(),
  address: () => \`unix://\${dir}/s\${n++}.sock\`,
  child: { module: '@secure-ipc/transport-unix', factory: 'unixTransport' },
});
`;

const explain = (results: StepResult[]) =>
  results.map((r) => `${r.ok ? 'ok  ' : 'FAIL'} ${r.step}\n${r.ok ? '' : r.output}`).join('\n');

test('a third party installs the packed transport-conformance with ava 7 and runs the whole suite against a packed transport', async (t) => {
  t.timeout(240_000);
  const results = await packInstallAndCheck({
    packageDirs: packages,
    registryPackages: ['ava@7.0.0'],
    esm,
    ts,
    extraSteps: [
      {
        name: 'require() from CommonJS (the default condition)',
        files: {
          'check.cjs':
            "const c = require('@secure-ipc/transport-conformance'); if (typeof c.runTransportConformance !== 'function') process.exit(1);",
        },
        args: ['check.cjs'],
      },
      {
        name: 'ava runs the suite against the packed transport-unix',
        files: { 'test/conformance.test.mjs': wiring },
        args: ['node_modules/ava/entrypoints/cli.mjs', '--no-worker-threads', 'test/conformance.test.mjs'],
      },
    ],
  });
  t.true(results.length >= 5 && results.every((r) => r.ok), explain(results));
  const ava = results.at(-1)?.output ?? '';
  const passed = Number(/(\d+) tests? passed/.exec(ava)?.[1] ?? 0);
  t.log(`the consumer's ava run reported ${passed} passing tests`);
  t.true(passed >= 30, `ava reported ${passed} passed:\n${ava}`);
  t.notRegex(ava, /failed|skipped|known failure|todo/, ava);
});
