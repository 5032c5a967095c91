import test from 'ava';
import { parseArgs } from '../src/args.js';
import { FULL, QUICK } from '../src/plan.js';

test('defaults to the full plan and all rows', (t) => {
  const o = parseArgs([]);
  t.deepEqual(o.plan, FULL);
  t.is(o.rows, undefined);
  t.is(o.name, 'results');
});

test('--quick picks the quick plan and its own file name', (t) => {
  const o = parseArgs(['--quick', '--rows', 'raw-unix, raw-tcp', '--rounds', '3']);
  t.is(o.plan.mode, 'quick');
  t.is(o.plan.rounds, 3);
  t.is(o.plan.idle, QUICK.idle);
  t.deepEqual(o.rows, ['raw-unix', 'raw-tcp']);
  t.is(o.name, 'quick');
  t.is(QUICK.rounds, 1, 'the shared plan object is not mutated');
});

test('unknown options and bad numbers are errors', (t) => {
  t.throws(() => parseArgs(['--fast']));
  t.throws(() => parseArgs(['--rounds', 'x']));
  t.throws(() => parseArgs(['--rows']));
});
