/**
 * Where an outbox's master key and its anchor live (docs/outbox.md, "Keys" and "Rollback: the
 * anchor"): the OS keystore (the key under ACCOUNT, the anchor under ACCOUNT.anchor) or an
 * encrypted key file (the anchor in KEYFILE.anchor beside it). Both are outside the outbox
 * directory; a key file inside it is refused.
 */
import { realpath } from 'node:fs/promises';
import { basename, dirname, isAbsolute, join, relative, resolve, sep } from 'node:path';
import { sodium } from '../crypto/sodium.js';
import { createError, isSecureIpcError } from '../errors.js';
import {
  type PasswordHashLimits,
  readEncryptedKeyFile,
  writeEncryptedKeyFile,
} from '../keys/encrypted-key-file.js';
import { type KeystoreOptions, loadSecretKey, storeSecretKey } from '../keys/keystore.js';
import { readBoundedFile, writeFileAtomic } from '../keys/private-file.js';
import { syncDirectory } from '../resilience/record-file.js';
import { ANCHOR_BYTES, ANCHOR_FILE_MAGIC, deriveOutboxKeys, type OutboxKeys } from './format.js';

/** The master key in the OS keystore: created (32 random bytes) on first use. */
export interface OutboxKeystoreKey extends Omit<KeystoreOptions, 'signal'> {
  /** The keystore account (1 to 256 characters); the anchor is stored under `ACCOUNT.anchor`. */
  keystore: string;
}

/** The master key in an encrypted key file (identity.md's format): created 0600 on first use. */
export interface OutboxFileKey {
  /** The key file's path (outside the outbox directory); the anchor goes to `FILE.anchor`. */
  file: string;
  /** Its passphrase (not empty). */
  passphrase: string | Uint8Array;
  /** Argon2id limits when the file is created (default libsodium's MODERATE). */
  limits?: PasswordHashLimits;
}

/** Where an outbox's master key lives. */
export type OutboxKeySource = OutboxKeystoreKey | OutboxFileKey;

/** Where the anchor is read and written. */
export interface AnchorStore {
  /** For messages: the keystore account or the file path. */
  readonly where: string;
  read(): Promise<Uint8Array | undefined>;
  write(anchor: Uint8Array): Promise<void>;
}

/** A key source opened: the master key (sodium memory: zero it) and the anchor's place. */
export interface OpenedKey {
  readonly master: Uint8Array;
  readonly kind: 'keystore' | 'key-file';
  /** 'secret-service', 'keyutils', 'keychain', 'credential-manager' or 'encrypted-file'. */
  readonly store: string;
  readonly anchor: AnchorStore;
}

const invalid = (message: string) => createError('SIPC_ERR_INVALID_ARGUMENT', message);

/** The keystore behind `loadSecretKey` on this OS. */
export function keystoreName(linuxStore: string | undefined): string {
  if (process.platform === 'darwin') return 'keychain';
  if (process.platform === 'win32') return 'credential-manager';
  return linuxStore ?? 'secret-service';
}

async function openKeystore(source: OutboxKeystoreKey): Promise<OpenedKey> {
  const options: KeystoreOptions = {};
  if (source.service !== undefined) options.service = source.service;
  if (source.linuxStore !== undefined) options.linuxStore = source.linuxStore;
  let master = await loadSecretKey(source.keystore, options);
  if (master === undefined) {
    const fresh = sodium.sodium_malloc(32);
    sodium.randombytes_buf(fresh);
    await storeSecretKey(source.keystore, fresh, options);
    master = fresh;
  }
  const account = `${source.keystore}.anchor`;
  return {
    master,
    kind: 'keystore',
    store: keystoreName(source.linuxStore),
    anchor: {
      where: `keystore account ${account}`,
      read: async () => {
        const bytes = await loadSecretKey(account, options);
        if (bytes === undefined) return undefined;
        const copy = Buffer.from(bytes);
        sodium.sodium_memzero(bytes);
        return copy;
      },
      write: (anchor) => storeSecretKey(account, anchor, options),
    },
  };
}

function fileAnchor(path: string): AnchorStore {
  const magic = Buffer.from(ANCHOR_FILE_MAGIC, 'ascii');
  return {
    where: path,
    read: async () => {
      let raw: Buffer;
      try {
        raw = await readBoundedFile(path, {
          maxBytes: 256,
          code: 'SIPC_ERR_OUTBOX_ROLLBACK',
          kind: 'secret',
        });
      } catch (err) {
        if ((err as { cause?: { code?: string } }).cause?.code === 'ENOENT') return undefined;
        throw err;
      }
      if (
        raw.byteLength !== magic.byteLength + ANCHOR_BYTES ||
        !raw.subarray(0, magic.byteLength).equals(magic)
      )
        return Buffer.alloc(0); // present but not an anchor: decodeAnchor refuses it
      return raw.subarray(magic.byteLength);
    },
    write: async (anchor) => {
      await writeFileAtomic(path, Buffer.concat([magic, anchor]), 0o600);
      await syncDirectory(dirname(path));
    },
  };
}

async function openKeyFile(source: OutboxFileKey, dir: string): Promise<OpenedKey> {
  // On real paths: a link to the directory must not pass for a path outside it.
  const real = async (p: string) => realpath(p).catch(() => resolve(p));
  const rel = relative(
    await real(dir),
    join(await real(dirname(resolve(source.file))), basename(source.file)),
  );
  if (rel === '' || !(rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel)))
    throw invalid(
      `The outbox key file ${source.file} is inside the outbox directory ${dir}: keep the key apart from the data`,
    );
  let master: Uint8Array;
  try {
    master = await readEncryptedKeyFile(source.file, source.passphrase);
  } catch (err) {
    if (!(isSecureIpcError(err) && (err.cause as { code?: string } | undefined)?.code === 'ENOENT'))
      throw err;
    const fresh = sodium.sodium_malloc(32);
    sodium.randombytes_buf(fresh);
    try {
      await writeEncryptedKeyFile(source.file, fresh, source.passphrase, source.limits);
    } catch (writeErr) {
      sodium.sodium_memzero(fresh);
      throw writeErr;
    }
    master = fresh;
  }
  return { master, kind: 'key-file', store: 'encrypted-file', anchor: fileAnchor(`${source.file}.anchor`) };
}

/** Open a key source (creating the key on first use). */
export async function openKeySource(source: OutboxKeySource, dir: string): Promise<OpenedKey> {
  if (typeof source !== 'object' || source === null)
    throw invalid('outbox key must be { keystore: ACCOUNT } or { file: PATH, passphrase }');
  if ('keystore' in source && typeof source.keystore === 'string') return openKeystore(source);
  if ('file' in source && typeof source.file === 'string' && source.file.length > 0) {
    const p = (source as OutboxFileKey).passphrase;
    if (!(typeof p === 'string' || p instanceof Uint8Array) || p.length === 0)
      throw invalid('An outbox key file needs a non-empty passphrase');
    return openKeyFile(source as OutboxFileKey, dir);
  }
  throw invalid(
    'outbox key must be { keystore: ACCOUNT } or { file: PATH, passphrase } (an inline key is refused)',
  );
}

/** Open a key source and derive the outbox's subkeys; the master key is wiped at once. */
export async function openOutboxKeys(
  source: OutboxKeySource,
  dir: string,
): Promise<{ key: OpenedKey; keys: OutboxKeys }> {
  const key = await openKeySource(source, dir);
  try {
    return { key, keys: deriveOutboxKeys(key.master) };
  } finally {
    sodium.sodium_memzero(key.master);
  }
}
