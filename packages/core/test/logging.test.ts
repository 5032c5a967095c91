/**
 * Structured diagnostics (docs/observability.md, "Logging"): the `logger` option with a real pino
 * logger (every line with channel id, peer fingerprint and method; no payload; per-request lines
 * only when debug is on), the rate limit, a logger that throws, and NODE_DEBUG=secure-ipc in a
 * separate process (lines through util.debuglog, a forged method name quoted, nothing without it).
 */
import { execFile } from 'node:child_process';
import { hasSubscribers } from 'node:diagnostics_channel';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { pino } from 'pino';
import { nodeDebugNames, RateLimitedLog } from '../src/diagnostics/log.js';
import {
  connect,
  createPolicy,
  generateKeyPair,
  keyFingerprint,
  LOG_RATE_LIMIT,
  type LogFields,
  type Logger,
  serve,
} from '../src/index.js';
import { memoryTransport } from '../src/transport/index.js';

const run = promisify(execFile);
const child = fileURLToPath(new URL('./fixtures/debug-log-child.js', import.meta.url));
const SENTINEL = 'sentinel-10g-never-written';

/** A pino logger writing JSON lines into an array. */
function pinoLines(level: string) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const line of String(chunk).split('\n')) if (line) lines.push(JSON.parse(line));
      done();
    },
  });
  return { logger: pino({ level }, sink), lines };
}

type Api = { 'echo.say'(p: { text: string }): string; 'echo.fail'(): string; 'admin.wipe'(): void };

async function pair(address: string, serverLogger: Logger, clientLogger?: Logger) {
  const serverKeys = generateKeyPair(),
    clientKeys = generateKeyPair();
  const transport = memoryTransport();
  const server = await serve<Api>({
    transport,
    address,
    keyPair: serverKeys,
    trust: { keys: [clientKeys.publicKey] },
    policy: createPolicy({
      roles: { app: { call: ['echo.*'] } },
      peers: [{ key: clientKeys.publicKey, roles: ['app'] }],
    }),
    logger: serverLogger,
  });
  server
    .handle('echo.say', ({ text }) => text)
    .handle('echo.fail', () => {
      throw new Error(`internal ${SENTINEL}`);
    });
  const client = await connect<Api>({
    transport,
    address,
    keyPair: clientKeys,
    trust: { keys: [serverKeys.publicKey] },
    ...(clientLogger === undefined ? {} : { logger: clientLogger }),
  });
  return { server, client, serverKeys, clientKeys };
}

test.serial(
  'logger (pino, debug): lifecycle, requests, denials and handler failures, each with channel, peer and method',
  async (t) => {
    const s = pinoLines('debug');
    const c = pinoLines('debug');
    const p = await pair('memory://log-debug', s.logger, c.logger);
    await p.client.request('echo.say', { text: SENTINEL });
    const failed = await t.throwsAsync(p.client.request('echo.fail'));
    await t.throwsAsync(p.client.request('admin.wipe'));
    await p.client.close();
    await p.server.close();
    await new Promise((r) => setImmediate(r));
    const events = (lines: Record<string, unknown>[]) => lines.map((l) => l.event);
    t.deepEqual(events(s.lines), [
      'channel.open',
      'policy.allowed',
      'request.served',
      'policy.allowed',
      'handler.failed',
      'request.served',
      'policy.denied',
      'channel.close',
    ]);
    t.deepEqual(events(c.lines), [
      'channel.open',
      'request.made',
      'request.made',
      'request.made',
      'channel.close',
    ]);
    const clientFp = keyFingerprint(p.clientKeys.publicKey);
    const serverFp = keyFingerprint(p.serverKeys.publicKey);
    for (const line of s.lines) {
      t.is(typeof line.channelId, 'number', `${line.event} has the channel id`);
      t.is(line.peer, clientFp, `${line.event} has the peer`);
    }
    for (const line of c.lines) t.is(line.peer, serverFp);
    const denied = s.lines.find((l) => l.event === 'policy.denied')!;
    t.like(denied, { level: 40, method: 'admin.wipe', action: 'call' });
    const handler = s.lines.find((l) => l.event === 'handler.failed')!;
    t.like(handler, { level: 50, method: 'echo.fail', error: 'Error' });
    t.is(handler.correlationId, (failed as { details?: { correlationId?: string } }).details?.correlationId);
    t.like(s.lines.find((l) => l.event === 'request.served')!, { method: 'echo.say', code: 'OK', level: 20 });
    t.like(s.lines.at(-1)!, { event: 'channel.close', reason: 'clean' });
    t.false(JSON.stringify([...s.lines, ...c.lines]).includes(SENTINEL), 'no payload, no error text');
  },
);

