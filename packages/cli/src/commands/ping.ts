/**
 * `secure-ipc ping ADDRESS --key FILE --server-key PUBKEY [--app-id ID] [--count N] [--interval MS]`, or with
 * certificates `--cert FILE --trust-ca PUBKEY [--trust-ca PUBKEY ...]` in place of `--server-key`:
 * one channel, N `$ping` round trips; prints each round trip and min / median / p99. Exits non-zero
 * if any ping fails or the channel closes early. With `--json`: one JSON line per event (connected,
 * each ping, the summary; package README, "JSON output").
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { RpcClient } from '@secure-ipc/core';
import { jsonOption, nonNegativeInt, parse, positiveInt } from '../args.js';
import { clientOptions, withClient } from '../client-options.js';
import { CliError, type CliIo, describeError, ExitCode, errorJSON, type Report, reporter } from '../io.js';
import { describePeer, peerJSON } from '../peer-line.js';
import { ms, percentile } from '../stats.js';

/** Usage line. */
export const usage =
  'secure-ipc ping ADDRESS --key FILE (--server-key PUBKEY | --cert FILE --trust-ca PUBKEY ...) [--app-id ID] [--count N] [--interval MS] [--json] [--allow-unmarked-key] [--allow-uid UID ...] [--allow-gid GID ...] [--allow-sid SID|NAME ...]';

// Each ping carries fresh random bytes so an echo cannot be a stale or forged answer.
const PING_BYTES = 32;
const PING_TIMEOUT_MS = 10_000;

// In Noise XX the responder authenticates the initiator only after message 3. A protocol-2 server
// confirms or refuses then, so its refusal is SIPC_ERR_REFUSED from connect() (exit 5); a
// version-1 server can only close the channel: a close before any answer is most likely that
// (exit 5); a close after answers is a failure of the run (exit 1).
function closedEarly(done: number, count: number, answered: number): CliError {
  if (answered === 0)
    return new CliError(
      'the server closed the channel before answering: it probably does not trust this client key (or app id)',
      ExitCode.Auth,
    );
  return new CliError(`the channel closed early after ${done} of ${count} pings`, ExitCode.Failed);
}

/** Milliseconds rounded to the microsecond, for JSON (null when there is no value). */
function msJSON(value: number): number | null {
  return Number.isFinite(value) ? Math.round(value * 1000) / 1000 : null;
}

/** One `$ping` round trip: its time in ms, or throws. */
async function roundTrip(client: RpcClient): Promise<number> {
  const payload = randomBytes(PING_BYTES);
  const t0 = process.hrtime.bigint();
  const echo = await client.ping(payload, { timeoutMs: PING_TIMEOUT_MS });
  const rtt = Number(process.hrtime.bigint() - t0) / 1e6;
  if (!(echo instanceof Uint8Array) || !payload.equals(echo)) throw new Error('the echo does not match');
  return rtt;
}

/** `count` round trips `interval` ms apart, each reported; resolves with their times and the failures. */
async function pingLoop(
  client: RpcClient,
  report: Report,
  count: number,
  interval: number,
): Promise<{ rtts: number[]; failures: number }> {
  const rtts: number[] = [];
  let failures = 0;
  for (let i = 1; i <= count; i++) {
    if (client.closed) throw closedEarly(i - 1, count, rtts.length);
    try {
      const rtt = await roundTrip(client);
      rtts.push(rtt);
      report({ event: 'ping', seq: i, rttMs: msJSON(rtt) }, `ping ${i}: ${ms(rtt)}`);
    } catch (err) {
      failures++;
      report(
        { event: 'ping', seq: i, ...errorJSON(err, 'ping') },
        `ping ${i}: failed: ${describeError(err)}`,
      );
      if (client.closed) throw closedEarly(i, count, rtts.length);
    }
    if (i < count && interval > 0) await sleep(interval);
  }
  return { rtts, failures };
}

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { ...clientOptions, count: { type: 'string' }, interval: { type: 'string' }, ...jsonOption },
    true,
  );
  if (positionals.length !== 1) throw new CliError('give exactly one ADDRESS');
  const address = positionals[0]!;
  const count = positiveInt(values.count, 'count', 4);
  const interval = nonNegativeInt(values.interval, 'interval', 1000);
  const report = reporter(io, values.json);
  return withClient(address, values, io, async (client) => {
    report(
      { event: 'connected', address, server: peerJSON(client.remoteStaticKey, client.peer) },
      `connected to ${address}: server ${describePeer(client.remoteStaticKey, client.peer)}`,
    );
    const { rtts, failures } = await pingLoop(client, report, count, interval);
    const [min, median, p99] = [Math.min(...rtts), percentile(rtts, 50), percentile(rtts, 99)];
    report(
      {
        event: 'summary',
        count,
        failed: failures,
        minMs: msJSON(min),
        medianMs: msJSON(median),
        p99Ms: msJSON(p99),
      },
      `${count} pings, ${failures} failed: min ${ms(min)}, median ${ms(median)}, p99 ${ms(p99)}`,
    );
    return failures === 0 ? ExitCode.Ok : ExitCode.Failed;
  });
}
