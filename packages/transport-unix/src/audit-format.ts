/**
 * An audit record (`AuditAppendMessage`) as one datagram for journald or syslog (docs/audit.md,
 * "Forwarding"). Pure functions, no I/O.
 *
 * Nothing a peer controls (a method name, a certificate's name, an address) can forge a line, a
 * field or a structured-data element: journald gets such values in fields (a value holding a
 * newline in the protocol's binary form), syslog gets them as RFC 5424 PARAM-VALUEs escaped per
 * §6.3.3 with control characters written as `\uXXXX`; the free text (MESSAGE, MSG) is printable
 * ASCII only.
 *
 * - journald, the native protocol (https://systemd.io/JOURNAL_NATIVE_PROTOCOL/): `NAME=value\n`,
 *   or `NAME\n` + the value's length (64-bit little-endian) + the value + `\n` when the value holds
 *   a newline. Names are `A-Z 0-9 _`, at most 64 characters, not starting with `_` or a digit.
 * - syslog, RFC 5424: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID [SD-ELEMENT]... MSG`; or
 *   the BSD form local syslog sockets parse (what glibc's syslog() writes, RFC 3164 without the
 *   hostname): `<PRI>Mmm dd hh:mm:ss APP-NAME[PROCID]: MSG`, the structured data then in MSG.
 */
import { createHash } from 'node:crypto';
import { type AuditAppendMessage, type AuditSeverity, auditFieldText, auditSeverity } from '@secure-ipc/core';

/** What a forwarder fixes once: who is sending, and how. */
export interface AuditFormatContext {
  /** SYSLOG_IDENTIFIER, APP-NAME (checked by the caller: printable ASCII, no `[`, `]`, `:`). */
  readonly identifier: string;
  /** The syslog facility code (0-23). */
  readonly facility: number;
  /** RFC 5424 HOSTNAME (printable ASCII, or `-`). */
  readonly hostname: string;
  /** PROCID. */
  readonly pid: number;
}

/** Syslog severities (RFC 5424 §6.2.1), which journald's PRIORITY shares. */
const SEVERITY: Readonly<Record<AuditSeverity, number>> = { warn: 4, info: 6 };

/**
 * The private enterprise number of the structured data's SD-IDs: 32473 is the one RFC 5612
 * reserves for documentation; secure-ipc has none of its own, and a receiver matches the SD-ID.
 */
export const SD_ENTERPRISE = 32473;
/** The SD-ID of the record's own parameters (origin, index, type, at, leafHash). */
export const SD_ID_RECORD = `secure-ipc@${SD_ENTERPRISE}`;
/** The SD-ID of the record's fields, one PARAM per field. */
export const SD_ID_FIELDS = `secure-ipc-fields@${SD_ENTERPRISE}`;

/** Prefix of a journald field that holds a record field. */
export const JOURNAL_FIELD_PREFIX = 'SECURE_IPC_AUDIT_F_';
const JOURNAL_NAME_MAX = 64;
const SD_NAME_MAX = 32;

/** Eight hex digits of SHA-256 of `name`: tells apart two names that sanitize alike. */
function nameTag(name: string): string {
  return createHash('sha256').update(name).digest('hex').slice(0, 8);
}

/** secure-ipc's own field names (`channel`, `durationMs`, `h`): lowercase first, then letters and digits. */
const CAMEL_NAME = /^[a-z][a-zA-Z0-9]*$/;

/**
 * The journald field that holds record field `name`: `SECURE_IPC_AUDIT_F_` + a camelCase name in
 * upper snake case (`durationMs` → `DURATION_MS`, one-to-one on such names); any other name
 * uppercased, each character outside `A-Z 0-9` as `_`, then `_` and eight hex digits of its SHA-256;
 * either cut to fit journald's 64 characters, then ending in the tag too.
 */
export function journalFieldName(name: string): string {
  const room = JOURNAL_NAME_MAX - JOURNAL_FIELD_PREFIX.length;
  let part = CAMEL_NAME.test(name)
    ? name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()
    : `${name.toUpperCase().replace(/[^A-Z0-9]/g, '_')}_${nameTag(name).toUpperCase()}`;
  if (part.length > room) part = `${part.slice(0, room - 9)}_${nameTag(name).toUpperCase()}`;
  return JOURNAL_FIELD_PREFIX + part;
}

