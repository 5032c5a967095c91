/**
 * The outbox crash matrix (issue 17 item 5; docs/outbox.md, "Guarantees"): a real client process
 * (fixtures/outbox-crash-child.ts) SIGKILLs itself at six points — during an append, after an
 * append before its fdatasync, during a send (the server has the request), after the answer
 * before the DONE record, during a compaction (before its rename), after a DONE before the
 * anchor's rename — then a new process opens the same outbox and delivers the rest. The server
 * (this process, real Unix socket, its default idempotency window) keeps a ledger of executions:
 * every entry whose enqueue resolved is executed exactly once; one whose enqueue had not resolved
 * at most once. How many entries were sent again after the restart is logged (measured, not asserted).
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process';
import { join } from 'node:path';
import type { Readable, Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext } from 'ava';
import { generateKeyPair } from '../src/keys/key-pair.js';
import { encodeKey } from '../src/keys/key-text.js';
import { createPolicy } from '../src/rpc/policy.js';
import { serve } from '../src/rpc/serve.js';
import type { CrashChildConfig, CrashPoint } from './fixtures/outbox-crash-child.js';
import { outboxPlace, PASSPHRASE } from './fixtures/outbox-world.js';
import { unixTestTransport } from './fixtures/rpc-net.js';

const entry = fileURLToPath(new URL('./fixtures/outbox-crash-child.js', import.meta.url));
type Child = ChildProcessByStdio<Writable, Readable, null>;

interface Run {
  child: Child;
  enqueued: Set<string>;
  delivered: string[];
  empty: Promise<void>;
  exited: Promise<NodeJS.Signals | number | null>;
}

function run(config: CrashChildConfig): Run {
  const child = spawn(process.execPath, [entry], { stdio: ['pipe', 'pipe', 'inherit'] });
  const enqueued = new Set<string>();
  const delivered: string[] = [];
  let onEmpty: () => void = () => {};
  const empty = new Promise<void>((resolve) => {
    onEmpty = resolve;
  });
  const exited = new Promise<NodeJS.Signals | number | null>((resolve) =>
    child.once('exit', (code, signal) => resolve(signal ?? code)),
  );
  let buffer = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (s: string) => {
    buffer += s;
    for (let i = buffer.indexOf('\n'); i >= 0; i = buffer.indexOf('\n')) {
      const line = JSON.parse(buffer.slice(0, i)) as { enqueued?: string; delivered?: string; empty?: true };
      buffer = buffer.slice(i + 1);
      if (line.enqueued !== undefined) enqueued.add(line.enqueued);
      if (line.delivered !== undefined) delivered.push(line.delivered);
      if (line.empty === true) onEmpty();
    }
  });
  child.stdin.write(`${JSON.stringify(config)}\n`);
  return { child, enqueued, delivered, empty, exited };
}

/** One row of the matrix: crash at `crash` (occurrence `at`), restart, deliver, check the ledger. */
async function crashCase(
  t: ExecutionContext,
  crash: CrashPoint | 'during-send',
  at: number,
  count = 8,
): Promise<void> {
  const place = outboxPlace(t);
  const serverKeys = generateKeyPair();
  const clientKeys = generateKeyPair();
  const path = join(place.root, 's.sock');
  const executions = new Map<string, number>();
  let onSend: (() => Promise<void>) | undefined;
  const server = await serve<{ record(p: { n: number }): string }>({
    transport: unixTestTransport(),
    address: `test-unix://${path}`,
    keyPair: serverKeys,
    trust: { keys: [clientKeys.publicKey] },
    policy: createPolicy({ roles: { app: { call: ['record'] } }, defaultRoles: ['app'] }),
  });
  t.teardown(() => server.close());
  server.handle('record', async (p, ctx) => {
    const key = ctx.headers.idempotencyKey ?? '(none)';
    executions.set(key, (executions.get(key) ?? 0) + 1);
    if (p.n === at && onSend !== undefined) {
      const hook = onSend;
      onSend = undefined;
      await hook(); // the client is killed while its request is here; then the answer goes nowhere
    }
    return `ok ${p.n}`;
  });
  const base = {
    dir: place.dir,
    keyFile: place.keyFile,
    passphrase: PASSPHRASE,
    address: `test-unix://${path}`,
    clientSecretKey: encodeKey(clientKeys.secretKey),
    serverPublicKey: encodeKey(serverKeys.publicKey),
  };
  const first = run({ ...base, count, crash: crash === 'during-send' ? 'none' : crash, at });
  t.teardown(() => first.child.kill('SIGKILL'));
  if (crash === 'during-send')
    onSend = async () => {
      first.child.kill('SIGKILL');
      await first.exited;
    };
  const how = await first.exited;
  t.is(how, 'SIGKILL', 'the first client died by SIGKILL');
  const acknowledged = new Set(first.enqueued);
  const deliveredBefore = first.delivered.length;
  t.true(acknowledged.size > 0, 'the crash came after the first entry was durable');
  if (crash === 'compact-rename' || crash === 'anchor-rename' || crash === 'before-done')
    t.true(deliveredBefore > 0 || executions.size > 0, 'the crash came after a delivery');

  const second = run({ ...base, count: 0, crash: 'none', at: 0 });
  t.teardown(() => second.child.kill('SIGKILL'));
  await second.empty;
  second.child.stdin.end();
  t.is(await second.exited, 0);

  const keyOf = (id: string) => [...executions.keys()].find((k) => k.endsWith(`-${id}`));
  for (const id of acknowledged) {
    const key = keyOf(id);
    t.truthy(key, `acknowledged entry ${id} was never executed`);
    t.is(executions.get(key!), 1, `entry ${id} executed ${executions.get(key!)} times`);
  }
  for (const [key, n] of executions) t.is(n, 1, `${key} executed ${n} times`);
  t.log(
    `${crash}@${at}: ${acknowledged.size} acknowledged, ${deliveredBefore} delivered before the kill, ` +
      `${second.delivered.length} delivered after the restart, ${executions.size} executed`,
  );
}

test('SIGKILL during an append (half an ENQUEUE on disk): the torn record is dropped; every acknowledged entry runs once', (t) =>
  crashCase(t, 'append-half', 4));

test('SIGKILL after an append, before its fdatasync: every acknowledged entry runs once, the unacknowledged at most once', (t) =>
  crashCase(t, 'before-datasync', 4));

test('SIGKILL during a send (the server has the request): sent again after the restart, answered from the idempotency window, run once', (t) =>
  crashCase(t, 'during-send', 3));

test('SIGKILL after the answer, before the DONE record: sent again, run once', (t) =>
  crashCase(t, 'before-done', 2));

test('SIGKILL during a compaction (temporary file written, not renamed): the old journal holds; run once', (t) =>
  crashCase(t, 'compact-rename', 2, 12)); // the first such rename creates the journal

test('SIGKILL after a DONE, before the anchor moved: the open succeeds (journal ahead of the anchor); run once', (t) =>
  crashCase(t, 'anchor-rename', 3));
