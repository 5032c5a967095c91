/**
 * `diffConfigs`: the semantic difference (lists as sets, map keys by name, each change with its
 * setting and whether a reload applies it, from the schema's x-reloadable), and the git commit a
 * reload and a load record.
 */
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeKey, generateKeyPair, readAuditLog, serve, writeSecretKeyFile } from '@secure-ipc/core';
import test from 'ava';
import { type Config, diffConfigs, loadConfig, reloadableSettings, watchConfig } from '../src/index.js';

const k1 = encodeKey(generateKeyPair().publicKey);
const k2 = encodeKey(generateKeyPair().publicKey);
const base: Config = {
  version: 1,
  identity: { key: { file: 'server.key' } },
  trust: { keys: [k1, k2] },
  policy: { roles: { app: { call: ['a', 'b'] } } },
  endpoints: [{ name: 'main', listen: 'local://diff' }],
  limits: { maxIncoming: 8 },
};

test('lists compare as sets, map keys by name; each change names its setting and whether a reload applies it', (t) => {
  t.deepEqual(diffConfigs(base, structuredClone(base)), []);
  // Order is no change.
  t.deepEqual(diffConfigs(base, { ...base, trust: { keys: [k2, k1] } }), []);
  const next: Config = {
    ...base,
    trust: { keys: [k2] },
    policy: { roles: { app: { call: ['b', 'c'] }, ops: { call: ['x'] } }, defaultRoles: ['app'] },
    limits: { maxIncoming: 16 },
    identity: { key: { keystore: { service: 's', account: 'a' } } },
  };
  const changes = diffConfigs(base, next);
  t.deepEqual(
    changes.map((c) => [c.path, c.kind, c.setting, c.reloadable]),
    [
      ['identity.key.file', 'removed', 'identity.key', true],
      ['identity.key.keystore', 'added', 'identity.key', true],
      ['limits.maxIncoming', 'changed', 'limits.maxIncoming', false],
      ['policy.defaultRoles', 'added', 'policy.defaultRoles', true],
      ['policy.roles.app.call[]', 'removed', 'policy.roles', true],
      ['policy.roles.app.call[]', 'added', 'policy.roles', true],
      ['policy.roles.ops', 'added', 'policy.roles', true],
      ['trust.keys[]', 'removed', 'trust.keys', true],
    ],
  );
  t.deepEqual(changes[2]?.before, 8);
  t.deepEqual(changes[2]?.after, 16);
  t.deepEqual(changes[4]?.before, 'a');
  t.deepEqual(changes[7]?.before, k1);
  t.regex(changes[7]?.security ?? '', /handshake/);
  // An endpoint changed is a list element replaced: a restart.
  const moved = diffConfigs(base, { ...base, endpoints: [{ name: 'main', listen: 'local://other' }] });
  t.deepEqual(
    moved.map((c) => [c.path, c.kind, c.setting, c.reloadable]),
    [
      ['endpoints[]', 'removed', 'endpoints', false],
      ['endpoints[]', 'added', 'endpoints', false],
    ],
  );
});

test('the reloadable settings are the schema’s x-reloadable ones, each a plain path a reload can replace', (t) => {
  const settings = reloadableSettings();
  t.deepEqual(settings, [
    'weakens',
    'identity.key',
    'identity.certificate',
    'trust.keys',
    'trust.authorities',
    'policy.roles',
    'policy.peers',
    'policy.defaultRoles',
    'tests',
  ]);
  for (const s of settings) t.regex(s, /^[A-Za-z]+(\.[A-Za-z]+)*$/);
});

test('config.load and config.reload record the git commit of the file’s work tree', async (t) => {
  const d = await mkdtemp(join(tmpdir(), 'sipc-commit-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  // A work tree as git lays it out: HEAD names a branch, the branch a commit (packed, then loose).
  const first = 'a'.repeat(40);
  const second = 'b'.repeat(40);
  await mkdir(join(d, '.git', 'refs', 'heads'), { recursive: true });
  await writeFile(join(d, '.git', 'HEAD'), 'ref: refs/heads/main\n');
  await writeFile(join(d, '.git', 'packed-refs'), `# pack-refs with: peeled\n${first} refs/heads/main\n`);
  await mkdir(join(d, 'etc'));
  await writeSecretKeyFile(join(d, 'etc', 'server.key'), generateKeyPair().secretKey);
  const file = join(d, 'etc', 'ipc.jsonc');
  await writeFile(
    file,
    JSON.stringify({
      version: 1,
      identity: { key: { file: 'server.key' } },
      trust: { keys: [k1] },
      policy: { roles: {} },
      endpoints: [{ name: 'main', listen: 'local://sipc-commit-test' }],
      audit: { dir: 'audit', origin: 'test.example/commit' },
    }),
  );
  const loaded = await loadConfig(file);
  const server = await serve(loaded);
  const watcher = watchConfig(server, loaded, { signal: null, pollIntervalMs: 0 });
  await writeFile(join(d, '.git', 'refs', 'heads', 'main'), `${second}\n`);
  const r = await watcher.reload();
  t.is(r.commit, second);
  watcher.close();
  await server.close();
  await loaded.config.close();
  const records = (await readAuditLog(join(d, 'etc', 'audit'))).records;
  t.is(records.find((x) => x?.type === 'config.load')?.fields.commit, first);
  t.is(records.find((x) => x?.type === 'config.reload')?.fields.commit, second);
});
