/**
 * C2SP signed notes (c2sp.org/signed-note) with Ed25519 (signature type 0x01) and the
 * tlog-checkpoint body (c2sp.org/tlog-checkpoint) the audit log signs; docs/audit.md
 * "Checkpoints". Parsing is strict (the note's own rules: UTF-8, no control characters but
 * newline, text ended by the last blank line, signature lines `— name base64(keyID || sig)`) and
 * bounded (a note over 64 KiB or with more than 64 signatures is refused before it is split).
 */
import { createHash } from 'node:crypto';
import { bytesEqual, sodium } from '../crypto/sodium.js';
import { createError, type SecureIpcError } from '../errors.js';
import { HASH_BYTES } from './merkle.js';

/** Largest signed note (bytes of UTF-8) this module parses. */
export const MAX_NOTE_BYTES = 65_536;
/** Most signature lines this module parses in one note (C2SP: at least 16 must be accepted). */
export const MAX_NOTE_SIGNATURES = 64;

const ED25519 = 0x01;
const EM_DASH = '\u2014';

/** One signature line of a note. */
export interface NoteSignature {
  /** The key name. */
  readonly name: string;
  /** The 32-bit key ID (big-endian, the signature's first 4 bytes). */
  readonly keyId: number;
  /** The signature bytes after the key ID. */
  readonly signature: Uint8Array;
}

/** A parsed (not yet verified) signed note. */
export interface SignedNote {
  /** The note text, final newline included: what the signatures sign. */
  readonly text: string;
  /** Its signature lines, in order. */
  readonly signatures: readonly NoteSignature[];
}

/** A tree head: the three lines of a C2SP checkpoint body. */
export interface Checkpoint {
  /** The log's origin (first line; also the signing key's name). */
  readonly origin: string;
  /** The number of leaves (records). */
  readonly size: number;
  /** The RFC 9162 root hash of those leaves, 32 bytes. */
  readonly root: Uint8Array;
}

function corrupt(message: string, reason: string): SecureIpcError {
  return createError('SIPC_ERR_AUDIT_CORRUPT', message, { details: { reason } });
}

/** Whether `s` has an ASCII control character (below U+0020) other than newline. */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 && c !== 0x0a) return true;
  }
  return false;
}

function badName(name: string): boolean {
  return name.length === 0 || /[\s+]/u.test(name);
}

/** Strict standard base64: decodes only text that re-encodes to itself. */
function strictBase64(text: string): Uint8Array | undefined {
  const bytes = Buffer.from(text, 'base64');
  return bytes.toString('base64') === text ? bytes : undefined;
}

/** The C2SP Ed25519 key ID: the first 4 bytes, big-endian, of SHA-256(name || 0x0A || 0x01 || key). */
export function noteKeyId(name: string, publicKey: Uint8Array): number {
  const h = createHash('sha256')
    .update(name, 'utf8')
    .update(Buffer.from([0x0a, ED25519]))
    .update(publicKey)
    .digest();
  return h.readUInt32BE(0);
}

/** The C2SP verifier key text: `<name>+<hex key ID>+<base64(0x01 || public key)>`. */
export function verifierKey(name: string, publicKey: Uint8Array): string {
  if (badName(name))
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'A key name must be non-empty, without spaces or +');
  if (publicKey.byteLength !== sodium.crypto_sign_PUBLICKEYBYTES)
    throw createError('SIPC_ERR_BAD_KEY', 'An Ed25519 public key is 32 bytes');
  const id = noteKeyId(name, publicKey).toString(16).padStart(8, '0');
  return `${name}+${id}+${Buffer.concat([Buffer.from([ED25519]), publicKey]).toString('base64')}`;
}

/** A parsed C2SP Ed25519 verifier key. */
export interface VerifierKey {
  /** The key name (for the audit log: its origin). */
  readonly name: string;
  /** The 32-bit key ID. */
  readonly keyId: number;
  /** The Ed25519 public key, 32 bytes. */
  readonly publicKey: Uint8Array;
}

/** A parsed checkpoint and the note it came from. */
export interface ParsedCheckpoint extends Checkpoint {
  /** The signed note (text and signature lines, not verified). */
  readonly note: SignedNote;
}

