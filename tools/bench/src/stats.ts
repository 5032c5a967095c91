/**
 * Summary statistics for benchmark samples. Kept dependency-free and tiny so the unit test can pin
 * the exact definitions the report uses (a percentile means different things in different tools).
 */

/** Sorted copy (ascending) of numeric samples. */
export function sorted(values: readonly number[]): number[] {
  return [...values].sort((a, b) => a - b);
}

/**
 * Percentile by linear interpolation between closest ranks (the "R-7" / numpy default definition):
 * p = 0 is the minimum, p = 100 the maximum, p = 50 the usual median (mean of the two middle values
 * for an even count). Throws on an empty input rather than inventing a number.
 */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) throw new RangeError('percentile of no samples');
  if (!(p >= 0 && p <= 100)) throw new RangeError(`percentile out of range: ${p}`);
  const s = sorted(values);
  const rank = (p / 100) * (s.length - 1);
  const lo = Math.floor(rank);
  const hi = Math.ceil(rank);
  const a = s[lo]!;
  const b = s[hi]!;
  return a + (b - a) * (rank - lo);
}

/** Median (50th percentile). */
export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

/** Ratio a / b, or undefined when either side is missing or b is not a positive number. */
export function ratio(a: number | undefined, b: number | undefined): number | undefined {
  if (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b <= 0) {
    return undefined;
  }
  return a / b;
}

/**
 * Median of per-round ratios. Rounds are interleaved (A B C ... A B C), so dividing within a round
 * cancels the machine drift that hits both rows of that round alike; the median then drops the
 * rounds in which some other process stole a core.
 */
export function medianRatio(
  values: readonly (number | undefined)[],
  baseline: readonly (number | undefined)[],
): number | undefined {
  const ratios = roundRatios(values, baseline);
  return ratios.length === 0 ? undefined : median(ratios);
}

/** The per-round ratios, skipping rounds where either side is missing. */
export function roundRatios(
  values: readonly (number | undefined)[],
  baseline: readonly (number | undefined)[],
): number[] {
  const ratios: number[] = [];
  for (let i = 0; i < Math.min(values.length, baseline.length); i++) {
    const r = ratio(values[i], baseline[i]);
    if (r !== undefined) ratios.push(r);
  }
  return ratios;
}
