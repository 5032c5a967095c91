/**
 * Runs the micro benchmarks in this process, rounds interleaved across cases like the end-to-end
 * rows, and reports the median operations per second of each case.
 */
import { median } from '../stats.js';
import { aeadCases } from './aead.js';
import { arenaHandshake, noiseHandshakeHandshake, noiseProtocolHandshake } from './handshake.js';
import { type MicroCase, timeRound } from './measure.js';
import { primitiveCases } from './primitives.js';
import { secureIpcMicroCases } from './secure-ipc.js';

export interface MicroResult {
  name: string;
  bytes: number;
  opsPerSec: number;
  /** Round-by-round ops/s, for the spread. */
  rounds: number[];
}

export async function runMicro(
  rounds: number,
  roundMs: number,
  log: (line: string) => void,
  filter?: RegExp,
): Promise<{ results: MicroResult[]; notes: string[] }> {
  const { cases: sipc, notes } = await secureIpcMicroCases();
  const cases: MicroCase[] = [
    ...aeadCases(),
    ...primitiveCases(),
    noiseProtocolHandshake(),
    arenaHandshake(),
    noiseHandshakeHandshake(),
    ...sipc,
  ];
  if (filter !== undefined) cases.splice(0, cases.length, ...cases.filter((c) => filter.test(c.name)));
  const samples = cases.map(() => [] as number[]);
  for (const c of cases) await timeRound(c, roundMs / 4); // warm-up, unrecorded
  for (let r = 0; r < rounds; r++) {
    log(`micro round ${r + 1}/${rounds}`);
    for (const [i, c] of cases.entries()) samples[i]!.push(await timeRound(c, roundMs));
  }
  return {
    results: cases.map((c, i) => ({
      name: c.name,
      bytes: c.bytes,
      opsPerSec: median(samples[i]!),
      rounds: samples[i]!,
    })),
    notes,
  };
}
