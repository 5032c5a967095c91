/**
 * A soak client process (started with `fork`): runs its share of the clients, each a
 * `createReconnectingClient` with `waitForReady` calls and a retry policy, every request carrying
 * an idempotency key (so a request written and then lost with its channel may be sent again; the
 * server's idempotency cache runs it at most once per key). Each call settles within its
 * deadline or rejects with a typed error; a backstop past the deadline counts a call that did
 * neither as lost. Reports outcomes by code, RSS samples, every transition to ready and any
 * unhandled rejection or uncaught exception over the IPC channel.
 */
import { once } from 'node:events';
import {
  createReconnectingClient,
  decodeKey,
  isSecureIpcError,
  type KeyPair,
  readSecretKeyFile,
} from '@secure-ipc/core';
import { unixTransport } from '@secure-ipc/transport-unix';
import type { RssSample, SoakApi, SoakClientConfig, SoakClientReport, SoakProgress } from './protocol.js';

const faults: string[] = [];
for (const name of ['unhandledRejection', 'uncaughtException'] as const)
  process.on(name, (err: unknown) => faults.push(`${name}: ${(err as Error)?.message ?? String(err)}`));

/** Past a call's deadline, how long before it counts as lost. */
const BACKSTOP_GRACE_MS = 10_000;

type Outcome = { ok: true; key: string } | { ok: false; code: string } | { lost: true } | { wrong: true };

interface Tally {
  report: SoakClientReport;
  settled: number;
}

function tally(t: Tally, outcome: Outcome): void {
  t.settled++;
  if ('lost' in outcome) t.report.lost++;
  else if ('wrong' in outcome) t.report.wrong++;
  else if (outcome.ok) {
    t.report.ok++;
    t.report.okKeys.push(outcome.key);
  } else t.report.errors[outcome.code] = (t.report.errors[outcome.code] ?? 0) + 1;
  if (t.settled % 100 === 0) process.send?.({ type: 'progress', settled: t.settled } satisfies SoakProgress);
}

/** The code of a rejection: a SecureIpcError's code (and its cause's, if typed), else `untyped`. */
function codeOf(err: unknown): string {
  if (!(isSecureIpcError(err) && err.code.startsWith('SIPC_ERR_'))) return 'untyped';
  return isSecureIpcError(err.cause) ? `${err.code} (cause ${err.cause.code})` : err.code;
}

/** One call with the backstop: settles with its outcome, never hangs. */
function call(
  rc: ReturnType<typeof newClient>,
  config: SoakClientConfig,
  client: number,
  seq: number,
): Promise<Outcome> {
  const key = `${config.run}:${client}:${seq}`;
  return new Promise<Outcome>((resolve) => {
    const backstop = setTimeout(() => resolve({ lost: true }), config.callTimeoutMs + BACKSTOP_GRACE_MS);
    rc.request(
      'ledger.apply',
      { client, seq },
      { idempotencyKey: key, waitForReady: true, timeoutMs: config.callTimeoutMs },
    )
      .then(
        (v) => resolve(v === seq ? { ok: true, key } : { wrong: true }),
        (err: unknown) => resolve({ ok: false, code: codeOf(err) }),
      )
      .finally(() => clearTimeout(backstop));
  });
}

function newClient(config: SoakClientConfig, keyPair: KeyPair) {
  return createReconnectingClient<SoakApi>({
    transport: unixTransport(),
    address: config.address,
    keyPair,
    trust: { keys: [decodeKey(config.serverKey)] },
    backoff: { initialMs: 50, maxMs: 500, minConnectTimeoutMs: 5_000 },
    // Lost with a key (and a failed wait for a channel) are retried by this policy; the deadline
    // of the call bounds all attempts.
    retry: { policy: { maxAttempts: 5, initialBackoffMs: 20, maxBackoffMs: 500 } },
  });
}

/** Run one client: `requests` calls, `window` in flight. */
async function runClient(
  config: SoakClientConfig,
  keyPair: KeyPair,
  client: number,
  t: Tally,
): Promise<void> {
  const rc = newClient(config, keyPair);
  const ready: number[] = [];
  t.report.ready[client] = ready;
  let closing = false;
  rc.on('stateChange', (c) => {
    if (c.to === 'ready') ready.push(Date.now());
    if (c.to !== 'shutdown' || closing) return;
    const reason = isSecureIpcError(c.error)
      ? (c.error.details as { reason?: unknown } | undefined)?.reason
      : undefined;
    const code = isSecureIpcError(c.error)
      ? `${c.error.code}${typeof reason === 'string' ? ` (${reason})` : ''}`
      : 'untyped';
    t.report.shutdown[code] = (t.report.shutdown[code] ?? 0) + 1;
  });
  rc.on('error', (err: unknown) => faults.push(`client error event: ${(err as Error).message}`));
  let next = 0;
  const lane = async () => {
    while (next < config.requests) tally(t, await call(rc, config, client, next++));
  };
  await Promise.all(Array.from({ length: config.window }, lane));
  closing = true;
  await rc.close();
}

async function main(config: SoakClientConfig): Promise<void> {
  const keyPair = await readSecretKeyFile(config.keyFile);
  const report: SoakClientReport = {
    type: 'done',
    ok: 0,
    errors: {},
    wrong: 0,
    lost: 0,
    okKeys: [],
    ready: {},
    shutdown: {},
    faults,
    rss: [],
  };
  const t0 = Date.now();
  const rss: RssSample[] = report.rss;
  const sample = () => rss.push([Date.now() - t0, process.memoryUsage.rss()]);
  sample();
  const sampler = setInterval(sample, config.rssEveryMs);
  const t: Tally = { report, settled: 0 };
  await Promise.all(config.clients.map((c) => runClient(config, keyPair, c, t)));
  clearInterval(sampler);
  sample();
  process.send?.(report, () => process.disconnect());
}

const [config] = (await once(process, 'message')) as [SoakClientConfig];
main(config).catch((err: unknown) => {
  faults.push(`main: ${(err as Error).message}`);
  process.exitCode = 1;
  process.disconnect();
});
