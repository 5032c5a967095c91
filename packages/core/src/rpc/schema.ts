/**
 * Run-time validation of a method's params (and optionally its result) with any Standard Schema
 * (https://standardschema.dev: zod, valibot, arktype and others implement it). The interface is
 * copied below, as the spec invites, so core depends on no schema library and not even on
 * `@standard-schema/spec` (a test checks the copy against that package, both ways).
 *
 *   params ─► params schema ─ok─► handler(value) ─► result ─► result schema ─ok─► reply
 *               │ issues                                           │ issues
 *               ▼                                                  ▼
 *   PUBLIC SIPC_ERR_INVALID_ARGUMENT, `data.issues`     opaque SIPC_ERR_HANDLER to the caller,
 *   (paths and messages, bounded; never the value)      the issues reported on the server
 *
 * A schema that answers synchronously keeps the handler's start synchronous, in the order the
 * peer sent its requests (as without a schema); an async one starts the handler when it settles.
 */
import { PublicError } from '../envelope/wire-errors.js';
import { createError } from '../errors.js';
import type { HandlerContext } from './service-types.js';

/** A Standard Schema (v1), copied from `@standard-schema/spec` (the spec permits it). */
export interface StandardSchemaV1<Input = unknown, Output = Input> {
  /** The Standard Schema properties. */
  readonly '~standard': StandardSchemaProps<Input, Output>;
}

/** The Standard Schema properties (`StandardSchemaV1.Props` in the spec). */
export interface StandardSchemaProps<Input = unknown, Output = Input> {
  /** The version number of the standard. */
  readonly version: 1;
  /** The vendor name of the schema library. */
  readonly vendor: string;
  /** Validates an unknown value; may answer with a promise. */
  readonly validate: (
    value: unknown,
    options?: { readonly libraryOptions?: Record<string, unknown> | undefined } | undefined,
  ) => StandardSchemaResult<Output> | Promise<StandardSchemaResult<Output>>;
  /** The schema's input and output types (type-level only). */
  readonly types?: { readonly input: Input; readonly output: Output } | undefined;
}

/** What `validate` answers: the value, or the issues (`StandardSchemaV1.Result` in the spec). */
export type StandardSchemaResult<Output> =
  | { readonly value: Output; readonly issues?: undefined }
  | { readonly issues: ReadonlyArray<StandardSchemaIssue> };

/** One validation issue (`StandardSchemaV1.Issue` in the spec). */
export interface StandardSchemaIssue {
  /** The error message of the issue. */
  readonly message: string;
  /** Where in the value, if anywhere. */
  readonly path?: ReadonlyArray<PropertyKey | { readonly key: PropertyKey }> | undefined;
}

/** The type a schema accepts. */
export type InferSchemaInput<T extends StandardSchemaV1<any, any>> = NonNullable<
  T['~standard']['types']
>['input'];

/** The type a schema produces (what the handler gets). */
export type InferSchemaOutput<T extends StandardSchemaV1<any, any>> = NonNullable<
  T['~standard']['types']
>['output'];

/** The schemas of one method, given to `server.handle(method, schemas, handler)`. */
export interface MethodSchemas<
  P extends StandardSchemaV1<any, any> | undefined = StandardSchemaV1<any, any> | undefined,
  R extends StandardSchemaV1<any, any> | undefined = StandardSchemaV1<any, any> | undefined,
> {
  /** Validates (and may transform) the params before the handler runs. */
  readonly params?: P;
  /**
   * Validates (and may transform) a unary result before it is sent; a failure is a bug of this
   * server: the caller gets an opaque SIPC_ERR_HANDLER, the server a `handlerError`. A stream's
   * items are not validated (a stream result with a result schema fails that way).
   */
  readonly result?: R;
}

/** One issue as it crosses to the caller in `data.issues` of SIPC_ERR_INVALID_ARGUMENT. */
export interface WireIssue {
  /** Path segments (property names and array indexes), at most `MAX_ISSUE_PATH` of them. */
  readonly path: readonly (string | number)[];
  /** The schema's message, at most `MAX_ISSUE_MESSAGE_BYTES` UTF-8 bytes. */
  readonly message: string;
}

/** What `data` of a params validation error holds. */
export interface ValidationErrorData {
  /** The first `MAX_ISSUES` issues. */
  readonly issues: readonly WireIssue[];
  /** How many issues the schema reported (more than `issues.length` when cut). */
  readonly total: number;
}

/** Most issues that cross to the caller (docs/limits.md). */
export const MAX_ISSUES = 16;
/** Most path segments per issue; deeper paths keep their first ones. */
export const MAX_ISSUE_PATH = 16;
/** Longest issue message and path key, in UTF-8 bytes (cut at a character boundary). */
export const MAX_ISSUE_MESSAGE_BYTES = 256;

/** `text` cut to at most `max` UTF-8 bytes, never inside a character. */
function truncateUtf8(text: string, max: number): string {
  if (text.length * 3 <= max || Buffer.byteLength(text, 'utf8') <= max) return text;
  const bytes = Buffer.from(text, 'utf8');
  let end = max;
  while (end > 0 && (bytes[end]! & 0xc0) === 0x80) end--; // back to the start of a character
  return bytes.subarray(0, end).toString('utf8');
}

