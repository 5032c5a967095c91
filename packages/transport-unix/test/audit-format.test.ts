// The names and escapes of audit-format.ts, on their own (the datagrams are tested over real
// sockets in audit-forward.test.ts).
import test from 'ava';
import { asciiText, journalFieldName, sdParamName, sdParamValue } from '../src/audit-format.js';

const JOURNAL_NAME = /^[A-Z][A-Z0-9_]{0,63}$/;
const SD_NAME = /^[!#-<>-\\^-~]{1,32}$/;

test('journald field names: camelCase as upper snake case, anything else sanitized and tagged, all valid', (t) => {
  t.is(journalFieldName('channel'), 'SECURE_IPC_AUDIT_F_CHANNEL');
  t.is(journalFieldName('durationMs'), 'SECURE_IPC_AUDIT_F_DURATION_MS');
  t.is(journalFieldName('osIdentity'), 'SECURE_IPC_AUDIT_F_OS_IDENTITY');
  t.is(journalFieldName('h'), 'SECURE_IPC_AUDIT_F_H');
  const odd = ['a.b', 'a_b', 'A_B', 'a-b', '_x', '9lives', 'ünï', '', 'x'.repeat(200), `${'y'.repeat(60)}Z`];
  const names = odd.map(journalFieldName);
  for (const [i, n] of names.entries()) {
    t.regex(n, JOURNAL_NAME, `${JSON.stringify(odd[i])} → ${n}`);
    t.true(n.length <= 64);
  }
  t.is(new Set(names).size, odd.length, 'names that sanitize alike stay apart');
  t.regex(journalFieldName('a.b'), /^SECURE_IPC_AUDIT_F_A_B_[0-9A-F]{8}$/);
  t.is(journalFieldName('a.b'), journalFieldName('a.b'), 'deterministic');
});

test('syslog PARAM-NAMEs: a valid SD-NAME as it is, anything else sanitized and tagged', (t) => {
  t.is(sdParamName('durationMs'), 'durationMs');
  t.is(sdParamName('a.b-c_d'), 'a.b-c_d');
  const odd = ['a b', 'a=b', 'a]b', 'a"b', 'a_b_', 'ü', '', 'x'.repeat(33)];
  const names = odd.map(sdParamName);
  for (const n of names) t.regex(n, SD_NAME);
  t.is(new Set(names).size, odd.length);
});

test('PARAM-VALUE escaping: " \\ ] by a backslash (RFC 5424 §6.3.3), control characters as \\uXXXX', (t) => {
  t.is(sdParamValue('plain ü'), 'plain ü');
  t.is(sdParamValue('a"]\\b'), 'a\\"\\]\\\\b');
  t.is(sdParamValue('l1\nl2\r\u0000\u007f\u0085\u2028'), 'l1\\u000al2\\u000d\\u0000\\u007f\\u0085\\u2028');
  t.is(sdParamValue('\\u000a'), '\\\\u000a', 'a literal backslash-u stays distinguishable');
});

test('free text is printable ASCII', (t) => {
  t.is(asciiText('rpc.call'), 'rpc.call');
  t.is(asciiText('x\ny\\ü'), 'x\\u000ay\\\\\\u00fc');
});
