/**
 * `doctorConfig(file)`: an exposure check of a configuration and of the files it names, like
 * `systemd-analyze security` (docs/configuration.md, "Doctor"). A configuration that validates can
 * still leave things open: a key file others can read, a certificate about to expire, a role that
 * may call everything, a socket directory another user can write. Each check below reads what it
 * judges (the file system with lstat, never following a link; certificates with core's decoder;
 * the revocation list with core's reader) and reports findings, each with its weight; the score is
 * their sum, capped at 10 (0: nothing found exposed).
 *
 *   identity   key sources (plain / encrypted / keystore), secret file modes and owners, what an
 *              encryptedFile really holds, the certificate (signature, validity, lifetime, key,
 *              revocation)
 *   trust      the revocation list: present, and only its owner may write it
 *   policy     `*` grants, defaultRoles
 *   endpoints  TCP (remote, loopback), abstract sockets, socket modes, OS admission lists, the
 *              socket directory of unix:// and local:// paths
 *   audit      present, required, its directory; the outbox directory
 *   profile    every weakening declared, with its reason (info)
 *
 * Nothing is changed and nothing secret is printed: a plain key file is read only to compare its
 * public key with the certificate's, and wiped at once.
 */
import { constants, promises as fs, type Stats } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  type Certificate,
  certificateSignatureValid,
  createError,
  DEFAULT_CLOCK_SKEW_MS,
  encodeKey,
  isSecureIpcError,
  posixOwnerOnly,
  readCertificateFile,
  readRevocationFile,
  readSecretKeyFile,
  zeroKeyPair,
} from '@secure-ipc/core';
import { readConfig, STRICT_MAX_CERTIFICATE_HOURS } from './load.js';
import { isLoopbackTcp, type ProfileName } from './profiles.js';
import type { Config, KeySourceConfig } from './schema.js';
import { formatOf, parseSource } from './source.js';
import { pointerOf } from './validate.js';

/** How much a finding exposes, from its weight: high ≥ 2, medium ≥ 1, low > 0, info 0. */
export type DoctorSeverity = 'high' | 'medium' | 'low' | 'info';

/** One check of the doctor: a stable id, the weight a finding of it adds to the score, and the usual fix. */
export interface DoctorCheck {
  /** Stable id (`key-file-mode`): what a finding names, what docs/configuration.md lists. */
  readonly id: string;
  /** Its exposure weight, added to the score once per finding. */
  readonly weight: number;
  /** What it finds, one sentence. */
  readonly finds: string;
  /** What fixes it (a finding may say it more precisely). */
  readonly fix: string;
}

/** The highest score: a sum above it is capped. */
export const DOCTOR_MAX_SCORE = 10;

/** Days of validity left under which a certificate is reported as expiring (or a third of its lifetime, if less). */
export const DOCTOR_EXPIRY_WARNING_DAYS = 7;

/** Days a baseline profile's certificate may last before it is reported as long-lived (strict: 24 hours). */
export const DOCTOR_BASELINE_MAX_CERTIFICATE_DAYS = 30;

