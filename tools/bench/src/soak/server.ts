/**
 * The soak's server process: reads its config as one JSON line from stdin (paths only, no key
 * material), loads its static key and trust from files, removes the socket a SIGKILLed
 * predecessor left, serves `ledger.apply` over real Unix sockets and prints `ready <epoch ms>`.
 *
 * Exactly once across SIGKILLs (docs/resilience.md, "Exactly once"): `ledger.apply` appends one
 * ledger line (./ledger.ts) that is both its effect and its idempotency record, in one
 * `write` (synchronously: the line is in the kernel before the answer leaves, so a SIGKILL never
 * loses a recorded execution, and a line is there whole or not at all). The server's
 * `idempotency.store` reads those lines: a restarted server finds a key its predecessor ran and
 * replays the answer (`seq`) instead of running it again; within one lifetime the idempotency
 * cache in front of the store does the same. An unhandled rejection or uncaught exception is
 * printed as `fault <name>` (the supervisor counts it). Exits when stdin ends.
 */

import { once } from 'node:events';
import { appendFileSync, existsSync, readFileSync, rmSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  createPolicy,
  type IdempotencyRecord,
  type IdempotencyStore,
  readSecretKeyFile,
  requestFingerprint,
  serve,
} from '@secure-ipc/core';
import { unixTransport } from '@secure-ipc/transport-unix';
import { formatLedgerLine, type LedgerLine, readLedger } from './ledger.js';
import type { SoakApi, SoakServerConfig } from './protocol.js';

for (const name of ['unhandledRejection', 'uncaughtException'] as const)
  process.on(name, () => process.stdout.write(`fault ${name}\n`));

/** The idempotency window (longer than any soak run). */
const WINDOW_MS = 3_600_000;
const METHOD = 'ledger.apply';

/** The key of (peer, idempotency key) in the map of executions: \0 occurs in neither. */
const heldId = (peer: string, key: string): string => `${peer}\0${key}`;

/**
 * The store over the ledger: `held` is loaded from the file at start and grows with each line
 * the handler appends. `put` adds nothing: every outcome of `ledger.apply` was recorded by its
 * handler with the effect (the store keeps the first record, as the interface says).
 */
function ledgerStore(held: Map<string, LedgerLine>): IdempotencyStore {
  return {
    get(peer, key): IdempotencyRecord | undefined {
      const h = held.get(heldId(peer, key));
      if (h === undefined || h.expiresAt <= Date.now()) return undefined;
      const params = { client: h.client, seq: h.seq };
      return {
        peer,
        key,
        fingerprint: requestFingerprint(METHOD, params),
        outcome: { ok: true, value: h.seq },
        expiresAt: h.expiresAt,
      };
    },
    put() {},
  };
}

/** The executions the ledger file holds (none if it does not exist yet). */
function loadLedger(file: string): Map<string, LedgerLine> {
  const held = new Map<string, LedgerLine>();
  if (!existsSync(file)) return held;
  for (const line of readLedger(file)) if (line !== undefined) held.set(heldId(line.peer, line.key), line);
  return held;
}

async function main(config: SoakServerConfig, ended: Promise<unknown>): Promise<void> {
  rmSync(new URL(config.address).pathname, { force: true });
  const keys = readFileSync(config.trustFile, 'utf8')
    .split('\n')
    .filter((l) => l !== '');
  const held = loadLedger(config.ledgerFile);
  const server = await serve<SoakApi>({
    transport: unixTransport(),
    address: config.address,
    keyPair: await readSecretKeyFile(config.keyFile),
    trust: { keys },
    policy: createPolicy({ roles: { app: { call: ['ledger.apply'] } }, defaultRoles: ['app'] }),
    // Room for every key of a client process within one lifetime (the default is 1,000 per key).
    idempotency: {
      maxEntriesPerPeer: 200_000,
      maxEntries: 2_000_000,
      windowMs: WINDOW_MS,
      store: ledgerStore(held),
    },
  });
  server.handle(METHOD, async (p, ctx) => {
    const key = ctx.headers.idempotencyKey ?? '-';
    const line: LedgerLine = {
      life: config.life,
      key,
      client: p.client,
      seq: p.seq,
      peer: ctx.peerId,
      expiresAt: Date.now() + WINDOW_MS,
    };
    // The effect and the record: one line, one write.
    appendFileSync(config.ledgerFile, formatLedgerLine(line));
    held.set(heldId(line.peer, key), line);
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
