/**
 * The peer's subscriptions: what it asked to receive with `$subscribe` / `$unsubscribe`, checked
 * against the policy, bounded in number, and matched by `wants(topic)` when we publish.
 */
import { type Envelope, EnvelopeKind as Kind } from '../envelope/types.js';
import { exceedsUtf8 } from '../envelope/validate.js';
import type { SecureIpcError } from '../errors.js';
import { UNSUBSCRIBE } from './methods.js';
import { compilePatterns, MAX_PATTERN_WILDCARDS, type NameMatcher, wildcardCount } from './patterns.js';
import type { PolicyAction } from './policy.js';

/** Default bound on the subscription patterns one peer may hold. */
export const DEFAULT_MAX_SUBSCRIPTIONS = 256;

/** Longest subscription pattern, in UTF-16 code units (the envelope's name limit). */
const MAX_PATTERN_LENGTH = 256;

/** What a `$subscribe` pattern must be (docs/protocol.md): the rule both ends check. */
export const PATTERN_RULE = `A subscription pattern must be a non-empty string of at most ${MAX_PATTERN_LENGTH} UTF-8 bytes and ${MAX_PATTERN_WILDCARDS} wildcards`;

/** True if `pattern` may be sent in (and is accepted from) a `$subscribe`. */
export function isSubscriptionPattern(pattern: unknown): pattern is string {
  return (
    typeof pattern === 'string' &&
    pattern.length > 0 &&
    !exceedsUtf8(pattern, MAX_PATTERN_LENGTH) &&
    wildcardCount(pattern) <= MAX_PATTERN_WILDCARDS
  );
}

/** How the subscriptions decide and answer (the dispatcher's authorize and reply). */
export interface SubscriptionResponder {
  authorize(action: PolicyAction, what: string): boolean;
  reply(id: number, envelope: Envelope): void;
  replyError(id: number, code: SecureIpcError['code'], message?: string): void;
}

/** The subscription patterns the peer holds. */
export class Subscriptions {
  readonly #responder: SubscriptionResponder;
  readonly #max: number;
  // Created on the first subscription: most peers never subscribe, and an empty Map with its hash
  // table is ~150 bytes per idle connection end (heap snapshot, 1,000 connections).
  #patterns: Map<string, NameMatcher> | undefined;

  /** `max`: most patterns the peer may hold (default 256). */
  constructor(responder: SubscriptionResponder, max = DEFAULT_MAX_SUBSCRIPTIONS) {
    this.#responder = responder;
    this.#max = max;
  }

  /** A `$subscribe` or `$unsubscribe` request `id` for `pattern`. */
  onRequest(id: number, method: string, pattern: unknown): void {
    const responder = this.#responder;
    if (!isSubscriptionPattern(pattern)) {
      responder.replyError(id, 'SIPC_ERR_BAD_ENVELOPE', PATTERN_RULE);
      return;
    }
    if (method === UNSUBSCRIBE) {
      this.#patterns?.delete(pattern);
      responder.reply(id, { k: Kind.Response, id, p: true });
      return;
    }
    // The requested pattern is checked as a name against the granted patterns: a `*` in it can only
    // fall where a granted pattern has one, so it can never reach beyond the grant.
    if (!responder.authorize('subscribe', pattern)) {
      responder.replyError(id, 'SIPC_ERR_FORBIDDEN');
      return;
    }
    this.#patterns ??= new Map();
    const patterns = this.#patterns;
    if (!patterns.has(pattern) && patterns.size >= this.#max) {
      responder.replyError(id, 'SIPC_ERR_BUSY', 'Too many subscriptions');
      return;
    }
    patterns.set(pattern, compilePatterns([pattern]));
    responder.reply(id, { k: Kind.Response, id, p: true });
  }

  /** True if the peer subscribed to a pattern that matches `topic`. */
  wants(topic: string): boolean {
    if (this.#patterns === undefined) return false;
    for (const match of this.#patterns.values()) if (match(topic)) return true;
    return false;
  }

  /**
   * Keep only the patterns `allowed` still grants (a policy replaced while the peer is
   * connected: what it may no longer subscribe to stops at once); the patterns dropped.
   */
  retain(allowed: (pattern: string) => boolean): string[] {
    const dropped: string[] = [];
    for (const pattern of this.#patterns?.keys() ?? [])
      if (!allowed(pattern)) {
        this.#patterns!.delete(pattern);
        dropped.push(pattern);
      }
    return dropped;
  }

  /** Forget every pattern (the channel closed). */
  clear(): void {
    this.#patterns?.clear();
  }
}
