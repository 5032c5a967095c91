// The pieces every audit forwarder shares (otel, journald, syslog): severity and field text.
import test from 'ava';
import { auditFieldText, auditSeverity } from '../src/index.js';

test('auditSeverity: denials, failed handshakes and revocations are warnings, the rest info', (t) => {
  const cases: [string, Record<string, unknown>, 'warn' | 'info'][] = [
    ['rpc.call', { allowed: false, method: 'm' }, 'warn'],
    ['policy.decision', { allowed: false }, 'warn'],
    ['rpc.call', { allowed: true }, 'info'],
    ['rpc.call', { allowed: 'false' }, 'info'], // only the boolean false is a denial
    ['handshake.failed', {}, 'warn'],
    ['revocation', { reason: 'expired' }, 'warn'],
    ['channel.open', {}, 'info'],
    ['epoch', { e: 1 }, 'info'],
  ];
  for (const [type, fields, want] of cases)
    t.is(auditSeverity({ type, fields }), want, `${type} ${JSON.stringify(fields)}`);
});

test('auditFieldText: strings as they are, scalars by String(), bytes base64, the rest JSON', (t) => {
  t.is(auditFieldText('a "b"\n]'), 'a "b"\n]');
  t.is(auditFieldText(42), '42');
  t.is(auditFieldText(false), 'false');
  t.is(auditFieldText(null), 'null');
  t.is(auditFieldText(new Uint8Array([0xfb, 0xff])), '+/8=');
  t.is(auditFieldText(['a', 1]), '["a",1]');
  t.is(auditFieldText({ k: new Uint8Array([1]), n: [true] }), '{"k":"AQ==","n":[true]}');
});
