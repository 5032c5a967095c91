/**
 * What `inspect` and `top` share: the one `$stats` request (its refusals as clear errors), the
 * check of the server's answer before anything of it is printed, and the table of live channels
 * (package README, "inspect and top"). The answer comes from the server: every string in it is
 * printed through `printable`, so it cannot write escape sequences to the terminal.
 */
import { isSecureIpcError, type RpcClient, type ServerStats, STATS_VERSION } from '@secure-ipc/core';
import { CliError, ExitCode, printable } from './io.js';

/** The built-in method both commands call. */
export const STATS_METHOD = '$stats';

/** How long one `$stats` request may take. */
const STATS_TIMEOUT_MS = 10_000;

/** One channel of a checked answer. */
export type ChannelRow = ServerStats['channels'][number];

/**
 * Ask the server for `$stats`; resolves with the answer as received (for `--json`) and checked
 * (for the table). Refused by the policy, or not a method there: exit 6, saying so.
 */
export async function fetchStats(
  client: RpcClient,
  signal?: AbortSignal,
): Promise<{ raw: unknown; stats: ServerStats }> {
  let raw: unknown;
  try {
    raw = await client.request(STATS_METHOD, undefined, {
      timeoutMs: STATS_TIMEOUT_MS,
      ...(signal ? { signal } : {}),
    });
  } catch (err) {
    if (isSecureIpcError(err, 'SIPC_ERR_FORBIDDEN'))
      throw new CliError(
        "the server's policy does not grant $stats to this key (it must name $stats exactly; secure-ipc serve: --grant-stats PUBKEY)",
        ExitCode.Remote,
        { cause: err },
      );
    if (isSecureIpcError(err, 'SIPC_ERR_NO_SUCH_METHOD'))
      throw new CliError(
        'the server does not answer $stats (a version without live introspection)',
        ExitCode.Remote,
        {
          cause: err,
        },
      );
    throw err;
  }
  return { raw, stats: checkStats(raw) };
}

function bad(what: string): CliError {
  return new CliError(`the server's $stats answer is malformed: ${what}`, ExitCode.Failed);
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
}

function count(v: unknown, name: string): number {
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0)
    throw bad(`${name} is not a non-negative integer`);
  return v;
}

function countOrNull(v: unknown, name: string): number | null {
  return v === null || v === undefined ? null : count(v, name);
}

function text(v: unknown, name: string): string {
  if (typeof v !== 'string') throw bad(`${name} is not a string`);
  return v;
}

function channelRow(v: unknown, i: number): ChannelRow {
  const at = `channels[${i}]`;
  if (!isRecord(v)) throw bad(`${at} is not a map`);
  const calls = v.calls;
  if (!isRecord(calls)) throw bad(`${at}.calls is not a map`);
  const roles = v.roles;
  if (!Array.isArray(roles)) throw bad(`${at}.roles is not an array`);
  return {
    id: countOrNull(v.id, `${at}.id`),
    peer: text(v.peer, `${at}.peer`),
    roles: roles.map((r, j) => text(r, `${at}.roles[${j}]`)),
    transport: text(v.transport, `${at}.transport`),
    protocolVersion: count(v.protocolVersion, `${at}.protocolVersion`),
    openedAt: countOrNull(v.openedAt, `${at}.openedAt`),
    calls: {
      started: count(calls.started, `${at}.calls.started`),
      ok: count(calls.ok, `${at}.calls.ok`),
      failed: count(calls.failed, `${at}.calls.failed`),
    },
    inFlight: count(v.inFlight, `${at}.inFlight`),
    bytesQueued: count(v.bytesQueued, `${at}.bytesQueued`),
    lastCallAt: countOrNull(v.lastCallAt, `${at}.lastCallAt`),
  };
}

/** The server's answer checked against the version-1 shape (docs/observability.md); exit 1 if not. */
export function checkStats(raw: unknown): ServerStats {
  if (!isRecord(raw)) throw bad('not a map');
  if (raw.v !== STATS_VERSION)
    throw new CliError(
      `the server's $stats answer has version ${printable(String(raw.v))}; this secure-ipc reads version ${STATS_VERSION}`,
      ExitCode.Failed,
    );
  if (!Array.isArray(raw.channels)) throw bad('channels is not an array');
  return { v: STATS_VERSION, at: count(raw.at, 'at'), channels: raw.channels.map(channelRow) };
}

