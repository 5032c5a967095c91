/**
 * The app side's one job: connect to the daemon, authenticating it by its pinned public key (and,
 * below that, by the OS user it runs as), and call its methods. Used by the command-line app
 * (app.ts) and by the Electron utility process (electron-utility.ts).
 */
import { connect, type RpcClient, readSecretKeyFile, zeroKeyPair } from '@secure-ipc/core';
import type { AppConfig } from './config.js';
import type { HelperMethod, HelperService } from './service.js';
import { appTransport } from './transports.js';

/** A connected client of the daemon. */
export type HelperClient = RpcClient<HelperService>;

/** How one call went: its result, or the error code and message (a code is what callers match on). */
export type CallOutcome =
  | { method: HelperMethod; result: unknown }
  | { method: HelperMethod; error: string; message: string };

/** How a failed step is reported: the typed error's code and message. */
export function failure(err: unknown): { error: string; message: string } {
  return {
    error: (err as { code?: string }).code ?? 'UNKNOWN',
    message: (err as Error).message ?? String(err),
  };
}

/**
 * Connect as `config` says. The app's secret key is read from its file and wiped when the
 * connection closes (or fails); only the daemon key in `config` is accepted.
 */
export async function connectHelper(config: AppConfig): Promise<HelperClient> {
  const transport = await appTransport(config);
  const keyPair = await readSecretKeyFile(config.keyFile);
  try {
    const client = await connect<HelperService>({
      transport,
      address: config.address,
      keyPair,
      trust: { keys: [config.daemonKey] },
    });
    client.once('close', () => zeroKeyPair(keyPair));
    return client;
  } catch (err) {
    zeroKeyPair(keyPair);
    throw err;
  }
}

/** Call `method` (neither takes parameters) and report how it went; never throws. */
export async function callHelper(client: HelperClient, method: HelperMethod): Promise<CallOutcome> {
  try {
    return { method, result: await client.request(method) };
  } catch (err) {
    return { method, ...failure(err) };
  }
}
