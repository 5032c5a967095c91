/**
 * Timing loop for the in-process micro benchmarks: each round runs the operation in batches until
 * `roundMs` has passed and yields operations per second; the result is the median over rounds.
 * Rounds of different benchmarks are interleaved by the caller, like the end-to-end rows.
 */
export interface MicroCase {
  /** Row name, e.g. `AEAD encrypt 64 KiB`. */
  name: string;
  /** Bytes processed per operation (for MB/s), or 0 when only operations per second matter. */
  bytes: number;
  /** One operation; when it returns a promise, the loop awaits it before the next one. */
  run(): void | Promise<void>;
  /** True when `run` returns a promise. */
  async?: boolean;
}

const now = () => Number(process.hrtime.bigint()) / 1e6;

/** Operations per second of one timed round of `c`. */
export async function timeRound(c: MicroCase, roundMs: number): Promise<number> {
  let ops = 0;
  let batch = 1;
  const start = now();
  let elapsed = 0;
  while (elapsed < roundMs) {
    if (c.async) for (let i = 0; i < batch; i++) await c.run();
    else for (let i = 0; i < batch; i++) c.run();
    ops += batch;
    elapsed = now() - start;
    // Grow the batch so the clock is read rarely on fast operations.
    if (elapsed < roundMs / 20) batch *= 2;
  }
  return (ops / elapsed) * 1000;
}
