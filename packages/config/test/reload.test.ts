/**
 * `watchConfig(server, loaded)` over a real Unix socket: a reload (SIGHUP, a change of the file,
 * `reload()`) applies the policy to a live channel, rotates the key for new handshakes while the
 * live channel stays open, reports settings that take a restart, records `config.reload` in the
 * audit log before applying, and keeps the last good configuration when the file is refused.
 */
import { once } from 'node:events';
import { mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  connect,
  encodeKey,
  generateKeyPair,
  type KeyPair,
  readAuditLog,
  type SecureIpcError,
  serve,
  writeSecretKeyFile,
} from '@secure-ipc/core';
import { unixTransport } from '@secure-ipc/transport-unix';
import test, { type ExecutionContext } from 'ava';
import { type ConfigReload, configHash, loadConfig, readConfig, watchConfig } from '../src/index.js';

async function dir(t: ExecutionContext): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'sipc-reload-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  await mkdir(join(d, 'run'), { mode: 0o700 });
  return d;
}

interface Shape {
  readonly call: readonly string[];
  readonly maxIncoming?: number;
  readonly extra?: string;
  readonly endpoint?: string;
}

const configText = (d: string, client: KeyPair, s: Shape) => `{
  // written by the reload test
  "version": 1,
  "identity": { "key": { "file": "server.key" } },
  "trust": { "keys": ["${encodeKey(client.publicKey)}"] },
  "policy": {
    "roles": { "app": { "call": ${JSON.stringify(s.call)} } },
    "peers": [{ "key": "${encodeKey(client.publicKey)}", "roles": ["app"] }]
  },
  "endpoints": [{ "name": "main", "listen": "unix://${join(d, 'run', 'helper.sock')}"${s.endpoint ?? ''} }],
  "limits": { "maxIncoming": ${s.maxIncoming ?? 8} },
  "audit": { "dir": "audit", "origin": "test.example/reload" }${s.extra ?? ''}
}
`;

/** Replace a key file in place the way a rotation does: a new file, renamed over the old. */
async function replaceKeyFile(path: string, secretKey: Uint8Array): Promise<void> {
  await writeSecretKeyFile(`${path}.new`, secretKey);
  await rename(`${path}.new`, path);
}

async function start(t: ExecutionContext, d: string, client: KeyPair, s: Shape) {
  const serverKeys = generateKeyPair();
  await writeSecretKeyFile(join(d, 'server.key'), serverKeys.secretKey);
  const file = join(d, 'ipc.jsonc');
  await writeFile(file, configText(d, client, s));
  const loaded = await loadConfig(file);
  const server = await serve(loaded);
  server.handle('files.read', () => 'r');
  server.handle('files.write', () => 'w');
  t.teardown(async () => {
    await server.close();
    await loaded.config.close();
  });
  const dial = (serverKey: Uint8Array) =>
    connect({
      transport: unixTransport(),
      address: loaded.address,
      keyPair: client,
      trust: { keys: [serverKey] },
    });
  return { serverKeys, file, loaded, server, dial };
}

