/** The integer-range check of the resilience options (breaker, lanes, reconnecting client). */
import { createError } from '../errors.js';

/**
 * `value` when it is an integer in [min, max]; else SIPC_ERR_INVALID_ARGUMENT
 * "`name` must be an integer in [min, max]".
 */
export function integerIn(name: string, value: unknown, min: number, max: number): number {
  if (!Number.isInteger(value) || (value as number) < min || (value as number) > max)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `${name} must be an integer in [${min}, ${max}]`);
  return value as number;
}
