/**
 * Match rules (docs/bus.md section 5): which broadcast signals a peer takes. A rule names a
 * signal (a name or a `*` pattern) and/or a sender (a name; a well-known one matches the signals
 * its primary owner sends at the time of sending). Patterns go through core's matcher (`*` any
 * run of characters, at most 8): linear, never a RegExp built from a peer's text.
 */
import { createError, createPolicy } from '@secure-ipc/core';
import { assertName } from './names.js';

/** The longest match pattern, in bytes. */
export const MAX_MATCH_PATTERN_BYTES = 256;

/** One rule as a peer gave it. */
export interface MatchRule {
  /** A signal name or pattern (absent: every signal). */
  readonly signal?: string | undefined;
  /** A sender name (absent: every sender). */
  readonly sender?: string | undefined;
}

/** A compiled rule. */
export interface CompiledMatch extends MatchRule {
  /** The rule's id (per peer). */
  readonly id: number;
  readonly matches: (signal: string) => boolean;
}

/** Check a rule (SIPC_ERR_INVALID_ARGUMENT) and compile it. */
export function compileMatch(id: number, rule: MatchRule): CompiledMatch {
  const { signal, sender } = rule;
  if (signal !== undefined) {
    const bytes = Buffer.byteLength(signal, 'utf8');
    if (bytes === 0 || bytes > MAX_MATCH_PATTERN_BYTES)
      throw createError(
        'SIPC_ERR_INVALID_ARGUMENT',
        `a match signal is 1 to ${MAX_MATCH_PATTERN_BYTES} bytes`,
      );
  }
  if (sender !== undefined) assertName(sender, 'a match sender');
  if (signal === undefined) return { id, signal, sender, matches: () => true };
  // Core's pattern matcher, through the one public door to it: a policy of one grant (it refuses
  // a pattern with more than 8 wildcards with SIPC_ERR_INVALID_ARGUMENT).
  const one = createPolicy({ roles: { rule: { subscribe: [signal] } } });
  const roles = ['rule'];
  return { id, signal, sender, matches: (name) => one.allows(roles, 'subscribe', name) };
}

/**
 * True if `rule` takes `signal` from `sender` (a unique name) given the names that sender owns
 * now (`owns(name)`).
 */
export function matchTakes(
  rule: CompiledMatch,
  signal: string,
  sender: string,
  owns: (name: string) => boolean,
): boolean {
  if (!rule.matches(signal)) return false;
  if (rule.sender === undefined || rule.sender === sender) return true;
  return owns(rule.sender);
}
