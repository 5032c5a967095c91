/**
 * What every forwarder of `secure-ipc:audit.append` shares (docs/audit.md, "Forwarding"): which
 * records are warnings, and the text form of a field's value. `@secure-ipc/otel` (OpenTelemetry
 * logs) and `@secure-ipc/transport-unix` (journald, syslog) both map from here, so a record has the
 * same severity and the same field text wherever it goes.
 */
import type { AuditAppendMessage } from './channels.js';

/** How serious a forwarded audit record is: `warn` for a refusal, `info` otherwise. */
export type AuditSeverity = 'warn' | 'info';

/** The record types that are warnings whatever their fields say. */
const WARN_TYPES: ReadonlySet<string> = new Set(['handshake.failed', 'revocation']);

/**
 * The severity of an audit record: `warn` for a denial (a field `allowed` that is `false`: a call
 * or a policy decision refused), a failed handshake (`handshake.failed`) and a channel cut for
 * revocation or expiry (`revocation`); `info` for everything else.
 */
export function auditSeverity(message: Pick<AuditAppendMessage, 'type' | 'fields'>): AuditSeverity {
  return message.fields.allowed === false || WARN_TYPES.has(message.type) ? 'warn' : 'info';
}

/** Bytes as base64, inside JSON too. */
function bytesAsBase64(_key: string, value: unknown): unknown {
  return value instanceof Uint8Array ? Buffer.from(value).toString('base64') : value;
}

/**
 * An audit field's value as text: a string as it is, a number or boolean as `String()` writes it,
 * bytes as base64, anything else (null, arrays, maps) as JSON with bytes in it as base64 strings.
 * The text is not escaped for any destination: a forwarder escapes it for its own format.
 */
export function auditFieldText(value: unknown): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' || typeof value === 'boolean') return String(value);
  if (value instanceof Uint8Array) return Buffer.from(value).toString('base64');
  return JSON.stringify(value, bytesAsBase64) ?? 'null';
}
