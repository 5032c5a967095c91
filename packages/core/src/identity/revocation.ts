/**
 * Revocation lists: serials and subject keys that must no longer be accepted. In memory through
 * the API (`RevocationList`), or in a JSON file that `secure-ipc revoke` edits atomically and
 * `watchRevocationList` watches. Every change emits `change`, on which enforcement re-checks the
 * live channels.
 */
import { EventEmitter } from 'node:events';
import { createError, type SecureIpcError } from '../errors.js';
import { encodeKey, toKey } from '../keys/key-text.js';
import { readBoundedFile, writeFileAtomic } from '../keys/private-file.js';
import type { RevocationCheck } from './certificate.js';

/** Revocation list file format version. */
export const REVOCATION_LIST_VERSION = 1;
/** Largest revocation list file read (checked before reading). */
export const MAX_REVOCATION_FILE_BYTES = 16 * 1024 * 1024;

/** The entries of a revocation list. */
export interface RevocationEntries {
  /** Revoked certificate serials. */
  serials?: Iterable<number> | undefined;
  /** Revoked subject static keys (X25519, raw or base64): every certificate for them, and the pinned key itself. */
  keys?: Iterable<Uint8Array | string> | undefined;
}

/** Events of a revocation list. */
export interface RevocationListEvents {
  /** The entries changed (through the API or a reload of the file). */
  change: [];
  /** A reload of the file failed; the last good list stays in force. */
  reloadError: [error: SecureIpcError];
}

function checkSerial(serial: unknown): number {
  if (typeof serial !== 'number' || !Number.isSafeInteger(serial) || serial < 1)
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `Invalid serial ${String(serial)}: an integer in 1..2^53-1`,
    );
  return serial;
}

/** A set of revoked serials and subject keys; usable wherever a `RevocationCheck` is expected. */
export class RevocationList extends EventEmitter<RevocationListEvents> implements RevocationCheck {
  #serials = new Set<number>();
  // Public keys as base64: they are not secret, so a Set lookup (not constant time) is fine here.
  #keys = new Set<string>();

  /** A list holding `entries` (empty by default). */
  constructor(entries: RevocationEntries = {}) {
    super();
    this.#fill(entries);
  }

  #fill(entries: RevocationEntries): void {
    const serials = new Set<number>();
    const keys = new Set<string>();
    for (const s of entries.serials ?? []) serials.add(checkSerial(s));
    for (const k of entries.keys ?? [])
      keys.add(encodeKey(toKey(k, 'A revoked key', 'SIPC_ERR_INVALID_ARGUMENT')));
    this.#serials = serials;
    this.#keys = keys;
  }

  /** Revoked serials. */
  get serials(): ReadonlySet<number> {
    return this.#serials;
  }

  /** Revoked subject keys, base64. */
  get keys(): ReadonlySet<string> {
    return this.#keys;
  }

  /** Why `entry` is revoked, or undefined if it is not. */
  check(entry: {
    serial?: number | undefined;
    subjectKey: Uint8Array;
  }): 'revoked-serial' | 'revoked-key' | undefined {
    if (this.#keys.has(encodeKey(entry.subjectKey))) return 'revoked-key';
    if (entry.serial !== undefined && this.#serials.has(entry.serial)) return 'revoked-serial';
    return undefined;
  }

  /** Revoke a certificate serial (emits `change`). */
  revokeSerial(serial: number): void {
    this.#serials.add(checkSerial(serial));
    this.emit('change');
  }

  /** Revoke a subject key (emits `change`). */
  revokeKey(key: Uint8Array | string): void {
    this.#keys.add(encodeKey(toKey(key, 'A revoked key', 'SIPC_ERR_INVALID_ARGUMENT')));
    this.emit('change');
  }

  /** Replace every entry at once (emits `change`); a bad entry throws and leaves the list as it was. */
  replace(entries: RevocationEntries): void {
    this.#fill(entries);
    this.emit('change');
  }

  /** The entries as the JSON file format. */
  toJSON(): { version: number; serials: number[]; keys: string[] } {
    return {
      version: REVOCATION_LIST_VERSION,
      serials: [...this.#serials].sort((a, b) => a - b),
      keys: [...this.#keys].sort(),
    };
  }
}

/**
 * Parse the revocation file format: `{ "version": 1, "serials": [N, ...], "keys": ["BASE64", ...] }`.
 * Strict (unknown fields, bad entries: SIPC_ERR_INVALID_ARGUMENT), so a typo never silently
 * un-revokes anyone.
 */
export function parseRevocationList(text: string): { serials: number[]; keys: Uint8Array[] } {
  // The format nests two deep ({ "serials": [...] }); JSON.parse has no depth limit and 16 MiB of
  // "[[[[" would build 8 million arrays, so deeper nesting is refused before parsing.
  if (jsonNestsDeeper(text, 2))
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'The revocation list nests deeper than its format');
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'The revocation list is not valid JSON', { cause: err });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc))
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'The revocation list must be a JSON object');
  const { version, serials = [], keys = [], ...rest } = doc as Record<string, unknown>;
  if (version !== REVOCATION_LIST_VERSION)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `Unsupported revocation list version ${String(version)}`);
  if (Object.keys(rest).length > 0)
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `Unknown revocation list fields: ${Object.keys(rest).join(', ')}`,
    );
  if (!Array.isArray(serials) || !Array.isArray(keys))
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'serials and keys must be arrays');
  return {
    serials: serials.map(checkSerial),
    keys: keys.map((k) =>
      toKey(typeof k === 'string' ? k : '', 'A revoked key', 'SIPC_ERR_INVALID_ARGUMENT'),
    ),
  };
}

/** True if `text` nests arrays or objects more than `max` deep (a linear scan, strings skipped). */
function jsonNestsDeeper(text: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * Read and parse a revocation list file: trust material, so it must be a regular file (links are
 * not followed) owned by the effective uid or root and not writable by group or others
 * (`SIPC_ERR_INSECURE_FILE`), at most `MAX_REVOCATION_FILE_BYTES`.
 */
export async function readRevocationFile(path: string): Promise<RevocationList> {
  const raw = await readBoundedFile(path, {
    maxBytes: MAX_REVOCATION_FILE_BYTES,
    code: 'SIPC_ERR_INVALID_ARGUMENT',
    kind: 'trust',
  });
  return new RevocationList(parseRevocationList(raw.toString('utf8')));
}

/**
 * Add entries to a revocation list file, creating it if absent; the file is replaced atomically
 * (temporary file + rename), so a watcher never reads half a list. Concurrent writers are not
 * serialized: run one `revoke` at a time.
 */
export async function addToRevocationFile(path: string, entries: RevocationEntries): Promise<RevocationList> {
  let list: RevocationList;
  try {
    list = await readRevocationFile(path);
  } catch (err) {
    if ((err as { cause?: { code?: string } }).cause?.code !== 'ENOENT') throw err;
    list = new RevocationList();
  }
  for (const s of entries.serials ?? []) list.revokeSerial(s);
  for (const k of entries.keys ?? []) list.revokeKey(k);
  await writeFileAtomic(path, `${JSON.stringify(list.toJSON(), null, 2)}\n`);
  return list;
}
