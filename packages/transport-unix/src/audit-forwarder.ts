/**
 * `forwardAuditRecords`: every record an audit log writes (the diagnostics channel
 * `secure-ipc:audit.append`) as one datagram to journald or syslog (docs/audit.md, "Forwarding").
 *
 * publish (inside the log's append) → format (audit-format.ts) → one non-blocking sendto
 * (unix-datagram.ts) → counted as sent, dropped or an error. Nothing is queued, nothing waits and
 * nothing is thrown into the publisher: a receiver that is slow or gone costs the log nothing, and
 * the counters say what was lost. Errors reach `onError` on a later microtask, never inside the
 * publish, so a callback that appends to the log again cannot recurse into this send.
 */
import { subscribe, unsubscribe } from 'node:diagnostics_channel';
import { hostname } from 'node:os';
import {
  type AuditAppendMessage,
  createError,
  DIAGNOSTICS_CHANNELS,
  type SecureIpcError,
} from '@secure-ipc/core';
import { type AuditFormatContext, journalDatagram, syslog3164, syslog5424 } from './audit-format.js';
import { openDatagramSender } from './unix-datagram.js';

/** A syslog facility (RFC 5424 §6.2.1), by its usual name. */
export type SyslogFacility =
  | 'kern'
  | 'user'
  | 'mail'
  | 'daemon'
  | 'auth'
  | 'syslog'
  | 'lpr'
  | 'news'
  | 'uucp'
  | 'cron'
  | 'authpriv'
  | 'ftp'
  | 'local0'
  | 'local1'
  | 'local2'
  | 'local3'
  | 'local4'
  | 'local5'
  | 'local6'
  | 'local7';

const FACILITIES: Readonly<Record<SyslogFacility, number>> = {
  kern: 0,
  user: 1,
  mail: 2,
  daemon: 3,
  auth: 4,
  syslog: 5,
  lpr: 6,
  news: 7,
  uucp: 8,
  cron: 9,
  authpriv: 10,
  ftp: 11,
  local0: 16,
  local1: 17,
  local2: 18,
  local3: 19,
  local4: 20,
  local5: 21,
  local6: 22,
  local7: 23,
};

/** Options of {@link forwardAuditRecords}. */
export interface AuditForwardOptions {
  /**
   * Where the records go: `journald` (its native protocol) or `syslog` (a local syslog socket,
   * read by rsyslog, syslog-ng, or journald itself).
   */
  readonly to: 'journald' | 'syslog';
  /**
   * The receiver's datagram socket. Default: `/run/systemd/journal/socket` for journald; `/dev/log`
   * for syslog (`/var/run/syslog` on macOS).
   */
  readonly socketPath?: string;
  /**
   * syslog only: `3164` (default), the BSD form every local syslog socket parses, with the
   * structured data in the message text; or `5424`, for a receiver that parses RFC 5424 on its
   * socket (rsyslog with `useSpecialParser="off"`, syslog-ng with `flags(syslog-protocol)`);
   * journald and rsyslog's default parser on `/dev/log` take a 5424 header as message text.
   */
  readonly format?: '3164' | '5424';
  /**
   * SYSLOG_IDENTIFIER (journald), APP-NAME (syslog): 1-48 printable ASCII characters, no `[`, `]`
   * or `:`. Default `secure-ipc`.
   */
  readonly identifier?: string;
  /**
   * The syslog facility (journald: SYSLOG_FACILITY). Default `authpriv` (10), where Debian's and
   * Red Hat's rsyslog configurations put security records (`/var/log/auth.log`, `/var/log/secure`,
   * both readable by administrators only).
   */
  readonly facility?: SyslogFacility;
  /**
   * Told of each record that could not be sent for another reason than a full receiver: no socket
   * (SIPC_ERR_CONNECT_FAILED, `details.errno` `ENOENT` or `ECONNREFUSED`), a datagram over the
   * socket's limit (SIPC_ERR_MESSAGE_TOO_LARGE, `EMSGSIZE`), ... Called on a microtask after the
   * record's publish, never inside it; what it throws is the application's uncaught exception.
   */
  readonly onError?: (error: SecureIpcError) => void;
}

/** A running forwarder: its counters, and `close()`. Every record seen adds one to one counter. */
export interface AuditForwarder {
  /** Records the receiver's socket took. */
  readonly sent: number;
  /** Records refused because the receiver was full (`EAGAIN`, `ENOBUFS`) or too big (`EMSGSIZE`). */
  readonly dropped: number;
  /** Records not sent for another reason (no socket, permission, ...), each told to `onError`. */
  readonly errors: number;
  /** Stop: unsubscribe and close the socket (idempotent). Records after it are not seen. */
  close(): void;
}

type Formatter = (m: AuditAppendMessage, ctx: AuditFormatContext) => Buffer;

const DEFAULT_SOCKET: Readonly<Record<AuditForwardOptions['to'], string>> = {
  journald: '/run/systemd/journal/socket',
  syslog: process.platform === 'darwin' ? '/var/run/syslog' : '/dev/log',
};

/** A valid identifier: printable ASCII but `[`, `]` and `:`, 1-48 characters (RFC 5424 APP-NAME). */
const IDENTIFIER = /^[!-9;-Z\\^-~]{1,48}$/;

/** Full receiver: counted as dropped, not reported. */
const FULL = new Set(['EAGAIN', 'ENOBUFS']);

function invalid(message: string): SecureIpcError {
  return createError('SIPC_ERR_INVALID_ARGUMENT', message);
}