/** An RFC 5424 SD-NAME: 1-32 printable US-ASCII characters but `=`, space, `]` and `"`. */
const SD_NAME = /^[!#-<>-\\^-~]{1,32}$/;

/**
 * The RFC 5424 PARAM-NAME of record field `name`: the name itself when it is a valid SD-NAME;
 * otherwise each character that may not be in one as `_`, cut to 23 characters, then `_` and eight
 * hex digits of its SHA-256.
 */
export function sdParamName(name: string): string {
  if (SD_NAME.test(name)) return name;
  const safe = name.replace(/[^!#-<>-\\^-~]/g, '_').slice(0, SD_NAME_MAX - 9);
  return `${safe}_${nameTag(name)}`;
}

const hex4 = (code: number) => `\\u${code.toString(16).padStart(4, '0')}`;

/** A C0 or C1 control character, DEL, or a Unicode line or paragraph separator. */
function isControl(code: number): boolean {
  return code < 0x20 || (code >= 0x7f && code <= 0x9f) || code === 0x2028 || code === 0x2029;
}

/**
 * `text` as an RFC 5424 PARAM-VALUE: `"`, `\` and `]` preceded by `\` (§6.3.3), and each control
 * character (C0, DEL, C1, U+2028, U+2029) as `\uXXXX`, which reads back unambiguously since a real
 * backslash is doubled. Other characters stay (UTF-8 on the wire).
 */
export function sdParamValue(text: string): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    let esc: string | undefined;
    if (c === 0x22 || c === 0x5c || c === 0x5d) esc = `\\${text[i]}`;
    else if (isControl(c)) esc = hex4(c);
    if (esc === undefined) continue;
    out += text.slice(from, i) + esc;
    from = i + 1;
  }
  return out + text.slice(from);
}

/** `text` as printable ASCII: `\` doubled, every other character outside space..`~` as `\uXXXX`. */
export function asciiText(text: string): string {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    out += c === 0x5c ? '\\\\' : c >= 0x20 && c <= 0x7e ? text[i] : hex4(c);
  }
  return out;
}

/** The free text of every format: `audit TYPE`, printable ASCII. */
function messageText(m: AuditAppendMessage): string {
  return `audit ${asciiText(m.type)}`;
}

const NL = Buffer.from('\n');

/** One journal field: `NAME=value\n`, or the binary form when the value holds a newline. */
function journalField(parts: Buffer[], name: string, value: string): void {
  const bytes = Buffer.from(value);
  if (!bytes.includes(0x0a)) {
    parts.push(Buffer.from(`${name}=`), bytes, NL);
    return;
  }
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(bytes.length));
  parts.push(Buffer.from(`${name}\n`), length, bytes, NL);
}

/** The record as a journal native protocol datagram. */
export function journalDatagram(m: AuditAppendMessage, ctx: AuditFormatContext): Buffer {
  const parts: Buffer[] = [];
  journalField(parts, 'MESSAGE', messageText(m));
  journalField(parts, 'PRIORITY', String(SEVERITY[auditSeverity(m)]));
  journalField(parts, 'SYSLOG_FACILITY', String(ctx.facility));
  journalField(parts, 'SYSLOG_IDENTIFIER', ctx.identifier);
  journalField(parts, 'SECURE_IPC_AUDIT_ORIGIN', m.origin);
  journalField(parts, 'SECURE_IPC_AUDIT_INDEX', String(m.index));
  journalField(parts, 'SECURE_IPC_AUDIT_TYPE', m.type);
  journalField(parts, 'SECURE_IPC_AUDIT_AT', String(m.at));
  journalField(parts, 'SECURE_IPC_AUDIT_LEAF_HASH', Buffer.from(m.leafHash).toString('base64'));
  for (const [name, value] of Object.entries(m.fields))
    journalField(parts, journalFieldName(name), auditFieldText(value));
  return Buffer.concat(parts);
}

/** The record's structured data: its own element, then its fields' (when it has any). */
function structuredData(m: AuditAppendMessage): string {
  const param = (name: string, value: string) => ` ${name}="${sdParamValue(value)}"`;
  let sd = `[${SD_ID_RECORD}${param('origin', m.origin)}${param('index', String(m.index))}${param('type', m.type)}`;
  sd += `${param('at', String(m.at))}${param('leafHash', Buffer.from(m.leafHash).toString('base64'))}]`;
  const fields = Object.entries(m.fields);
  if (fields.length === 0) return sd;
  sd += `[${SD_ID_FIELDS}`;
  for (const [name, value] of fields) sd += param(sdParamName(name), auditFieldText(value));
  return `${sd}]`;
}

const pri = (m: AuditAppendMessage, ctx: AuditFormatContext) =>
  `<${ctx.facility * 8 + SEVERITY[auditSeverity(m)]}>`;

/** RFC 5424 MSGID: the record type, each character outside printable ASCII as `_`, cut to 32. */
function msgId(type: string): string {
  return type.replace(/[^!-~]/g, '_').slice(0, 32);
}

/** The record as an RFC 5424 message (TIMESTAMP: the record's `at`, UTC, milliseconds). */
export function syslog5424(m: AuditAppendMessage, ctx: AuditFormatContext): Buffer {
  const header = `${pri(m, ctx)}1 ${new Date(m.at).toISOString()} ${ctx.hostname} ${ctx.identifier} ${ctx.pid} ${msgId(m.type)}`;
  return Buffer.from(`${header} ${structuredData(m)} ${messageText(m)}`);
}

const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const two = (n: number) => String(n).padStart(2, '0');

/**
 * The record in the BSD form of local syslog sockets: the timestamp is the record's `at` in local
 * time (`Mmm dd hh:mm:ss`, the day padded with a space, as glibc writes it); MSG is `audit TYPE`
 * and then the structured data of the RFC 5424 form, as text.
 */
export function syslog3164(m: AuditAppendMessage, ctx: AuditFormatContext): Buffer {
  const d = new Date(m.at);
  const stamp = `${MONTHS[d.getMonth()]} ${String(d.getDate()).padStart(2, ' ')} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  return Buffer.from(
    `${pri(m, ctx)}${stamp} ${ctx.identifier}[${ctx.pid}]: ${messageText(m)} ${structuredData(m)}`,
  );
}
