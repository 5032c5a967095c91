/** Durations on the command line: `90s`, `15m`, `24h`, `7d` (a positive integer and one unit). */
import { CliError } from './io.js';

const UNIT_MS = { s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
// Ten years: anything longer is a typo, and long-lived certificates defeat expiry anyway.
const MAX_MS = 3650 * UNIT_MS.d;

/** Parse a duration option into milliseconds; a usage error names the option. */
export function parseDuration(text: string, name: string): number {
  const m = /^(\d{1,10})([smhd])$/.exec(text);
  const ms = m === null ? Number.NaN : Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (!(ms > 0) || ms > MAX_MS)
    throw new CliError(
      `--${name} must be a duration like 90s, 15m, 24h or 7d (at most 3650d), not ${JSON.stringify(text)}`,
    );
  return ms;
}
