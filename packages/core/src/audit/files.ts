/**
 * The audit log's files (docs/audit.md "Directory", "Frames"): the 0700 directory checked by the
 * access guard, segments `audit-<20-digit first index>.log`, `checkpoints.log`, `epoch-E.key`;
 * frames (4-byte big-endian length + bytes) and their reading, which stops at a torn tail; every
 * file opened without following a link and checked on its descriptor as a secret file.
 */
import { constants, promises as fs } from 'node:fs';
import { join } from 'node:path';
import { sodium } from '../crypto/sodium.js';
import { createError } from '../errors.js';
import { type AccessGuard, posixOwnerOnly } from '../keys/access-guard.js';
import { armor, dearmor } from '../keys/armor.js';
import { fileProblem, readSecretFile, writeSecretFile } from '../keys/private-file.js';

/** Largest frame body. */
export const MAX_FRAME_BYTES = 1_048_576;
/** The checkpoints file's name. */
export const CHECKPOINTS_FILE = 'checkpoints.log';

const NO_FOLLOW = process.platform === 'win32' ? 0 : constants.O_NOFOLLOW;
const SEGMENT = /^audit-(\d{20})\.log$/;
const EPOCH_KEY = /^epoch-(0|[1-9]\d{0,15})\.key$/;
const EPOCH_KEY_LABEL = 'AUDIT EPOCH KEY';

/** The file name of the segment whose first record is `first`. */
export function segmentName(first: number): string {
  return `audit-${String(first).padStart(20, '0')}.log`;
}

/** The file name of epoch `epoch`'s key. */
export function epochKeyName(epoch: number): string {
  return `epoch-${epoch}.key`;
}

/** What a log directory holds: segments by first index, epoch key files by epoch. */
export interface AuditDirectory {
  /** Segments, sorted by first index. */
  readonly segments: readonly { readonly first: number; readonly name: string }[];
  /** Epoch numbers that have a key file. */
  readonly epochKeys: readonly number[];
}

/**
 * Make sure `dir` is a private directory (created 0700 when `create` and missing; a link, another
 * owner or group/other access: SIPC_ERR_INSECURE_DIRECTORY) and list it.
 */
export async function openAuditDirectory(
  dir: string,
  create: boolean,
  guard: AccessGuard = posixOwnerOnly,
): Promise<AuditDirectory> {
  let created = false;
  if (create) {
    try {
      await fs.mkdir(dir, { mode: 0o700 });
      created = true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST')
        throw createError('SIPC_ERR_INVALID_ARGUMENT', `Cannot create the audit directory ${dir}`, {
          cause: err,
        });
    }
  }
  try {
    await guard.secure(dir, 'directory', created);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw createError('SIPC_ERR_INVALID_ARGUMENT', `No audit directory ${dir}`, { cause: err });
    throw err;
  }
  const names = await fs.readdir(dir);
  const segments: { first: number; name: string }[] = [];
  const epochKeys: number[] = [];
  for (const name of names) {
    const s = SEGMENT.exec(name);
    if (s !== null) {
      const first = Number(s[1]);
      if (Number.isSafeInteger(first)) segments.push({ first, name });
    }
    const e = EPOCH_KEY.exec(name);
    if (e !== null) epochKeys.push(Number(e[1]));
  }
  segments.sort((a, b) => a.first - b.first);
  epochKeys.sort((a, b) => a - b);
  return { segments, epochKeys };
}

/** One file's frames, and where its torn tail starts (undefined when none). */
export interface FrameFile {
  /** Frame bodies, in order. */
  readonly frames: readonly Uint8Array[];
  /** Byte offset of a torn or malformed tail (a length of 0 or over the cap, or cut short). */
  readonly tornAt: number | undefined;
  /** The file's size in bytes. */
  readonly bytes: number;
}

/**
 * Read a whole frame file through one descriptor opened without following a link and checked as
 * a secret file (SIPC_ERR_INSECURE_FILE); a missing file is empty. Refused over `maxBytes`.
 */
export async function readFrameFile(path: string, maxBytes: number): Promise<FrameFile> {
  let handle: fs.FileHandle;
  try {
    handle = await fs.open(path, constants.O_RDONLY | NO_FOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { frames: [], tornAt: undefined, bytes: 0 };
    throw createError('SIPC_ERR_INSECURE_FILE', `Cannot open ${path} (a link is never followed)`, {
      cause: err,
      details: { path, reason: 'open' },
    });
  }
  let data: Buffer;
  try {
    const st = await handle.stat();
    const problem = fileProblem(path, st, { code: 'SIPC_ERR_INSECURE_FILE', kind: 'secret' });
    if (problem !== undefined)
      throw createError('SIPC_ERR_INSECURE_FILE', problem.message, { details: problem.details });
    if (st.size > maxBytes)
      throw createError('SIPC_ERR_AUDIT_CORRUPT', `${path} is larger than ${maxBytes} bytes`, {
        details: { path, reason: 'segment' },
      });
    data = await handle.readFile();
  } finally {
    await handle.close();
  }
  const frames: Uint8Array[] = [];
  let at = 0;
  while (at < data.byteLength) {
    if (data.byteLength - at < 4) break;
    const len = data.readUInt32BE(at);
    if (len === 0 || len > MAX_FRAME_BYTES || data.byteLength - at - 4 < len) break;
    frames.push(new Uint8Array(data.buffer, data.byteOffset + at + 4, len));
    at += 4 + len;
  }
  return { frames, tornAt: at < data.byteLength ? at : undefined, bytes: data.byteLength };
}

/** A frame: the 4-byte big-endian length, then the body. */
export function frame(body: Uint8Array): Uint8Array {
  if (body.byteLength === 0 || body.byteLength > MAX_FRAME_BYTES)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `A frame body is 1 to ${MAX_FRAME_BYTES} bytes`);
  const out = Buffer.allocUnsafe(4 + body.byteLength);
  out.writeUInt32BE(body.byteLength, 0);
  out.set(body, 4);
  return out;
}

