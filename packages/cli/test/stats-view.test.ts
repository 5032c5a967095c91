// The `$stats` answer as inspect and top read it, at the function level, for what a real server
// does not send: answers of another version or a malformed shape (exit 1), strings with control
// characters (escaped on screen), and the age and rate arithmetic. The end-to-end table is checked
// through the binary in inspect.test.ts and top.test.ts.
import test from 'ava';
import { CliError, ExitCode } from '../src/io.js';
import { callRates, checkStats, span, statsTable } from '../src/stats-view.js';

const AT = 1_800_000_000_000;

function channel(over: Record<string, unknown> = {}) {
  return {
    id: 4,
    peer: 'BLAKE2b:abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG',
    roles: ['ops'],
    transport: 'unix',
    protocolVersion: 4,
    openedAt: AT - 65_000,
    calls: { started: 10, ok: 8, failed: 1 },
    inFlight: 1,
    bytesQueued: 512,
    lastCallAt: AT - 2_000,
    ...over,
  };
}

test('checkStats refuses another version and malformed fields with exit 1, naming the field', (t) => {
  const cases: Array<[unknown, RegExp]> = [
    [{ v: 2, at: AT, channels: [] }, /has version 2; this secure-ipc reads version 1/],
    ['no', /malformed: not a map/],
    [{ v: 1, at: AT, channels: {} }, /channels is not an array/],
    [{ v: 1, at: -1, channels: [] }, /at is not a non-negative integer/],
    [
      { v: 1, at: AT, channels: [channel({ calls: { started: 1.5, ok: 0, failed: 0 } })] },
      /channels\[0\]\.calls\.started/,
    ],
    [{ v: 1, at: AT, channels: [channel({ roles: [1] })] }, /channels\[0\]\.roles\[0\] is not a string/],
    [{ v: 1, at: AT, channels: [channel({ peer: undefined })] }, /channels\[0\]\.peer is not a string/],
  ];
  for (const [raw, message] of cases) {
    const err = t.throws(() => checkStats(raw), { instanceOf: CliError });
    t.is(err.exitCode, ExitCode.Failed);
    t.regex(err.message, message);
  }
});

test('the table: ages on the server clock, null fields as -, control characters escaped', (t) => {
  const stats = checkStats({
    v: 1,
    at: AT,
    channels: [
      channel(),
      channel({ id: null, roles: [], transport: 'evil\u001b[2J', openedAt: null, lastCallAt: null }),
    ],
  });
  const [header, first, second] = statsTable(stats);
  t.is(
    header,
    'ID  PEER                  ROLES  TRANSPORT        AGE  OK  FAILED  IN-FLIGHT  QUEUED  LAST-CALL',
  );
  t.is(
    first,
    ' 4  BLAKE2b:abcdefghijkl  ops    unix           1m05s   8       1          1     512     2s ago',
  );
  t.is(
    second,
    ' -  BLAKE2b:abcdefghijkl  -      evil\\u001b[2J      -   8       1          1     512          -',
  );
});

test('spans in two units at most, and calls per second between two snapshots of the same channel', (t) => {
  t.deepEqual(
    [0, 999, 1_000, 59_999, 60_000, 3_599_000, 3_600_000, 86_399_000, 86_400_000 * 3 + 3_600_000].map(span),
    ['0ms', '999ms', '1s', '59s', '1m00s', '59m59s', '1h00m', '23h59m', '3d01h'],
  );
  const before = checkStats({
    v: 1,
    at: AT - 2_000,
    channels: [channel({ calls: { started: 4, ok: 4, failed: 0 } })],
  });
  const now = checkStats({ v: 1, at: AT, channels: [channel(), channel({ id: 9 })] });
  t.deepEqual(callRates(before, now), [3, undefined]);
  t.deepEqual(callRates(undefined, now), [undefined, undefined]);
  t.regex(statsTable(now, callRates(before, now))[1]!, / 8 +1 +3\.0 +1 /);
});