/** Every check, in report order of its area (docs/configuration.md, "Doctor", has the same table). */
export const DOCTOR_CHECKS: readonly DoctorCheck[] = [
  {
    id: 'key-file-mode',
    weight: 3,
    finds:
      'a plain secret file (a `file` key, a `passphraseFile`, the audit `hashKeyFile`) that group or others can access, or that another user than this one or root owns',
    fix: 'chmod 600 FILE, owned by the user the endpoint runs as',
  },
  {
    id: 'key-not-encrypted',
    weight: 3,
    finds: 'an `encryptedFile` that holds a plain secret key: the passphrase protects nothing',
    fix: 'point encryptedFile at the encrypted file (writeEncryptedKeyFile writes one), or name the plain file as `file`; then wipe any plain copy',
  },
  {
    id: 'encrypted-key-file-mode',
    weight: 1,
    finds:
      'an encrypted key file that group or others can access, or that another user owns: they can guess its passphrase offline',
    fix: 'chmod 600 FILE',
  },
  {
    id: 'key-plain-file',
    weight: 0.5,
    finds: 'a key in a plain key file (`file`): whoever reads the file (a backup, a wrong chmod) has the key',
    fix: 'keep the key in the OS keystore (`keystore`) or an encrypted key file (`encryptedFile`)',
  },
  {
    id: 'passphrase-env',
    weight: 0.5,
    finds:
      'a passphrase in an environment variable (`passphraseEnv`): child processes inherit it, and the same user and root read it in /proc',
    fix: 'use passphraseFile (a 0600 file) or the keystore',
  },
  {
    id: 'file-unusable',
    weight: 1,
    finds:
      'a file the configuration names that is missing, a symbolic link, not a regular file or not in its format: the endpoint does not start, and it could not be checked',
    fix: 'create the file, or name its real path',
  },
  {
    id: 'certificate-signature',
    weight: 2,
    finds: 'a certificate whose signature does not verify under its issuer',
    fix: 'issue it again: secure-ipc cert issue',
  },
  {
    id: 'certificate-expired',
    weight: 2,
    finds: 'a certificate past its notAfter: every peer refuses it',
    fix: 'issue a new certificate: secure-ipc cert issue',
  },
  {
    id: 'certificate-not-yet-valid',
    weight: 1,
    finds: 'a certificate whose notBefore is still ahead (beyond the 30 s clock skew)',
    fix: 'check the clocks, or issue it again',
  },
  {
    id: 'certificate-expires-soon',
    weight: 1,
    finds: `a certificate with less than ${DOCTOR_EXPIRY_WARNING_DAYS} days, or a third of its lifetime, left`,
    fix: 'renew it now: secure-ipc cert issue',
  },
  {
    id: 'certificate-lifetime',
    weight: 1,
    finds: `a certificate that lasts more than ${STRICT_MAX_CERTIFICATE_HOURS} hours (strict) or ${DOCTOR_BASELINE_MAX_CERTIFICATE_DAYS} days (baseline): a stolen key stays good that long`,
    fix: 'issue shorter certificates (cert issue --ttl 24h) and renew them',
  },
  {
    id: 'certificate-key-mismatch',
    weight: 1,
    finds:
      'a certificate for another key than identity.key (read from a plain key file only), or than the static key the live server proves',
    fix: 'issue the certificate for this key: secure-ipc cert issue --pubkey $(secure-ipc pubkey --key FILE)',
  },
  {
    id: 'certificate-revoked',
    weight: 2,
    finds: 'the endpoint’s own certificate, or its key, is in its revocation list',
    fix: 'make a new key and certificate',
  },
  {
    id: 'no-revocation-list',
    weight: 1,
    finds:
      'no `trust.revocations`: a stolen key or certificate cannot be cut off without editing and restarting',
    fix: 'name a revocation list (secure-ipc revoke writes it) in trust.revocations',
  },
  {
    id: 'revocation-list-mode',
    weight: 2,
    finds:
      'a revocation list that group or others can write, or another user owns: they can take a revocation back',
    fix: 'chmod go-w FILE, owned by the user the endpoint runs as or root',
  },
  {
    id: 'call-grant-all',
    weight: 2,
    finds: 'a role that may call every method (`*`)',
    fix: 'grant the methods by name, or by a narrow pattern (`files.*`)',
  },
  {
    id: 'wildcard-call',
    weight: 0.5,
    finds: 'a role that may call a pattern (`files.*`): methods added later are granted too',
    fix: 'grant the methods by name',
  },
  {
    id: 'topic-grant-all',
    weight: 0.5,
    finds: 'a role that may publish or subscribe to every topic (`*`)',
    fix: 'grant the topics by name or by a narrow pattern',
  },
  {
    id: 'default-roles',
    weight: 1,
    finds: '`policy.defaultRoles`: every trusted peer holds these roles',
    fix: 'give roles to peers by key (policy.peers) or by certificate',
  },
  {
    id: 'remote-tcp',
    weight: 3,
    finds:
      'a tcp:// endpoint on a non-loopback address (`allowRemote`), or a live one that also answers on an address of this host that is not loopback: reachable from the network',
    fix: 'listen on 127.0.0.1 or a Unix socket; if the network is needed, restrict it with a firewall too',
  },
  {
    id: 'tcp-local',
    weight: 0.5,
    finds:
      'a loopback tcp:// endpoint: every local user’s processes can connect; only the handshake keeps them out',
    fix: 'listen on unix:// or local://, which are owner-only',
  },
  {
    id: 'abstract-socket',
    weight: 0.5,
    finds: 'a unix-abstract: endpoint: no file permission guards the name, and any process may bind it first',
    fix: 'listen on unix:// or local://',
  },
  {
    id: 'socket-world-access',
    weight: 1.5,
    finds:
      'socketMode 0666, or a live socket that others may write: every local user may connect at the OS level',
    fix: 'socketMode 0600, or 0660 with socketGroup',
  },
  {
    id: 'socket-group-access',
    weight: 0.5,
    finds:
      'socketMode 0660, or a live socket that its group may write: the members of the group may connect at the OS level',
    fix: 'socketMode 0600 unless the group needs it',
  },
  {
    id: 'os-admission-widened',
    weight: 0.5,
    finds: '`allowUids`, `allowGids` or `allowSids` admitting other users than this one',
    fix: 'name only the users that need to connect',
  },
  {
    id: 'socket-dir-insecure',
    weight: 1.5,
    finds:
      'a socket directory that is a link, not a directory, another user’s or writable by group or others (the transport refuses it); or, not there yet, whose parent another user may write (world-writable without the sticky bit, or owned by another user than this one or root)',
    fix: 'a directory of this user, mode 0700 (or let the transport create it in a parent of yours)',
  },
  {
    id: 'socket-not-socket',
    weight: 2,
    finds:
      'a live unix:// or local:// path that is not a socket (a symbolic link, a regular file, a directory): a client connects to what it points to, or to nothing',
    fix: 'restart the endpoint so that it binds a fresh socket; remove what stands in its place',
  },
  {
    id: 'socket-dir-writable',
    weight: 1.5,
    finds:
      'the directory of a live socket lets another user replace it: writable by group or others without the sticky bit, or owned by another user than the socket’s owner or root',
    fix: 'a directory of the endpoint’s user, mode 0700: chmod 700 DIR',
  },
  {
    id: 'no-certificate',
    weight: 1,
    finds:
      'a live server that presents no certificate: its clients must pin its raw key, which never expires and is revoked only by editing every client',
    fix: 'give the server a short-lived certificate (secure-ipc cert issue --ttl 24h; ca serve renews it)',
  },
  {
    id: 'certificate-invalid',
    weight: 2,
    finds:
      'a live server’s handshake certificate that does not decode: every client that trusts by certificate refuses it',
    fix: 'issue it again: secure-ipc cert issue',
  },
  {
    id: 'protocol-version-1',
    weight: 0.5,
    finds:
      'a live server that speaks only protocol version 1: a client it refuses sees only a closed channel, not REFUSED (docs/protocol.md 3.8)',
    fix: 'update the server’s secure-ipc',
  },
  {
    id: 'pipe-dacl-open',
    weight: 1.5,
    finds:
      'a live named pipe whose DACL lets Everyone, Authenticated Users or Anonymous write (or has no DACL): every local user, or anonymous sessions, may connect at the OS level',
    fix: 'let transport-win create the pipe (owner and SYSTEM only), and name other users with allowedSids',
  },
  {
    id: 'pipe-remote-allowed',
    weight: 1,
    finds:
      'a live named pipe whose DACL does not deny NETWORK logons first: only PIPE_REJECT_REMOTE_CLIENTS, which a client cannot read back, keeps remote clients out',
    fix: 'let transport-win create the pipe: its DACL starts with (D;;GA;;;NU)',
  },
  {
    id: 'no-audit',
    weight: 1,
    finds: 'no `audit`: what peers did leaves no tamper-evident record',
    fix: 'add audit with dir and origin',
  },
  {
    id: 'audit-not-required',
    weight: 0.5,
    finds: '`audit.required` is not true: when an append fails, calls go on unaudited',
    fix: 'audit.required = true',
  },
  {
    id: 'private-dir-insecure',
    weight: 1.5,
    finds:
      'an audit or outbox directory that is a link, another user’s, or accessible by group or others (it is refused at open)',
    fix: 'chmod 700 DIR, owned by the user the endpoint runs as',
  },
  {
    id: 'profile-weakened',
    weight: 0,
    finds: 'a profile rule this configuration weakens on purpose (`weakens`), with its reason',
    fix: 'review the reason; remove the entry when it no longer holds',
  },
];

