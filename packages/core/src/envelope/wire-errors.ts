/**
 * Errors on the wire (docs/protocol.md, "Requests, responses and errors"): what a handler's thrown
 * value becomes when it crosses to the peer, and what a received error becomes locally.
 *
 * Opaque by default: a thrown value crosses with its message and data only if the handler marked
 * it public (`PublicError`); a typed secure-ipc error meant for the peer (PEER_CODES) crosses with
 * its code and the table's message; anything else crosses as SIPC_ERR_HANDLER with a correlation
 * id only, and the server reports the real error locally under that id (the dispatcher does).
 */
import {
  createError,
  ERROR_TABLE,
  type ErrorCode,
  isSecureIpcError,
  RemoteError,
  type SecureIpcError,
} from '../errors.js';
import type { WireError } from './types.js';
import { ERROR_CODE, exceedsUtf8 } from './validate.js';

const PUBLIC_BRAND = Symbol.for('@secure-ipc/public-error');
/** The code only a responder's own refusal before dispatch carries (protocol version 3). */
const NOT_EXECUTED_CODE = 'SIPC_ERR_UNAVAILABLE';
const MAX_CODE_LENGTH = 64;
const MAX_MESSAGE_LENGTH = 1024;
/** The longest correlation id a receiver takes from `data.correlationId`, in UTF-8 bytes. */
const MAX_CORRELATION_ID_LENGTH = 128;

/**
 * `message` as it crosses the wire: well-formed UTF-8 (a lone surrogate becomes U+FFFD) of at
 * most MAX_MESSAGE_LENGTH bytes, cut at a character boundary when longer (docs/protocol.md).
 */
export function wireMessage(message: string): string {
  const bytes = Buffer.from(message, 'utf8');
  if (bytes.length <= MAX_MESSAGE_LENGTH)
    return bytes.length === message.length ? message : bytes.toString('utf8');
  let end = MAX_MESSAGE_LENGTH;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // never inside a character
  return bytes.toString('utf8', 0, end);
}

/** Options of a `PublicError`. */
export interface PublicErrorOptions {
  /** Machine-readable detail for the caller (any msgpack value); it crosses the wire. */
  data?: unknown;
  /** The local reason; it never crosses the wire. */
  cause?: unknown;
}

/**
 * An error a handler means for its caller: it crosses the wire with its `code`, `message` and
 * `data`; a message longer than 1,024 UTF-8 bytes crosses cut to that, at a character boundary
 * (the local error keeps it whole). `code` is the application's own (e.g. `SHOP_EMPTY`, which the
 * caller gets as a `RemoteError` with that `remoteCode`) or a code of the error table (the caller
 * gets its typed class), in the wire's syntax (1-64 characters of `[A-Za-z0-9_.:-]`); not
 * `SIPC_ERR_REMOTE`. Anything else a handler throws reaches the caller as `SIPC_ERR_HANDLER`.
 */
export class PublicError extends Error {
  /** The code the caller gets. */
  readonly code: string;
  /** The detail the caller gets (undefined if none). */
  readonly data: unknown;
  /** Marks it public (crosses the wire), also for a `PublicError` of another copy of this package. */
  readonly [PUBLIC_BRAND] = true;

  constructor(code: string, message: string, options: PublicErrorOptions = {}) {
    if (
      typeof code !== 'string' ||
      code.length > MAX_CODE_LENGTH ||
      !ERROR_CODE.test(code) ||
      code === RemoteError.code
    )
      throw createError(
        'SIPC_ERR_INVALID_ARGUMENT',
        'A PublicError code is 1-64 characters of [A-Za-z0-9_.:-], and not SIPC_ERR_REMOTE',
      );
    if (typeof message !== 'string')
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'A PublicError message is a string');
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'PublicError';
    this.code = code;
    this.data = options.data;
  }
}

/**
 * The typed errors that are about the request itself, not the handler's internals: thrown by a
 * handler (a proxy's own call that timed out, a handler refusing with SIPC_ERR_BUSY), they cross
 * with their code and the table's message (never the instance's message or details).
 */
export const PEER_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'SIPC_ERR_FORBIDDEN',
  'SIPC_ERR_NO_SUCH_METHOD',
  'SIPC_ERR_TIMEOUT',
  'SIPC_ERR_CANCELLED',
  'SIPC_ERR_BUSY',
  'SIPC_ERR_IDEMPOTENCY_CONFLICT',
]);

/** The wire form of an error this end sends on its own behalf (one of ours): code and message. */
export function ownWireError(err: SecureIpcError): WireError {
  return { code: err.code, message: err.message };
}

/**
 * The wire form of a handler's thrown value if it may cross: a `PublicError` (code, message,
 * data) or a typed error with one of PEER_CODES (code, default message); undefined for anything
 * else, which crosses as `opaqueWireError`. A `RemoteError` (a proxy rethrowing what its own peer
 * answered) is not public: that peer's message was meant for the proxy, not for the proxy's caller.
 * Nor is `SIPC_ERR_UNAVAILABLE`, typed or public: it certifies that no handler ran
 * (docs/protocol.md, "Retries, pushback and graceful drain"), which a handler cannot say.
 */
export function publicWireError(err: unknown): WireError | undefined {
  if (typeof err !== 'object' || err === null) return undefined;
  if ((err as Record<symbol, unknown>)[PUBLIC_BRAND] === true) {
    const { code, message, data } = err as PublicError;
    if (code === NOT_EXECUTED_CODE) return undefined;
    const wire: WireError = { code, message: wireMessage(message) };
    if (data !== undefined) wire.data = data;
    return wire;
  }
  if (isSecureIpcError(err) && PEER_CODES.has(err.code))
    return { code: err.code, message: ERROR_TABLE[err.code][1] };
  return undefined;
}

/**
 * What crosses for a failure that is not public: SIPC_ERR_HANDLER, the correlation id in the
 * message (for a peer that shows messages) and as `data.correlationId`, nothing else.
 */
export function opaqueWireError(correlationId: string): WireError {
  return {
    code: 'SIPC_ERR_HANDLER',
    message: `The handler failed (correlation id ${correlationId})`,
    data: { correlationId },
  };
}

/**
 * Turn a wire error into a local error, `details.remote` set: a code of the error table gives its
 * typed class; any other code (an application's own) a `RemoteError` (SIPC_ERR_REMOTE) carrying it
 * as `remoteCode`, with the peer's `data`. A SIPC_ERR_HANDLER's correlation id is also
 * `details.correlationId`; a SIPC_ERR_UNAVAILABLE (the request was not executed) has
 * `details.notExecuted: true`.
 */
export function fromWireError(wire: WireError): SecureIpcError {
  if (wire.code !== 'SIPC_ERR_REMOTE' && Object.hasOwn(ERROR_TABLE, wire.code)) {
    const err = createError(wire.code as ErrorCode, wire.message, { details: { remote: true } });
    const details = err.details as Record<string, unknown>;
    if (wire.data !== undefined) details.data = wire.data;
    if (wire.code === NOT_EXECUTED_CODE) details.notExecuted = true;
    const id = (wire.data as { correlationId?: unknown } | undefined)?.correlationId;
    if (
      wire.code === 'SIPC_ERR_HANDLER' &&
      typeof id === 'string' &&
      id.length > 0 &&
      !exceedsUtf8(id, MAX_CORRELATION_ID_LENGTH)
    )
      details.correlationId = id;
    return err;
  }
  return new RemoteError(wire.message, { remoteCode: wire.code, data: wire.data, details: { remote: true } });
}
