/**
 * Errors on the wire (docs/protocol.md, "Errors"): what a thrown value becomes when it crosses to
 * the peer (code and message only), and what a received error becomes locally.
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
import { ERROR_CODE } from './validate.js';

/**
 * The wire form of any thrown value: typed errors keep code and message, anything else is generic.
 * A `RemoteError` crosses with the peer's code it carries (`remoteCode`), so a proxy passes it on.
 */
export function toWireError(err: unknown): WireError {
  if (typeof err === 'object' && err !== null) {
    const { message, data } = err as { message?: unknown; data?: unknown };
    const code = isSecureIpcError(err, 'SIPC_ERR_REMOTE') ? err.remoteCode : (err as { code?: unknown }).code;
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

/**
 * Turn a wire error into a local error, `details.remote` set: a code of the error table gives its
 * typed class; any other code (an application's own) a `RemoteError` (SIPC_ERR_REMOTE) carrying it
 * as `remoteCode`, with the peer's `data`.
 */
export function fromWireError(wire: WireError): SecureIpcError {
  if (wire.code !== 'SIPC_ERR_REMOTE' && Object.hasOwn(ERROR_TABLE, wire.code)) {
    const err = createError(wire.code as ErrorCode, wire.message, { details: { remote: true } });
    if (wire.data !== undefined) (err.details as Record<string, unknown>).data = wire.data;
    return err;
  }
  return new RemoteError(wire.message, { remoteCode: wire.code, data: wire.data, details: { remote: true } });
}