/** The formatter the options ask for; throws SIPC_ERR_INVALID_ARGUMENT for a bad combination. */
function formatterOf(options: AuditForwardOptions): Formatter {
  if (options.to === 'journald') {
    if (options.format !== undefined) throw invalid('format applies to syslog only, not to journald');
    return journalDatagram;
  }
  if (options.to !== 'syslog')
    throw invalid(`to must be 'journald' or 'syslog', not ${JSON.stringify(options.to)}`);
  const format = options.format ?? '3164';
  if (format !== '3164' && format !== '5424') throw invalid(`format must be '3164' or '5424'`);
  return format === '5424' ? syslog5424 : syslog3164;
}

/** RFC 5424 HOSTNAME: this host's name in printable ASCII, at most 255 characters, or `-`. */
function syslogHostname(): string {
  return (
    hostname()
      .replace(/[^!-~]/g, '')
      .slice(0, 255) || '-'
  );
}

/**
 * Forward every audit record this process writes to journald or syslog, one datagram per record
 * over a Unix datagram socket (Linux, macOS). It subscribes to `secure-ipc:audit.append`, so every
 * audit log in the process is forwarded, each record with its origin, index and leaf hash: the
 * central copy stays provable against the local log (`inclusionProof`, `secure-ipc audit proof`).
 *
 * Sending never blocks and never throws into the log: a full receiver drops the record (counted),
 * any other failure is counted and told to `onError`. A datagram is limited by the socket (about
 * 208 KiB on Linux by default; journald's own limit is larger, rsyslog truncates at its
 * `maxMessageSize`, 8 KiB by default). docs/audit.md "Forwarding" lists the fields.
 *
 * Throws SIPC_ERR_INVALID_ARGUMENT for a bad option, SIPC_ERR_PATH_TOO_LONG for a socket path
 * over `sun_path`, SIPC_ERR_UNSUPPORTED_PLATFORM on another OS than Linux or macOS (or without
 * koffi), SIPC_ERR_CONNECT_FAILED if no socket can be made. A missing receiver is not an error
 * here: the records are counted as errors as they come, and reach it once it is there.
 *
 * @example
 * ```ts
 * const forwarder = forwardAuditRecords({ to: 'journald', onError: (e) => console.warn(e.message) });
 * // ... serve({ audit: { log } }) ...
 * console.log(forwarder.sent, forwarder.dropped, forwarder.errors);
 * forwarder.close();
 * ```
 */
export function forwardAuditRecords(options: AuditForwardOptions): AuditForwarder {
  if (typeof options !== 'object' || options === null)
    throw invalid('forwardAuditRecords needs an options object');
  const format = formatterOf(options);
  const identifier = options.identifier ?? 'secure-ipc';
  if (typeof identifier !== 'string' || !IDENTIFIER.test(identifier))
    throw invalid('identifier must be 1-48 printable ASCII characters, without [, ] or :');
  const facilityName = options.facility ?? 'authpriv';
  if (!Object.hasOwn(FACILITIES, facilityName))
    throw invalid(`facility must be one of ${Object.keys(FACILITIES).join(', ')}`);
  const facility = FACILITIES[facilityName];
  const { onError } = options;
  if (onError !== undefined && typeof onError !== 'function') throw invalid('onError must be a function');
  const socketPath = options.socketPath ?? DEFAULT_SOCKET[options.to];
  if (typeof socketPath !== 'string' || !socketPath.startsWith('/'))
    throw invalid('socketPath must be an absolute path');

  const ctx: AuditFormatContext = { identifier, facility, hostname: syslogHostname(), pid: process.pid };
  const sender = openDatagramSender(socketPath);
  let sent = 0;
  let dropped = 0;
  let errors = 0;
  let closed = false;

  const report = (error: SecureIpcError) => {
    if (onError !== undefined) queueMicrotask(() => onError(error));
  };
  const onAppend = (raw: unknown) => {
    if (closed) return;
    const m = raw as AuditAppendMessage;
    let datagram: Buffer;
    try {
      datagram = format(m, ctx);
    } catch (cause) {
      // Only a message that is not an AuditAppendMessage (another publisher on the channel) gets here.
      errors += 1;
      report(
        createError('SIPC_ERR_INVALID_ARGUMENT', 'An audit.append message could not be formatted', { cause }),
      );
      return;
    }
    const errno = sender.send(datagram);
    if (errno === undefined) sent += 1;
    else if (FULL.has(errno)) dropped += 1;
    else if (errno === 'EMSGSIZE') {
      dropped += 1;
      report(
        createError(
          'SIPC_ERR_MESSAGE_TOO_LARGE',
          `Audit record ${m.index} is a datagram of ${datagram.length} bytes, over the limit of ${socketPath} (EMSGSIZE); it was not forwarded`,
          { details: { errno, index: m.index, bytes: datagram.length, socketPath } },
        ),
      );
    } else {
      errors += 1;
      report(
        createError(
          'SIPC_ERR_CONNECT_FAILED',
          `Could not send audit record ${m.index} to ${socketPath}: ${errno}`,
          {
            details: { errno, index: m.index, socketPath },
          },
        ),
      );
    }
  };
  subscribe(DIAGNOSTICS_CHANNELS.auditAppend, onAppend);

  return {
    get sent() {
      return sent;
    },
    get dropped() {
      return dropped;
    },
    get errors() {
      return errors;
    },
    close() {
      if (closed) return;
      closed = true;
      unsubscribe(DIAGNOSTICS_CHANNELS.auditAppend, onAppend);
      sender.close();
    },
  };
}
