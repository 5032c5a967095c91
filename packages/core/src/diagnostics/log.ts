/**
 * Structured log lines from the diagnostics and tracing channels (docs/observability.md,
 * "Logging"): one formatter per message shape, so `NODE_DEBUG=secure-ipc` (util.debuglog) and a
 * `logger` option (pino-compatible) write the same lines. Every line carries the channel id, the
 * peer's fingerprint and the method (or topic) when the event has them; none carries a payload,
 * an error's text or key material. Repeats are rate-limited per kind of line.
 */
import { subscribe, tracingChannel } from 'node:diagnostics_channel';
import { debuglog, formatWithOptions } from 'node:util';
import {
  type BreakerStateMessage,
  type ChannelCloseMessage,
  type ChannelOpenMessage,
  DIAGNOSTICS_CHANNELS,
  type OutboxMessage,
  type PolicyDecisionMessage,
  type RetryMessage,
} from './channels.js';
import {
  type ClientRequestMessage,
  type EventMessage,
  type HandshakeMessage,
  type ServerRequestMessage,
  TRACING_CHANNELS,
} from './tracing.js';

/** The levels secure-ipc logs at. */
export type LogLevel = 'error' | 'warn' | 'info' | 'debug';

/** What a log line carries besides its message (docs/observability.md, "Logging"). */
export interface LogFields {
  /** The kind of line, e.g. `channel.close`, `policy.denied` (stable: filter on it). */
  readonly event: string;
  /** The channel (`SecureChannel.id`), when the line is about one. */
  readonly channelId?: number;
  /** The peer's static key fingerprint, when known. */
  readonly peer?: string;
  /** The method or topic, when the line is about one. */
  readonly method?: string;
  /** `OK` or a `SIPC_ERR_*` (or application) code. */
  readonly code?: string;
  /** Lines of this kind left out since the last one written (the rate limit). */
  readonly suppressed?: number;
  /** Other fields of the event (numbers, names, reasons). */
  readonly [field: string]: unknown;
}

/**
 * A pino-compatible logger: `logger.info(fields, message)` for each level. A pino logger fits as
 * it is; so does anything with these four methods. `isLevelEnabled('debug')` false (pino's, when
 * its level is above debug) keeps the per-request lines from being built at all.
 */
export interface Logger {
  /** A failure the operator should look at (a handler that threw). */
  error(fields: LogFields, message: string): void;
  /** A refusal or a sign of trouble (a policy denial, a refused handshake, a protocol close). */
  warn(fields: LogFields, message: string): void;
  /** A notable event (a failed request, a retry, a breaker's change). */
  info(fields: LogFields, message: string): void;
  /** Everything else: channels opened and closed cleanly, each request. */
  debug(fields: LogFields, message: string): void;
  /** pino's: whether `level` is written (absent: every level is). */
  isLevelEnabled?(level: string): boolean;
}

/** The rate limit of every log: per kind of line, `burst` lines per `windowMs`, then a count. */
export const LOG_RATE_LIMIT = Object.freeze({
  /** Lines of one kind written per window. */
  burst: 10,
  /** The window, milliseconds. */
  windowMs: 10_000,
  /** Kinds of line tracked at once (the oldest is forgotten first): a bound on peer-chosen keys. */
  maxKinds: 1024,
});

interface Window {
  start: number;
  written: number;
  suppressed: number;
}

/** One line: level, fields, message; undefined for a message not worth a line at any level. */
type Line = readonly [LogLevel, LogFields, string] | undefined;

/** The kind of a line for the rate limit: its level, event, code and method. */
function kindOf(level: LogLevel, fields: LogFields): string {
  return `${level}\u0000${fields.event}\u0000${fields.code ?? ''}\u0000${fields.method ?? ''}`;
}

/** @internal A logger behind the rate limit; a logger that throws is ignored (it must not break a channel). */
export class RateLimitedLog {
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #windows = new Map<string, Window>();
  /** Whether debug lines are wanted (asked once: per-request lines are built only then). */
  readonly debug: boolean;

