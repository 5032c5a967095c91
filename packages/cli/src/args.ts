/**
 * Strict argument parsing shared by every command (node:util parseArgs): unknown options and
 * missing values are usage errors with a clear message.
 */
import { type ParseArgsConfig, parseArgs } from 'node:util';

import { decodeKey } from '@secure-ipc/core';
import { CliError } from './io.js';

type Options = NonNullable<ParseArgsConfig['options']>;

/** The `--json` option of every command: results and errors as one JSON object per line on stdout. */
export const jsonOption = { json: { type: 'boolean' } } as const;

/** Parse `argv` against `options`, turning parseArgs' errors into usage errors. */
export function parse<O extends Options>(
  argv: string[],
  options: O,
  allowPositionals = false,
): {
  values: {
    [K in keyof O]?: O[K]['multiple'] extends true
      ? string[]
      : O[K]['type'] extends 'boolean'
        ? boolean
        : string;
  };
  positionals: string[];
} {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals }) as never;
  } catch (err) {
    // Its first line only: the rest is advice for other spellings, or about positionals.
    const [first = ''] = (err as Error).message.split('\n');
    throw new CliError(first.replace(/\. To specify a positional.*$/s, ''));
  }
}

/** A required string option. */
export function required(value: string | undefined, name: string): string {
  if (value === undefined || value === '') throw new CliError(`missing required option --${name}`);
  return value;
}

/** A base64 public key given on the command line. */
export function publicKeyArg(text: string, name: string): Uint8Array {
  try {
    return decodeKey(text.trim());
  } catch {
    throw new CliError(`--${name} must be a public key: 44 characters of standard base64 (32 bytes)`, 3);
  }
}

/** A positive integer option (with default). */
export function positiveInt(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || Number(value) < 1 || !Number.isSafeInteger(Number(value)))
    throw new CliError(`--${name} must be a positive integer`);
  return Number(value);
}

/** A non-negative integer option (with default). */
export function nonNegativeInt(value: string | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value)))
    throw new CliError(`--${name} must be a non-negative integer`);
  return Number(value);
}
