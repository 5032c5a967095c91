/**
 * `secure-ipc top ADDRESS --key FILE (--server-key PUBKEY | --cert FILE --trust-ca PUBKEY ...)
 * [--interval DURATION]`: `inspect`'s table, redrawn every interval (default 1s) on the terminal's
 * alternate screen, with each channel's calls per second between two snapshots, until `q` or
 * Ctrl-C (package README, "inspect and top"). Needs a terminal on stdout (else exit 2: a log wants
 * `inspect --json`). stdin in raw mode while it runs when it is a terminal; the terminal is
 * restored (cursor, screen, line mode) however it ends, a failure included.
 *
 *   connect ─► $stats ─► draw ─► wait (interval | q | Ctrl-C | SIGTERM) ─► $stats ─► ...
 */
import { setTimeout as sleep } from 'node:timers/promises';
import type { RpcClient, ServerStats } from '@secure-ipc/core';
import { parse } from '../args.js';
import { clientOptions, withClient } from '../client-options.js';
import { parseDuration } from '../duration.js';
import { CliError, type CliIo, ExitCode, printable } from '../io.js';
import { callRates, fetchStats, statsTable } from '../stats-view.js';

/** Usage line. */
export const usage =
  'secure-ipc top ADDRESS --key FILE (--server-key PUBKEY | --cert FILE --trust-ca PUBKEY ...) [--interval DURATION] [--app-id ID] [--allow-unmarked-key] [--allow-uid UID ...] [--allow-gid GID ...] [--allow-sid SID|NAME ...]';

const DEFAULT_INTERVAL = '1s';

// ANSI/VT100: the alternate screen (xterm's 1049, which also saves and restores the cursor),
// cursor visibility, home + clear screen, and clear to the end of the line.
const ENTER = '\x1b[?1049h\x1b[?25l';
const LEAVE = '\x1b[?25h\x1b[?1049l';
const HOME_CLEAR = '\x1b[H\x1b[2J';

/** A terminal stream as Node gives it (`tty.WriteStream` / `tty.ReadStream`), structurally. */
interface Terminal {
  isTTY?: boolean;
  columns?: number;
  rows?: number;
  setRawMode?: (raw: boolean) => unknown;
}

/** The frame: a title line, a blank line, the table cut to the terminal's size. */
function frame(
  address: string,
  intervalText: string,
  stats: ServerStats,
  before: ServerStats | undefined,
  out: Terminal,
): string {
  const columns = out.columns ?? 80;
  const rows = out.rows ?? 24;
  const when = new Date(stats.at)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, 'Z');
  const title = `secure-ipc top ${printable(address)}: ${stats.channels.length} channel${stats.channels.length === 1 ? '' : 's'} at ${when}, every ${intervalText}; q to quit`;
  const table = statsTable(stats, callRates(before, stats));
  const room = Math.max(1, rows - 3);
  let lines = [title, '', ...table];
  if (lines.length > room + 2) {
    const hidden = lines.length - (room + 1);
    lines = [...lines.slice(0, room + 1), `... ${hidden} more`];
  }
  return lines.map((l) => (l.length > columns ? l.slice(0, columns) : l)).join('\n');
}

/** Watch stdin (raw when a terminal) for `q` / Ctrl-C, and the signals; abort `stop` on any. */
function stopKeys(io: CliIo, stop: AbortController): () => void {
  const input = io.stdin as NodeJS.ReadableStream & Terminal;
  const raw = input.isTTY === true && typeof input.setRawMode === 'function';
  if (raw) input.setRawMode!(true);
  const onData = (chunk: Buffer | string) => {
    const s = String(chunk);
    // In raw mode Ctrl-C arrives as the byte 0x03, not as SIGINT.
    if (s.includes('q') || s.includes('Q') || s.includes('\x03')) stop.abort();
  };
  const onSignal = () => stop.abort();
  input.on('data', onData);
  input.resume();
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  return () => {
    input.off('data', onData);
    input.pause();
    if (raw) input.setRawMode!(false);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

/** Fetch and draw until `stop` aborts. */
async function loop(
  client: RpcClient,
  address: string,
  intervalText: string,
  intervalMs: number,
  io: CliIo,
  stop: AbortSignal,
): Promise<void> {
  const out = io.stdout as NodeJS.WritableStream & Terminal;
  let before: ServerStats | undefined;
  while (!stop.aborted) {
    let stats: ServerStats;
    try {
      ({ stats } = await fetchStats(client, stop));
    } catch (err) {
      if (stop.aborted) return; // q while the request was on its way
      throw err;
    }
    out.write(`${HOME_CLEAR}${frame(address, intervalText, stats, before, out)}`);
    before = stats;
    await sleep(intervalMs, undefined, { signal: stop }).catch(() => {});
  }
}

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, { ...clientOptions, interval: { type: 'string' } }, true);
  if (positionals.length !== 1) throw new CliError('give exactly one ADDRESS');
  const address = positionals[0]!;
  const intervalText = values.interval ?? DEFAULT_INTERVAL;
  const intervalMs = parseDuration(intervalText, 'interval');
  if ((io.stdout as Terminal).isTTY !== true)
    throw new CliError(
      'top needs a terminal on stdout (for a log or a script, run `secure-ipc inspect ADDRESS --json` every interval)',
    );
  return withClient(address, values, io, async (client) => {
    const stop = new AbortController();
    // A server that goes away ends the view too (the error below says why).
    client.once('close', () => stop.abort());
    const release = stopKeys(io, stop);
    io.stdout.write(ENTER);
    try {
      await loop(client, address, intervalText, intervalMs, io, stop.signal);
    } finally {
      io.stdout.write(LEAVE);
      release();
    }
    if (client.closed) throw new CliError('the server closed the channel', ExitCode.Failed);
    return ExitCode.Ok;
  });
}
