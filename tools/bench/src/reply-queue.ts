/**
 * Matches replies to requests on a stack that keeps order on one connection (raw framing,
 * secret-stream, zeromq DEALER/ROUTER, node-ipc): the n-th reply answers the n-th request, so a
 * FIFO of waiters is all the bookkeeping needed, and no row pays for request ids it does not need.
 */
export class ReplyQueue {
  #waiting: { resolve: (m: Buffer) => void; reject: (e: Error) => void }[] = [];

  /** A promise for the next reply not yet claimed. */
  expect(): Promise<Buffer> {
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
    });
  }

  /** A reply arrived: hand it to the oldest waiter. */
  deliver(message: Buffer): void {
    const w = this.#waiting.shift();
    if (w === undefined) throw new Error('reply without a request');
    w.resolve(message);
  }

  /** The connection failed: reject everything still waiting. */
  failAll(error: Error): void {
    const waiting = this.#waiting;
    this.#waiting = [];
    for (const w of waiting) w.reject(error);
  }
}
