/**
 * The built-in methods every RPC end answers (docs/protocol.md, "Built-in methods"): the one
 * place that names them. A method name starting with `$` is reserved for them and cannot be
 * registered by an application.
 */

/** Echoes its payload; any authenticated peer may call it. */
export const PING = '$ping';

/** Subscribes the caller to events on the pattern in `p` (policy `subscribe`). */
export const SUBSCRIBE = '$subscribe';

/** Drops the caller's own subscription to the pattern in `p`. */
export const UNSUBSCRIBE = '$unsubscribe';

/**
 * Answers a snapshot of the server's live channels (`ServerStats`, ./stats.ts); only to a peer
 * whose policy grants `call` on `$stats` by that exact name (no pattern covers a `$` name).
 */
export const STATS = '$stats';

/**
 * Answers a witness update of the server's audit log (docs/audit.md, "Witnesses"); granted by its
 * exact name only.
 */
export const AUDIT_CHECKPOINT = '$audit.checkpoint';

/** Takes a witness's cosignature of one of the server's audit checkpoints; exact grant only. */
export const AUDIT_COSIGN = '$audit.cosign';

/** @internal A built-in answered by the end itself (`DispatcherOptions.builtins`). */
export type Builtin = (params: unknown, caller: BuiltinCaller) => unknown;

/** @internal Who called a built-in. */
export interface BuiltinCaller {
  /** Fingerprint of the caller's static key. */
  readonly peerId: string;
  /** The channel the request came on, when it has an id. */
  readonly channelId: number | undefined;
}

/** The prefix reserved for built-in methods. */
export const RESERVED_METHOD_PREFIX = '$';

/** Methods any authenticated peer may call whatever the policy says. */
export const ALWAYS_ALLOWED_METHODS: ReadonlySet<string> = new Set([PING]);

/** True if `method` is reserved for the built-ins (an application cannot register it). */
export function isReservedMethod(method: string): boolean {
  return method.startsWith(RESERVED_METHOD_PREFIX);
}

/** True for the methods an end answers itself (`$ping`, `$stats`, `$subscribe`, `$audit.*`...). */
export function isBuiltinMethod(method: string): boolean {
  return (
    method === PING ||
    method === STATS ||
    method === AUDIT_CHECKPOINT ||
    method === AUDIT_COSIGN ||
    isSubscriptionMethod(method)
  );
}

/** True for `$subscribe` and `$unsubscribe`. */
export function isSubscriptionMethod(method: string): method is typeof SUBSCRIBE | typeof UNSUBSCRIBE {
  return method === SUBSCRIBE || method === UNSUBSCRIBE;
}
