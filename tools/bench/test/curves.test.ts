/** The payload-size curves: medians per size, gaps where a size failed, one line per swept row. */
import test from 'ava';
import { METRICS, type RowResult } from '../src/e2e.js';
import {
  connSeries,
  renderConnCurves,
  renderSizeCurves,
  sizeLabel,
  sweepMedians,
} from '../src/report/curves.js';

function row(id: string, sweep: RowResult['sweep']): RowResult {
  const rounds = Object.fromEntries(METRICS.map((m) => [m, []])) as unknown as RowResult['rounds'];
  return {
    id,
    label: `label of ${id}`,
    baseline: 'raw-unix',
    security: '',
    packages: [],
    rounds,
    sweep,
    errors: [],
  };
}

const SWEPT = row('sipc-unix', {
  '65536': { rttP50Us: [300, 100, 200], mbPerSec: [50, 70, 60] },
  '64': { rttP50Us: [40, 50, 60], mbPerSec: [1, 2, 3] },
  '1048576': { rttP50Us: [undefined, undefined], mbPerSec: [200, undefined] },
});

test('medians per size, smallest first; a size with no value is a gap', (t) => {
  t.deepEqual(sweepMedians(SWEPT, 'rttP50Us'), [
    { size: 64, value: 50 },
    { size: 65536, value: 200 },
    { size: 1048576, value: undefined },
  ]);
  t.deepEqual(
    sweepMedians(SWEPT, 'mbPerSec').map((p) => p.value),
    [2, 60, 200],
  );
});

test('one path per swept row per panel, a point per measured size; no sweep, no chart', (t) => {
  const svg = renderSizeCurves(
    [SWEPT, row('raw-unix', { '64': { rttP50Us: [10], mbPerSec: [5] } }), row('x', undefined)],
    'T',
  )!;
  t.is(svg.match(/<path /g)?.length, 4);
  t.is(svg.match(/<circle /g)?.length, 2 + 3 + 1 + 1); // sipc: 2 round trips, 3 rates; raw: 1 + 1
  t.true(svg.includes('label of sipc-unix'));
  t.false(svg.includes('label of x'));
  t.is(renderSizeCurves([row('x', undefined)], 'T'), undefined);
  t.is(sizeLabel(16 * 2 ** 20 - 1024), '15.999 MiB');
  t.is(sizeLabel(2 ** 20), '1 MiB');
  t.is(sizeLabel(64 * 1024), '64 KiB');
});

test('the connection sweep: series by count, RSS growth at or below zero is a gap (noise), three panels', (t) => {
  const swept: RowResult = {
    ...row('sipc-unix', undefined),
    connSweep: {
      '100': { perSec: 900, p99Us: 800, rssKiB: 4000 },
      '1': { perSec: 1000, p99Us: 100, rssKiB: -12 },
      '10': { perSec: 950, rssKiB: 300 },
    },
  };
  t.deepEqual(
    connSeries(swept, 'rssKiB').map((p) => [p.size, p.value]),
    [
      [1, undefined],
      [10, 300],
      [100, 4000],
    ],
  );
  t.deepEqual(
    connSeries(swept, 'p99Us').map((p) => p.value),
    [100, undefined, 800],
  );
  const svg = renderConnCurves([swept], 'T')!;
  t.is(svg.match(/<path /g)?.length, 3);
  t.is(svg.match(/<circle /g)?.length, 3 + 2 + 2);
  t.is(renderConnCurves([row('x', undefined)], 'T'), undefined);
});