  constructor(logger: Logger, now: () => number = Date.now) {
    this.#logger = logger;
    this.#now = now;
    let debug = true;
    try {
      debug = logger.isLevelEnabled?.('debug') ?? true;
    } catch {
      debug = false;
    }
    this.debug = debug;
  }

  /** Write `line` unless its kind is over the rate limit. */
  write(line: Line): void {
    if (line === undefined) return;
    const [level, fields, message] = line;
    if (level === 'debug' && !this.debug) return;
    const kind = kindOf(level, fields);
    const now = this.#now();
    let w = this.#windows.get(kind);
    if (w === undefined || now - w.start >= LOG_RATE_LIMIT.windowMs) {
      const suppressed = w?.suppressed ?? 0;
      if (w !== undefined)
        this.#windows.delete(kind); // re-inserted last: the map stays in age order
      else if (this.#windows.size >= LOG_RATE_LIMIT.maxKinds) {
        const oldest = this.#windows.keys().next().value;
        if (oldest !== undefined) this.#windows.delete(oldest);
      }
      w = { start: now, written: 0, suppressed };
      this.#windows.set(kind, w);
    }
    if (w.written >= LOG_RATE_LIMIT.burst) {
      w.suppressed++;
      return;
    }
    w.written++;
    const out = w.suppressed > 0 ? { ...fields, suppressed: w.suppressed } : fields;
    w.suppressed = 0;
    try {
      this.#logger[level](out, message);
    } catch {
      // A logger that throws loses its line; the channel goes on.
    }
  }
}

// ---- one formatter per message shape ----------------------------------------------------------

const CLOSE_LEVEL: Readonly<Record<string, LogLevel>> = {
  clean: 'debug',
  local: 'debug',
  'peer-vanished': 'debug',
  timeout: 'info',
  protocol: 'warn',
  revoked: 'warn',
  expired: 'warn',
};

/** @internal */
export function openLine(m: ChannelOpenMessage): Line {
  return [
    'debug',
    {
      event: 'channel.open',
      channelId: m.channelId,
      peer: m.peer,
      role: m.role,
      roles: m.roles,
      protocolVersion: m.protocolVersion,
    },
    'channel open',
  ];
}

/** @internal */
export function closeLine(m: ChannelCloseMessage): Line {
  const fields: LogFields = {
    event: 'channel.close',
    channelId: m.channelId,
    peer: m.peer,
    reason: m.reason,
    durationMs: m.durationMs,
    ...(m.code === undefined ? {} : { code: m.code }),
  };
  return [CLOSE_LEVEL[m.reason] ?? 'info', fields, 'channel closed'];
}

/** @internal */
export function decisionLine(m: PolicyDecisionMessage): Line {
  const fields: LogFields = {
    event: m.allowed ? 'policy.allowed' : 'policy.denied',
    ...(m.channelId === undefined ? {} : { channelId: m.channelId }),
    peer: m.peer,
    method: m.what,
    action: m.action,
    roles: m.roles,
  };
  return m.allowed ? ['debug', fields, 'allowed'] : ['warn', fields, 'denied by policy'];
}

/** A request's line (either side): debug, with its outcome and duration in ms. */
function requestLine(
  event: string,
  m: ServerRequestMessage | ClientRequestMessage,
  durationMs: number,
  ok: string,
  failed: string,
): Line {
  const fields: LogFields = {
    event,
    ...(m.channelId === undefined ? {} : { channelId: m.channelId }),
    peer: m.peer,
    method: m.method,
    code: m.code,
    durationMs,
  };
  return ['debug', fields, m.code === 'OK' ? ok : failed];
}

/** @internal A served request (a denied one has its own line, policy.denied). */
export function servedLine(m: ServerRequestMessage, durationMs: number): Line {
  if (m.code === 'SIPC_ERR_FORBIDDEN') return undefined;
  return requestLine('request.served', m, durationMs, 'request served', 'request answered with an error');
}

