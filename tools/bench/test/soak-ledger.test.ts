/** The soak's ledger check and RSS slope on hand-written ledgers: what each count means. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import test from 'ava';
import { checkLedger, slope } from '../src/soak/ledger.js';

function ledger(t: { teardown(f: () => void): void }, text: string): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sipc-soak-ledger-'));
  t.teardown(() => fs.rmSync(dir, { recursive: true, force: true }));
  const file = path.join(dir, 'ledger.txt');
  fs.writeFileSync(file, text);
  return file;
}

test('a key twice in one lifetime, a key in two lifetimes, a success without effect, a torn line', (t) => {
  const file = ledger(t, '0 a 1 1\n0 b 1 2\n0 b 1 2\n0 c 1 3\n1 c 1 3\n1 d 1 4\n1 broken\n');
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
  const file = ledger(t, '0 a 1 1\n1 b 1 2\n2 c 2 1\n');
  const r = checkLedger(file, ['a', 'b', 'c']);
  t.is(r.duplicatesWithinLifetime + r.duplicatesAcrossRestarts + r.okWithoutEffect + r.malformed, 0);
  t.is(r.executions, 3);
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
