/**
 * Name patterns shared by the policy (grants) and the event routing (subscriptions): a name is
 * literal except for `*`, which matches any run of characters, dots included.
 *
 * Matching is linear in the name's length (no RegExp is ever built, least of all from a peer's
 * `$subscribe` pattern): the pattern is split at its wildcards into a prefix, a suffix and the
 * segments between, and the segments are found left to right, each after the previous one. For
 * `*`-only patterns the leftmost match of each segment is always the right choice, so nothing is
 * ever retried. A pattern holds at most `MAX_PATTERN_WILDCARDS` wildcards (docs/limits.md).
 */
import { createError } from '../errors.js';

/** A matcher compiled from a list of names and wildcard patterns. */
export type NameMatcher = (name: string) => boolean;

/** Most wildcards in one pattern (a run of `*` counts once). */
export const MAX_PATTERN_WILDCARDS = 8;

/** How many wildcards `pattern` holds (a run of `*` counts once). */
export function wildcardCount(pattern: string): number {
  let count = 0;
  for (let i = 0; i < pattern.length; i++) if (pattern[i] === '*' && pattern[i - 1] !== '*') count++;
  return count;
}

// prefix, segments in between, suffix: the name must start with the prefix, end with the suffix
// (not overlapping it) and hold the segments in order between them.
function wildcardMatcher(pattern: string): NameMatcher {
  const parts = pattern.split('*');
  const prefix = parts[0]!;
  const suffix = parts[parts.length - 1]!;
  const middle = parts.slice(1, -1).filter((s) => s.length > 0);
  const minLength = parts.reduce((n, s) => n + s.length, 0);
  return (name) => {
    if (name.length < minLength || !name.startsWith(prefix) || !name.endsWith(suffix)) return false;
    const end = name.length - suffix.length;
    let at = prefix.length;
    for (const segment of middle) {
      const found = name.indexOf(segment, at);
      if (found < 0 || found + segment.length > end) return false;
      at = found + segment.length;
    }
    return true;
  };
}

/**
 * Compile names and patterns into one matcher. `*` matches any run of characters, dots
 * included, so `files.*` covers `files.read` and `files.dir.list`; anything else is literal.
 * Throws `SIPC_ERR_INVALID_ARGUMENT` for a pattern with more than `MAX_PATTERN_WILDCARDS`.
 */
export function compilePatterns(patterns: readonly string[]): NameMatcher {
  const exact = new Set<string>();
  const wild: NameMatcher[] = [];
  for (const p of patterns) {
    if (typeof p !== 'string' || p.length === 0) continue;
    if (/^\*+$/.test(p)) return () => true;
    if (!p.includes('*')) {
      exact.add(p);
      continue;
    }
    if (wildcardCount(p) > MAX_PATTERN_WILDCARDS)
      throw createError(
        'SIPC_ERR_INVALID_ARGUMENT',
        `A pattern may hold at most ${MAX_PATTERN_WILDCARDS} wildcards`,
      );
    wild.push(wildcardMatcher(p));
  }
  if (wild.length === 0) return (name) => exact.has(name);
  return (name) => exact.has(name) || wild.some((match) => match(name));
}
