/**
 * Who may touch an outbox directory (docs/outbox.md, "Access"): the access guard of
 * ../keys/access-guard.ts, which the audit log shares.
 */
import type { AccessGuard } from '../keys/access-guard.js';

export { type GuardedKind, posixOwnerOnly } from '../keys/access-guard.js';

/**
 * An outbox's access guard. `secure` is called on the directory and on each file of it (the
 * journal, a compaction's temporary file) right after the outbox created or opened it: when
 * `created` is true the guard makes the path owner-only first; then it reads the protection back
 * and throws a SecureIpcError (SIPC_ERR_INSECURE_DIRECTORY for the directory,
 * SIPC_ERR_INSECURE_FILE for a file, `details.reason` saying why) when anyone but the current
 * user (and the OS itself) can read or write it.
 */
export type OutboxAccessGuard = AccessGuard;
