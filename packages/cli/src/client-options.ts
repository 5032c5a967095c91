/**
 * The options of the commands that connect to a server (`ping`, `call`) and the one way they
 * connect: load `--key`, trust `--server-key` or certificates (`--cert FILE --trust-ca PUBKEY`),
 * pick the transport by the address's scheme, `connect()`, and wipe the key when done.
 */
import { type ConnectOptions, connect, type RpcClient, zeroKeyPair } from '@secure-ipc/core';
import { required } from './args.js';
import { resolveTrust } from './identity-options.js';
import type { CliIo } from './io.js';
import { allowUnmarkedOption, loadKeyOption } from './secret-key-input.js';
import { credentialOptionsFrom, peerCredentialOptions, transportFor } from './transports.js';
import type { UnixOptionValues } from './unix-options.js';
import type { WinOptionValues } from './win-options.js';

/** parseArgs specs of the options of every client command. */
export const clientOptions = {
  key: { type: 'string' },
  ...allowUnmarkedOption,
  'server-key': { type: 'string', multiple: true },
  cert: { type: 'string' },
  'trust-ca': { type: 'string', multiple: true },
  'app-id': { type: 'string' },
  ...peerCredentialOptions,
} as const;

/** What `clientOptions` parse to. */
export interface ClientOptionValues extends UnixOptionValues, WinOptionValues {
  key?: string | undefined;
  'allow-unmarked-key'?: boolean | undefined;
  'server-key'?: string[] | undefined;
  cert?: string | undefined;
  'trust-ca'?: string[] | undefined;
  'app-id'?: string | undefined;
}

/**
 * Connect to `address` as `values` say, then run `use` with the client; the client is closed and
 * the secret key wiped however `use` ends. Usage errors of the address and the options come
 * before the key file is read. `open` makes the client (core's `connect`, or another package's
 * client over it: `connectBus`).
 */
export function withClient<T>(
  address: string,
  values: ClientOptionValues,
  io: CliIo,
  use: (client: RpcClient) => Promise<T>,
): Promise<T>;
export function withClient<T, C extends { close(): Promise<void> }>(
  address: string,
  values: ClientOptionValues,
  io: CliIo,
  use: (client: C) => Promise<T>,
  open: (options: ConnectOptions) => Promise<C>,
): Promise<T>;
export async function withClient<T, C extends { close(): Promise<void> }>(
  address: string,
  values: ClientOptionValues,
  io: CliIo,
  use: (client: C) => Promise<T>,
  open: (options: ConnectOptions) => Promise<C> = connect as never,
): Promise<T> {
  const keyFile = required(values.key, 'key');
  const transport = transportFor(address, credentialOptionsFrom(values));
  const keyPair = await loadKeyOption(keyFile, io, values['allow-unmarked-key'] === true);
  try {
    const { trust, payload } = await resolveTrust({
      keyPair,
      pinned: values['server-key'] ?? [],
      pinnedOption: 'server-key',
      certFile: values.cert,
      authorities: values['trust-ca'] ?? [],
    });
    const client = await open({
      transport,
      address,
      keyPair,
      trust,
      ...(payload ? { payload } : {}),
      ...(values['app-id'] !== undefined ? { appId: values['app-id'] } : {}),
    });
    try {
      return await use(client);
    } finally {
      await client.close();
    }
  } finally {
    zeroKeyPair(keyPair);
  }
}