const CHECKS = new Map(DOCTOR_CHECKS.map((c) => [c.id, c]));

/** The severity of a weight. */
export function doctorSeverity(weight: number): DoctorSeverity {
  return weight >= 2 ? 'high' : weight >= 1 ? 'medium' : weight > 0 ? 'low' : 'info';
}

/** One thing the doctor found. */
export interface DoctorFinding {
  /** The check's id (DOCTOR_CHECKS). */
  readonly id: string;
  /** Its severity, from its weight. */
  readonly severity: DoctorSeverity;
  /** What it adds to the score. */
  readonly weight: number;
  /** What was found. */
  readonly message: string;
  /** The setting's JSON pointer (`/identity/key/file`), `` for the whole file. */
  readonly pointer: string;
  /** What fixes it. */
  readonly fix: string;
  /** Where the setting is in the file (when the doctor read the file's text). */
  readonly line?: number;
  /** Its column (UTF-16 code units, from 1). */
  readonly column?: number;
}

/** What `doctorConfig` reports. */
export interface DoctorReport {
  /** The configuration file. */
  readonly file: string;
  /** The profile it is held to. */
  readonly profile: ProfileName;
  /** Every finding, the heaviest first. */
  readonly findings: readonly DoctorFinding[];
  /** The sum of the findings' weights, capped at DOCTOR_MAX_SCORE: 0 is nothing exposed. */
  readonly score: number;
}

