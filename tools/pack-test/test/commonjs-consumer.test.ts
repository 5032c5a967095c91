import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import {
  copyPackage,
  editPackageJson,
  packInstallAndCheck,
  publicPackages,
  repoRoot,
  type StepResult,
} from '../src/index.js';

// A CommonJS application (a `.cjs` file in a project of its own) require()s every public package
// from the packed tarballs: Node >= 20.19 loads ESM through require() when `exports` has a condition
// that require matches (`default`). It then uses them for real: keys, a typed error by code, each
// transport factory (and core's transport subpath), bytes over a Unix socket, and the packed
// `secure-ipc` command. The package list is read from packages/ (every package that is not private).
const PUBLIC = publicPackages();
const packageDirs = PUBLIC.map((p) => join(repoRoot, 'packages', p));

const cjs = `'use strict';
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const { once } = require('node:events');
const { mkdtempSync, rmSync } = require('node:fs');
const { tmpdir } = require('node:os');
const { join } = require('node:path');
const core = require('@secure-ipc/core');
const { isTransport, memoryTransport } = require('@secure-ipc/core/transport');
const { unixTransport } = require('@secure-ipc/transport-unix');
const { tcpTransport } = require('@secure-ipc/transport-tcp');
const { pipeTransport } = require('@secure-ipc/transport-win');
const cli = require('@secure-ipc/cli');
const { runTransportConformance } = require('@secure-ipc/transport-conformance');
const { validateConfigText } = require('@secure-ipc/config');
const { instrumentSecureIpc } = require('@secure-ipc/otel');
for (const name of ${JSON.stringify(PUBLIC)}) assert.equal(typeof require('@secure-ipc/' + name), 'object', name);

const keys = core.generateKeyPair();
assert.equal(core.encodeKey(keys.publicKey).length, 44);
assert.deepEqual(core.decodeKey(core.encodeKey(keys.publicKey)), keys.publicKey);
const err = core.createError('SIPC_ERR_TIMEOUT');
assert.equal(err.code, 'SIPC_ERR_TIMEOUT');
assert.ok(err instanceof Error && core.isSecureIpcError(err, 'SIPC_ERR_TIMEOUT'));
for (const transport of [unixTransport(), tcpTransport(), pipeTransport(), memoryTransport()]) assert.ok(isTransport(transport));
assert.equal(typeof runTransportConformance, 'function');
assert.equal(typeof cli, 'object');
assert.equal(typeof instrumentSecureIpc, 'function');
const bad = validateConfigText('{ "version": 1, "listen": 7 }', 'c.jsonc');
assert.equal(bad.config, undefined);
assert.ok(bad.problems.length > 0 && bad.problems.every((p) => p.line >= 1));

(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'sipc-cjs-'));
  try {
    const transport = unixTransport();
    const listener = await transport.listen('unix://' + join(dir, 's.sock'));
    listener.on('connection', (c) => c.pipe(c));
    const conn = await transport.connect(listener.address);
    assert.equal(conn.peer.pid, process.pid);
    conn.write('ping');
    const [echo] = await once(conn, 'data');
    assert.equal(String(echo), 'ping');
    conn.destroy();
    await listener.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const version = execFileSync(join(__dirname, 'node_modules', '.bin', 'secure-ipc'), ['--version'], { encoding: 'utf8' });
  assert.match(version, /\\d+\\.\\d+\\.\\d+/);
  console.log('cjs ok');
})().catch((e) => {
  console.error(e);
  process.exit(1);
});
`;

const explain = (results: StepResult[]) =>
  results.map((r) => `${r.ok ? 'ok  ' : 'FAIL'} ${r.step}\n${r.ok ? '' : r.output}`).join('\n');

const cjsStep = (code: string) => ({
  name: 'require() from a CommonJS consumer',
  files: { 'check.cjs': code },
  args: ['check.cjs'],
});

test('a CommonJS consumer require()s every public package from the packed tarballs and uses them', async (t) => {
  t.timeout(240_000);
  const results = await packInstallAndCheck({
    packageDirs,
    registryPackages: ['ava@7.0.0', '@opentelemetry/api@1.9.1'], // transport-conformance's and otel's peers
    esm: "import '@secure-ipc/core';",
    ts: 'export {};',
    extraSteps: [cjsStep(cjs)],
  });
  t.true(PUBLIC.includes('config') && PUBLIC.includes('otel') && !PUBLIC.includes('bench'));
  t.true(results.length >= 5 && results.every((r) => r.ok), explain(results));
  t.regex(results.at(-1)?.output ?? '', /cjs ok/);
});

test('require() fails with ERR_PACKAGE_PATH_NOT_EXPORTED when exports has no default condition', async (t) => {
  const scratch = await mkdtemp(join(tmpdir(), 'sipc-no-default-'));
  t.teardown(() => rm(scratch, { recursive: true, force: true }));
  const broken = await copyPackage(join(repoRoot, 'packages', 'core'), scratch);
  await editPackageJson(broken, (pkg) => {
    for (const entry of Object.values(pkg.exports as Record<string, Record<string, string>>))
      delete entry.default;
  });
  const results = await packInstallAndCheck({
    packageDirs: [broken],
    esm: "import '@secure-ipc/core';",
    ts: 'export {};',
    extraSteps: [cjsStep("require('@secure-ipc/core');")],
  });
  const failed = results.find((r) => !r.ok);
  t.is(failed?.step, 'require() from a CommonJS consumer', explain(results));
  t.regex(failed?.output ?? '', /ERR_PACKAGE_PATH_NOT_EXPORTED/);
});
