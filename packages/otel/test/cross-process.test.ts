/**
 * One trace across two processes: a client process with its own OpenTelemetry SDK makes a call
 * inside an application span over a real Unix socket; this process serves it with its own SDK.
 * The SERVER span here is the child of the CLIENT span there (the traceparent crossed in `h.trace`),
 * and the handler's own span is the SERVER span's child.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { SpanKind, trace } from '@opentelemetry/api';
import { createPolicy, generateKeyPair, serve } from '@secure-ipc/core';
import { unixTransport } from '@secure-ipc/transport-unix';
import test from 'ava';
import { otelWorld } from './fixtures/world.js';

const run = promisify(execFile);
const clientEntry = fileURLToPath(new URL('./fixtures/otel-client.js', import.meta.url));

// The client process reaches the server over transport-unix; Windows has no Unix socket
// transport here, and no named-pipe variant of this test exists yet.
const unixOnly = process.platform === 'win32' ? test.skip : test;
const notHere =
  process.platform === 'win32'
    ? ' (skipped on Windows: the test uses a Unix socket; no pipe variant yet)'
    : '';

unixOnly(
  `one trace id across a client process and a server process; parents follow the call${notHere}`,
  async (t) => {
    const dir = mkdtempSync(join(tmpdir(), 'sipc-otel-'));
    t.teardown(() => rmSync(dir, { recursive: true, force: true }));
    const world = otelWorld();
    const serverKeys = generateKeyPair(),
      clientKeys = generateKeyPair();
    const address = `unix://${join(dir, 's.sock')}`;
    const server = await serve<{ 'echo.say'(p: { text: string }): string }>({
      transport: unixTransport(),
      address,
      keyPair: serverKeys,
      trust: { keys: [clientKeys.publicKey] },
      policy: createPolicy({
        roles: { app: { call: ['echo.*'] } },
        peers: [{ key: clientKeys.publicKey, roles: ['app'] }],
      }),
    });
    server.handle('echo.say', ({ text }) =>
      world.tracer.startActiveSpan('handler.work', (span) => {
        span.end();
        return text;
      }),
    );
    try {
      const { stdout } = await run(
        process.execPath,
        [clientEntry, address, Buffer.from(serverKeys.publicKey).toString('hex')],
        { env: { ...process.env, SIPC_TEST_CLIENT_KEY: Buffer.from(clientKeys.secretKey).toString('hex') } },
      );
      const remote = stdout
        .trim()
        .split('\n')
        .map(
          (line) =>
            JSON.parse(line) as {
              name: string;
              kind: number;
              traceId: string;
              spanId: string;
              parentSpanId?: string;
            },
        );
      const app = remote.find((s) => s.name === 'app.operation')!;
      const call = remote.find((s) => s.kind === SpanKind.CLIENT)!;
      t.truthy(app, 'the client process reported its application span');
      t.is(call.name, 'echo.say');
      t.is(call.parentSpanId, app.spanId);
      await server.close();
      const local = world.spans();
      const served = local.find((s) => s.kind === SpanKind.SERVER)!;
      const work = local.find((s) => s.name === 'handler.work')!;
      t.is(served.spanContext().traceId, app.traceId, 'one trace id in both processes');
      t.is(
        served.parentSpanContext?.spanId,
        call.spanId,
        'the SERVER span is the child of the remote CLIENT span',
      );
      t.true(served.parentSpanContext?.isRemote === true);
      t.is(
        work.parentSpanContext?.spanId,
        served.spanContext().spanId,
        "the handler's span is the SERVER span's child",
      );
      t.is(trace.getActiveSpan(), undefined);
    } finally {
      await server.close();
      await world.stop();
    }
  },
);
