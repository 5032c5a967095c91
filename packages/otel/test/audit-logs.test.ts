/**
 * Central collection through OpenTelemetry logs (docs/audit.md, "Forwarding"): every record a
 * server's audit log writes reaches a real sdk-logs LoggerProvider as a log record with the log's
 * origin, the record's index and leaf hash (an inclusion proof from the local log verifies it
 * against a signed checkpoint), and its fields; denials as WARN; no params.
 */
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { InMemoryLogRecordExporter, LoggerProvider, SimpleLogRecordProcessor } from '@opentelemetry/sdk-logs';
import {
  connect,
  createPolicy,
  generateKeyPair,
  openAuditLog,
  serve,
  verifyCheckpoint,
  verifyInclusion,
} from '@secure-ipc/core';
import { memoryTransport } from '@secure-ipc/core/transport';
import test from 'ava';
import { instrumentSecureIpc } from '../src/index.js';

const SENTINEL = 'sentinel-f0rwarded-never';

test.serial(
  'audit records become OpenTelemetry log records whose leaf hashes the local log proves',
  async (t) => {
    const base = await mkdtemp(join(tmpdir(), 'sipc-otel-audit-'));
    t.teardown(() => rm(base, { recursive: true, force: true }));
    const exporter = new InMemoryLogRecordExporter();
    const loggerProvider = new LoggerProvider({ processors: [new SimpleLogRecordProcessor({ exporter })] });
    const instrumentation = instrumentSecureIpc({ loggerProvider });
    const log = await openAuditLog({ dir: join(base, 'audit'), origin: 'test.example/otel-audit' });
    const serverKeys = generateKeyPair(),
      clientKeys = generateKeyPair();
    const transport = memoryTransport();
    try {
      const server = await serve<{ 'files.read'(p: { path: string }): string; 'admin.wipe'(): void }>({
        transport,
        address: 'memory://otel-audit',
        keyPair: serverKeys,
        trust: { keys: [clientKeys.publicKey] },
        policy: createPolicy({
          roles: { app: { call: ['files.*'] } },
          peers: [{ key: clientKeys.publicKey, roles: ['app'] }],
        }),
        audit: { log, hashKey: randomBytes(32) },
      });
      server.handle('files.read', ({ path }) => path);
      const client = await connect<{ 'files.read'(p: { path: string }): string; 'admin.wipe'(): void }>({
        transport,
        address: 'memory://otel-audit',
        keyPair: clientKeys,
        trust: { keys: [serverKeys.publicKey] },
      });
      await client.request('files.read', { path: SENTINEL });
      await t.throwsAsync(client.request('admin.wipe'));
      await client.close();
      await server.close();
      await new Promise((r) => setTimeout(r, 20));
      const note = await log.checkpoint();

      const records = exporter.getFinishedLogRecords();
      const types = records.map((r) => r.attributes['secure_ipc.audit.type']);
      t.deepEqual(types, ['epoch', 'channel.open', 'rpc.call', 'rpc.call', 'channel.close']);
      const allowed = records[2]!;
      const denied = records[3]!;
      t.is(allowed.severityText, 'INFO');
      t.is(denied.severityText, 'WARN');
      t.like(allowed.attributes, {
        'secure_ipc.audit.origin': 'test.example/otel-audit',
        'secure_ipc.audit.f.method': 'files.read',
        'secure_ipc.audit.f.allowed': true,
      });
      // The forwarded leaf hash is the local log's: its inclusion proof verifies against the checkpoint.
      const index = allowed.attributes['secure_ipc.audit.index'] as number;
      const leaf = Buffer.from(allowed.attributes['secure_ipc.audit.leaf_hash'] as string, 'base64');
      const head = verifyCheckpoint(note, log.publicKey, log.origin)!;
      t.truthy(head);
      t.true(
        verifyInclusion(
          new Uint8Array(leaf),
          index,
          head.size,
          log.inclusionProof(index, head.size),
          head.root,
        ),
      );
      t.false(
        JSON.stringify(records.map((r) => [r.body, r.attributes])).includes(SENTINEL),
        'no params forwarded',
      );
    } finally {
      instrumentation.stop();
      await log.close();
      await loggerProvider.shutdown();
    }
  },
);
