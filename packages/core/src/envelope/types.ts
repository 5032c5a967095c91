/**
 * Envelope v1: the msgpack map every RPC message travels in (normative text in docs/protocol.md,
 * "Envelope v1 and RPC"): its kinds, fields, limits and the decode result. Validation is strict on
 * purpose: v1 is a closed format (a future format bumps `v`), so an unknown field is as
 * suspicious as a wrong type.
 */
import type { SecureIpcError } from '../errors.js';

/** The envelope format version this module speaks. */
export const ENVELOPE_VERSION = 1;

/** Envelope kinds (field `k`). */
export const EnvelopeKind = {
  /** A call: `id`, `m` = method, `p` = params, optional `h`. */
  Request: 1,
  /** A successful unary answer to request `id`. */
  Response: 2,
  /** A failed answer to request `id` (also ends a stream): `e` = `{ code, message, data? }`. */
  Error: 3,
  /** A one-way message: `m` = topic, `p` = payload, no `id`. */
  Event: 4,
  /** The requester gives up on request `id`. */
  Cancel: 5,
  /** One item of the stream answering request `id`. */
  StreamItem: 6,
  /** The stream answering request `id` ended normally. */
  StreamEnd: 7,
  /** The requester grants `p` more stream items for request `id` (flow control). */
  Credit: 8,
  /** Version 2: one item of request `id`'s streamed input (requester → responder). */
  InputItem: 9,
  /** Version 2: request `id`'s streamed input ended normally (requester → responder). */
  InputEnd: 10,
  /** Version 2: the responder grants `p` more input items for request `id`. */
  InputCredit: 11,
  /** Version 2: the responder reads no more of request `id`'s input. */
  InputStop: 12,
  /**
   * Version 3: going away; `id` (may be 0) is the highest of the receiver's requests the sender
   * dispatches: it runs none above it and closes the channel once those are answered.
   */
  GoingAway: 13,
} as const;

/** The highest kind of each envelope-carrying protocol version (9-12 need version 2, 13 version 3). */
export function maxKindOf(protocolVersion: number): EnvelopeKind {
  if (protocolVersion >= 3) return EnvelopeKind.GoingAway;
  return protocolVersion >= 2 ? EnvelopeKind.InputStop : EnvelopeKind.Credit;
}

/** A kind number. */
export type EnvelopeKind = (typeof EnvelopeKind)[keyof typeof EnvelopeKind];

/** Validated headers (field `h`). */
export interface EnvelopeHeaders {
  /** Milliseconds the caller will wait for the answer. */
  timeout?: number;
  /** Idempotency key: the request runs at most once per key (per peer) within the server's window. */
  idem?: string;
  /** W3C traceparent of the caller's span. */
  trace?: string;
  /** Version 2: the params are a streamed input (kinds 9 and 10 follow; no `p`). */
  stream?: true;
  /** Version 3: the caller's attempt number of this call, 2-255 (absent: the first attempt). */
  attempt?: number;
  /**
   * Version 4: the W3C tracestate that goes with `trace` (never without it): at most 512
   * characters and 32 list-members, W3C Trace Context Level 1's grammar (docs/protocol.md,
   * "Fields", `h.tracestate`; checked by `isTracestate`).
   */
  tracestate?: string;
}

/** An error as it crosses the wire: code and message only (plus optional data the thrower chose). */
export interface WireError {
  /** A stable error code, e.g. `SIPC_ERR_FORBIDDEN` or an application's own. */
  code: string;
  /** A human-readable message; never a stack trace. */
  message: string;
  /** Optional machine-readable detail chosen by the handler. */
  data?: unknown;
}

/** A validated envelope. */
export interface Envelope {
  /** The envelope version: set by the encoder, always 1 after validation. */
  v?: number;
  /** Kind of message. */
  k: EnvelopeKind;
  /** Request id (absent only on events). */
  id?: number;
  /** Method (requests) or topic (events). */
  m?: string;
  /** Payload. */
  p?: unknown;
  /** Error (kind 3). */
  e?: WireError;
  /** Headers (requests). */
  h?: EnvelopeHeaders;
}

/** Size limits applied while validating. */
export interface EnvelopeLimits {
  /** Longest method or topic name in UTF-16 code units (default 256). */
  maxNameLength?: number;
  /** Longest error code (default 64) and error message (default 1024). */
  maxErrorCodeLength?: number;
  /** Longest error message (default 1024). */
  maxErrorMessageLength?: number;
  /** Longest idempotency key (default 128). */
  maxIdempotencyKeyLength?: number;
  /** Largest stream credit grant in one envelope (default 65536). */
  maxCredit?: number;
}

/** The limits used when none are given. */
export const DEFAULT_ENVELOPE_LIMITS: Readonly<Required<EnvelopeLimits>> = Object.freeze({
  maxNameLength: 256,
  maxErrorCodeLength: 64,
  maxErrorMessageLength: 1024,
  maxIdempotencyKeyLength: 128,
  maxCredit: 65536,
});

/** The result of decoding: either a valid envelope or why not, with the id if one could be read. */
export type DecodeResult =
  | { ok: true; envelope: Envelope }
  | { ok: false; error: SecureIpcError; id: number | undefined; kind: number | undefined };
