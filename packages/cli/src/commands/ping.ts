/**
 * `secure-ipc ping ADDRESS --key FILE --server-key PUBKEY [--app-id ID] [--count N] [--interval MS]`, or with
 * certificates `--cert FILE --trust-ca PUBKEY [--trust-ca PUBKEY ...]` in place of `--server-key`:
 * one channel, N `$ping` round trips; prints each round trip and min / median / p99. Exits non-zero
 * if any ping fails or the channel closes early.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect, zeroKeyPair } from '@secure-ipc/core';
import { nonNegativeInt, parse, positiveInt, required } from '../args.js';
import { resolveTrust } from '../identity-options.js';
import { CliError, type CliIo, describeError, ExitCode, println } from '../io.js';
import { describePeer } from '../peer-line.js';
import { allowUnmarkedOption, loadKeyOption } from '../secret-key-input.js';
import { ms, percentile } from '../stats.js';
import { transportFor } from '../transports.js';
import { unixOptionsFrom, unixPeerOptions } from '../unix-options.js';

/** Usage line. */
export const usage =
  'secure-ipc ping ADDRESS --key FILE (--server-key PUBKEY | --cert FILE --trust-ca PUBKEY ...) [--app-id ID] [--count N] [--interval MS] [--allow-unmarked-key] [--allow-uid UID ...] [--allow-gid GID ...]';

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

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(
    argv,
    {
      key: { type: 'string' },
      ...allowUnmarkedOption,
      'server-key': { type: 'string', multiple: true },
      cert: { type: 'string' },
      'trust-ca': { type: 'string', multiple: true },
      'app-id': { type: 'string' },
      count: { type: 'string' },
      interval: { type: 'string' },
      ...unixPeerOptions,
    },
    true,
  );
  if (positionals.length !== 1) throw new CliError('give exactly one ADDRESS');
  const address = positionals[0]!;
  const keyFile = required(values.key, 'key');
  const count = positiveInt(values.count, 'count', 4);
  const interval = nonNegativeInt(values.interval, 'interval', 1000);
  const transport = transportFor(address, { unix: unixOptionsFrom(values) });
  const keyPair = await loadKeyOption(keyFile, io, values['allow-unmarked-key'] === true);
  try {
    const { trust, payload } = await resolveTrust({
      keyPair,
      pinned: values['server-key'] ?? [],
      pinnedOption: 'server-key',
      certFile: values.cert,
      authorities: values['trust-ca'] ?? [],
    });
    const client = await connect({
      transport,
      address,
      keyPair,
      trust,
      ...(payload ? { payload } : {}),
      ...(values['app-id'] !== undefined ? { appId: values['app-id'] } : {}),
    });
    println(
      io.stdout,
      `connected to ${address}: server ${describePeer(client.remoteStaticKey, client.peer)}`,
    );
    const rtts: number[] = [];
    let failures = 0;
    try {
      for (let i = 1; i <= count; i++) {
        if (client.closed) throw closedEarly(i - 1, count, rtts.length);
        const payload = randomBytes(PING_BYTES);
        const t0 = process.hrtime.bigint();
        try {
          const echo = await client.ping(payload, { timeoutMs: PING_TIMEOUT_MS });
          const rtt = Number(process.hrtime.bigint() - t0) / 1e6;
          if (!(echo instanceof Uint8Array) || !payload.equals(echo))
            throw new Error('the echo does not match');
          rtts.push(rtt);
          println(io.stdout, `ping ${i}: ${ms(rtt)}`);
        } catch (err) {
          failures++;
          println(io.stdout, `ping ${i}: failed: ${describeError(err)}`);
          if (client.closed) throw closedEarly(i, count, rtts.length);
        }
        if (i < count && interval > 0) await sleep(interval);
      }
    } finally {
      await client.close();
    }
    println(
      io.stdout,
      `${count} pings, ${failures} failed: min ${ms(Math.min(...rtts))}, median ${ms(percentile(rtts, 50))}, p99 ${ms(percentile(rtts, 99))}`,
    );
    return failures === 0 ? ExitCode.Ok : ExitCode.Failed;
  } finally {
    zeroKeyPair(keyPair);
  }
}