/**
 * Open (creating 0600 if missing) a frame file for appending, without following a link, checked on
 * its descriptor and by the guard; cut to `truncateTo` bytes first when given (a torn tail).
 */
export async function openAppendFile(
  path: string,
  guard: AccessGuard = posixOwnerOnly,
  truncateTo?: number,
): Promise<{ handle: fs.FileHandle; bytes: number }> {
  let handle: fs.FileHandle;
  let created = false;
  try {
    handle = await fs.open(path, constants.O_WRONLY | constants.O_APPEND | NO_FOLLOW);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT')
      throw createError('SIPC_ERR_INSECURE_FILE', `Cannot open ${path} (a link is never followed)`, {
        cause: err,
        details: { path, reason: 'open' },
      });
    handle = await fs.open(
      path,
      constants.O_WRONLY | constants.O_APPEND | constants.O_CREAT | constants.O_EXCL,
      0o600,
    );
    created = true;
  }
  try {
    if (created) await handle.chmod(0o600);
    const st = await handle.stat();
    const problem = fileProblem(path, st, { code: 'SIPC_ERR_INSECURE_FILE', kind: 'secret' });
    if (problem !== undefined)
      throw createError('SIPC_ERR_INSECURE_FILE', problem.message, { details: problem.details });
    await guard.secure(path, 'file', false);
    if (truncateTo !== undefined && truncateTo < st.size) {
      await handle.truncate(truncateTo);
      return { handle, bytes: truncateTo };
    }
    return { handle, bytes: st.size };
  } catch (err) {
    await handle.close();
    throw err;
  }
}

/** Write all of `bytes` at the end of an append handle. */
export async function appendAll(handle: fs.FileHandle, bytes: Uint8Array): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done, null);
    done += bytesWritten;
  }
}

/** An epoch's Ed25519 key pair; `secretKey` (64 bytes) in sodium-guarded memory. */
export interface EpochKey {
  /** The epoch number. */
  readonly epoch: number;
  /** The Ed25519 public key. */
  readonly publicKey: Uint8Array;
  /** libsodium's 64-byte secret key (seed || public key); zeroed by `eraseEpochKey`. */
  readonly secretKey: Uint8Array;
}

function keyFromSeed(epoch: number, seed: Uint8Array): EpochKey {
  const publicKey = new Uint8Array(sodium.crypto_sign_PUBLICKEYBYTES);
  const secretKey = sodium.sodium_malloc(sodium.crypto_sign_SECRETKEYBYTES);
  sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed);
  return { epoch, publicKey, secretKey };
}

/** Generate epoch `epoch`'s key and write its file (0600, O_EXCL) in `dir`. */
export async function createEpochKey(dir: string, epoch: number): Promise<EpochKey> {
  const seed = sodium.sodium_malloc(sodium.crypto_sign_SEEDBYTES);
  sodium.randombytes_buf(seed);
  try {
    const key = keyFromSeed(epoch, seed);
    await writeSecretFile(join(dir, epochKeyName(epoch)), armor(EPOCH_KEY_LABEL, seed));
    return key;
  } finally {
    sodium.sodium_memzero(seed);
  }
}

/** Read epoch `epoch`'s key file (a secret file: SIPC_ERR_INSECURE_KEY_FILE when exposed). */
export async function readEpochKey(dir: string, epoch: number): Promise<EpochKey> {
  return readSecretFile(
    join(dir, epochKeyName(epoch)),
    { maxBytes: 1024, code: 'SIPC_ERR_BAD_KEY' },
    (raw) => {
      const seed = dearmor(raw.toString('utf8'), EPOCH_KEY_LABEL, 32, 'SIPC_ERR_BAD_KEY');
      try {
        if (seed.byteLength !== 32)
          throw createError('SIPC_ERR_BAD_KEY', 'An epoch key file holds a 32-byte seed');
        return keyFromSeed(epoch, seed);
      } finally {
        sodium.sodium_memzero(seed);
      }
    },
  );
}

/**
 * Zero an epoch's secret key in memory, overwrite its file with zeros (fsynced) and remove it: the
 * forward-security step. (An overwrite is what a file system lets a program do; copy-on-write file
 * systems and SSDs may keep old blocks, docs/audit.md says so.)
 */
export async function eraseEpochKey(dir: string, key: EpochKey | number): Promise<void> {
  if (typeof key !== 'number') sodium.sodium_memzero(key.secretKey);
  const path = join(dir, epochKeyName(typeof key === 'number' ? key : key.epoch));
  try {
    const handle = await fs.open(path, constants.O_WRONLY | NO_FOLLOW);
    try {
      const st = await handle.stat();
      if (st.isFile() && st.size <= 1024) {
        await handle.write(Buffer.alloc(st.size), 0, st.size, 0);
        await handle.sync();
      }
    } finally {
      await handle.close();
    }
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return;
    // A link or an unreadable file is still removed below (rm does not follow the link).
  }
  await fs.rm(path, { force: true });
}
