/**
 * A server's audit recording (docs/audit.md, "What a server records"): channel opens and closes,
 * every call (method, verdict, the keyed hash of its params), the other policy decisions, and
 * with `required` the fail-closed switch. Records are appended without holding the request: the
 * log writes them in order; the first append that fails turns a `required` server away from new
 * channels and requests.
 */
import type { AuditLog } from '../audit/log.js';
import { auditMessageHash } from '../audit/message-hash.js';
import type { AuditFields } from '../audit/record.js';
import type { HandshakeFailure, ListenerUpdate } from '../channel/secure-listener.js';
import { createError, type SecureIpcError, toSecureIpcError } from '../errors.js';
import { decodeCertificate } from '../identity/certificate.js';
import { AUDIT_CHECKPOINT, AUDIT_COSIGN, type Builtin } from './methods.js';
import type { PolicyDecision } from './policy.js';

/** Default of `ServerAuditOptions.maxPending`. */
export const DEFAULT_MAX_PENDING_AUDIT = 10_000;

/** The `audit` option of a server. */
export interface ServerAuditOptions {
  /** The log records go to (`openAuditLog`); the server never closes it. */
  readonly log: AuditLog;
  /**
   * A 32-byte key: each call's params are recorded as `auditMessageHash(key, method, params)`
   * (field `h`); without it, no hash. Keep it apart from the log: whoever holds it can test
   * guesses of params against the log.
   */
  readonly hashKey?: Uint8Array;
  /**
   * Fail closed: once an append failed (or `maxPending` appends wait for the disk), new channels
   * are closed at once and requests are refused with SIPC_ERR_UNAVAILABLE (not executed) instead
   * of running unaudited. Without it, records that cannot be appended are dropped and counted.
   */
  readonly required?: boolean;
  /**
   * Most appends waiting for the disk at once (default 10,000; 1 to 1,000,000). From half of it,
   * calls wait to start until the backlog is down to a quarter (back-pressure), so records are
   * dropped (or, `required`, calls refused) only past it: records other than calls, streamed
   * calls, or a log that failed.
   */
  readonly maxPending?: number;
}

/** What a server's audit has done so far (`server.audit`). */
export interface ServerAuditState {
  /** Records that could not be appended (the log failed, or `maxPending` waited), when not `required`. */
  readonly dropped: number;
  /** The first append that failed (SIPC_ERR_AUDIT_CORRUPT or the log's own error), if any. */
  readonly failure: SecureIpcError | undefined;
}

/** @internal What the dispatcher tells the audit for each call. */
export interface AuditedCall {
  readonly channelId: number | undefined;
  readonly peer: string;
  readonly method: string;
  readonly allowed: boolean;
  readonly params: unknown;
  readonly streamed: boolean;
}

/** @internal A failed handshake's record fields (the peer's OS facts; its key when it got that far). */
export function handshakeFields(f: HandshakeFailure): AuditFields {
  const fields: Record<string, AuditFields[string]> = { kind: f.kind, code: f.code };
  if (f.fingerprint !== undefined) fields.peer = f.fingerprint;
  const os = f.peer;
  if (os !== undefined) {
    fields.transport = os.transport;
    if (os.pid !== undefined) fields.pid = os.pid;
    if (os.uid !== undefined) fields.uid = os.uid;
    if (os.osIdentity !== undefined) fields.osIdentity = os.osIdentity;
    if (os.address !== undefined) fields.address = os.address;
  }
  return fields;
}

/** A built-in's params: a map (SIPC_ERR_INVALID_ARGUMENT, answered to the caller, otherwise). */
function paramsMap(p: unknown, method: string): Record<string, unknown> {
  if (typeof p !== 'object' || p === null || Array.isArray(p) || p instanceof Uint8Array || p instanceof Map)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `${method} takes a map of params`);
  return p as Record<string, unknown>;
}

/**
 * @internal A `listener.update()`'s record fields: the key fingerprints when the key pair was
 * rotated, whether the trust or the payload was replaced, and the new payload's certificate
 * (serial, name, roles, not-after) when it carries one that decodes.
 */
export function listenerUpdateFields(u: ListenerUpdate): AuditFields {
  const fields: Record<string, AuditFields[string]> = { trust: u.trust, payload: u.payload };
  if (u.key !== undefined) fields.key = u.key;
  if (u.previousKey !== undefined) fields.previousKey = u.previousKey;
  const cert = u.newPayload?.cert;
  if (cert instanceof Uint8Array) {
    try {
      const c = decodeCertificate(cert);
      fields.certSerial = c.serial;
      fields.certName = c.name;
      fields.certRoles = [...c.roles];
      fields.certNotAfter = c.notAfter;
    } catch {
      fields.certSerial = null; // not a certificate this version decodes: noted, not described
    }
  }
  return fields;
}

/** @internal The refusal a `required` server answers while it cannot audit. */
export function auditRefusal(): SecureIpcError {
  return createError(
    'SIPC_ERR_UNAVAILABLE',
    'The server cannot audit the request (its audit log failed): not executed',
  );
}

/** @internal One server's recorder. */
export class ServerAudit implements ServerAuditState {
  readonly #log: AuditLog;
  readonly #hashKey: Uint8Array | undefined;
  readonly #required: boolean;
  readonly #maxPending: number;
  readonly #onError: (err: unknown) => void;
  #pending = 0;
  /** Calls wait from this many pending appends, and go on once they are down to #resumeAt. */
  readonly #gateAt: number;
  readonly #resumeAt: number;
  #open: { promise: Promise<void>; resolve: () => void } | undefined;
  #failure: SecureIpcError | undefined;
  /** Records not appended (the log failed, or too many waited), when not `required`. */
  dropped = 0;