test('reload(): a live channel gets the new policy at its next call, stays open across a key rotation, and new handshakes see the new key; recorded before it applies', async (t) => {
  const d = await dir(t);
  const client = generateKeyPair();
  const { serverKeys, file, loaded, server, dial } = await start(t, d, client, { call: ['files.read'] });
  const watcher = watchConfig(server, loaded, { signal: null, pollIntervalMs: 0 });
  t.teardown(() => watcher.close());
  const live = await dial(serverKeys.publicKey);
  t.is(await live.request('files.read'), 'r');
  await t.throwsAsync(live.request('files.write'), { code: 'SIPC_ERR_FORBIDDEN' });

  // The policy changes and the key file is replaced in place (same path, new key).
  const rotated = generateKeyPair();
  await replaceKeyFile(join(d, 'server.key'), rotated.secretKey);
  await writeFile(file, configText(d, client, { call: ['files.write'] }));
  const before = watcher.hash;
  const r = await watcher.reload();
  t.deepEqual(r.applied, ['identity.key', 'policy.roles']);
  t.deepEqual(r.restartNeeded, []);
  t.is(r.previousHash, before);
  t.is(r.hash, configHash(await readConfig(file)));
  t.is(r.effectiveHash, r.hash);
  t.is(watcher.hash, r.hash);
  t.deepEqual(
    r.changes.map((c) => [c.path, c.kind, c.before ?? c.after]),
    [
      ['policy.roles.app.call[]', 'removed', 'files.read'],
      ['policy.roles.app.call[]', 'added', 'files.write'],
    ],
  );

  // The live channel was not dropped: it is authorized by the new policy from its next call.
  t.false(live.closed);
  await t.throwsAsync(live.request('files.read'), { code: 'SIPC_ERR_FORBIDDEN' });
  t.is(await live.request('files.write'), 'w');
  // A new handshake meets the rotated key: pinning the old one fails, the new one works.
  await t.throwsAsync(dial(serverKeys.publicKey), { code: 'SIPC_ERR_UNTRUSTED_PEER' });
  const fresh = await dial(rotated.publicKey);
  t.is(await fresh.request('files.write'), 'w');
  await fresh.close();
  await live.close();

  await server.close();
  await loaded.config.close();
  const records = (await readAuditLog(join(d, 'audit'))).records;
  const i = records.findIndex((x) => x?.type === 'config.reload');
  t.true(i > 0);
  const rec = records[i]!;
  t.is(rec.fields.hash, r.hash);
  t.is(rec.fields.previousHash, before);
  t.deepEqual(rec.fields.applied, ['identity.key', 'policy.roles']);
  // Before it applied: the listener.update and policy.update records come after it.
  t.true(records.findIndex((x) => x?.type === 'listener.update') > i);
  t.true(records.findIndex((x) => x?.type === 'policy.update') > i);
});

test('a refused file keeps the last good configuration (reloadError with every problem); a setting that takes a restart is reported, not applied', async (t) => {
  const d = await dir(t);
  const client = generateKeyPair();
  const { serverKeys, file, loaded, server, dial } = await start(t, d, client, { call: ['files.read'] });
  const watcher = watchConfig(server, loaded, { signal: null, pollIntervalMs: 0 });
  t.teardown(() => watcher.close());
  const errors: SecureIpcError[] = [];
  watcher.on('reloadError', (e) => errors.push(e));
  const live = await dial(serverKeys.publicKey);
  const good = watcher.hash;

  // A typo: refused whole, at its line, nothing changes.
  await writeFile(file, configText(d, client, { call: ['files.write'], extra: ',\n  "limts": {}' }));
  const err = await t.throwsAsync(watcher.reload(), { code: 'SIPC_ERR_INVALID_CONFIG' });
  t.is(errors.length, 1);
  t.is(errors[0], err as unknown as SecureIpcError);
  const problems = (err as unknown as { details: { problems: { line: number; pointer: string }[] } }).details
    .problems;
  t.deepEqual(
    problems.map((p) => [p.line, p.pointer]),
    [[13, '/limts']],
  );
  // A policy test the new policy fails: refused before anything applies.
  await writeFile(
    file,
    configText(d, client, {
      call: ['files.write'],
      extra: `,\n  "tests": [{ "peer": "${encodeKey(client.publicKey)}", "call": "files.write", "expect": "deny" }]`,
    }),
  );
  await t.throwsAsync(watcher.reload(), { code: 'SIPC_ERR_INVALID_CONFIG', message: /files\.write/ });
  t.is(errors.length, 2);
  t.is(watcher.hash, good);
  t.is(await live.request('files.read'), 'r');
  await t.throwsAsync(live.request('files.write'), { code: 'SIPC_ERR_FORBIDDEN' });

  // A key file that does not load: refused too, the policy in the same file not applied.
  await writeFile(join(d, 'server.key'), 'not a key\n', { mode: 0o600 });
  await writeFile(file, configText(d, client, { call: ['files.write'] }));
  await t.throwsAsync(watcher.reload());
  t.is(errors.length, 3);
  await t.throwsAsync(live.request('files.write'), { code: 'SIPC_ERR_FORBIDDEN' });
  await replaceKeyFile(join(d, 'server.key'), serverKeys.secretKey);

  // limits.maxIncoming takes a restart: reported, the policy beside it applied.
  await writeFile(file, configText(d, client, { call: ['files.write'], maxIncoming: 16 }));
  const r = await watcher.reload();
  t.deepEqual(r.applied, ['policy.roles']);
  t.deepEqual(r.restartNeeded, ['limits.maxIncoming']);
  t.not(r.effectiveHash, r.hash);
  t.is(watcher.config.limits?.maxIncoming, 8);
  t.deepEqual(watcher.config.policy.roles.app?.call, ['files.write']);
  t.is(await live.request('files.write'), 'w');
  await live.close();
  watcher.close();
  await t.throwsAsync(watcher.reload(), { code: 'SIPC_ERR_INVALID_ARGUMENT', message: /closed/ });
});

