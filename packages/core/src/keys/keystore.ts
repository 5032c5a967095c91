/**
 * Secret keys in the OS keystore (macOS Keychain, Windows Credential Manager, Linux Secret
 * Service) through the maintained `@napi-rs/keyring`. It is an optional dependency loaded by
 * dynamic import, so core installs and works without it; every failure (module missing, no
 * Secret Service on the bus, locked store) is SIPC_ERR_KEYSTORE with the real reason in `cause`.
 */

import { sodium } from '../crypto/sodium.js';
import { createError, isSecureIpcError } from '../errors.js';

/** The keystore service name entries are stored under by default. */
export const KEYSTORE_SERVICE = 'secure-ipc';

/** Options of the keystore functions. */
export interface KeystoreOptions {
  /** Service name (default 'secure-ipc'). */
  service?: string | undefined;
  /**
   * Linux store (default 'secret-service'). Pinned explicitly: the library's default mixes in the
   * kernel keyutils cache, where an unreachable Secret Service reads as "no key stored" instead
   * of an error; pinned, it is SIPC_ERR_KEYSTORE. 'keyutils' does not survive a reboot.
   */
  linuxStore?: 'secret-service' | 'keyutils' | undefined;
  /** Abort the keystore call. */
  signal?: AbortSignal | undefined;
}

interface AsyncEntryLike {
  setSecret(secret: Uint8Array, signal?: AbortSignal | null): Promise<void>;
  getSecret(signal?: AbortSignal | null): Promise<number[] | null>;
  deleteCredential(signal?: AbortSignal | null): Promise<boolean>;
}
type KeyringModule = {
  AsyncEntry: new (
    service: string,
    account: string,
    options?: { linux?: { store?: string } },
  ) => AsyncEntryLike;
};

let keyring: Promise<KeyringModule> | undefined;

async function entry(account: string, options: KeystoreOptions): Promise<AsyncEntryLike> {
  if (typeof account !== 'string' || account.length === 0 || account.length > 256)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'A keystore account name must be 1..256 characters');
  // A variable specifier keeps TypeScript from requiring the optional module at build time.
  const specifier = '@napi-rs/keyring';
  keyring ??= (import(specifier) as Promise<KeyringModule>).catch((err: unknown) => {
    keyring = undefined;
    throw createError(
      'SIPC_ERR_KEYSTORE',
      'The OS keystore is unavailable: @napi-rs/keyring is not installed',
      {
        cause: err,
      },
    );
  });
  const mod = await keyring;
  // The constructor connects to the store (D-Bus on Linux) and throws when it cannot.
  return keystoreCall(
    'open',
    async () =>
      new mod.AsyncEntry(options.service ?? KEYSTORE_SERVICE, account, {
        linux: { store: options.linuxStore ?? 'secret-service' },
      }),
  );
}

async function keystoreCall<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (err) {
    if (isSecureIpcError(err)) throw err;
    throw createError('SIPC_ERR_KEYSTORE', `OS keystore ${what} failed`, { cause: err });
  }
}

/** Store a 32-byte secret key under `account` (replacing any previous one). */
export async function storeSecretKey(
  account: string,
  secretKey: Uint8Array,
  options: KeystoreOptions = {},
): Promise<void> {
  if (!(secretKey instanceof Uint8Array) || secretKey.byteLength !== 32)
    throw createError('SIPC_ERR_BAD_KEY', 'A secret key must be 32 bytes');
  const e = await entry(account, options);
  await keystoreCall('store', () => e.setSecret(secretKey, options.signal));
}

/** Load the secret key stored under `account`; undefined if there is none. The result is sodium-guarded memory: zero it when done. */
export async function loadSecretKey(
  account: string,
  options: KeystoreOptions = {},
): Promise<Uint8Array | undefined> {
  const e = await entry(account, options);
  const bytes = await keystoreCall('load', () => e.getSecret(options.signal));
  if (bytes === null) return undefined;
  try {
    if (bytes.length !== 32) throw createError('SIPC_ERR_BAD_KEY', 'The stored secret key is not 32 bytes');
    const key = sodium.sodium_malloc(32);
    key.set(bytes);
    return key;
  } finally {
    // The binding hands the secret over as a plain array: overwrite it, it cannot be memzero'd.
    bytes.fill(0);
  }
}

/** Delete the secret key stored under `account`; false if there was none. */
export async function deleteSecretKey(account: string, options: KeystoreOptions = {}): Promise<boolean> {
  const e = await entry(account, options);
  return keystoreCall('delete', () => e.deleteCredential(options.signal));
}
