/**
 * A witness's two files (docs/audit.md, "Witness files"): its Ed25519 key (`WITNESS KEY` armor
 * of the 32-byte seed, a secret file created 0600 with O_EXCL) and its state (JSON, replaced
 * atomically, 0600, read as trust material: a state others could rewrite could make the witness
 * accept a rollback).
 */
import { sodium } from '../crypto/sodium.js';
import { createError } from '../errors.js';
import { armor, dearmor } from '../keys/armor.js';
import { readSecretFile, readTrustJson, writeFileAtomic, writeSecretFile } from '../keys/private-file.js';
import { HASH_BYTES } from './merkle.js';
import { MAX_NOTE_BYTES, parseCheckpoint } from './note.js';
import type { AuditWitnessState } from './witness.js';

const WITNESS_KEY_LABEL = 'WITNESS KEY';
/** The state file's format version (its `v`). */
const STATE_VERSION = 1;
// The note (at most MAX_NOTE_BYTES, JSON-escaped: at most 6 bytes per byte) and a few short fields.
const MAX_STATE_BYTES = MAX_NOTE_BYTES * 6 + 4096;

/**
 * Write a witness key file: the armored 32-byte seed of `secretKey` (libsodium's 64-byte form, as
 * `generateWitnessKey` returns), created 0600 with O_EXCL (an existing file is never overwritten).
 */
export async function writeWitnessKeyFile(path: string, secretKey: Uint8Array): Promise<void> {
  if (secretKey?.byteLength !== sodium.crypto_sign_SECRETKEYBYTES)
    throw createError('SIPC_ERR_BAD_KEY', 'A witness secret key is 64 bytes (seed || public key)');
  // libsodium's 64-byte secret key starts with the 32-byte seed.
  await writeSecretFile(path, armor(WITNESS_KEY_LABEL, secretKey.subarray(0, sodium.crypto_sign_SEEDBYTES)));
}

/**
 * Read a witness key file: libsodium's 64-byte secret key, in sodium-guarded memory (zero it when
 * done). Refused (SIPC_ERR_INSECURE_KEY_FILE) when another user owns it or group or others can
 * access it; SIPC_ERR_BAD_KEY when it is not a witness key file.
 */
export async function readWitnessKeyFile(path: string): Promise<Uint8Array> {
  return readSecretFile(path, { maxBytes: 1024, code: 'SIPC_ERR_BAD_KEY' }, (raw) => {
    const seed = dearmor(raw.toString('utf8'), WITNESS_KEY_LABEL, 32, 'SIPC_ERR_BAD_KEY');
    try {
      if (seed.byteLength !== sodium.crypto_sign_SEEDBYTES)
        throw createError('SIPC_ERR_BAD_KEY', 'A witness key file holds a 32-byte seed');
      const publicKey = new Uint8Array(sodium.crypto_sign_PUBLICKEYBYTES);
      const secretKey = sodium.sodium_malloc(sodium.crypto_sign_SECRETKEYBYTES);
      sodium.crypto_sign_seed_keypair(publicKey, secretKey, seed);
      return secretKey;
    } finally {
      sodium.sodium_memzero(seed);
    }
  });
}

const b64 = (bytes: Uint8Array) => Buffer.from(bytes).toString('base64');

/**
 * Save a witness's state (`witness.state`) to `path` as the JSON of docs/audit.md ("Witness
 * files"): a temporary file beside it (0600), fsynced, renamed over it, so a crash leaves the old
 * state or the new one.
 */
export async function writeAuditWitnessState(path: string, state: AuditWitnessState): Promise<void> {
  const json = {
    v: STATE_VERSION,
    origin: state.origin,
    size: state.size,
    root: b64(state.root),
    epoch: state.epoch,
    publicKey: b64(state.publicKey),
    checkpoint: state.checkpoint,
  };
  await writeFileAtomic(path, `${JSON.stringify(json)}\n`, 0o600);
}

function bad(path: string, why: string) {
  return createError('SIPC_ERR_INVALID_ARGUMENT', `${path} is not an audit witness state file: ${why}`, {
    details: { path, reason: 'witness-state' },
  });
}

function bytes32(path: string, v: unknown, name: string): Uint8Array {
  const out = typeof v === 'string' ? Buffer.from(v, 'base64') : undefined;
  if (out === undefined || out.byteLength !== HASH_BYTES || out.toString('base64') !== v)
    throw bad(path, `${name} is not 32 bytes of base64`);
  return new Uint8Array(out);
}

function count(path: string, v: unknown, name: string): number {
  if (!Number.isSafeInteger(v) || (v as number) < 0) throw bad(path, `${name} is not an integer >= 0`);
  return v as number;
}

/**
 * Read a witness state file written by `writeAuditWitnessState`; undefined when there is none
 * (the witness has accepted nothing yet). Read as trust material: a link, another owner or a file
 * group or others can write is refused (SIPC_ERR_INSECURE_FILE); a file that is not a state, or
 * whose checkpoint does not say its origin, size and root, is SIPC_ERR_INVALID_ARGUMENT
 * (`details.reason` `witness-state`).
 */
export async function readAuditWitnessState(path: string): Promise<AuditWitnessState | undefined> {
  const read = await readTrustJson(path, MAX_STATE_BYTES, () => bad(path, 'not JSON'));
  if (read === undefined) return undefined;
  const j = read as Record<string, unknown>;
  if (typeof j !== 'object' || j === null || Array.isArray(j)) throw bad(path, 'not a JSON object');
  if (j.v !== STATE_VERSION)
    throw bad(path, `version ${JSON.stringify(j.v)} (this version reads ${STATE_VERSION})`);
  if (typeof j.origin !== 'string' || typeof j.checkpoint !== 'string')
    throw bad(path, 'origin and checkpoint must be strings');
  const state: AuditWitnessState = {
    origin: j.origin,
    size: count(path, j.size, 'size'),
    root: bytes32(path, j.root, 'root'),
    epoch: count(path, j.epoch, 'epoch'),
    publicKey: bytes32(path, j.publicKey, 'publicKey'),
    checkpoint: j.checkpoint,
  };
  let cp: ReturnType<typeof parseCheckpoint>;
  try {
    cp = parseCheckpoint(state.checkpoint);
  } catch {
    throw bad(path, 'its checkpoint is not a checkpoint note');
  }
  if (
    cp.origin !== state.origin ||
    cp.size !== state.size ||
    !Buffer.from(cp.root).equals(Buffer.from(state.root))
  )
    throw bad(path, 'its checkpoint is not of its origin, size and root');
  return state;
}