test.serial(
  'logger (pino, info): no debug line is built, per-request channels stay unsubscribed',
  async (t) => {
    const s = pinoLines('info');
    const p = await pair('memory://log-info', s.logger);
    t.false(hasSubscribers('tracing:secure-ipc:rpc.server.request:start'), 'no per-request subscription');
    await p.client.request('echo.say', { text: 'x' });
    await t.throwsAsync(p.client.request('admin.wipe'));
    await p.client.close();
    await p.server.close();
    t.deepEqual(
      s.lines.map((l) => [l.event, l.level]),
      [['policy.denied', 40]],
    );
  },
);

test('the rate limit: a burst per kind of line per window, then one line with the count left out', (t) => {
  let now = 0;
  const written: [string, LogFields][] = [];
  const logger: Logger = {
    error: (f, m) => written.push([m, f]),
    warn: (f, m) => written.push([m, f]),
    info: (f, m) => written.push([m, f]),
    debug: (f, m) => written.push([m, f]),
  };
  const log = new RateLimitedLog(logger, () => now);
  for (let i = 0; i < 25; i++)
    log.write(['warn', { event: 'policy.denied', method: 'x' }, 'denied by policy']);
  log.write(['warn', { event: 'policy.denied', method: 'y' }, 'denied by policy']); // another kind
  t.is(written.length, LOG_RATE_LIMIT.burst + 1);
  now += LOG_RATE_LIMIT.windowMs;
  log.write(['warn', { event: 'policy.denied', method: 'x' }, 'denied by policy']);
  t.is(written.at(-1)![1].suppressed, 25 - LOG_RATE_LIMIT.burst);
  // Kinds are bounded: thousands of peer-chosen names never grow the table past maxKinds.
  for (let i = 0; i < 5000; i++)
    log.write(['warn', { event: 'policy.denied', method: `m${i}` }, 'denied by policy']);
  t.is(written.length, LOG_RATE_LIMIT.burst + 2 + 5000);
  // A logger that throws loses its line; the caller goes on.
  const throwing = new RateLimitedLog({
    ...logger,
    warn: () => {
      throw new Error('disk full');
    },
  });
  t.notThrows(() => throwing.write(['warn', { event: 'policy.denied' }, 'denied by policy']));
});

test('NODE_DEBUG=secure-ipc: lines through util.debuglog with channel, peer and method; a forged name is quoted; none without it', async (t) => {
  const env = { ...process.env, NODE_DEBUG: 'secure-ipc' };
  const { stderr } = await run(process.execPath, [child, SENTINEL], { env });
  const lines = stderr.split('\n').filter((l) => l.length > 0);
  t.true(lines.length >= 8, stderr);
  for (const line of lines) t.regex(line, /^SECURE-IPC \d+: /, 'every line comes from debuglog');
  t.true(lines.some((l) => l.includes('channel open') && /channelId=\d+/.test(l) && /peer=BLAKE2b:/.test(l)));
  t.true(
    lines.some((l) => l.includes('request served') && l.includes('method=echo.say') && l.includes('code=OK')),
  );
  t.true(lines.some((l) => l.includes('denied by policy') && l.includes('method=admin.wipe')));
  t.false(
    lines.some((l) => l.startsWith('SECURE-IPC 1: forged')),
    'a newline in a method name cannot forge a line',
  );
  t.true(lines.some((l) => l.includes('method="echo.say\\nSECURE-IPC 1: forged line"')));
  t.false(stderr.includes(SENTINEL));
  const quiet = await run(process.execPath, [child, SENTINEL], { env: { ...process.env, NODE_DEBUG: '' } });
  t.is(quiet.stderr, '');
});

test('NODE_DEBUG is read as Node reads it: a list, any case, a * suffix', (t) => {
  for (const yes of ['secure-ipc', 'net,secure-ipc', 'NET SECURE-IPC', 'secure-*', '*', 'tls, secure-ipc '])
    t.true(nodeDebugNames(yes, 'secure-ipc'), yes);
  for (const no of [undefined, '', 'net', 'secure', 'secure-ipc2', 'xsecure-ipc'])
    t.false(nodeDebugNames(no, 'secure-ipc'), String(no));
});