function segmentKey(segment: PropertyKey | { readonly key: PropertyKey }): string | number {
  const key = typeof segment === 'object' && segment !== null ? segment.key : segment;
  if (typeof key === 'number' && Number.isSafeInteger(key)) return key;
  return truncateUtf8(String(key), MAX_ISSUE_MESSAGE_BYTES);
}

/** The issues as they may cross: paths and messages only (never the value), bounded. */
export function wireIssues(issues: ReadonlyArray<StandardSchemaIssue>): ValidationErrorData {
  const out: WireIssue[] = [];
  for (const issue of issues.slice(0, MAX_ISSUES)) {
    const path = (issue.path ?? []).slice(0, MAX_ISSUE_PATH).map(segmentKey);
    const message = truncateUtf8(String(issue.message), MAX_ISSUE_MESSAGE_BYTES);
    out.push({ path, message });
  }
  return { issues: out, total: issues.length };
}

/** `items[3].when` for a path (the form the value codec's errors use). */
function pathText(path: readonly (string | number)[]): string {
  let text = '';
  for (const key of path) text += typeof key === 'number' ? `[${key}]` : text === '' ? key : `.${key}`;
  return text;
}

/** One line: `params.items[3].when: Expected a date (and 2 more issues)`. */
function summary(root: string, data: ValidationErrorData): string {
  const first = data.issues[0];
  const where =
    first === undefined ? root : `${root}${first.path.length > 0 ? '.' : ''}${pathText(first.path)}`;
  const more = data.total > 1 ? ` (and ${data.total - 1} more issue${data.total > 2 ? 's' : ''})` : '';
  return `${where}: ${first?.message ?? 'invalid'}${more}`;
}

function isSchema(value: unknown): value is StandardSchemaV1 {
  const props = (value as { '~standard'?: { version?: unknown; validate?: unknown } } | null)?.['~standard'];
  return (
    typeof props === 'object' && props !== null && props.version === 1 && typeof props.validate === 'function'
  );
}

/** Throw SIPC_ERR_INVALID_ARGUMENT unless `schemas` holds only Standard Schemas (at registration). */
export function assertMethodSchemas(method: string, schemas: unknown): asserts schemas is MethodSchemas {
  if (typeof schemas !== 'object' || schemas === null)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `The schemas of ${method} must be an object`);
  for (const key of ['params', 'result'] as const) {
    const schema = (schemas as Record<string, unknown>)[key];
    if (schema !== undefined && !isSchema(schema))
      throw createError(
        'SIPC_ERR_INVALID_ARGUMENT',
        `The ${key} schema of ${method} is not a Standard Schema v1 (no '~standard' with version 1 and validate)`,
      );
  }
}

type Handler = (params: any, context: HandlerContext) => unknown;

/** Run `then` on the validated value, synchronously when the schema answered synchronously. */
function validate(
  schema: StandardSchemaV1,
  value: unknown,
  then: (result: StandardSchemaResult<unknown>) => unknown,
): unknown {
  const result = schema['~standard'].validate(value);
  return result instanceof Promise ? result.then(then) : then(result);
}

function isThenable(value: unknown): value is PromiseLike<unknown> {
  return typeof (value as { then?: unknown } | null)?.then === 'function';
}

/**
 * The handler that validates params before `handler` and its result after it. A params failure
 * throws a `PublicError` SIPC_ERR_INVALID_ARGUMENT whose `data` is `ValidationErrorData`; a
 * result failure throws a plain SIPC_ERR_HANDLER (not public: the dispatcher sends it opaque and
 * reports it, issues included, in `details`). A schema that throws is a server bug too (opaque).
 */
export function validatingHandler(method: string, schemas: MethodSchemas, handler: Handler): Handler {
  const { params: paramsSchema, result: resultSchema } = schemas;
  const checkResult =
    resultSchema === undefined
      ? undefined
      : (value: unknown) =>
          validate(resultSchema, value, (r) => {
            if (r.issues === undefined) return r.value;
            const data = wireIssues(r.issues);
            throw createError(
              'SIPC_ERR_HANDLER',
              `The result of ${method} failed its schema: ${summary('result', data)}`,
              {
                details: { method, ...data },
              },
            );
          });
  const run = (value: unknown, context: HandlerContext): unknown => {
    const out = handler(value, context);
    if (checkResult === undefined) return out;
    return isThenable(out) ? Promise.resolve(out).then(checkResult) : checkResult(out);
  };
  if (paramsSchema === undefined) return run;
  return (params, context) =>
    validate(paramsSchema, params, (r) => {
      if (r.issues !== undefined) {
        const data = wireIssues(r.issues);
        throw new PublicError('SIPC_ERR_INVALID_ARGUMENT', `Invalid ${summary('params', data)}`, { data });
      }
      return run(r.value, context);
    });
}
