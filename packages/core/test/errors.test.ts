import { readFileSync } from 'node:fs';
import test from 'ava';
import {
  createError,
  ERROR_TABLE,
  type ErrorCode,
  Errors,
  isSecureIpcError,
  toSecureIpcError,
} from '../src/errors.js';

const codes = Object.keys(ERROR_TABLE) as ErrorCode[];

for (const code of codes) {
  test(`error ${code}: typed, branded, named, with default message`, (t) => {
    const cause = new Error('local reason');
    const err = createError(code, undefined, { cause });
    const [name, message] = ERROR_TABLE[code];
    t.is(err.code, code);
    t.is(err.name, name);
    t.is(err.message, message);
    t.is(err.cause, cause);
    t.true(err instanceof Error);
    t.true(err instanceof (Errors as Record<string, new () => Error>)[name]!);
    t.true(isSecureIpcError(err, code));
  });
}

test('codes are unique and prefixed, class names unique', (t) => {
  const names = codes.map((c) => ERROR_TABLE[c][0]);
  t.is(new Set(names).size, names.length);
  for (const c of codes) t.regex(c, /^SIPC_ERR_[A-Z_]+$/);
});

test('isSecureIpcError rejects look-alikes and checks the code', (t) => {
  t.false(isSecureIpcError(new Error('x')));
  t.false(isSecureIpcError({ code: 'SIPC_ERR_TIMEOUT' }));
  t.false(isSecureIpcError(null));
  t.false(isSecureIpcError(createError('SIPC_ERR_TIMEOUT'), 'SIPC_ERR_ABORTED'));
});

test('toSecureIpcError keeps typed errors and wraps others with cause', (t) => {
  const typed = createError('SIPC_ERR_PROTOCOL');
  t.is(toSecureIpcError(typed, 'SIPC_ERR_TIMEOUT'), typed);
  const raw = new Error('boom');
  const wrapped = toSecureIpcError(raw, 'SIPC_ERR_CONNECT_FAILED');
  t.is(wrapped.code, 'SIPC_ERR_CONNECT_FAILED');
  t.is(wrapped.cause, raw);
});

test('docs/errors.md lists every code', (t) => {
  const doc = readFileSync(new URL('../../../../docs/errors.md', import.meta.url), 'utf8');
  for (const code of codes) t.true(doc.includes(`\`${code}\``), `${code} missing from docs/errors.md`);
});
