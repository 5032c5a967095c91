/**
 * A witness's files (docs/audit.md, "Witness files"): the key file (armored seed, 0600, never
 * overwritten, refused under another label or when exposed) and the state file (JSON replaced
 * atomically, 0600; absent is no state; a state whose checkpoint does not say its size, or that
 * others can write, is refused); and `auditListener`, which gives a server built from
 * `createServer` + `secureListen` the listener records `serve()` makes.
 */
import { once } from 'node:events';
import { chmod, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import {
  auditListener,
  connect,
  createAuditWitness,
  createServer,
  generateAuthority,
  generateKeyPair,
  generateWitnessKey,
  isSecureIpcError,
  openAuditLog,
  readAuditLog,
  readAuditWitnessState,
  readWitnessKeyFile,
  secureListen,
  writeAuditWitnessState,
  writeAuthorityFile,
  writeWitnessKeyFile,
} from '../src/index.js';
import { memoryTransport } from '../src/transport/index.js';

const ORIGIN = 'test.example/witness-files';

async function base(t: ExecutionContext): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'sipc-witness-files-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const posix = process.platform !== 'win32';

test('witness key file: the same key back, mode 0600, never overwritten, another label refused', async (t) => {
  const dir = await base(t);
  const key = generateWitnessKey();
  const path = join(dir, 'witness.key');
  await writeWitnessKeyFile(path, key);
  const text = await readFile(path, 'utf8');
  t.regex(
    text,
    /^-----BEGIN SECURE-IPC WITNESS KEY-----\n[A-Za-z0-9+/=]{44}\n-----END SECURE-IPC WITNESS KEY-----\n$/,
  );
  if (posix) t.is((await stat(path)).mode & 0o777, 0o600);
  const back = await readWitnessKeyFile(path);
  t.deepEqual(Buffer.from(back), Buffer.from(key));
  await t.throwsAsync(writeWitnessKeyFile(path, generateWitnessKey()), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  t.is(await readFile(path, 'utf8'), text, 'the existing file is unchanged');
  const ca = join(dir, 'ca.key');
  await writeAuthorityFile(ca, generateAuthority());
  await t.throwsAsync(readWitnessKeyFile(ca), { code: 'SIPC_ERR_BAD_KEY' });
  if (posix) {
    await chmod(path, 0o640);
    await t.throwsAsync(readWitnessKeyFile(path), { code: 'SIPC_ERR_INSECURE_KEY_FILE' });
  }
});

test('witness state file: absent is none; saved and read back; a state that lies about its checkpoint is refused', async (t) => {
  const dir = await base(t);
  const path = join(dir, 'witness.json');
  t.is(await readAuditWitnessState(path), undefined);
  const log = await openAuditLog({ dir: join(dir, 'audit'), origin: ORIGIN });
  t.teardown(() => log.close());
  await log.append({ type: 'rpc.call', fields: { method: 'm', allowed: true } });
  await log.checkpoint();
  const witness = createAuditWitness({
    origin: ORIGIN,
    name: 'test.example/w',
    secretKey: generateWitnessKey(),
  });
  witness.update(log.witnessUpdate(witness.request()));
  await writeAuditWitnessState(path, witness.state!);
  if (posix) t.is((await stat(path)).mode & 0o777, 0o600);
  const back = await readAuditWitnessState(path);
  t.deepEqual(back, witness.state);
  // It goes on from the saved state: the next update is checked against it.
  const again = createAuditWitness({
    origin: ORIGIN,
    name: 'test.example/w',
    secretKey: generateWitnessKey(),
    state: back!,
  });
  t.false(again.update(log.witnessUpdate(again.request())).advanced);
  const json = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  t.deepEqual(Object.keys(json), ['v', 'origin', 'size', 'root', 'epoch', 'publicKey', 'checkpoint']);
  await writeFile(path, JSON.stringify({ ...json, size: 1 }), { mode: 0o600 });
  const lie = await t.throwsAsync(readAuditWitnessState(path));
  t.true(isSecureIpcError(lie, 'SIPC_ERR_INVALID_ARGUMENT'));
  t.is((lie as { details?: { reason?: string } }).details?.reason, 'witness-state');
  await writeFile(path, 'not json', { mode: 0o600 });
  await t.throwsAsync(readAuditWitnessState(path), { code: 'SIPC_ERR_INVALID_ARGUMENT' });
  if (posix) {
    await writeFile(path, JSON.stringify(json), { mode: 0o600 });
    await chmod(path, 0o622);
    await t.throwsAsync(readAuditWitnessState(path), { code: 'SIPC_ERR_INSECURE_FILE' });
  }
});

test('auditListener: a createServer + secureListen server records failed handshakes and listener updates', async (t) => {
  const dir = await base(t);
  const log = await openAuditLog({ dir: join(dir, 'audit'), origin: ORIGIN });
  const transport = memoryTransport();
  const serverKeys = generateKeyPair();
  const server = createServer({ audit: { log } });
  const secure = secureListen(await transport.listen('memory://witness-files'), {
    keyPair: serverKeys,
    trust: { keys: [] },
  });
  auditListener(server, secure);
  server.listen(secure);
  // Registered after auditListener's: once it fires, the record is handed to the log.
  const failed = once(secure, 'handshakeFailed');
  await t.throwsAsync(
    connect({
      transport,
      address: 'memory://witness-files',
      keyPair: generateKeyPair(),
      trust: { keys: [serverKeys.publicKey] },
    }),
  );
  await failed;
  secure.update({ trust: { keys: [] } });
  await server.close();
  await log.close();
  const types = (await readAuditLog(join(dir, 'audit'))).records.map((r) => r!.type);
  t.deepEqual(types, ['epoch', 'handshake.failed', 'listener.update']);
});
