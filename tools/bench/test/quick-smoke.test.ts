/**
 * Harness check, not a performance test: a `--quick` run of the raw baseline rows must produce a
 * report with sane (positive, finite) values. No assertion here depends on how fast anything is.
 */
import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';

const CLI = fileURLToPath(new URL('../src/cli.js', import.meta.url));

test('quick run of the raw baseline writes a sane report', async (t) => {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'sipc-bench-test-'));
  try {
    await promisify(execFile)(
      process.execPath,
      [
        CLI,
        '--quick',
        '--no-micro',
        '--rows',
        'raw-unix,raw-tcp',
        '--rounds',
        '1',
        '--idle',
        '20',
        '--out',
        out,
      ],
      { timeout: 90_000 },
    );
    const data = JSON.parse(fs.readFileSync(path.join(out, 'quick.json'), 'utf8'));
    t.is(data.e2e.rows.length, 2);
    for (const row of data.e2e.rows) {
      t.deepEqual(row.errors, [], row.id);
      for (const metric of [
        'rttP50Us',
        'rttP99Us',
        'rttPerSec',
        'pipelinedPerSec',
        'bulkMBps',
        'connectP50Ms',
      ]) {
        const v = row.rounds[metric][0];
        t.true(typeof v === 'number' && Number.isFinite(v) && v > 0, `${row.id} ${metric} = ${v}`);
      }
      t.true(row.rounds.rttP99Us[0] >= row.rounds.rttP50Us[0], `${row.id} p99 >= p50`);
    }
    const md = fs.readFileSync(path.join(out, 'quick.md'), 'utf8');
    t.regex(md, /raw net \(Unix socket\)/);
    t.regex(md, /Load average/);
    const svg = fs.readFileSync(path.join(out, 'quick.svg'), 'utf8');
    t.true(svg.startsWith('<svg') && svg.trimEnd().endsWith('</svg>'));
    // Well-formed XML: no raw '<' or bare '&' inside text content (node has no XML parser).
    for (const [, content] of svg.matchAll(/<text[^>]*>([\s\S]*?)<\/text>/g)) {
      t.false(/<|&(?!(amp|lt|gt|quot);)/.test(content!), content);
    }
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
});
