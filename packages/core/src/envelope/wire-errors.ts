/**
 * Errors on the wire (docs/protocol.md, "Errors"): what a thrown value becomes when it crosses to
 * the peer (code and message only), and what a received error becomes locally.
 */
import { createError, ERROR_TABLE, type ErrorCode } from '../errors.js';
import type { WireError } from './types.js';
import { ERROR_CODE } from './validate.js';

/** The wire form of any thrown value: typed errors keep code and message, anything else is generic. */
export function toWireError(err: unknown): WireError {
  if (typeof err === 'object' && err !== null) {
    const { code, message, data } = err as { code?: unknown; message?: unknown; data?: unknown };
    if (typeof code === 'string' && ERROR_CODE.test(code) && code.length <= 64) {
      const wire: WireError = { code, message: typeof message === 'string' ? message.slice(0, 1024) : '' };
      if (data !== undefined) wire.data = data;
      return wire;
    }
    if (err instanceof Error) return { code: 'SIPC_ERR_HANDLER', message: err.message.slice(0, 1024) };
  }
  // Only code and message ever cross: never the stack, the cause or a thrown non-Error value.
  return { code: 'SIPC_ERR_HANDLER', message: 'The handler failed' };
}

/** Error received from the peer, rebuilt as a typed local error (the wire code kept as `code`). */
export class RemoteError extends Error {
  /** The code the peer sent (may be an application's own code). */
  readonly code: string;
  /** Optional machine-readable detail the peer sent. */
  readonly data: unknown;
  constructor(wire: WireError) {
    super(wire.message);
    this.name = 'RemoteError';
    this.code = wire.code;
    this.data = wire.data;
  }
}

/** Turn a wire error into a local error: a known SIPC code gives the typed class, anything else a RemoteError. */
export function fromWireError(wire: WireError): Error {
  if (Object.hasOwn(ERROR_TABLE, wire.code)) {
    const err = createError(wire.code as ErrorCode, wire.message, { details: { remote: true } });
    if (wire.data !== undefined) (err.details as Record<string, unknown>).data = wire.data;
    return err;
  }
  return new RemoteError(wire);
}
