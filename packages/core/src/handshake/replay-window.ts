/**
 * The receiver's replay window of a tunnel session (docs/tunnel.md, "Replay window"): which
 * explicit counters may still be accepted. A counter is accepted once, and only if it is above
 * every counter accepted so far or among the `size` counters that end at the highest one.
 *
 * The bits live in a ring of `size` rounded up to 32 (RFC 6479's layout, without its
 * word-at-a-time slide): counter n is bit n mod ring. Checking and recording are separate, so a
 * message that fails authentication leaves the window exactly as it was.
 */

/** The set of recently accepted counters of one direction. */
export class ReplayWindow {
  private readonly bits: Uint32Array;
  private readonly ring: number;
  /** The highest counter accepted so far; -1 before the first. */
  private top = -1;

  /** A window of `size` counters (validated by the caller: an integer >= 1). */
  constructor(readonly size: number) {
    const words = Math.ceil(size / 32);
    this.bits = new Uint32Array(words);
    this.ring = words * 32;
  }

  /** True if counter `n` (a safe integer >= 0) would be accepted now; changes nothing. */
  check(n: number): boolean {
    if (n > this.top) return true;
    if (this.top - n >= this.size) return false; // too old: below the window
    const bit = n % this.ring;
    return (this.bits[bit >>> 5]! & (1 << (bit & 31))) === 0;
  }

  /** Record counter `n` as accepted (only after `check(n)` and a successful decryption). */
  record(n: number): void {
    if (n > this.top) {
      // The counters between the old top and n were never accepted: clear their stale bits.
      if (n - this.top >= this.ring) this.bits.fill(0);
      else for (let c = this.top + 1; c < n; c++) this.clear(c % this.ring);
      this.top = n;
    }
    const bit = n % this.ring;
    this.bits[bit >>> 5]! |= 1 << (bit & 31);
  }

  private clear(bit: number): void {
    this.bits[bit >>> 5]! &= ~(1 << (bit & 31));
  }
}