/** Options of `doctorConfig`. */
export interface DoctorOptions {
  /** The time certificates are judged at, ms epoch (default Date.now()). */
  readonly now?: number;
}

/**
 * What the doctor examines: a configuration file's path (read and validated: a configuration with
 * problems throws SIPC_ERR_INVALID_CONFIG with every problem in `details.problems`), or an already
 * validated configuration with the file it came from (paths in it are relative to that file's
 * directory; `loadConfig`'s `options.config` is one) and, if you have it, that file's text, so
 * that findings carry their line and column.
 */
export type DoctorInput =
  | string
  | { readonly file: string; readonly config: Config; readonly text?: string | undefined };

/** @internal A path into what was examined: the configuration (`['identity', 'key']`), or an endpoint's parts (`['socket']`). */
export type Path = readonly (string | number)[];

/** @internal What a check needs to judge and to report: the profile, the time, and where findings go. */
export interface Judge {
  readonly profile: ProfileName;
  readonly now: number;
  add(id: string, at: Path, message: string, fix?: string): void;
}

interface Context extends Judge {
  readonly config: Config;
  /** A path of the configuration, resolved against its file's directory. */
  readonly path: (p: string) => string;
}

/**
 * @internal The findings of one examination, and its score: every doctor (of a file, of a live
 * endpoint) reports through one of these, so findings and scores mean the same everywhere.
 * `locate` gives a path's line and column in the examined text, when there is one.
 */
export function doctorFindings(locate?: (at: Path) => { line: number; column: number } | undefined): {
  add: Judge['add'];
  finish(): { findings: DoctorFinding[]; score: number };
} {
  const findings: (DoctorFinding & { order: number })[] = [];
  return {
    add(id, at, message, fix) {
      const check = CHECKS.get(id);
      if (check === undefined) throw createError('SIPC_ERR_INVALID_ARGUMENT', `no doctor check ${id}`);
      const place = locate?.(at);
      findings.push({
        id,
        severity: doctorSeverity(check.weight),
        weight: check.weight,
        message,
        pointer: pointerOf(at),
        fix: fix ?? check.fix,
        ...(place ? { line: place.line, column: place.column } : {}),
        order: findings.length,
      });
    },
    finish() {
      findings.sort((a, b) => b.weight - a.weight || a.order - b.order);
      // Weights are multiples of 0.5, so the sum is exact; rounding only guards a future weight.
      const sum = findings.reduce((s, f) => s + f.weight, 0);
      return {
        findings: findings.map(({ order: _, ...f }) => f),
        score: Math.min(DOCTOR_MAX_SCORE, Math.round(sum * 10) / 10),
      };
    },
  };
}

/**
 * Examine a configuration and the files it names; resolves with every finding and the exposure
 * score (docs/configuration.md, "Doctor"). Nothing is changed.
 */
export async function doctorConfig(input: DoctorInput, options: DoctorOptions = {}): Promise<DoctorReport> {
  const { file, config, text } = typeof input === 'string' ? await readInput(input) : input;
  const format = formatOf(file);
  const source = text === undefined || format === undefined ? undefined : parseSource(text, format);
  const base = dirname(resolve(file));
  const profile: ProfileName = config.profile ?? 'baseline';
  const found = doctorFindings(source === undefined ? undefined : (at) => source.locate(at));
  const ctx: Context = {
    config,
    profile,
    now: options.now ?? Date.now(),
    path: (p) => resolve(base, p),
    add: found.add,
  };
  for (const check of AREAS) await check(ctx);
  return { file, profile, ...found.finish() };
}

async function readInput(file: string): Promise<{ file: string; config: Config; text: string }> {
  let config: Config;
  try {
    config = await readConfig(file);
  } catch (err) {
    if (isSecureIpcError(err)) throw err;
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `Cannot read ${file}`, {
      cause: err,
      details: { path: file },
    });
  }
  // The text again, for the findings' lines and columns (readConfig keeps only the value).
  return { file, config, text: await fs.readFile(file, 'utf8') };
}

