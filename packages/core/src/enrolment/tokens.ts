/**
 * One-time enrolment tokens (docs/identity.md, "Enrolment"): `createEnrolmentToken` adds one to
 * a token file and returns it once; the enrolment service consumes it. The file keeps only each
 * token's BLAKE2b-256 hash, with the name and roles the certificate will carry and when the token
 * expires. Written 0600 and replaced atomically; read as trust material.
 */
import { sodium } from '../crypto/sodium.js';
import { createError } from '../errors.js';
import { readTrustJson, writeFileAtomic } from '../keys/private-file.js';

/** The token file's format version. */
export const ENROLMENT_TOKENS_VERSION = 1;
/** Most tokens a file holds (unused, unexpired). */
export const MAX_ENROLMENT_TOKENS = 1024;
/** Largest token file read. */
export const MAX_ENROLMENT_TOKEN_FILE_BYTES = 1_048_576;
/** A token's lifetime when none is given: one hour. */
export const DEFAULT_ENROLMENT_TOKEN_TTL_MS = 3_600_000;
/** What every token starts with, so a leaked one is recognisable (secret scanners). */
export const ENROLMENT_TOKEN_PREFIX = 'sipc-enrol-';
const MAX_ROLES = 64;
const NAME_BYTES = 255;

/** What a token grants: the certificate's name and roles. */
export interface EnrolmentGrant {
  /** The certificate's subject name (1..255 UTF-8 bytes). */
  readonly name: string;
  /** The certificate's roles (default none). */
  readonly roles?: readonly string[];
}

/** One token in the file. */
interface StoredToken extends EnrolmentGrant {
  /** BLAKE2b-256 of the token's UTF-8 bytes, hex. */
  readonly hash: string;
  /** The token expires at (ms epoch). */
  readonly expiresAt: number;
}

function hashToken(token: string): Buffer {
  const out = Buffer.alloc(32);
  sodium.crypto_generichash(out, Buffer.from(token, 'utf8'));
  return out;
}

function bad(path: string, why: string) {
  return createError('SIPC_ERR_INVALID_ARGUMENT', `${path} is not an enrolment token file: ${why}`, {
    details: { path, reason: 'enrolment-tokens' },
  });
}

/** Check a grant (SIPC_ERR_INVALID_ARGUMENT); the same rules as a certificate's name and roles. */
export function validateGrant(grant: EnrolmentGrant): void {
  const { name, roles = [] } = grant;
  if (
    typeof name !== 'string' ||
    name.length === 0 ||
    Buffer.byteLength(name) > NAME_BYTES ||
    /\p{Cc}/u.test(name)
  )
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      'A grant name is 1..255 UTF-8 bytes without control characters',
    );
  if (
    !Array.isArray(roles) ||
    roles.length > MAX_ROLES ||
    roles.some((r) => typeof r !== 'string' || r.length === 0)
  )
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `Grant roles are up to ${MAX_ROLES} non-empty strings`);
}

async function readTokens(path: string): Promise<StoredToken[]> {
  const read = await readTrustJson(path, MAX_ENROLMENT_TOKEN_FILE_BYTES, () => bad(path, 'not JSON'));
  if (read === undefined) return [];
  const j = read as { v?: unknown; tokens?: unknown } | null;
  if (j === null || typeof j !== 'object' || j.v !== ENROLMENT_TOKENS_VERSION || !Array.isArray(j.tokens))
    throw bad(path, `not {"v":${ENROLMENT_TOKENS_VERSION},"tokens":[...]}`);
  if (j.tokens.length > MAX_ENROLMENT_TOKENS) throw bad(path, `over ${MAX_ENROLMENT_TOKENS} tokens`);
  return j.tokens.map((t: unknown) => {
    const s = t as StoredToken;
    if (
      s === null ||
      typeof s !== 'object' ||
      typeof s.hash !== 'string' ||
      !/^[0-9a-f]{64}$/.test(s.hash) ||
      !Number.isSafeInteger(s.expiresAt)
    )
      throw bad(path, 'a token without a 64-hex hash and an integer expiresAt');
    try {
      validateGrant(s);
    } catch (err) {
      throw bad(path, (err as Error).message);
    }
    return { hash: s.hash, name: s.name, roles: [...(s.roles ?? [])], expiresAt: s.expiresAt };
  });
}

