/**
 * One value as bytes, by the same rules as an envelope's `p` (docs/protocol.md, "Values"): what
 * a bus body carries (docs/bus.md), so a value crosses a broker exactly as it crosses a channel.
 * Decoding applies the decode budget (section 8.1) before anything is allocated.
 */
import { createError } from '../errors.js';
import { decodeBudgetRefusal } from './decode-budget.js';
import { decodeValue, encodeValue, ValueDecodeError } from './value-codec.js';

/**
 * Encode `value` as msgpack by the wire's value rules; SIPC_ERR_INVALID_ARGUMENT naming the
 * path (under `what`) of anything that cannot cross (a function, a cycle, a lone surrogate...).
 */
export function encodeWireValue(value: unknown, what = 'value'): Uint8Array {
  return encodeValue(value, what);
}

/**
 * Decode bytes a peer sent as one value: refused before decoding unless they fit the decode
 * budget, then by the value model (valid UTF-8, no duplicate keys, registered exts). Every
 * refusal is SIPC_ERR_INVALID_ARGUMENT saying why under `what`, never quoting the bytes.
 */
export function decodeWireValue(bytes: Uint8Array, what = 'value'): unknown {
  if (!(bytes instanceof Uint8Array)) throw createError('SIPC_ERR_INVALID_ARGUMENT', `${what} must be bytes`);
  const refusal = decodeBudgetRefusal(bytes);
  if (refusal !== undefined)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `${what}: msgpack value refused: ${refusal}`);
  try {
    return decodeValue(bytes);
  } catch (err) {
    if (err instanceof ValueDecodeError || err instanceof RangeError)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', `${what}: ${err.message}`);
    throw err;
  }
}
