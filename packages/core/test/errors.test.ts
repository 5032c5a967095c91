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

// The table in docs/errors.md, one row per line: | `CODE` | ClassName | when |
function documentedRows(): Array<{ code: string; name: string; line: number }> {
  const doc = readFileSync(new URL('../../../../docs/errors.md', import.meta.url), 'utf8');
  const rows: Array<{ code: string; name: string; line: number }> = [];
  doc.split('\n').forEach((text, i) => {
    const row = /^\|\s*`(SIPC_ERR_[A-Z_]+)`\s*\|\s*([A-Za-z]+)\s*\|/.exec(text);
    if (row) rows.push({ code: row[1]!, name: row[2]!, line: i + 1 });
  });
  return rows;
}

test('docs/errors.md and the error table have the same rows, each code with its class on one line', (t) => {
  const rows = documentedRows();
  const documented = rows.map((r) => r.code);
  t.is(new Set(documented).size, documented.length, 'a code is documented twice');
  const table: readonly string[] = codes;
  t.deepEqual(
    codes.filter((c) => !documented.includes(c)),
    [],
    'in the table, missing from docs/errors.md',
  );
  t.deepEqual(
    documented.filter((c) => !table.includes(c)),
    [],
    'in docs/errors.md, not in the table',
  );
  for (const { code, name, line } of rows)
    t.is(name, ERROR_TABLE[code as ErrorCode]?.[0], `docs/errors.md:${line}: class of ${code}`);
});
