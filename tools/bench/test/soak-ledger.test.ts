/** The soak's ledger check and RSS slope on hand-written ledgers: what each count means. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { checkLedger, formatLedgerLine, parseLedgerLine, slope } from '../src/soak/ledger.js';

function ledger(t: { teardown(f: () => void): void }, text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipc-soak-ledger-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'ledger.txt');
  fs.writeFileSync(file, text);
  return file;
}

test('a key twice in one lifetime, a key in two lifetimes, a success without effect, a torn line', (t) => {
  const file = ledger(
    t,
    '0 a 1 1 P 9\n0 b 1 2 P 9\n0 b 1 2 P 9\n0 c 1 3 P 9\n1 c 1 3 P 9\n1 d 1 4 P 9\n1 broken\n',
  );
  t.deepEqual(checkLedger(file, ['a', 'b', 'c', 'e']), {
    executions: 6,
    keys: 4,
    duplicatesWithinLifetime: 1,
    duplicatesAcrossRestarts: 1,
    okWithoutEffect: 1,
    malformed: 1,
  });
});

test('a clean ledger counts nothing', (t) => {
  const file = ledger(t, '0 a 1 1 P 9\n1 b 1 2 P 9\n2 c 2 1 P 9\n');
  const r = checkLedger(file, ['a', 'b', 'c']);
  t.is(r.duplicatesWithinLifetime + r.duplicatesAcrossRestarts + r.okWithoutEffect + r.malformed, 0);
  t.is(r.executions, 3);
});

test('a ledger line (effect and idempotency record) round-trips; other lines do not parse', (t) => {
  const line = {
    life: 3,
    key: 'run:7:42',
    client: 7,
    seq: 42,
    peer: 'Zm9vYmFy',
    expiresAt: 1_780_000_000_000,
  };
  const text = formatLedgerLine(line);
  t.is(text, '3 run:7:42 7 42 Zm9vYmFy 1780000000000\n');
  t.deepEqual(parseLedgerLine(text.slice(0, -1)), line);
  for (const bad of [
    '3 k 7 42 P',
    '3 k 7 42 P 1 extra',
    'x k 7 42 P 1',
    '3 k 7 -1 P 1',
    '3  7 42 P 1',
    '3 k 7 42  1',
  ])
    t.is(parseLedgerLine(bad), undefined, bad);
});

test('least-squares slope', (t) => {
  t.is(slope([]), 0);
  t.is(slope([[1, 5]]), 0);
  t.is(
    slope([
      [0, 1],
      [1, 3],
      [2, 5],
    ]),
    2,
  );
  t.is(
    slope([
      [0, 4],
      [1, 4],
      [2, 4],
    ]),
    0,
  );
  t.is(
    slope([
      [3, 1],
      [3, 2],
    ]),
    0,
  );
});
