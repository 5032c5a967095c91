/**
 * `secure-ipc serve --listen ADDRESS --key FILE --allow PUBKEY [--allow PUBKEY ...] [--app-id ID] [--allow-remote]`,
 * or with certificates `--cert FILE --trust-ca PUBKEY [--trust-ca PUBKEY ...] [--revocations FILE]` in place of
 * `--allow`: serves `$ping` (and nothing else: the policy denies every other method) to any authenticated
 * peer until SIGINT or SIGTERM; prints `listening ADDRESS` on stdout once ready, then shuts down cleanly
 * (the socket file is removed). The revocation list file is watched: a revoked peer's channel closes.
 */
import {
  createServer,
  enforceRevocation,
  secureListen,
  type WatchedRevocationList,
  watchRevocationList,
  zeroKeyPair,
} from '@secure-ipc/core';
import { parse, required } from '../args.js';
import { resolveTrust } from '../identity-options.js';
import { CliError, type CliIo, describeError, ExitCode, println } from '../io.js';
import { describePeer } from '../peer-line.js';
import { allowUnmarkedOption, loadKeyOption } from '../secret-key-input.js';
import { transportFor } from '../transports.js';
import { unixOptionsFrom, unixPeerOptions, unixSocketOptions } from '../unix-options.js';

/** Usage line. */
export const usage =
  'secure-ipc serve --listen ADDRESS --key FILE (--allow PUBKEY ... | --cert FILE --trust-ca PUBKEY ... [--revocations FILE]) [--app-id ID] [--allow-remote] [--allow-unmarked-key] [--allow-uid UID ...] [--allow-gid GID ...] [--socket-mode 0600|0660|0666] [--socket-group GROUP]';

/** Resolves on the first of SIGINT / SIGTERM (or when `signal` aborts, for tests). */
function untilStopped(signal?: AbortSignal): Promise<string> {
  return new Promise((resolve) => {
    const stop = (why: string) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(why);
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
    signal?.addEventListener('abort', () => stop('abort'), { once: true });
  });
}

/** Run the command; resolves with the exit code once stopped. */
export async function run(argv: string[], io: CliIo, stop?: AbortSignal): Promise<number> {
  const { values } = parse(argv, {
    listen: { type: 'string' },
    key: { type: 'string' },
    ...allowUnmarkedOption,
    allow: { type: 'string', multiple: true },
    cert: { type: 'string' },
    'trust-ca': { type: 'string', multiple: true },
    revocations: { type: 'string' },
    'app-id': { type: 'string' },
    'allow-remote': { type: 'boolean' },
    ...unixPeerOptions,
    ...unixSocketOptions,
  });
  const address = required(values.listen, 'listen');
  const keyFile = required(values.key, 'key');
  if ((values['trust-ca'] ?? []).length === 0 && values.cert !== undefined)
    throw new CliError('--cert needs --trust-ca (the authorities whose certificates clients present)');
  const transport = transportFor(address, {
    allowRemote: values['allow-remote'] === true,
    unix: unixOptionsFrom(values),
  });
  const keyPair = await loadKeyOption(keyFile, io, values['allow-unmarked-key'] === true);
  let revocations: WatchedRevocationList | undefined;
  try {
    if (values.revocations !== undefined) revocations = await watchRevocationList(values.revocations);
    const { trust, payload } = await resolveTrust({
      keyPair,
      pinned: values.allow ?? [],
      pinnedOption: 'allow',
      certFile: values.cert,
      authorities: values['trust-ca'] ?? [],
      ...(revocations ? { revocations } : {}),
    });
    const listener = await transport.listen(address);
    const secure = secureListen(listener, {
      keyPair,
      trust,
      ...(payload ? { payload } : {}),
      ...(values['app-id'] !== undefined ? { appId: values['app-id'] } : {}),
    });
    if (revocations) {
      const enforcer = enforceRevocation({ listener: secure, revocations });
      enforcer.on('decision', (d) =>
        println(io.stderr, `policy: closed the channel of ${d.who} (${d.what})`),
      );
      revocations.on('reloadError', (err) =>
        println(io.stderr, `revocation list not reloaded: ${describeError(err)}`),
      );
    }
    // No policy: deny by default, so only `$ping` (allowed to any authenticated peer) is served.
    const server = createServer();
    server.listen(secure);
    secure.on('channel', (ch) =>
      println(io.stderr, `peer ${describePeer(ch.remoteStaticKey, ch.peer)} connected`),
    );
    secure.on('handshakeError', (err) => println(io.stderr, `rejected a connection: ${describeError(err)}`));
    listener.on('reject', (err) => println(io.stderr, `rejected a connection: ${describeError(err)}`));
    // The address as bound: for tcp://127.0.0.1:0, with the port the OS picked.
    println(io.stdout, `listening ${listener.address}`);
    // A fatal listener error (the transport can no longer accept) stops the server with exit 4.
    const failed = new AbortController();
    secure.on('error', (err) => {
      println(io.stderr, `the listener failed: ${describeError(err)}`);
      failed.abort();
    });
    const why = await untilStopped(stop ? AbortSignal.any([stop, failed.signal]) : failed.signal);
    println(io.stderr, `${why}: shutting down`);
    await server.close();
    await listener.close();
    return failed.signal.aborted ? ExitCode.Address : ExitCode.Ok;
  } finally {
    revocations?.close();
    zeroKeyPair(keyPair);
  }
}
