/**
 * A server that audits (docs/audit.md, "What a server records"): channel opens and closes, every
 * call with its verdict and the keyed hash of its params, subscribe decisions, failed handshakes;
 * the log verifies and holds no byte of the params; `required` fails closed once an append fails,
 * and without it the records are dropped and counted while the server goes on.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import {
  auditMessageHash,
  connect,
  createPolicy,
  generateAuthority,
  generateKeyPair,
  isSecureIpcError,
  issueCertificate,
  keyFingerprint,
  openAuditLog,
  readAuditLog,
  type ServerAuditOptions,
  serve,
  verifyAuditLog,
} from '../src/index.js';
import { memoryTransport } from '../src/transport/index.js';

const SENTINEL = 'sentinel-aud1t-never-on-disk';

type Api = { 'echo.say'(p: { text: string; n: number }): string; 'admin.wipe'(): void };
type Events = { 'tick.now': { n: number } };

async function auditDir(t: ExecutionContext): Promise<string> {
  const base = await mkdtemp(join(tmpdir(), 'sipc-audit-server-'));
  t.teardown(() => rm(base, { recursive: true, force: true }));
  return join(base, 'audit');
}

async function world(t: ExecutionContext, address: string, audit: Omit<ServerAuditOptions, 'log'>) {
  const dir = await auditDir(t);
  const log = await openAuditLog({ dir, origin: 'test.example/audit' });
  const serverKeys = generateKeyPair(),
    clientKeys = generateKeyPair();
  const transport = memoryTransport();
  let ran = 0;
  const server = await serve<Api, Events>({
    transport,
    address,
    keyPair: serverKeys,
    trust: { keys: [clientKeys.publicKey] },
    policy: createPolicy({
      roles: { app: { call: ['echo.*'], subscribe: ['tick.*'] } },
      peers: [{ key: clientKeys.publicKey, roles: ['app'] }],
    }),
    audit: { log, ...audit },
  });
  server.handle('echo.say', ({ text }) => {
    ran++;
    return text;
  });
  const client = () =>
    connect<Api, Events>({
      transport,
      address,
      keyPair: clientKeys,
      trust: { keys: [serverKeys.publicKey] },
    });
  return { dir, log, server, client, clientKeys, serverKeys, transport, ran: () => ran };
}

test('records: channel open and close, calls with verdict and keyed hash, subscribe decisions; it verifies; no params on disk', async (t) => {
  const hashKey = randomBytes(32);
  const w = await world(t, 'memory://audit-records', { hashKey });
  const client = await w.client();
  await client.request('echo.say', { text: SENTINEL, n: 1 });
  await t.throwsAsync(client.request('admin.wipe'));
  await client.subscribe('tick.*', () => {});
  await client.close();
  // A stranger's handshake is refused: recorded with what the OS says.
  await t.throwsAsync(
    connect({
      transport: w.transport,
      address: 'memory://audit-records',
      keyPair: generateKeyPair(),
      trust: { keys: [w.serverKeys.publicKey] },
    }),
  );
  await w.server.close();
  await new Promise((r) => setTimeout(r, 20));
  await w.log.close();

  const state = await readAuditLog(w.dir);
  const records = state.records.map((r) => r!);
  t.deepEqual(
    records.map((r) => r.type),
    ['epoch', 'channel.open', 'rpc.call', 'rpc.call', 'policy.decision', 'channel.close', 'handshake.failed'],
  );
  const peer = keyFingerprint(w.clientKeys.publicKey);
  const [, open, allowed, denied, subscribed, closed, refused] = records;
  t.like(open!.fields, { peer, roles: ['app'], transport: 'memory' });
  t.is(typeof open!.fields.channel, 'number');
  t.like(allowed!.fields, { peer, method: 'echo.say', allowed: true, channel: open!.fields.channel });
  // Recomputed from the params with their keys in any order: the same hash.
  t.deepEqual(allowed!.fields.h, auditMessageHash(hashKey, 'echo.say', { n: 1, text: SENTINEL }));
  t.like(denied!.fields, { method: 'admin.wipe', allowed: false });
  t.false('h' in denied!.fields, 'a denied call is not hashed');
  t.like(subscribed!.fields, { action: 'subscribe', what: 'tick.*', allowed: true });
  t.like(closed!.fields, { peer, reason: 'clean' });
  t.like(refused!.fields, { kind: 'refused', code: 'SIPC_ERR_UNTRUSTED_PEER', transport: 'memory' });

  const report = await verifyAuditLog(w.dir, { anchorKey: w.log.anchorKey });
  t.true(report.ok, JSON.stringify(report.problems));
  for (const name of await readdir(w.dir)) {
    const bytes = await readFile(join(w.dir, name));
    t.false(bytes.includes(Buffer.from(SENTINEL)), `${name} holds no params`);
  }
});

test('required: once an append fails, requests are refused as not executed and new channels closed', async (t) => {
  const w = await world(t, 'memory://audit-required', { required: true });
  const errors: unknown[] = [];
  w.server.on('error', (e) => errors.push(e));
  const client = await w.client();
  t.is(await client.request('echo.say', { text: 'a', n: 1 }), 'a');
  await w.log.close(); // the log is gone: every append from now on fails
  // The request that meets the failure runs (its record is written without holding it); the
  // failure is known when its append settles.
  await client.request('echo.say', { text: 'b', n: 2 });
  while (w.server.audit?.failure === undefined) await new Promise((r) => setImmediate(r));
  const refused = await t.throwsAsync(client.request('echo.say', { text: 'c', n: 3 }));
  t.true(isSecureIpcError(refused, 'SIPC_ERR_UNAVAILABLE'), String(refused));
  t.is(w.ran(), 2, 'the refused request never ran');
  t.true(errors.length >= 1, 'the failure was reported on the server');
  // A new channel is closed at once: its first request fails.
  const late = await w.client();
  await t.throwsAsync(late.request('echo.say', { text: 'd', n: 4 }));
  t.is(w.ran(), 2);
  await client.close();
  await w.server.close();
});

test('not required: the server goes on when the log fails, counting the records it dropped', async (t) => {
  const w = await world(t, 'memory://audit-best-effort', {});
  w.server.on('error', () => {});
  const client = await w.client();
  await w.log.close();
  for (let n = 0; n < 5; n++) t.is(await client.request('echo.say', { text: `x${n}`, n }), `x${n}`);
  while (w.server.audit?.failure === undefined) await new Promise((r) => setImmediate(r));
  t.true(w.server.audit!.dropped >= 5, String(w.server.audit!.dropped));
  await client.close();
  await w.server.close();
});

test('key and certificate rotation (listener.update) is recorded: the fingerprints, what was replaced, the certificate, never a key', async (t) => {
  const w = await world(t, 'memory://audit-rotation', {});
  const next = generateKeyPair();
  const ca = generateAuthority();
  const cert = issueCertificate(ca, {
    subjectKey: next.publicKey,
    name: 'server-2',
    roles: ['service'],
    ttlMs: 3_600_000,
  });
  w.server.listener.update({ keyPair: next, payload: { cert: cert.bytes } });
  w.server.listener.update({ trust: { keys: [w.clientKeys.publicKey] } });
  await w.server.close();
  await w.log.close();
  const state = await readAuditLog(w.dir);
  const updates = state.records.filter((r) => r?.type === 'listener.update').map((r) => r!.fields);
  t.deepEqual(updates, [
    {
      key: keyFingerprint(next.publicKey),
      previousKey: keyFingerprint(w.serverKeys.publicKey),
      trust: false,
      payload: true,
      certSerial: cert.serial,
      certName: 'server-2',
      certRoles: ['service'],
      certNotAfter: cert.notAfter,
    },
    { trust: true, payload: false },
  ]);
  // No byte of either secret key is in the log.
  const files = await readdir(w.dir);
  for (const f of files.filter((n) => n.endsWith('.log'))) {
    const bytes = await readFile(join(w.dir, f));
    t.is(bytes.indexOf(Buffer.from(next.secretKey)), -1);
    t.is(bytes.indexOf(Buffer.from(w.serverKeys.secretKey)), -1);
  }
});

test('auditMessageHash: 32-byte keys only; the key, the method and the params each change it', (t) => {
  const key = randomBytes(32);
  const h = auditMessageHash(key, 'm', { a: 1, b: [1, 2] });
  t.is(h.byteLength, 32);
  t.deepEqual(auditMessageHash(key, 'm', { b: [1, 2], a: 1 }), h);
  t.notDeepEqual(auditMessageHash(randomBytes(32), 'm', { a: 1, b: [1, 2] }), h);
  t.notDeepEqual(auditMessageHash(key, 'n', { a: 1, b: [1, 2] }), h);
  t.notDeepEqual(auditMessageHash(key, 'm', { a: 2, b: [1, 2] }), h);
  t.throws(() => auditMessageHash(randomBytes(16), 'm', 1), { message: /32 bytes/ });
});
