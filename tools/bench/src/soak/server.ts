/**
 * The soak's server process: reads its config as one JSON line from stdin (paths only, no key
 * material), loads its static key and trust from files, removes the socket a SIGKILLed
 * predecessor left, serves `ledger.apply` over real Unix sockets and prints `ready <epoch ms>`.
 * `ledger.apply` appends `life key client seq` to the ledger file (synchronously: the line is in
 * the kernel before the answer leaves, so a SIGKILL never loses a recorded execution) and goes
 * through the server's idempotency cache (every soak request carries a key), so within one
 * server lifetime a key runs at most once. An unhandled rejection or uncaught exception is printed
 * as `fault <name>` (the supervisor counts it). Exits when stdin ends.
 */

import { once } from 'node:events';
import { appendFileSync, readFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPolicy, readSecretKeyFile, serve } from '@secure-ipc/core';
import { unixTransport } from '@secure-ipc/transport-unix';
import type { SoakApi, SoakServerConfig } from './protocol.js';

for (const name of ['unhandledRejection', 'uncaughtException'] as const)
  process.on(name, () => process.stdout.write(`fault ${name}\n`));

async function main(config: SoakServerConfig, ended: Promise<unknown>): Promise<void> {
  rmSync(new URL(config.address).pathname, { force: true });
  const keys = readFileSync(config.trustFile, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
  const server = await serve<SoakApi>({
    transport: unixTransport(),
    address: config.address,
    keyPair: await readSecretKeyFile(config.keyFile),
    trust: { keys },
    policy: createPolicy({ roles: { app: { call: ['ledger.apply'] } }, defaultRoles: ['app'] }),
    // Room for every key of a client process within one lifetime (the default is 1,000 per key).
    idempotency: { maxEntriesPerPeer: 200_000, maxEntries: 2_000_000 },
  });
  server.handle('ledger.apply', async (p, ctx) => {
    const key = ctx.headers.idempotencyKey ?? '-';
    appendFileSync(config.ledgerFile, `${config.life} ${key} ${p.client} ${p.seq}\n`);
    // A short wait after the effect: a SIGKILL or a reset often falls between effect and answer.
    if (p.seq % 4 === 0) await sleep(1);
    return p.seq;
  });
  process.stdout.write(`ready ${Date.now()}\n`);
  await ended;
  await server.close();
  process.exit(0);
}

const lines = createInterface({ input: process.stdin });
const closed = once(lines, 'close');
const [line] = (await once(lines, 'line')) as [string];
main(JSON.parse(line) as SoakServerConfig, closed).catch((err: unknown) => {
  process.stderr.write(`soak server failed to start: ${(err as Error).message}\n`);
  process.exit(1);
});
