/**
 * `secure-ipc serve --listen ADDRESS --key FILE --allow PUBKEY [--allow PUBKEY ...] [--app-id ID] [--allow-remote]`:
 * serves `$ping` (and nothing else: the policy denies every other method) until SIGINT or SIGTERM;
 * prints `listening ADDRESS` on stdout once ready, then shuts down cleanly (the socket file is removed).
 */
import { createServer, readSecretKeyFile, secureListen, zeroKeyPair } from '@secure-ipc/core';
import { parse, publicKeyArg, required } from '../args.js';
import { CliError, type CliIo, describeError, ExitCode, println } from '../io.js';
import { describePeer } from '../peer-line.js';
import { transportFor } from '../transports.js';

/** Usage line. */
export const usage =
  'secure-ipc serve --listen ADDRESS --key FILE --allow PUBKEY [--allow PUBKEY ...] [--app-id ID] [--allow-remote]';

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
    allow: { type: 'string', multiple: true },
    'app-id': { type: 'string' },
    'allow-remote': { type: 'boolean' },
  });
  const address = required(values.listen, 'listen');
  const keyFile = required(values.key, 'key');
  const allow = (values.allow ?? []).map((k) => publicKeyArg(k, 'allow'));
  if (allow.length === 0)
    throw new CliError('give at least one --allow PUBKEY (no peer is trusted by default)');
  const transport = transportFor(address, { allowRemote: values['allow-remote'] === true });
  const keyPair = await readSecretKeyFile(keyFile);
  try {
    const listener = await transport.listen(address);
    const secure = secureListen(listener, {
      keyPair,
      trust: { keys: allow },
      ...(values['app-id'] !== undefined ? { appId: values['app-id'] } : {}),
    });
    // No policy: deny by default, so only `$ping` (allowed to any authenticated peer) is served.
    const server = createServer();
    server.listen(secure);
    secure.on('channel', (ch) =>
      println(io.stderr, `peer ${describePeer(ch.remoteStaticKey, ch.peer)} connected`),
    );
    secure.on('handshakeError', (err) => println(io.stderr, `rejected a connection: ${describeError(err)}`));
    listener.on('reject', (err) => println(io.stderr, `rejected a connection: ${describeError(err)}`));
    println(io.stdout, `listening ${address}`);
    const why = await untilStopped(stop);
    println(io.stderr, `${why}: shutting down`);
    await server.close();
    await listener.close();
    return ExitCode.Ok;
  } finally {
    zeroKeyPair(keyPair);
  }
}