test('SIGHUP and a change of the file each trigger a reload', async (t) => {
  const d = await dir(t);
  const client = generateKeyPair();
  const { serverKeys, file, loaded, server, dial } = await start(t, d, client, { call: ['files.read'] });
  const watcher = watchConfig(server, loaded, { pollIntervalMs: 50 });
  t.teardown(() => watcher.close());
  const live = await dial(serverKeys.publicKey);

  const onReload = once(watcher, 'reload') as Promise<[ConfigReload]>;
  await writeFile(file, configText(d, client, { call: ['files.write'] }));
  const [byFile] = await onReload;
  t.deepEqual(byFile.applied, ['policy.roles']);
  t.is(await live.request('files.write'), 'w');

  // A real signal to this process: the watcher's handler keeps it alive and reloads.
  const onSignal = once(watcher, 'reload') as Promise<[ConfigReload]>;
  process.kill(process.pid, 'SIGHUP');
  const [bySignal] = await onSignal;
  t.deepEqual(bySignal.applied, []);
  t.is(bySignal.hash, byFile.hash);
  watcher.close();
  t.is(process.listenerCount('SIGHUP'), 0);
  await live.close();
});

test('a reload whose reloadable settings do not hold with what stays until a restart is refused', async (t) => {
  const d = await dir(t);
  const client = generateKeyPair();
  // Started with a group-less 0660 socket, which the file says it weakens baseline for.
  const weakened = {
    call: ['files.read'],
    endpoint: ', "socketMode": "0660"',
    extra: ',\n  "weakens": [{ "rule": "baseline.socket-owner-only", "reason": "the test group" }]',
  };
  const { loaded, server, file } = await start(t, d, client, weakened);
  const watcher = watchConfig(server, loaded, { signal: null, pollIntervalMs: 0 });
  t.teardown(() => watcher.close());
  // The new file is fine on its own (0600, no weakening), but the socket mode takes a restart
  // and the weakening would go at once: the mode in force would break the rule. Refused.
  await writeFile(file, configText(d, client, { call: ['files.write'] }));
  const err = await t.throwsAsync(watcher.reload(), { code: 'SIPC_ERR_INVALID_CONFIG' });
  t.regex(err?.message ?? '', /restart to apply it/);
  t.regex(err?.message ?? '', /endpoints\[\]/);
  t.deepEqual(watcher.config.weakens?.length, 1);
  // With the weakening kept, the policy applies and the mode waits for a restart.
  await writeFile(file, configText(d, client, { ...weakened, call: ['files.write'], endpoint: '' }));
  const r = await watcher.reload();
  t.deepEqual(r.applied, ['policy.roles']);
  t.deepEqual(r.restartNeeded, ['endpoints[]']);
});