const writeTokens = (path: string, tokens: readonly StoredToken[]) =>
  writeFileAtomic(path, `${JSON.stringify({ v: ENROLMENT_TOKENS_VERSION, tokens })}\n`, 0o600);

// One change at a time per file in this process (a token is consumed once even by racing calls).
const locks = new Map<string, Promise<unknown>>();
function locked<T>(path: string, fn: () => Promise<T>): Promise<T> {
  const run = (locks.get(path) ?? Promise.resolve()).then(fn);
  const tail = run.catch(() => {});
  locks.set(path, tail);
  void tail.then(() => {
    if (locks.get(path) === tail) locks.delete(path);
  });
  return run;
}

/** A new token, as `createEnrolmentToken` returns it: shown once, never stored. */
export interface EnrolmentToken {
  /** The token: `sipc-enrol-` and 43 characters of base64url (32 random bytes). */
  readonly token: string;
  /** When it expires (ms epoch). */
  readonly expiresAt: number;
}

/**
 * Add a one-time token for `grant` to the token file at `path` (created 0600 when missing);
 * expired tokens are dropped on the way. Returns the token, which only its hash is kept of.
 */
export function createEnrolmentToken(
  path: string,
  grant: EnrolmentGrant & { readonly ttlMs?: number },
  now: number = Date.now(),
): Promise<EnrolmentToken> {
  validateGrant(grant);
  const ttl = grant.ttlMs ?? DEFAULT_ENROLMENT_TOKEN_TTL_MS;
  if (!Number.isSafeInteger(ttl) || ttl <= 0)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'A token ttlMs is a positive integer');
  return locked(path, async () => {
    const tokens = (await readTokens(path)).filter((t) => t.expiresAt > now);
    if (tokens.length >= MAX_ENROLMENT_TOKENS)
      throw createError('SIPC_ERR_BUSY', `${path} holds ${MAX_ENROLMENT_TOKENS} unused tokens`);
    const secret = Buffer.alloc(32);
    sodium.randombytes_buf(secret);
    const token = `${ENROLMENT_TOKEN_PREFIX}${secret.toString('base64url')}`;
    sodium.sodium_memzero(secret);
    const expiresAt = now + ttl;
    tokens.push({
      hash: hashToken(token).toString('hex'),
      name: grant.name,
      roles: [...(grant.roles ?? [])],
      expiresAt,
    });
    await writeTokens(path, tokens);
    return { token, expiresAt };
  });
}

/**
 * Consume `token` from the file: the grant when it is there and unexpired (the file is rewritten
 * without it before this resolves), undefined otherwise. Every stored hash is compared, in
 * constant time, whether or not one matched already.
 */
export function consumeEnrolmentToken(
  path: string,
  token: string,
  now: number = Date.now(),
): Promise<EnrolmentGrant | undefined> {
  return locked(path, async () => {
    if (typeof token !== 'string' || token.length > 128) return undefined;
    const tokens = await readTokens(path);
    const presented = hashToken(token);
    let found: StoredToken | undefined;
    for (const t of tokens)
      if (sodium.sodium_memcmp(presented, Buffer.from(t.hash, 'hex')) && t.expiresAt > now) found = t;
    const keep = tokens.filter((t) => t !== found && t.expiresAt > now);
    if (keep.length !== tokens.length) await writeTokens(path, keep);
    return found === undefined ? undefined : { name: found.name, roles: found.roles ?? [] };
  });
}
