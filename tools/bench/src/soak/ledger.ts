/**
 * The ledger check: the server appends `life key client seq` per execution of `ledger.apply`;
 * after the run this counts, per idempotency key, how often and in which server lifetimes it
 * ran, and checks every call a client saw succeed left its effect.
 */
import { readFileSync } from 'node:fs';

/** What the ledger says. */
export interface LedgerCheck {
  /** Lines (executions). */
  executions: number;
  /** Distinct keys executed. */
  keys: number;
  /** Keys executed more than once within one server lifetime (the idempotency cache's guarantee: must be 0). */
  duplicatesWithinLifetime: number;
  /** Keys executed in two or more lifetimes (a SIGKILL between effect and answer, then a retry). */
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
  for (const line of readFileSync(file, 'utf8').split('\n')) {
    if (line === '') continue;
    const [life, key, ...rest] = line.split(' ');
    if (key === undefined || rest.length !== 2 || !/^\d+$/.test(life ?? '')) {
      malformed++;
      continue;
    }
    executions++;
    const list = lives.get(key);
    if (list === undefined) lives.set(key, [Number(life)]);
    else list.push(Number(life));
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