/** Parse a C2SP Ed25519 verifier key (SIPC_ERR_BAD_KEY when malformed or its key ID is wrong). */
export function parseVerifierKey(text: string): VerifierKey {
  const bad = (why: string) => createError('SIPC_ERR_BAD_KEY', `Not an Ed25519 verifier key: ${why}`);
  // name + hex ID + base64: the name has no +, the base64 may (golang.org/x/mod/sumdb/note chops twice).
  const first = text.indexOf('+');
  const second = first < 0 ? -1 : text.indexOf('+', first + 1);
  if (second < 0) throw bad('three fields separated by + expected');
  const name = text.slice(0, first);
  const hex = text.slice(first + 1, second);
  const b64 = text.slice(second + 1);
  if (badName(name)) throw bad('bad key name');
  if (!/^[0-9a-f]{8}$/.test(hex)) throw bad('the key ID is 8 lowercase hex digits');
  const raw = strictBase64(b64);
  if (raw === undefined || raw.byteLength !== 33 || raw[0] !== ED25519) throw bad('not 0x01 || 32-byte key');
  const publicKey = raw.subarray(1);
  const keyId = Number.parseInt(hex, 16);
  if (noteKeyId(name, publicKey) !== keyId) throw bad('the key ID does not match the name and key');
  return { name, keyId, publicKey: new Uint8Array(publicKey) };
}

function noteSignature(text: string, secretKey: Uint8Array): Uint8Array {
  const sig = new Uint8Array(sodium.crypto_sign_BYTES);
  sodium.crypto_sign_detached(sig, Buffer.from(text, 'utf8'), secretKey);
  return sig;
}

/** The signature line of `text` by the Ed25519 key `secretKey` (libsodium's 64-byte form) named `name`. */
export function signatureLine(text: string, name: string, secretKey: Uint8Array): string {
  if (secretKey.byteLength !== sodium.crypto_sign_SECRETKEYBYTES)
    throw createError('SIPC_ERR_BAD_KEY', 'An Ed25519 secret key is 64 bytes (seed || public key)');
  const id = Buffer.alloc(4);
  id.writeUInt32BE(noteKeyId(name, secretKey.subarray(32)));
  return `${EM_DASH} ${name} ${Buffer.concat([id, noteSignature(text, secretKey)]).toString('base64')}\n`;
}

/** Sign `text` (non-empty, ending in a newline) as a C2SP note with one Ed25519 signature. */
export function signNote(text: string, name: string, secretKey: Uint8Array): string {
  if (badName(name))
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'A key name must be non-empty, without spaces or +');
  if (!text.endsWith('\n') || hasControl(text))
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      'A note text ends in a newline and has no control characters',
    );
  return `${text}\n${signatureLine(text, name, secretKey)}`;
}

