/** Drive a writer against a stalled reader and see where it blocks (the slow-reader cases). */

/** A stalled reader may let this much through (kernel + stream buffers); far below it in practice. */
export const STALL_BOUND = 64 * 1024 * 1024;

/** Where a writer blocked, and how to let it finish. */
export interface Blocked {
  /** Bytes whose write had completed when the writer blocked. */
  readonly accepted: number;
  /** Stop writing; resolves with the total written once the write in progress completes. */
  finish(): Promise<number>;
}

/**
 * Call `write` (one `size`-byte write that resolves once the sink took it) in a loop until it
 * blocks: pending, with no progress over five 50 ms samples. Writing without limit (past
 * 4 × STALL_BOUND) also ends the wait, so a transport without backpressure fails instead of hanging.
 */
export async function writeUntilBlocked(write: () => Promise<void>, size: number): Promise<Blocked> {
  let accepted = 0;
  let pending = false;
  let stop = false;
  const writing = (async () => {
    while (!stop && accepted < STALL_BOUND * 4) {
      pending = true;
      await write();
      pending = false;
      accepted += size;
    }
  })();
  let last = -1;
  let still = 0;
  while (still < 5 && accepted < STALL_BOUND * 4) {
    await new Promise((resolve) => setTimeout(resolve, 50));
    still = pending && accepted === last ? still + 1 : 0;
    last = accepted;
  }
  return {
    accepted,
    finish: async () => {
      stop = true;
      await writing;
      return accepted;
    },
  };
}