  constructor(options: ServerAuditOptions, onError: (err: unknown) => void) {
    if (typeof options !== 'object' || options === null || typeof options.log?.append !== 'function')
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'audit.log must be an open audit log (openAuditLog)');
    const max = options.maxPending ?? DEFAULT_MAX_PENDING_AUDIT;
    if (!Number.isSafeInteger(max) || max < 1 || max > 1_000_000)
      throw createError(
        'SIPC_ERR_INVALID_ARGUMENT',
        'audit.maxPending must be an integer from 1 to 1,000,000',
      );
    if (
      options.hashKey !== undefined &&
      !(options.hashKey instanceof Uint8Array && options.hashKey.byteLength === 32)
    )
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'audit.hashKey must be 32 bytes');
    this.#log = options.log;
    this.#hashKey = options.hashKey === undefined ? undefined : new Uint8Array(options.hashKey);
    this.#required = options.required === true;
    this.#maxPending = max;
    this.#gateAt = Math.max(1, Math.ceil(max / 2));
    this.#resumeAt = Math.floor(this.#gateAt / 2);
    this.#onError = onError;
  }

  /**
   * Back-pressure (docs/audit.md "What a server records"): undefined while fewer than half of
   * `maxPending` appends wait for the disk; else a promise the server's calls wait on before they
   * start (not refused, not dropped), resolved once the backlog is down to a quarter, or the log
   * failed (then call() decides). So a disk slower than the calls slows the calls down instead
   * of losing their records.
   */
  gate(): Promise<void> | undefined {
    if (this.#pending < this.#gateAt || this.#failure !== undefined) return undefined;
    if (this.#open === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => {
        resolve = r;
      });
      this.#open = { promise, resolve };
    }
    return this.#open.promise;
  }

  /** One append settled: wake the waiting calls once the backlog is low enough (or failed). */
  #settled(): void {
    this.#pending--;
    if (this.#open !== undefined && (this.#pending <= this.#resumeAt || this.#failure !== undefined)) {
      const { resolve } = this.#open;
      this.#open = undefined;
      resolve();
    }
  }

  /** The first append failure, if any. */
  get failure(): SecureIpcError | undefined {
    return this.#failure;
  }

  /** True while a `required` server must refuse: the log failed, or its queue is full. */
  get refusing(): boolean {
    return this.#required && (this.#failure !== undefined || this.#pending >= this.#maxPending);
  }

  /** Append one record (not awaited: the log keeps the order). */
  record(type: string, fields: AuditFields): void {
    if (this.#failure !== undefined || this.#pending >= this.#maxPending) {
      this.dropped++;
      return;
    }
    this.#pending++;
    this.#log.append({ type, fields }).then(
      () => this.#settled(),
      (err: unknown) => {
        if (this.#failure === undefined) {
          this.#failure = toSecureIpcError(err, 'SIPC_ERR_AUDIT_CORRUPT');
          this.#onError(this.#failure);
        }
        this.dropped++;
        this.#settled();
      },
    );
  }

  /** A call: false when a `required` server must refuse it (nothing recorded then). */
  call(c: AuditedCall): boolean {
    if (this.refusing) return false;
    const fields: Record<string, AuditFields[string]> = {
      peer: c.peer,
      method: c.method,
      allowed: c.allowed,
    };
    if (c.channelId !== undefined) fields.channel = c.channelId;
    if (this.#hashKey !== undefined && c.allowed && !c.streamed) {
      try {
        fields.h = auditMessageHash(this.#hashKey, c.method, c.params);
      } catch {
        fields.h = null; // params msgpack cannot carry again (cannot happen for decoded params)
      }
    }
    if (c.streamed) fields.streamed = true;
    this.record('rpc.call', fields);
    return true;
  }

  /**
   * The witness built-ins of one channel (docs/audit.md, "Witnesses"): `$audit.checkpoint`
   * answers the log's update for the caller's state; `$audit.cosign` records a cosignature of one
   * of the log's checkpoints, once per checkpoint size on the channel (a peer cannot make the log
   * grow faster than its checkpoints do).
   */
  witnessBuiltins(): [string, Builtin][] {
    let cosigned = -1;
    return [
      [
        AUDIT_CHECKPOINT,
        (p) => {
          const m = paramsMap(p, AUDIT_CHECKPOINT);
          return this.#log.witnessUpdate({ size: m.size as number, epoch: m.epoch as number | undefined });
        },
      ],
      [
        AUDIT_COSIGN,
        (p, caller) => {
          const m = paramsMap(p, AUDIT_COSIGN);
          const c = this.#log.checkCosignature(m.note as string, m.key as Uint8Array);
          if (c.size <= cosigned) return { recorded: false };
          cosigned = c.size;
          const fields: Record<string, AuditFields[string]> = {
            peer: caller.peerId,
            witness: c.name,
            key: c.key,
            size: c.size,
            root: c.root,
            time: c.time,
            sig: c.signature,
          };
          if (caller.channelId !== undefined) fields.channel = caller.channelId;
          this.record('witness.cosign', fields);
          return { recorded: true };
        },
      ],
    ];
  }

  /** A subscribe or publish decision (calls are recorded by `call`). */
  decision(channelId: number | undefined, d: PolicyDecision): void {
    if (d.action === 'call') return;
    const fields: Record<string, AuditFields[string]> = {
      peer: d.who,
      action: d.action,
      what: d.what,
      allowed: d.allowed,
      roles: [...d.roles],
    };
    if (channelId !== undefined) fields.channel = channelId;
    this.record('policy.decision', fields);
  }
}
