/**
 * The example's two config files, read and checked before anything listens or connects.
 *
 *   daemon.json  read by the privileged daemon: its address, key file, which public keys get which
 *                role, and which OS users are accepted at accept. It decides who is let in, so it
 *                is trust material: on Unix it must be owned by the daemon's user (or root) and not
 *                writable by group or others (SIPC_ERR_INSECURE_FILE otherwise).
 *   app.json     read by the unprivileged app: the address, its key file and the daemon's public key.
 *
 * A missing or unknown field, a wrong type or a malformed key is SIPC_ERR_INVALID_ARGUMENT naming the
 * file and the field: a typo never silently changes who is let in.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { createError, decodeKey } from '@secure-ipc/core';

/** The daemon's config (daemon.json). */
export interface DaemonConfig {
  /** Where to listen: `local://system/APP` (every OS), `unix:///path` (Linux, macOS) or `pipe://NAME` (Windows). */
  address: string;
  /** The daemon's secret key file (`secure-ipc keygen`): mode 0600, owned by the daemon's user. */
  keyFile: string;
  /** Public keys (44-character base64) given the role `app`: they may call `status.get`. */
  appKeys: string[];
  /** Public keys given the role `admin`: they may also call `admin.shutdown`. Often empty. */
  adminKeys: string[];
  /** Unix: the uids accepted at accept (from the kernel's credentials); default: the daemon's own. */
  allowedUids?: number[];
  /**
   * Windows: the users accepted at accept (from the client's token), as SIDs or well-known names
   * (`interactive`, `authenticated-users`, ...); default: the daemon's own account.
   */
  allowedSids?: string[];
  /** Unix: who may `connect()` to the socket file: `"0600"` (default), `"0660"` or `"0666"`. */
  socketMode?: '0600' | '0660' | '0666';
  /** Unix: the socket file's group id (with `"0660"`). */
  socketGroup?: number;
  /** Unix: where `local://system/` sockets live (default `/run/secure-ipc-system`); for tests. */
  systemDirectory?: string;
}

/** The app's config (app.json). */
export interface AppConfig {
  /** The daemon's address. */
  address: string;
  /** The app's own secret key file: mode 0600, owned by the app's user. */
  keyFile: string;
  /** The daemon's public key (44-character base64): the only server key the app accepts. */
  daemonKey: string;
  /** Unix: the same `systemDirectory` as the daemon's, if it has one. */
  systemDirectory?: string;
  /** Unix: the uids that may serve (default for `local://system/`: root only; else the app's own). */
  serverUids?: number[];
  /**
   * Windows: the accounts the daemon process may run as, as SIDs or names (`local-service`, ...);
   * default for `local://system/`: SYSTEM only, else the app's own user.
   */
  serverSids?: string[];
}

type Check = (value: unknown) => boolean;
interface Field {
  check: Check;
  what: string;
  required?: true;
}

const isText: Check = (v) => typeof v === 'string' && v.length > 0 && v.length <= 4096;
const isKey: Check = (v) => {
  try {
    return typeof v === 'string' && decodeKey(v).length === 32;
  } catch {
    return false;
  }
};
const listOf =
  (check: Check): Check =>
  (v) =>
    Array.isArray(v) && v.length <= 1024 && v.every(check);
const isId: Check = (v) => Number.isSafeInteger(v) && (v as number) >= 0 && (v as number) < 2 ** 32;

const DAEMON_FIELDS: Record<keyof DaemonConfig, Field> = {
  address: { check: isText, what: 'an address string', required: true },
  keyFile: { check: isText, what: 'a path', required: true },
  appKeys: { check: listOf(isKey), what: 'a list of base64 public keys', required: true },
  adminKeys: { check: listOf(isKey), what: 'a list of base64 public keys', required: true },
  allowedUids: { check: listOf(isId), what: 'a list of uids' },
  // Each entry (a SID or a well-known name such as "interactive") is checked by transport-win.
  allowedSids: { check: listOf(isText), what: 'a list of SIDs (S-1-...) or well-known names' },
  socketMode: {
    check: (v) => v === '0600' || v === '0660' || v === '0666',
    what: '"0600", "0660" or "0666"',
  },
  socketGroup: { check: isId, what: 'a group id' },
  systemDirectory: { check: isText, what: 'a path' },
};

const APP_FIELDS: Record<keyof AppConfig, Field> = {
  address: { check: isText, what: 'an address string', required: true },
  keyFile: { check: isText, what: 'a path', required: true },
  daemonKey: { check: isKey, what: 'a base64 public key', required: true },
  systemDirectory: { check: isText, what: 'a path' },
  serverUids: { check: listOf(isId), what: 'a list of uids' },
  serverSids: { check: listOf(isText), what: 'a list of SIDs (S-1-...) or well-known names' },
};

const MAX_CONFIG_BYTES = 64 * 1024;

/** Check `value` (parsed JSON from `path`) against `fields`; returns it typed, or throws naming the field. */
function checkFields<T>(path: string, value: unknown, fields: Record<string, Field>): T {
  const bad = (message: string) => createError('SIPC_ERR_INVALID_ARGUMENT', `${path}: ${message}`);
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw bad('the config must be a JSON object');
  const record = value as Record<string, unknown>;
  for (const name of Object.keys(record))
    if (!Object.hasOwn(fields, name)) throw bad(`unknown field "${name}"`);
  for (const [name, field] of Object.entries(fields)) {
    if (record[name] === undefined) {
      if (field.required) throw bad(`"${name}" is missing (${field.what})`);
    } else if (!field.check(record[name])) throw bad(`"${name}" must be ${field.what}`);
  }
  return value as T;
}

/**
 * Read a JSON config file of at most 64 KiB. With `trusted`, on Unix, the file must be owned by
 * this process's user or root and not writable by group or others.
 */
async function readJsonFile(path: string, trusted: boolean): Promise<unknown> {
  const posix = process.platform !== 'win32';
  const flags = posix ? constants.O_RDONLY | constants.O_NOFOLLOW : constants.O_RDONLY;
  let handle: Awaited<ReturnType<typeof open>>;
  try {
    handle = await open(path, flags);
  } catch (err) {
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `${path}: cannot open the config file`, { cause: err });
  }
  try {
    const st = await handle.stat();
    if (!st.isFile() || st.size > MAX_CONFIG_BYTES)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', `${path}: not a regular file of at most 64 KiB`);
    if (trusted && posix) {
      const euid = process.geteuid?.();
      if ((st.uid !== euid && st.uid !== 0) || (st.mode & 0o022) !== 0)
        throw createError(
          'SIPC_ERR_INSECURE_FILE',
          `${path}: decides who is let in, so it must be owned by uid ${euid} or root and not writable by group or others (owner ${st.uid}, mode 0${(st.mode & 0o777).toString(8)})`,
        );
    }
    const text = await handle.readFile('utf8');
    try {
      return JSON.parse(text);
    } catch (err) {
      throw createError('SIPC_ERR_INVALID_ARGUMENT', `${path}: not valid JSON`, { cause: err });
    }
  } finally {
    await handle.close();
  }
}

/** Read and check daemon.json. */
export async function readDaemonConfig(path: string): Promise<DaemonConfig> {
  return checkFields<DaemonConfig>(path, await readJsonFile(path, true), DAEMON_FIELDS);
}

/** Read and check app.json. */
export async function readAppConfig(path: string): Promise<AppConfig> {
  return checkFields<AppConfig>(path, await readJsonFile(path, false), APP_FIELDS);
}
