import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  copyPackage,
  editPackageJson,
  packInstallAndCheck,
  repoRoot,
  type StepResult,
} from '../src/index.js';

const core = join(repoRoot, 'packages', 'core');
const tcp = join(repoRoot, 'packages', 'transport-tcp');
const unix = join(repoRoot, 'packages', 'transport-unix');

// Real use of both packages: a TCP listener on loopback, a connection, and a typed error by code.
const esm = `
import { generateKeyPair, encodeKey, isSecureIpcError } from '@secure-ipc/core';
import { isTransport } from '@secure-ipc/core/transport';
import { tcpTransport } from '@secure-ipc/transport-tcp';
const t = tcpTransport();
if (!isTransport(t)) throw new Error('tcpTransport() is not a transport');
const kp = generateKeyPair();
if (encodeKey(kp.publicKey).length !== 44) throw new Error('bad key encoding');
const listener = await t.listen('tcp://127.0.0.1:0');
const conn = await t.connect(listener.address);
conn.destroy();
await listener.close();
try { await t.listen('tcp://0.0.0.0:0'); throw new Error('remote bind allowed'); }
catch (err) { if (!isSecureIpcError(err, 'SIPC_ERR_REMOTE_NOT_ALLOWED')) throw err; }
console.log('ok');
`;

const ts = `
import { type Transport, type KeyPair, generateKeyPair, createError } from '@secure-ipc/core';
import { tcpTransport } from '@secure-ipc/transport-tcp';
const transport: Transport = tcpTransport();
const kp: KeyPair = generateKeyPair();
const err = createError('SIPC_ERR_TIMEOUT');
const code: 'SIPC_ERR_TIMEOUT' = err.code;
export { transport, kp, code };
`;

const explain = (results: StepResult[]) =>
  results.map((r) => `${r.ok ? 'ok  ' : 'FAIL'} ${r.step}\n${r.ok ? '' : r.output}`).join('\n');

test('pick-and-mix: core + transport-tcp tarballs install, import from ESM, and type-check', async (t) => {
  const results = await packInstallAndCheck({ packageDirs: [core, tcp], esm, ts });
  t.true(results.length >= 4 && results.every((r) => r.ok), explain(results));
});

test('pick-and-mix fails when a package omits dist from `files`', async (t) => {
  const scratch = await mkdtemp(join(tmpdir(), 'sipc-broken-'));
  t.teardown(() => rm(scratch, { recursive: true, force: true }));
  const broken = await copyPackage(core, scratch);
  await editPackageJson(broken, (pkg) => {
    pkg.files = ['README.md'];
  });
  const results = await packInstallAndCheck({ packageDirs: [broken, tcp], esm, ts });
  const failed = results.find((r) => !r.ok);
  t.truthy(failed, 'a core tarball without dist must not pass the check');
  t.is(failed?.step, 'import from plain ESM');
});

test('the README quick start type-checks and runs against the packed core + transport-unix', async (t) => {
  const readme = await readFile(join(repoRoot, 'README.md'), 'utf8');
  const block = /<!-- quickstart[^>]*-->\s*```ts\n([\s\S]*?)```/.exec(readme)?.[1];
  t.truthy(block, 'README.md has a quick start block');
  const lines = block!.split('\n').filter((l) => l.trim() !== '');
  t.true(lines.length <= 20, `the quick start has ${lines.length} lines of code (at most 20)`);
  const results = await packInstallAndCheck({
    packageDirs: [core, unix],
    esm: "import '@secure-ipc/core'; import '@secure-ipc/transport-unix';",
    ts: `${block}\nexport {};\n`,
    runTs: true,
  });
  t.true(results.length >= 5 && results.every((r) => r.ok), explain(results));
  t.regex(results.at(-1)?.output ?? '', /note 1 stored by a server whose key we pinned/);
  t.regex(results.at(-1)?.output ?? '', /BLAKE2b:\S+ \(pid \d+, roles app\) adds "hello"/);
});