// ---- files -------------------------------------------------------------------------------------

const onWindows = process.platform === 'win32';

/** @internal `0644`. */
export function octal(mode: number): string {
  return `0${(mode & 0o777).toString(8)}`;
}

/** @internal lstat without throwing: the stats, or why there are none. */
export async function lstatOf(path: string): Promise<Stats | string> {
  try {
    return await fs.lstat(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    return code === 'ENOENT' ? 'does not exist' : `cannot be examined (${code ?? String(err)})`;
  }
}

/**
 * A file that must be a regular file (never a link: core opens these without following one):
 * its stats, or undefined after reporting `file-unusable`.
 */
async function regularFile(ctx: Context, at: Path, file: string): Promise<Stats | undefined> {
  const st = await lstatOf(file);
  let problem: string | undefined;
  if (typeof st === 'string') problem = st;
  else if (st.isSymbolicLink()) problem = 'is a symbolic link (never followed)';
  else if (!st.isFile()) problem = 'is not a regular file';
  if (problem === undefined) return st as Stats;
  ctx.add('file-unusable', at, `${file} ${problem}`);
  return undefined;
}

/**
 * Who besides this user can get at a file, by core's rules for secret files (owner: this user or
 * root; no group or other bits) or trust files (owner the same; not writable by group or others);
 * undefined when nobody. Windows has no POSIX modes: its ACLs are not read back here.
 */
function accessProblem(st: Stats, kind: 'secret' | 'trust'): string | undefined {
  const euid = process.geteuid?.();
  if (onWindows || euid === undefined) return undefined;
  if (st.uid !== euid && st.uid !== 0)
    return `is owned by uid ${st.uid}, not by this user (uid ${euid}) or root`;
  if (kind === 'secret' && (st.mode & 0o077) !== 0)
    return `is accessible by group or others (mode ${octal(st.mode)})`;
  if (kind === 'trust' && (st.mode & 0o022) !== 0)
    return `is writable by group or others (mode ${octal(st.mode)})`;
  return undefined;
}

/** A plain secret file: present, regular, and nobody else's to read. */
async function secretFile(ctx: Context, at: Path, file: string): Promise<boolean> {
  const st = await regularFile(ctx, at, file);
  if (st === undefined) return false;
  const problem = accessProblem(st, 'secret');
  if (problem !== undefined) ctx.add('key-file-mode', at, `${file} ${problem}`, `chmod 600 ${file}`);
  return problem === undefined;
}

// An armored file's first line names what it holds (docs/protocol.md "Files").
const ARMOR_LABEL = /^-----BEGIN SECURE-IPC ([A-Z ]{1,32})-----$/;
const BARE_KEY = /^[A-Za-z0-9+/]{43}=$/;

/** The first line of a file (at most 256 bytes read, through a descriptor that follows no link). */
async function firstLine(file: string): Promise<string> {
  const flags = onWindows
    ? constants.O_RDONLY
    : constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK;
  const handle = await fs.open(file, flags);
  try {
    const buf = Buffer.alloc(256);
    const { bytesRead } = await handle.read(buf, 0, buf.byteLength, 0);
    const line = buf.subarray(0, bytesRead).toString('latin1').trimStart().split(/\r?\n/)[0] ?? '';
    buf.fill(0); // it may hold the start of a plain secret key
    return line.trim();
  } finally {
    await handle.close();
  }
}

// ---- identity ----------------------------------------------------------------------------------

/** A key source (identity.key, outbox.key); resolves with the plain key file's path when it is one and readable. */
async function keySource(ctx: Context, k: KeySourceConfig, at: Path): Promise<string | undefined> {
  if (k.keystore !== undefined) return undefined; // the OS keystore guards it
  if (k.file !== undefined) {
    const file = ctx.path(k.file);
    ctx.add('key-plain-file', [...at, 'file'], `${[...at].join('.')} is a plain key file (${file})`);
    return (await secretFile(ctx, [...at, 'file'], file)) ? file : undefined;
  }
  if (k.encryptedFile !== undefined) {
    const file = ctx.path(k.encryptedFile);
    const where = [...at, 'encryptedFile'];
    const st = await regularFile(ctx, where, file);
    if (st !== undefined) {
      const problem = accessProblem(st, 'secret');
      if (problem !== undefined)
        ctx.add('encrypted-key-file-mode', where, `${file} ${problem}`, `chmod 600 ${file}`);
      const line = await firstLine(file).catch(() => '');
      const label = ARMOR_LABEL.exec(line)?.[1];
      if (label === 'SECRET KEY' || BARE_KEY.test(line))
        ctx.add('key-not-encrypted', where, `${file} holds a plain secret key, not an encrypted one`);
      else if (label !== 'ENCRYPTED KEY')
        ctx.add(
          'file-unusable',
          where,
          `${file} is not an encrypted key file (-----BEGIN SECURE-IPC ENCRYPTED KEY-----)`,
        );
    }
    if (k.passphraseFile !== undefined)
      await secretFile(ctx, [...at, 'passphraseFile'], ctx.path(k.passphraseFile));
    if (k.passphraseEnv !== undefined)
      ctx.add(
        'passphrase-env',
        [...at, 'passphraseEnv'],
        `the passphrase of ${file} is read from the environment variable ${k.passphraseEnv}`,
      );
  }
  return undefined;
}

async function identity(ctx: Context): Promise<void> {
  const keyFile = await keySource(ctx, ctx.config.identity.key, ['identity', 'key']);
  if (ctx.config.outbox !== undefined) await keySource(ctx, ctx.config.outbox.key, ['outbox', 'key']);
  if (ctx.config.identity.certificate === undefined) return;
  const at = ['identity', 'certificate'];
  const file = ctx.path(ctx.config.identity.certificate);
  let cert: Certificate;
  try {
    cert = await readCertificateFile(file);
  } catch (err) {
    ctx.add('file-unusable', at, `${file}: ${(err as Error).message}`);
    return;
  }
  judgeCertificate(ctx, at, file, cert);
  if (keyFile !== undefined) {
    // The key file passed the checks above; it is read only to compare public keys.
    const pair = await readSecretKeyFile(keyFile).catch((err: Error) => {
      ctx.add('file-unusable', ['identity', 'key', 'file'], err.message);
      return undefined;
    });
    if (pair !== undefined) {
      const same = Buffer.from(pair.publicKey).equals(Buffer.from(cert.subjectKey));
      zeroKeyPair(pair);
      if (!same)
        ctx.add(
          'certificate-key-mismatch',
          at,
          `${file} is for the key ${encodeKey(cert.subjectKey)}, not for identity.key`,
        );
    }
  }
  await revokedSelf(ctx, at, file, cert);
}

const HOUR_MS = 3_600_000;
const DAY_MS = 24 * HOUR_MS;

function hoursText(ms: number): string {
  return ms >= 2 * DAY_MS ? `${(ms / DAY_MS).toFixed(1)} days` : `${(ms / HOUR_MS).toFixed(1)} hours`;
}

/** @internal The certificate's signature, validity window and lifetime, at `ctx.now`, for `ctx.profile`. */
export function judgeCertificate(ctx: Judge, at: Path, file: string, cert: Certificate): void {
  if (!certificateSignatureValid(cert))
    ctx.add('certificate-signature', at, `${file}: the signature does not verify under its issuer`);
  const lifetime = cert.notAfter - cert.notBefore;
  const left = cert.notAfter - ctx.now;
  if (left <= 0)
    ctx.add(
      'certificate-expired',
      at,
      `${file} expired ${hoursText(-left)} ago (${new Date(cert.notAfter).toISOString()})`,
    );
  else if (cert.notBefore > ctx.now + DEFAULT_CLOCK_SKEW_MS)
    ctx.add(
      'certificate-not-yet-valid',
      at,
      `${file} is valid only from ${new Date(cert.notBefore).toISOString()}`,
    );
  else if (left < Math.min(DOCTOR_EXPIRY_WARNING_DAYS * DAY_MS, lifetime / 3))
    ctx.add(
      'certificate-expires-soon',
      at,
      `${file} expires in ${hoursText(left)} (${new Date(cert.notAfter).toISOString()})`,
    );
  const max =
    ctx.profile === 'strict'
      ? STRICT_MAX_CERTIFICATE_HOURS * HOUR_MS
      : DOCTOR_BASELINE_MAX_CERTIFICATE_DAYS * DAY_MS;
  if (lifetime > max)
    ctx.add(
      'certificate-lifetime',
      at,
      `${file} lasts ${hoursText(lifetime)}, over the ${ctx.profile} profile's ${hoursText(max)}`,
    );
}

/** Whether the endpoint's own certificate or key is in its revocation list (read by `trust`). */
async function revokedSelf(ctx: Context, at: Path, file: string, cert: Certificate): Promise<void> {
  const list = await revocationList(ctx);
  const revoked = list?.check({ serial: cert.serial, subjectKey: cert.subjectKey });
  if (revoked !== undefined)
    ctx.add(
      'certificate-revoked',
      at,
      `${file} is revoked by ${ctx.path(ctx.config.trust.revocations!)} (${revoked === 'revoked-serial' ? `serial ${cert.serial}` : 'its key'})`,
    );
}

// ---- trust -------------------------------------------------------------------------------------

type RevocationList = Awaited<ReturnType<typeof readRevocationFile>>;

/** The revocation list, read as the server reads it; undefined when there is none or it is refused. */
async function revocationList(ctx: Context): Promise<RevocationList | undefined> {
  if (ctx.config.trust.revocations === undefined) return undefined;
  return readRevocationFile(ctx.path(ctx.config.trust.revocations)).catch(() => undefined);
}

async function trust(ctx: Context): Promise<void> {
  const name = ctx.config.trust.revocations;
  if (name === undefined) {
    ctx.add('no-revocation-list', ['trust'], 'trust names no revocation list');
    return;
  }
  const at = ['trust', 'revocations'];
  const file = ctx.path(name);
  const st = await regularFile(ctx, at, file);
  if (st === undefined) return;
  const problem = accessProblem(st, 'trust');
  if (problem !== undefined) {
    ctx.add('revocation-list-mode', at, `${file} ${problem}`, `chmod go-w ${file}`);
    return;
  }
  try {
    await readRevocationFile(file);
  } catch (err) {
    ctx.add('file-unusable', at, `${file}: ${(err as Error).message}`);
  }
}

// ---- policy ------------------------------------------------------------------------------------

const ALL = /^\*+$/; // what core's patterns read as "every name"

function policy(ctx: Context): void {
  for (const [role, grant] of Object.entries(ctx.config.policy.roles)) {
    (grant.call ?? []).forEach((m, i) => {
      const at = ['policy', 'roles', role, 'call', i];
      if (ALL.test(m)) ctx.add('call-grant-all', at, `role ${role} may call every method (${m})`);
      else if (m.includes('*')) ctx.add('wildcard-call', at, `role ${role} may call the pattern ${m}`);
    });
    for (const action of ['publish', 'subscribe'] as const)
      (grant[action] ?? []).forEach((m, i) => {
        if (ALL.test(m))
          ctx.add(
            'topic-grant-all',
            ['policy', 'roles', role, action, i],
            `role ${role} may ${action} every topic`,
          );
      });
  }
  const defaults = ctx.config.policy.defaultRoles ?? [];
  if (defaults.length > 0)
    ctx.add(
      'default-roles',
      ['policy', 'defaultRoles'],
      `every trusted peer holds the roles ${defaults.join(', ')}`,
    );
}

// ---- endpoints ---------------------------------------------------------------------------------

async function endpoints(ctx: Context): Promise<void> {
  const me = process.geteuid?.();
  for (const [i, e] of ctx.config.endpoints.entries()) {
    const at = ['endpoints', i];
    if (e.listen.startsWith('tcp://')) {
      if (isLoopbackTcp(e.listen))
        ctx.add('tcp-local', [...at, 'listen'], `${e.name}: ${e.listen} is open to every local user`);
      else ctx.add('remote-tcp', [...at, 'listen'], `${e.name}: ${e.listen} is reachable from the network`);
    }
    if (e.listen.startsWith('unix-abstract:'))
      ctx.add('abstract-socket', [...at, 'listen'], `${e.name}: ${e.listen} has no file permissions`);
    if (e.socketMode === '0666')
      ctx.add('socket-world-access', [...at, 'socketMode'], `${e.name}: every local user may connect`);
    if (e.socketMode === '0660')
      ctx.add(
        'socket-group-access',
        [...at, 'socketMode'],
        `${e.name}: the group ${e.socketGroup ?? '(none named)'} may connect`,
      );
    const others = (name: 'allowUids' | 'allowGids', mine: number | undefined) =>
      (e[name] ?? []).filter((id) => id !== mine);
    for (const [name, list] of [
      ['allowUids', others('allowUids', me)],
      ['allowGids', others('allowGids', process.getegid?.())],
    ] as const)
      if (list.length > 0)
        ctx.add('os-admission-widened', [...at, name], `${e.name}: ${name} admits ${list.join(', ')}`);
    if ((e.allowSids ?? []).length > 0)
      ctx.add(
        'os-admission-widened',
        [...at, 'allowSids'],
        `${e.name}: allowSids admits ${e.allowSids!.join(', ')}`,
      );
    const socket = await socketPath(e.listen);
    if (socket !== undefined) await socketDirectory(ctx, [...at, 'listen'], socket);
  }
}

/** The socket file of a unix:// or (with transport-unix installed) local:// address, else undefined. */
async function socketPath(address: string): Promise<{ path: string; owner: 'self' | 'root' } | undefined> {
  if (onWindows) return undefined;
  if (address.startsWith('unix://')) return { path: address.slice('unix://'.length), owner: 'self' };
  if (!address.startsWith('local://')) return undefined;
  const unix = await import('@secure-ipc/transport-unix').catch(() => undefined);
  if (unix === undefined) return undefined; // loadConfig says it is missing; nothing to examine
  try {
    return {
      path: unix.resolveLocalPath(address),
      owner: address.startsWith('local://system/') ? 'root' : 'self',
    };
  } catch {
    return undefined; // an address loadConfig refuses with its own error
  }
}

/**
 * The socket's directory, by transport-unix's rule (a real directory of this user, or root's for
 * local://system/, that group and others cannot write); when it is not there yet the transport
 * creates it, so its parent must not let another user create or swap it first.
 */
async function socketDirectory(
  ctx: Context,
  at: Path,
  socket: { path: string; owner: 'self' | 'root' },
): Promise<void> {
  const dir = dirname(socket.path);
  const uid = socket.owner === 'root' ? 0 : process.geteuid!();
  const st = await lstatOf(dir);
  let problem: string | undefined;
  if (typeof st !== 'string') {
    if (st.isSymbolicLink()) problem = `${dir} is a symbolic link`;
    else if (!st.isDirectory()) problem = `${dir} is not a directory`;
    else if (st.uid !== uid) problem = `${dir} is owned by uid ${st.uid}, not ${uid}`;
    else if ((st.mode & 0o022) !== 0)
      problem = `${dir} is writable by group or others (mode ${octal(st.mode)})`;
  } else {
    const parent = dirname(dir);
    const up = await lstatOf(parent);
    if (typeof up === 'string') problem = `${dir} does not exist, and its parent ${parent} ${up}`;
    else if (up.uid !== uid && up.uid !== 0)
      problem = `${dir} does not exist, and its parent ${parent} is uid ${up.uid}'s`;
    else if ((up.mode & 0o002) !== 0 && (up.mode & 0o1000) === 0)
      problem = `${dir} does not exist, and its parent ${parent} is world-writable without the sticky bit (mode ${octal(up.mode)})`;
  }
  if (problem !== undefined)
    ctx.add('socket-dir-insecure', at, problem, `mkdir -m 700 ${dir} as the endpoint's user`);
}

// ---- audit and outbox --------------------------------------------------------------------------

/** A private directory (audit, outbox) by core's own guard; absent is fine (it is created 0700). */
async function privateDirectory(ctx: Context, at: Path, dir: string): Promise<void> {
  if (typeof (await lstatOf(dir)) === 'string') return;
  try {
    await posixOwnerOnly.secure(dir, 'directory', false);
  } catch (err) {
    ctx.add('private-dir-insecure', at, (err as Error).message, `chmod 700 ${dir}`);
  }
}

async function audit(ctx: Context): Promise<void> {
  const a = ctx.config.audit;
  if (a === undefined) ctx.add('no-audit', [], 'no audit log');
  else {
    if (a.required !== true)
      ctx.add(
        'audit-not-required',
        ['audit'],
        'audit.required is not true: a failed append does not stop calls',
      );
    if (!onWindows) await privateDirectory(ctx, ['audit', 'dir'], ctx.path(a.dir));
    if (a.hashKeyFile !== undefined) await secretFile(ctx, ['audit', 'hashKeyFile'], ctx.path(a.hashKeyFile));
  }
  if (ctx.config.outbox !== undefined && !onWindows)
    await privateDirectory(ctx, ['outbox', 'dir'], ctx.path(ctx.config.outbox.dir));
}

// ---- profile -----------------------------------------------------------------------------------

function weakenings(ctx: Context): void {
  for (const [i, w] of (ctx.config.weakens ?? []).entries())
    ctx.add('profile-weakened', ['weakens', i], `${ctx.profile} rule ${w.rule} is weakened: ${w.reason}`);
}

/** The areas, in report order (findings are then sorted by weight). */
const AREAS: readonly ((ctx: Context) => void | Promise<void>)[] = [
  identity,
  trust,
  policy,
  endpoints,
  audit,
  weakenings,
];
