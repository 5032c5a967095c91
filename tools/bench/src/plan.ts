/**
 * How much work one run does. The full plan is sized so that every scenario of every row runs
 * long enough to be stable on the reference machine (2 cores) within a few minutes overall; the
 * quick plan is a smoke test that finishes in well under a minute and is not meant to be quoted.
 */
import type { Scenario } from './e2e.js';
import type { BulkParams, ConnectParams, PipelinedParams, RoundTripParams } from './scenarios.js';

export interface Plan {
  mode: 'full' | 'quick';
  /** Which end-to-end scenarios run (all by default; a subset helps profiling). */
  scenarios: Scenario[];
  /** Interleaved rounds of the throughput/latency scenarios. */
  rounds: number;
  /** Interleaved rounds of the idle-connection RSS test (each with fresh processes). */
  rssRounds: number;
  /** Idle connections opened in the RSS test. */
  idle: number;
  roundTrip: RoundTripParams;
  pipelined: PipelinedParams;
  bulk: BulkParams;
  connect: ConnectParams;
  /** The payload-size sweep (issue 14, item 3): round trip and bulk at each size, on `rows`. */
  sweep: SweepParams;
  /** The connection sweep (issue 14, item 3): load, p99 and memory at each connection count. */
  connSweep: ConnSweepParams;
  /** Timed length of one micro benchmark round, and how many rounds. */
  microMs: number;
  microRounds: number;
}

export interface SweepParams {
  /** Payload sizes in bytes, smallest first. */
  sizes: number[];
  /** Interleaved rounds (0: no sweep). */
  rounds: number;
  /** Time cap of each round-trip and bulk measurement. */
  maxMs: number;
  /** The rows swept, where they are in the run. */
  rows: string[];
}

export interface ConnSweepParams {
  /** Open connections at each step, smallest first (0 steps: no sweep). */
  counts: number[];
  /** How long all connections send at each step. */
  durationMs: number;
  /** The rows swept, where they are in the run. */
  rows: string[];
}

const KiB = 1024;
const MiB = 1024 * KiB;
// The largest size every swept row carries: secure-ipc's 16 MiB message holds the envelope too,
// and secret-stream's length field is 24 bits (16 MiB - 1).
const LARGEST = 16 * MiB - KiB;
const SWEEP_ROWS = ['raw-unix', 'sipc-unix', 'secret-stream-unix'];

export const FULL: Plan = {
  mode: 'full',
  scenarios: ['roundTrip', 'pipelined', 'bulk', 'connect'],
  rounds: 5,
  rssRounds: 3,
  idle: 1000,
  roundTrip: { iterations: 3000, warmup: 300, size: 64, maxMs: 3000 },
  pipelined: { total: 30_000, inflight: 64, size: 64, maxMs: 3000 },
  bulk: { size: 64 * 1024, bytes: 512 * 2 ** 20, maxMs: 2500 },
  connect: { count: 150, size: 64, maxMs: 4000 },
  sweep: {
    sizes: [64, KiB, 16 * KiB, 64 * KiB, 256 * KiB, MiB, 4 * MiB, LARGEST],
    rounds: 3,
    maxMs: 1500,
    rows: SWEEP_ROWS,
  },
  connSweep: { counts: [1, 10, 100, 1000, 10_000], durationMs: 2000, rows: SWEEP_ROWS },
  microMs: 250,
  microRounds: 5,
};

export const QUICK: Plan = {
  mode: 'quick',
  scenarios: ['roundTrip', 'pipelined', 'bulk', 'connect'],
  rounds: 1,
  rssRounds: 1,
  idle: 50,
  roundTrip: { iterations: 200, warmup: 20, size: 64, maxMs: 500 },
  pipelined: { total: 1000, inflight: 64, size: 64, maxMs: 500 },
  bulk: { size: 64 * 1024, bytes: 8 * 2 ** 20, maxMs: 250 },
  connect: { count: 10, size: 64, maxMs: 1000 },
  sweep: { sizes: [64, 64 * KiB, MiB], rounds: 1, maxMs: 200, rows: SWEEP_ROWS },
  connSweep: { counts: [1, 10], durationMs: 200, rows: SWEEP_ROWS },
  microMs: 40,
  microRounds: 2,
};
