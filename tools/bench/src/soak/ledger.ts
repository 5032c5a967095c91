/**
 * The soak's ledger: the server appends one line per execution of `ledger.apply`,
 * `life key client seq peer expiresAt` (server lifetime, idempotency key, the params, the
 * caller's peer id, the end of the idempotency window in wall-clock ms). The line is the effect
 * and the idempotency record at once (the exactly-once recipe of docs/resilience.md: effect and
 * record committed in one write), so a restarted server replays a key the ledger holds instead
 * of running it again. After the run, `checkLedger` counts per key how often and in which server
 * lifetimes it ran, and checks every call a client saw succeed left its effect.
 */
import { readFileSync } from 'node:fs';

/** One execution, as a ledger line. */
export interface LedgerLine {
  /** The server lifetime (0, 1, ...: one per restart). */
  readonly life: number;
  /** The idempotency key. */
  readonly key: string;
  /** The params: which client, which of its calls. */
  readonly client: number;
  readonly seq: number;
  /** The caller's peer id (`HandlerContext.peerId`). */
  readonly peer: string;
  /** The end of the idempotency window, wall-clock ms since the epoch. */
  readonly expiresAt: number;
}

/** The line (with its newline) for `l`. Keys and peer ids hold no space or newline. */
export function formatLedgerLine(l: LedgerLine): string {
  return `${l.life} ${l.key} ${l.client} ${l.seq} ${l.peer} ${l.expiresAt}\n`;
}

const UINT = /^\d+$/;

/** The execution a line records, or undefined for a line that does not parse. */
export function parseLedgerLine(line: string): LedgerLine | undefined {
  const fields = line.split(' ');
  if (fields.length !== 6) return undefined;
  const [life, key, client, seq, peer, expiresAt] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (![life, client, seq, expiresAt].every((f) => UINT.test(f)) || key === '' || peer === '')
    return undefined;
  return {
    life: Number(life),
    key,
    client: Number(client),
    seq: Number(seq),
    peer,
    expiresAt: Number(expiresAt),
  };
}

/** Every line of the ledger file ('' for none), parsed; undefined for one that does not parse. */
export function readLedger(file: string): (LedgerLine | undefined)[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((line) => line !== '')
    .map(parseLedgerLine);
}

/** What the ledger says. */
export interface LedgerCheck {
  /** Lines (executions). */
  executions: number;
  /** Distinct keys executed. */
  keys: number;
  /** Keys executed more than once within one server lifetime (the idempotency cache's guarantee: must be 0). */
  duplicatesWithinLifetime: number;
  /** Keys executed in two or more lifetimes (the ledger is the durable store: must be 0). */
  duplicatesAcrossRestarts: number;
  /** Calls that succeeded at a client without a ledger line (must be 0). */
  okWithoutEffect: number;
  /** Lines that do not parse (must be 0: appends are whole lines). */
  malformed: number;
}

/** Check the ledger file against the keys the clients saw succeed. */
export function checkLedger(file: string, okKeys: Iterable<string>): LedgerCheck {
  const lives = new Map<string, number[]>();
  let executions = 0;
  let malformed = 0;
  for (const line of readLedger(file)) {
    if (line === undefined) {
      malformed++;
      continue;
    }
    executions++;
    const list = lives.get(line.key);
    if (list === undefined) lives.set(line.key, [line.life]);
    else list.push(line.life);
  }
  let duplicatesWithinLifetime = 0;
  let duplicatesAcrossRestarts = 0;
  for (const list of lives.values()) {
    if (list.length < 2) continue;
    const distinct = new Set(list).size;
    if (distinct < list.length) duplicatesWithinLifetime++;
    if (distinct > 1) duplicatesAcrossRestarts++;
  }
  let okWithoutEffect = 0;
  for (const key of okKeys) if (!lives.has(key)) okWithoutEffect++;
  return {
    executions,
    keys: lives.size,
    duplicatesWithinLifetime,
    duplicatesAcrossRestarts,
    okWithoutEffect,
    malformed,
  };
}

/** Least-squares slope of y over x (0 with fewer than two points). */
export function slope(points: readonly (readonly [number, number])[]): number {
  const n = points.length;
  if (n < 2) return 0;
  let sx = 0;
  let sy = 0;
  for (const [x, y] of points) {
    sx += x;
    sy += y;
  }
  const mx = sx / n;
  const my = sy / n;
  let num = 0;
  let den = 0;
  for (const [x, y] of points) {
    num += (x - mx) * (y - my);
    den += (x - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}