/** @internal A request made. */
export function madeLine(m: ClientRequestMessage, durationMs: number): Line {
  return requestLine('request.made', m, durationMs, 'request answered', 'request failed');
}

/** @internal */
export function handshakeLine(m: HandshakeMessage, durationMs: number): Line {
  const fields: LogFields = {
    event: 'handshake',
    ...(m.channelId === undefined ? {} : { channelId: m.channelId }),
    ...(m.peer === undefined ? {} : { peer: m.peer }),
    role: m.role,
    code: m.code,
    durationMs,
  };
  return [
    m.code === 'OK' ? 'debug' : 'info',
    fields,
    m.code === 'OK' ? 'handshake done' : 'handshake failed',
  ];
}

/** @internal */
export function eventLine(m: EventMessage, direction: 'publish' | 'receive'): Line {
  const fields: LogFields = {
    event: `event.${direction}`,
    ...(m.channelId === undefined ? {} : { channelId: m.channelId }),
    ...(m.peer === undefined ? {} : { peer: m.peer }),
    method: m.topic,
    code: m.code,
    ...(m.queued === undefined ? {} : { queued: m.queued }),
    ...(m.dropped === undefined ? {} : { dropped: m.dropped }),
  };
  return ['debug', fields, direction === 'publish' ? 'event sent' : 'event received'];
}

/** @internal */
export function retryLine(m: RetryMessage): Line {
  return [
    'info',
    {
      event: 'retry',
      method: m.method,
      code: m.code,
      attempt: m.attempt,
      delayMs: m.delayMs,
      transparent: m.transparent,
    },
    'retrying a call',
  ];
}

/** @internal */
export function breakerLine(m: BreakerStateMessage): Line {
  return [
    m.to === 'open' ? 'warn' : 'info',
    {
      event: 'breaker.state',
      breaker: m.name,
      from: m.from,
      to: m.to,
      reason: m.reason,
      ...(m.openForMs === undefined ? {} : { openForMs: m.openForMs }),
    },
    `circuit ${m.to}`,
  ];
}

/** @internal */
export function outboxLine(m: OutboxMessage): Line {
  const level: LogLevel =
    m.event === 'failed' || m.event === 'quarantined' ? 'warn' : m.event === 'expired' ? 'info' : 'debug';
  return [
    level,
    {
      event: `outbox.${m.event}`,
      dir: m.dir,
      ...(m.id === undefined ? {} : { id: m.id }),
      ...(m.method === undefined ? {} : { method: m.method }),
      ...(m.code === undefined ? {} : { code: m.code }),
      depth: m.depth,
    },
    `outbox entry ${m.event}`,
  ];
}

// ---- NODE_DEBUG=secure-ipc ---------------------------------------------------------------------

// A value written as it is: letters, digits and the punctuation of names, codes and fingerprints
// (a fixed pattern, never built from input); anything else is JSON-quoted, so a peer-chosen
// method name cannot forge a line (a newline, a `key=value` of its own).
const PLAIN = /^[A-Za-z0-9_.:@+/=-]{1,256}$/;

/** @internal `key=value` pairs, the values plain or JSON-quoted (at most 256 characters each, then cut). */
export function formatFields(fields: LogFields): string {
  const parts: string[] = [];
  for (const [key, value] of Object.entries(fields)) {
    if (value === undefined) continue;
    let text = Array.isArray(value) ? value.join(',') : String(value);
    if (text.length > 256) text = `${text.slice(0, 255)}…`;
    parts.push(`${key}=${PLAIN.test(text) ? text : JSON.stringify(text)}`);
  }
  return parts.join(' ');
}

/** A Logger writing through util.debuglog('secure-ipc'): `SECURE-IPC <pid>: <message> key=value...`. */
function debuglogLogger(write: (format: string, ...args: unknown[]) => void): Logger {
  const line = (fields: LogFields, message: string) => write('%s %s', message, formatFields(fields));
  return { error: line, warn: line, info: line, debug: line };
}

