/**
 * The outbox keeps no params in memory (docs/outbox.md, "Guarantees" 6): 20,000 entries of 2 KiB
 * params enqueued in a child process (--expose-gc), the heap measured after a full GC at 2,000
 * and at 20,000 entries. The growth per entry must stay far below the params' size; a control
 * run that holds the params itself shows the measurement sees them. Memory, not time, is asserted.
 */
import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';

const entry = fileURLToPath(new URL('./fixtures/outbox-memory-child.js', import.meta.url));

async function measure(hold: boolean): Promise<{ perEntry: number; entries: number }> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    ['--expose-gc', entry, '2000', '20000', hold ? 'hold' : 'no'],
    {
      maxBuffer: 1 << 20,
    },
  );
  const r = JSON.parse(stdout) as { atFirst: number; atTotal: number; entries: number };
  return { perEntry: (r.atTotal - r.atFirst) / 18_000, entries: r.entries };
}

test('memory per queued entry stays far below its params (they stay on disk); the control holding them is seen', async (t) => {
  const [flat, control] = await Promise.all([measure(false), measure(true)]);
  t.is(flat.entries, 20_000);
  t.log(
    `outbox: ${Math.round(flat.perEntry)} bytes per entry; control holding 2 KiB params: ${Math.round(control.perEntry)}`,
  );
  t.true(control.perEntry > 2048, 'the control run shows params held in memory');
  t.true(flat.perEntry < 400, `${Math.round(flat.perEntry)} bytes per entry`);
});
