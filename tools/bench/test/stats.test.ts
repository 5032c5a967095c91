import test from 'ava';
import { median, medianRatio, percentile, ratio, roundRatios } from '../src/stats.js';

test('median of odd and even counts', (t) => {
  t.is(median([3, 1, 2]), 2);
  t.is(median([4, 1, 3, 2]), 2.5);
  t.is(median([7]), 7);
});

test('percentile interpolates between closest ranks (R-7)', (t) => {
  const v = Array.from({ length: 101 }, (_, i) => i); // 0..100
  t.is(percentile(v, 0), 0);
  t.is(percentile(v, 99), 99);
  t.is(percentile(v, 100), 100);
  t.true(Math.abs(percentile([1, 2, 3, 4], 99) - 3.97) < 1e-12);
  t.is(percentile([10, 20], 25), 12.5);
});

test('percentile does not depend on input order and does not mutate it', (t) => {
  const v = [5, 1, 4, 2, 3];
  t.is(percentile(v, 50), 3);
  t.deepEqual(v, [5, 1, 4, 2, 3]);
});

test('percentile refuses empty input and bad p', (t) => {
  t.throws(() => percentile([], 50));
  t.throws(() => percentile([1], 101));
  t.throws(() => percentile([1], Number.NaN));
});

test('ratio skips missing or non-positive baselines', (t) => {
  t.is(ratio(2, 4), 0.5);
  t.is(ratio(undefined, 4), undefined);
  t.is(ratio(2, 0), undefined);
  t.is(ratio(2, undefined), undefined);
});

test('medianRatio divides within each round, then takes the median', (t) => {
  // Drift doubles both rows in round 2; per-round ratios stay 2, 2, 3 -> median 2.
  t.is(medianRatio([2, 4, 3], [1, 2, 1]), 2);
  t.is(medianRatio([2, undefined, 3], [1, 2, 1]), 2.5);
  t.is(medianRatio([undefined], [1]), undefined);
});

test('roundRatios keeps round order and skips gaps', (t) => {
  t.deepEqual(roundRatios([2, undefined, 3], [1, 2, 1]), [2, 3]);
  t.deepEqual(roundRatios([1, 2], [2]), [0.5]);
});