/** Parse a signed note (SIPC_ERR_AUDIT_CORRUPT, `details.reason` `note`, when malformed). */
export function parseNote(note: string | Uint8Array): SignedNote {
  const bytes = typeof note === 'string' ? Buffer.from(note, 'utf8') : Buffer.from(note);
  if (bytes.byteLength > MAX_NOTE_BYTES)
    throw corrupt(`A signed note is at most ${MAX_NOTE_BYTES} bytes`, 'note');
  let s: string;
  try {
    s = new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch {
    throw corrupt('A signed note is not valid UTF-8', 'note');
  }
  if (hasControl(s)) throw corrupt('A signed note has a control character', 'note');
  const split = s.lastIndexOf('\n\n');
  if (split < 0 || !s.endsWith('\n'))
    throw corrupt('A signed note has no blank line before its signatures', 'note');
  const text = s.slice(0, split + 1);
  const lines = s.slice(split + 2, -1).split('\n');
  if (lines.length > MAX_NOTE_SIGNATURES)
    throw corrupt(`A signed note has over ${MAX_NOTE_SIGNATURES} signatures`, 'note');
  const signatures: NoteSignature[] = [];
  for (const line of lines) {
    const parts = line.split(' ');
    if (parts.length !== 3 || parts[0] !== EM_DASH || badName(parts[1]!))
      throw corrupt('A signed note has a malformed signature line', 'note');
    const raw = strictBase64(parts[2]!);
    if (raw === undefined || raw.byteLength < 5)
      throw corrupt('A note signature is not base64 of 5 bytes or more', 'note');
    signatures.push({
      name: parts[1]!,
      keyId: Buffer.from(raw).readUInt32BE(0),
      signature: new Uint8Array(raw.subarray(4)),
    });
  }
  return { text, signatures };
}

/**
 * How `note` stands against the Ed25519 key `publicKey` named `name`: `valid` (a signature line
 * with that name and key ID verifies), `invalid` (one has that name and ID but does not verify) or
 * `absent` (no line of that key; lines of other keys are ignored, as C2SP requires).
 */
export function noteSignatureBy(
  note: SignedNote,
  name: string,
  publicKey: Uint8Array,
): 'valid' | 'invalid' | 'absent' {
  const id = noteKeyId(name, publicKey);
  const message = Buffer.from(note.text, 'utf8');
  let seen = false;
  for (const sig of note.signatures) {
    if (sig.name !== name || sig.keyId !== id) continue;
    seen = true;
    if (
      sig.signature.byteLength === sodium.crypto_sign_BYTES &&
      sodium.crypto_sign_verify_detached(sig.signature, message, publicKey)
    )
      return 'valid';
  }
  return seen ? 'invalid' : 'absent';
}

/** The checkpoint body: `<origin>\n<size>\n<base64 root>\n` plus any extension lines. */
export function checkpointText(checkpoint: Checkpoint, extensions: readonly string[] = []): string {
  const { origin, size, root } = checkpoint;
  if (badName(origin))
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'An origin must be non-empty, without spaces or +');
  if (!Number.isSafeInteger(size) || size < 0)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'A tree size is an integer >= 0');
  if (root.byteLength !== HASH_BYTES)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'A root hash is 32 bytes');
  return `${[origin, String(size), Buffer.from(root).toString('base64'), ...extensions].join('\n')}\n`;
}

/** Sign a checkpoint as a C2SP note: the key name is the origin, the key `secretKey` (64 bytes). */
export function signCheckpoint(checkpoint: Checkpoint, secretKey: Uint8Array): string {
  return signNote(checkpointText(checkpoint), checkpoint.origin, secretKey);
}

/**
 * Parse a checkpoint note (signatures not checked: see `verifyCheckpoint`); SIPC_ERR_AUDIT_CORRUPT
 * (`details.reason` `note` or `checkpoint`) when malformed.
 */
export function parseCheckpoint(note: string | Uint8Array): ParsedCheckpoint {
  const parsed = parseNote(note);
  const lines = parsed.text.slice(0, -1).split('\n');
  if (lines.length < 3 || lines.some((l) => l.length === 0))
    throw corrupt('A checkpoint has at least three non-empty lines', 'checkpoint');
  const [origin, sizeText, rootText] = lines as [string, string, string];
  if (!/^(0|[1-9][0-9]{0,15})$/.test(sizeText) || !Number.isSafeInteger(Number(sizeText)))
    throw corrupt('A checkpoint tree size is a decimal integer without leading zeros', 'checkpoint');
  const root = strictBase64(rootText);
  if (root === undefined || root.byteLength !== HASH_BYTES)
    throw corrupt('A checkpoint root is the base64 of 32 bytes', 'checkpoint');
  return { origin, size: Number(sizeText), root: new Uint8Array(root), note: parsed };
}

/**
 * The checkpoint of `note` if it is signed by the Ed25519 key `publicKey` under the name `origin`
 * and its origin is `origin`; undefined otherwise (malformed notes throw, see `parseCheckpoint`).
 */
export function verifyCheckpoint(
  note: string | Uint8Array,
  publicKey: Uint8Array,
  origin: string,
): Checkpoint | undefined {
  const cp = parseCheckpoint(note);
  if (cp.origin !== origin) return undefined;
  return noteSignatureBy(cp.note, origin, publicKey) === 'valid'
    ? { origin: cp.origin, size: cp.size, root: cp.root }
    : undefined;
}

/** Whether two checkpoints name the same tree head. */
export function sameTreeHead(a: Checkpoint, b: Checkpoint): boolean {
  return a.origin === b.origin && a.size === b.size && bytesEqual(a.root, b.root);
}