/** `BLAKE2b:` and the first 12 characters of the digest: enough to tell peers apart on screen. */
export function shortFingerprint(fingerprint: string): string {
  const prefix = 'BLAKE2b:';
  const digest = fingerprint.startsWith(prefix) ? fingerprint.slice(prefix.length) : fingerprint;
  return printable(`${prefix}${digest.slice(0, 12)}`);
}

/** A span of milliseconds in two units at most: `850ms`, `42s`, `3m05s`, `2h07m`, `4d03h`. */
export function span(ms: number): string {
  if (ms < 1000) return `${Math.max(0, Math.floor(ms))}ms`;
  const s = Math.floor(ms / 1000);
  if (s < 60) return `${s}s`;
  const two = (n: number) => String(n).padStart(2, '0');
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86_400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86_400)}d${two(Math.floor(s / 3600) % 24)}h`;
}

/** The columns of the table, in order; `top` adds CALLS/S after FAILED. */
const COLUMNS = [
  'ID',
  'PEER',
  'ROLES',
  'TRANSPORT',
  'AGE',
  'OK',
  'FAILED',
  'IN-FLIGHT',
  'QUEUED',
  'LAST-CALL',
];
/** Columns aligned right (numbers). */
const RIGHT = new Set(['ID', 'AGE', 'OK', 'FAILED', 'CALLS/S', 'IN-FLIGHT', 'QUEUED', 'LAST-CALL']);

/** One channel's cells, by column name; times relative to the snapshot's own `at` (the server's clock). */
function cells(c: ChannelRow, at: number, rate: string | undefined): Record<string, string> {
  return {
    ID: c.id === null ? '-' : String(c.id),
    PEER: shortFingerprint(c.peer),
    ROLES: c.roles.length === 0 ? '-' : printable(c.roles.join(',')),
    TRANSPORT: printable(c.transport),
    AGE: c.openedAt === null ? '-' : span(at - c.openedAt),
    OK: String(c.calls.ok),
    FAILED: String(c.calls.failed),
    ...(rate === undefined ? {} : { 'CALLS/S': rate }),
    'IN-FLIGHT': String(c.inFlight),
    QUEUED: String(c.bytesQueued),
    'LAST-CALL': c.lastCallAt === null ? '-' : `${span(at - c.lastCallAt)} ago`,
  };
}

/**
 * The table of `stats`' channels as lines (a header, then one line per channel), columns padded
 * to their widest cell. `rates`, for `top`: each channel's calls per second by index (a
 * `CALLS/S` column), `undefined` where there is no earlier snapshot to compare with.
 */
export function statsTable(stats: ServerStats, rates?: ReadonlyArray<number | undefined>): string[] {
  const columns = rates === undefined ? COLUMNS : [...COLUMNS.slice(0, 7), 'CALLS/S', ...COLUMNS.slice(7)];
  const rows = stats.channels.map((c, i) => {
    const rate = rates === undefined ? undefined : rates[i] === undefined ? '-' : rates[i]!.toFixed(1);
    return cells(c, stats.at, rate);
  });
  const width = (col: string) => Math.max(col.length, ...rows.map((r) => r[col]!.length));
  const widths = columns.map(width);
  const line = (get: (col: string) => string) =>
    columns
      .map((col, i) => (RIGHT.has(col) ? get(col).padStart(widths[i]!) : get(col).padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line((col) => col), ...rows.map((r) => line((col) => r[col]!))];
}

/** Calls per second of each channel of `now` since `before` (matched by id and peer), for `top`. */
export function callRates(before: ServerStats | undefined, now: ServerStats): Array<number | undefined> {
  const seconds = before === undefined ? 0 : (now.at - before.at) / 1000;
  const earlier = new Map(before?.channels.map((b) => [b.id, b]));
  return now.channels.map((c) => {
    const old = c.id === null ? undefined : earlier.get(c.id);
    if (old === undefined || old.peer !== c.peer || seconds <= 0) return undefined;
    return Math.max(0, c.calls.started - old.calls.started) / seconds;
  });
}
