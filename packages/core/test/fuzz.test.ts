// Issue 12, deliverable 13: every decoder of peer or file input runs under the coverage-guided
// fuzzer (fuzz/engine.ts) for 10^5 mutated inputs per target in every test run (`npm run fuzz -w
// packages/core` runs 10^7), and every input that once failed is replayed from fuzz/regressions/.
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import test from 'ava';
import { fuzz } from '../fuzz/engine.js';
import { TARGETS } from '../fuzz/targets.js';

const run = promisify(execFile);
const runner = fileURLToPath(new URL('../fuzz/run.js', import.meta.url));
const regressions = fileURLToPath(new URL('../../fuzz/regressions', import.meta.url));
const RUNS = 100_000;

for (const [name, spec] of Object.entries(TARGETS)) {
  test(`fuzz ${name} (${spec.description}): ${RUNS} coverage-guided inputs, no finding`, async (t) => {
    t.timeout(15 * 60_000);
    const { stdout } = await run(process.execPath, [runner, name, '--runs', String(RUNS)], {
      maxBuffer: 16 * 1024 * 1024,
    }).catch((err: { stdout?: string; stderr?: string }) => {
      throw new Error(`the fuzzer found something:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
    });
    t.log(stdout.trim());
    const executed = Number(/: (\d+) inputs in/.exec(stdout)?.[1]);
    t.true(executed >= RUNS, `${executed} inputs run`);
    t.regex(stdout, /: no finding$/m);
  });

  test(`fuzz ${name}: every committed regression input passes`, (t) => {
    const dir = join(regressions, name);
    const files = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.bin')) : [];
    for (const file of files) t.notThrows(() => spec.fuzz(readFileSync(join(dir, file))), file);
    t.log(`${files.length} regression input(s)`);
    t.pass();
  });
}

test('the fuzzer reports a target that throws, with the input that did it', (t) => {
  // A planted bug two mutations deep from the seed: the engine must get there and report it.
  const result = fuzz(
    (data) => {
      if (data.length >= 3 && data[0] === 0x53 && data[1] === 0x49 && data[2] !== 0x50)
        throw new RangeError('planted');
    },
    { runs: 200_000, seeds: [Buffer.from('SIPC')], randomSeed: 12345 },
  );
  t.truthy(result.finding, `no finding after ${result.executions} inputs`);
  t.true(result.finding!.error instanceof RangeError);
  t.is(result.finding!.input[0], 0x53);
});

test('the fuzzer reports an input that takes longer than the time limit', (t) => {
  const result = fuzz(
    (data) => {
      if (data.length > 0 && data[0] === 0xff) {
        const until = performance.now() + 30;
        while (performance.now() < until);
      }
    },
    { runs: 100_000, seeds: [Buffer.from([0xfe])], timeLimitMs: 20, randomSeed: 7 },
  );
  t.truthy(result.finding);
  t.regex(String(result.finding!.error), /limit 20 ms/);
});

test('the fuzzer is guided by coverage: it finds a 4-byte magic that blind mutation would need ~2^32 tries for', (t) => {
  const magic = (data: Buffer) => {
    if (data[0] === 0x12) {
      if (data[1] === 0x34) {
        if (data[2] === 0x56) {
          if (data[3] === 0x78) throw new Error('magic reached');
        }
      }
    }
  };
  const result = fuzz(magic, {
    runs: 400_000,
    seeds: [Buffer.alloc(4)],
    randomSeed: 99,
    coverageOf: ['/dist/test/fuzz.test.js'],
  });
  t.truthy(result.finding, `not reached in ${result.executions} inputs (corpus ${result.corpus})`);
  t.log(`reached after ${result.executions} inputs, corpus ${result.corpus}`);
});
