/**
 * Name patterns shared by the policy (grants) and the event routing (subscriptions): a name is
 * literal except for `*`, which matches any run of characters, dots included.
 */

/** A matcher compiled from a list of names and wildcard patterns. */
export type NameMatcher = (name: string) => boolean;

/**
 * Compile names and patterns into one matcher. `*` matches any run of characters, dots
 * included, so `files.*` covers `files.read` and `files.dir.list`; anything else is literal.
 */
export function compilePatterns(patterns: readonly string[]): NameMatcher {
  const exact = new Set<string>();
  const wild: RegExp[] = [];
  for (const p of patterns) {
    if (typeof p !== 'string' || p.length === 0) continue;
    if (p === '*') return () => true;
    if (!p.includes('*')) exact.add(p);
    else wild.push(new RegExp(`^${p.split('*').map(escapeRegExp).join('.*')}$`, 's'));
  }
  if (wild.length === 0) return (name) => exact.has(name);
  return (name) => exact.has(name) || wild.some((re) => re.test(name));
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