/**
 * @internal Subscribe `log` to every diagnostics and tracing channel of the process (the
 * NODE_DEBUG path; the `logger` option subscribes per server or client, rpc/logging.ts).
 */
export function logEverything(log: RateLimitedLog): void {
  const plain: [string, (m: never) => Line][] = [
    [DIAGNOSTICS_CHANNELS.channelOpen, openLine],
    [DIAGNOSTICS_CHANNELS.channelClose, closeLine],
    [DIAGNOSTICS_CHANNELS.policyDecision, decisionLine],
    [DIAGNOSTICS_CHANNELS.retry, retryLine],
    [DIAGNOSTICS_CHANNELS.breakerState, breakerLine],
    [DIAGNOSTICS_CHANNELS.outbox, outboxLine],
  ];
  for (const [name, format] of plain) subscribe(name, (m) => log.write(format(m as never)));
  timed(TRACING_CHANNELS.serverRequest, (m: ServerRequestMessage, ms) => log.write(servedLine(m, ms)));
  timed(TRACING_CHANNELS.clientRequest, (m: ClientRequestMessage, ms) => log.write(madeLine(m, ms)));
  timed(TRACING_CHANNELS.handshake, (m: HandshakeMessage, ms) => log.write(handshakeLine(m, ms)));
  timed(TRACING_CHANNELS.eventPublish, (m: EventMessage) => log.write(eventLine(m, 'publish')));
  timed(TRACING_CHANNELS.eventReceive, (m: EventMessage) => log.write(eventLine(m, 'receive')));
}

/**
 * @internal Call `done(message, durationMs)` at the end of every operation on tracing channel
 * `name`; returns the function that unsubscribes.
 */
export function timed<M extends object>(
  name: string,
  done: (message: M, durationMs: number) => void,
): () => void {
  const tc = tracingChannel<M>(name);
  const started = new WeakMap<object, number>();
  const handlers = {
    start: (m: M) => {
      started.set(m, performance.now());
    },
    end() {},
    asyncStart() {},
    error() {},
    asyncEnd: (m: M) => {
      const t0 = started.get(m);
      started.delete(m);
      done(m, t0 === undefined ? 0 : Math.round((performance.now() - t0) * 1000) / 1000);
    },
  };
  tc.subscribe(handlers as never);
  return () => tc.unsubscribe(handlers as never);
}

let debugInstalled = false;

/** @internal True when NODE_DEBUG names `section` (comma- or space-separated, any case, `*` as a wildcard suffix). */
export function nodeDebugNames(value: string | undefined, section: string): boolean {
  if (value === undefined) return false;
  for (const raw of value.split(/[\s,]+/)) {
    const name = raw.toLowerCase();
    if (name === section || name === '*') return true;
    if (name.endsWith('*') && section.startsWith(name.slice(0, -1))) return true;
  }
  return false;
}

/**
 * @internal With `NODE_DEBUG=secure-ipc` (or a list naming it), write every diagnostics event as a
 * line on stderr, rate-limited; once per process, on the first channel. Through util.debuglog
 * where the runtime's honours NODE_DEBUG; Bun's has no `enabled` and Deno's ignores NODE_DEBUG, so
 * there the variable is read here and, on Deno, the same line format written to stderr directly.
 */
export function installDebugLog(): void {
  if (debugInstalled) return;
  debugInstalled = true;
  const named = nodeDebugNames(process.env.NODE_DEBUG, 'secure-ipc');
  if (!named) return;
  const write = debuglog('secure-ipc');
  const enabled = (write as { enabled?: boolean }).enabled;
  const direct = (format: string, ...args: unknown[]) =>
    process.stderr.write(`SECURE-IPC ${process.pid}: ${formatWithOptions({}, format, ...args)}\n`);
  logEverything(new RateLimitedLog(debuglogLogger(enabled === false ? direct : write)));
}
