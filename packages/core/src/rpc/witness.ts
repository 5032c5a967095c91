/**
 * A client's side of audit witnessing (docs/audit.md, "Witnesses"): one round asks the server
 * for the update its witness needs (`$audit.checkpoint`), verifies it (a fork raises
 * SIPC_ERR_AUDIT_FORK), and gives the cosigned checkpoint back (`$audit.cosign`).
 */
import type { AuditWitness, AuditWitnessResult, AuditWitnessUpdate } from '../audit/witness.js';
import { AUDIT_CHECKPOINT, AUDIT_COSIGN } from './methods.js';
import type { RequestOptions } from './service-types.js';

/** What one witness round did (`client.witnessAudit`). */
export interface WitnessRoundResult extends AuditWitnessResult {
  /** Whether the server recorded the cosignature (false for a size it already has from this channel). */
  readonly recorded: boolean;
}

/** @internal Sends one request (the client's peer). */
export type WitnessRequest = (method: string, params: unknown, options?: RequestOptions) => Promise<unknown>;

/**
 * @internal One witness round over `request`; a paged update (more epochs follow) is followed by
 * the next page at once, at most `maxPages` (the updates are bounded, the rounds too).
 */
export async function witnessRound(
  request: WitnessRequest,
  witness: AuditWitness,
  options: RequestOptions = {},
  maxPages = 1024,
): Promise<WitnessRoundResult> {
  for (let page = 1; ; page++) {
    const update = (await request(AUDIT_CHECKPOINT, witness.request(), options)) as AuditWitnessUpdate;
    const result = witness.update(update);
    const answer = (await request(
      AUDIT_COSIGN,
      { note: result.cosigned, key: witness.publicKey },
      options,
    )) as { recorded?: unknown } | undefined;
    if (!result.more || page >= maxPages) return { ...result, recorded: answer?.recorded === true };
  }
}
