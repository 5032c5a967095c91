/**
 * `doctorAddress(address, { transport })`: the exposure check of a live endpoint
 * (docs/configuration.md, "Doctor", "A live endpoint"), through the same checks, findings and
 * score as `doctorConfig`. What it reads, by address:
 *
 *   unix://, local:// (Linux, macOS)   lstat of the socket (a socket? its owner and mode) and stat
 *                                      of its directory (who may replace the socket)
 *   unix-abstract:                     nothing on disk: an abstract name has no owner or mode
 *   tcp://                             the address (loopback or not); for a loopback one, whether
 *                                      the port also answers on this host's other addresses
 *   pipe://, local:// (Windows)        the pipe's DACL, read back as SDDL (transport-win)
 *   every address                      the handshake as an untrusted initiator: message 1 with a
 *                                      fresh key, message 2 read (the server's static key, its
 *                                      version and its certificate, if any), message 3 never
 *                                      sent, so the server never learns who asked; then one
 *                                      message 1 per older version, to see which it still speaks
 *
 * What cannot be read is listed in `notChecked` with the reason, never skipped silently. An
 * endpoint that is not there (no socket file, nothing answers) rejects with
 * SIPC_ERR_CONNECT_FAILED; a pipe:// address outside Windows with SIPC_ERR_UNSUPPORTED_PLATFORM.
 */
import { timingSafeEqual } from 'node:crypto';
import { promises as fs, type Stats } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { dirname } from 'node:path';
import {
  type Certificate,
  certificateToJSON,
  connect,
  createError,
  decodeCertificate,
  encodeKey,
  generateKeyPair,
  isSecureIpcError,
  keyFingerprint,
  SUPPORTED_VERSIONS,
  type Transport,
  zeroKeyPair,
} from '@secure-ipc/core';
import {
  type DoctorFinding,
  doctorFindings,
  type Judge,
  judgeCertificate,
  lstatOf,
  octal,
} from './doctor.js';
import { isLoopbackTcp, type ProfileName } from './profiles.js';

/** Options of `doctorAddress`. */
export interface DoctorAddressOptions {
  /**
   * The transport to connect with (the one `connect` would pick for the address), or a function
   * that makes it, called only once the OS checks are done (they may refuse the address first, as
   * a pipe:// address outside Windows).
   */
  readonly transport: Transport | (() => Transport);
  /** The profile to judge by (default `baseline`): it sets a certificate's longest lifetime. */
  readonly profile?: ProfileName;
  /** The server's application id, bound into the handshake's prologue (default none). */
  readonly appId?: string;
  /** The time certificates are judged at, ms epoch (default Date.now()). */
  readonly now?: number;
  /** Milliseconds each handshake probe may take (default 5 000). */
  readonly handshakeTimeoutMs?: number;
}

/** What the server showed in handshake message 2. */
export interface DoctorServerIdentity {
  /** Its static public key (base64, `encodeKey`). */
  readonly key: string;
  /** Its fingerprint (`BLAKE2b:…`). */
  readonly fingerprint: string;
  /** The protocol version it chose when offered every version this implementation speaks. */
  readonly version: number;
  /** Every version it accepted when offered that version alone, highest first. */
  readonly versions: readonly number[];
  /** The certificate it presented (`certificateToJSON`), when it presented one that decodes. */
  readonly certificate?: Readonly<Record<string, unknown>>;
}

/** Something the doctor could not examine, and why. */
export interface DoctorUnchecked {
  /** What (`handshake`, `socket`, `pipe DACL`, …). */
  readonly what: string;
  /** Why not. */
  readonly reason: string;
}

/** What `doctorAddress` reports. */
export interface DoctorAddressReport {
  /** The address examined. */
  readonly address: string;
  /** The profile it was judged by. */
  readonly profile: ProfileName;
  /** Every finding, the heaviest first; `pointer` names the part read (`/socket`, `/certificate`). */
  readonly findings: readonly DoctorFinding[];
  /** The sum of the findings' weights, capped at DOCTOR_MAX_SCORE. */
  readonly score: number;
  /** What was read, one line each (`socket /run/app.sock: uid 1000, mode 0600`). */
  readonly checked: readonly string[];
  /** What could not be read, with the reason. */
  readonly notChecked: readonly DoctorUnchecked[];
  /** The server's identity from the handshake, when the handshake got that far. */
  readonly server: DoctorServerIdentity | undefined;
}

interface Probe extends Judge {
  readonly address: string;
  readonly options: DoctorAddressOptions;
  readonly checked: string[];
  readonly notChecked: DoctorUnchecked[];
  server: DoctorServerIdentity | undefined;
}

const DEFAULT_PROBE_TIMEOUT_MS = 5000;
/** How long a plain TCP connect to another address of this host may take. */
const WILDCARD_PROBE_MS = 1000;

/**
 * Examine the live endpoint at `address`; resolves with every finding and the exposure score, what
 * was read and what could not be (docs/configuration.md, "Doctor"). Nothing is changed and nothing
 * about this side is revealed beyond a fresh ephemeral key.
 */
export async function doctorAddress(
  address: string,
  options: DoctorAddressOptions,
): Promise<DoctorAddressReport> {
  const profile = options.profile ?? 'baseline';
  if (profile !== 'baseline' && profile !== 'strict')
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `profile must be baseline or strict (got ${String(profile)})`,
    );
  const found = doctorFindings();
  const probe: Probe = {
    address,
    options,
    profile,
    now: options.now ?? Date.now(),
    add: found.add,
    checked: [],
    notChecked: [],
    server: undefined,
  };
  if (await endpointChecks(probe)) await handshakeChecks(probe);
  return {
    address,
    profile,
    ...found.finish(),
    checked: probe.checked,
    notChecked: probe.notChecked,
    server: probe.server,
  };
}

// ---- the endpoint, by scheme -------------------------------------------------------------------

const onWindows = process.platform === 'win32';

/** The OS side of the endpoint; resolves false when there is nothing to connect to (then no handshake). */
async function endpointChecks(p: Probe): Promise<boolean> {
  const a = p.address;
  if (a.startsWith('tcp://')) return tcpChecks(p);
  if (a.startsWith('pipe://') || (onWindows && a.startsWith('local://'))) return pipeChecks(p);
  if (a.startsWith('unix-abstract:')) {
    p.add(
      'abstract-socket',
      ['address'],
      `${a} has no file permissions: any process may connect or bind it first`,
    );
    p.notChecked.push({ what: 'socket', reason: 'an abstract socket has no file, owner or mode' });
    return true;
  }
  if (a.startsWith('unix://')) return socketChecks(p, a.slice('unix://'.length));
  if (a.startsWith('local://')) {
    const unix = await import('@secure-ipc/transport-unix');
    return socketChecks(p, unix.resolveLocalPath(a));
  }
  // systemd: names a socket handed to a service, which no client can connect to by that name.
  throw createError(
    'SIPC_ERR_INVALID_ADDRESS',
    `The doctor checks unix://, unix-abstract:, local://, tcp:// and pipe:// addresses, not ${a}`,
  );
}

function unreachable(message: string, cause?: unknown): Error {
  return createError('SIPC_ERR_CONNECT_FAILED', message, cause === undefined ? undefined : { cause });
}

/** What lstat found at a path that should be a socket. */
function kindOf(st: Stats): string {
  if (st.isSymbolicLink()) return 'a symbolic link';
  if (st.isFile()) return 'a regular file';
  if (st.isDirectory()) return 'a directory';
  return 'not a socket';
}

/** The socket file and its directory: is it a socket, who may connect, who may replace it. */
async function socketChecks(p: Probe, path: string): Promise<boolean> {
  const st = await lstatOf(path);
  if (typeof st === 'string') throw unreachable(`No socket at ${path}: it ${st}`);
  p.checked.push(`socket ${path}: uid ${st.uid}, gid ${st.gid}, mode ${octal(st.mode)}`);
  // A link is followed by connect: the handshake still tells what answers there.
  const connectable = st.isSocket() || st.isSymbolicLink();
  if (!connectable)
    p.notChecked.push({ what: 'handshake', reason: `${path} is ${kindOf(st)}: nothing listens there` });
  if (!st.isSocket())
    p.add(
      'socket-not-socket',
      ['socket'],
      `${path} is ${kindOf(st)}, not a socket`,
      `remove ${path} and restart the endpoint`,
    );
  else if ((st.mode & 0o002) !== 0)
    p.add(
      'socket-world-access',
      ['socket'],
      `${path} is writable by every local user (mode ${octal(st.mode)})`,
      `chmod 600 ${path}, or socketMode 0600`,
    );
  else if ((st.mode & 0o020) !== 0)
    p.add(
      'socket-group-access',
      ['socket'],
      `${path} is writable by the group ${st.gid} (mode ${octal(st.mode)})`,
      `chmod 600 ${path} unless the group needs it`,
    );
  const dir = dirname(path);
  let d: Stats;
  try {
    d = await fs.stat(dir); // followed: the directory the kernel resolves is the one that matters
  } catch (err) {
    p.notChecked.push({
      what: 'socket directory',
      reason: `${dir} cannot be examined (${(err as NodeJS.ErrnoException).code ?? String(err)})`,
    });
    return connectable;
  }
  p.checked.push(`socket directory ${dir}: uid ${d.uid}, gid ${d.gid}, mode ${octal(d.mode)}`);
  const fix = `chmod 700 ${dir}, owned by the endpoint's user`;
  if (d.uid !== st.uid && d.uid !== 0)
    p.add(
      'socket-dir-writable',
      ['socket-directory'],
      `${dir} is owned by uid ${d.uid}, not by the socket's owner (uid ${st.uid}) or root`,
      fix,
    );
  if ((d.mode & 0o022) !== 0 && (d.mode & 0o1000) === 0)
    p.add(
      'socket-dir-writable',
      ['socket-directory'],
      `${dir} is writable by ${(d.mode & 0o002) !== 0 ? 'every local user' : 'its group'} without the sticky bit (mode ${octal(d.mode)}): the socket can be replaced`,
      fix,
    );
  return connectable;
}

/** The TCP address, and whether the port also answers on an address of this host that is not loopback. */
async function tcpChecks(p: Probe): Promise<boolean> {
  const a = p.address;
  if (!isLoopbackTcp(a)) {
    p.add('remote-tcp', ['address'], `${a} is reachable from the network`);
    return true;
  }
  p.add('tcp-local', ['address'], `${a} is open to every local user`);
  const port = Number(/:(\d+)$/.exec(a)?.[1]);
  // Link-local IPv6 needs a scope; the other addresses are those a remote peer could reach.
  const others = Object.values(os.networkInterfaces())
    .flat()
    .filter((i) => i !== undefined && !i.internal && !i.address.startsWith('fe80:'))
    .map((i) => i!.address);
  const answering = (
    await Promise.all(others.map(async (ip) => ((await answers(ip, port)) ? ip : undefined)))
  ).filter((ip) => ip !== undefined);
  p.checked.push(
    `tcp port ${port} on this host's other addresses: ${others.length === 0 ? 'there are none' : others.map((ip) => `${ip} ${answering.includes(ip) ? 'answers' : 'does not answer'}`).join(', ')}`,
  );
  if (answering.length > 0)
    p.add(
      'remote-tcp',
      ['address'],
      `the port of ${a} also answers on ${answering.join(', ')}: the server listens on a wildcard address`,
      'bind 127.0.0.1 (not 0.0.0.0 or ::)',
    );
  return true;
}

/** True if a TCP connection to ip:port opens (it is closed at once, nothing sent). */
function answers(ip: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host: ip, port, timeout: WILDCARD_PROBE_MS });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.once('connect', () => done(true));
    s.once('timeout', () => done(false));
    s.once('error', () => done(false));
  });
}

/** The pipe's DACL, read back (Windows only). */
async function pipeChecks(p: Probe): Promise<boolean> {
  if (!onWindows)
    throw createError(
      'SIPC_ERR_UNSUPPORTED_PLATFORM',
      `${p.address} is a Windows named pipe: its DACL can be read only on Windows (this is ${process.platform}); run the doctor there`,
    );
  const win = await import('@secure-ipc/transport-win');
  const sddl = win.readPipeSecurityDescriptor(p.address);
  p.checked.push(`pipe DACL: ${sddl}`);
  judgePipeSddl(p, sddl);
  p.notChecked.push({
    what: 'PIPE_REJECT_REMOTE_CLIENTS',
    reason: "a client cannot read a pipe's mode flags; only its DACL's NETWORK entry is judged",
  });
  return true;
}

// SDDL (MS-DTYP 2.5.1): rights as hex or two-letter codes; the codes whose bits let a client write
// a pipe: GENERIC_ALL, GENERIC_WRITE, FILE_ALL_ACCESS, FILE_GENERIC_WRITE, and DC, which is the
// bit of FILE_WRITE_DATA (0x2) on a file.
const WRITE_RIGHTS = new Set(['GA', 'GW', 'FA', 'FW', 'DC']);
const WRITE_MASK = 0x2 | 0x4 | 0x10000000 | 0x40000000; // FILE_WRITE_DATA, FILE_APPEND_DATA, GA, GW
const OPEN_SIDS = new Map([
  ['WD', 'Everyone'],
  ['S-1-1-0', 'Everyone'],
  ['AU', 'Authenticated Users'],
  ['S-1-5-11', 'Authenticated Users'],
  ['AN', 'Anonymous'],
  ['S-1-5-7', 'Anonymous'],
]);
const NETWORK = new Set(['NU', 'S-1-5-2']);

function writes(rights: string): boolean {
  if (/^0x[0-9a-f]+$/i.test(rights)) return (Number.parseInt(rights, 16) & WRITE_MASK) !== 0;
  for (let i = 0; i + 2 <= rights.length; i += 2) if (WRITE_RIGHTS.has(rights.slice(i, i + 2))) return true;
  return false;
}

/**
 * @internal Judge a pipe's SDDL: write access for Everyone, Authenticated Users or Anonymous (or no
 * DACL at all) is `pipe-dacl-open`; no deny of NETWORK before the first allow is `pipe-remote-allowed`.
 */
export function judgePipeSddl(j: Pick<Judge, 'add'>, sddl: string): void {
  const dacl = /D:([A-Z_]*)((?:\([^()]*\))*)/.exec(sddl);
  if (dacl === null || dacl[1]!.includes('NO_ACCESS_CONTROL')) {
    j.add('pipe-dacl-open', ['dacl'], 'the pipe has no DACL: everyone has full access');
    return;
  }
  const aces = [...dacl[2]!.matchAll(/\(([^()]*)\)/g)].map((m) => m[1]!.split(';'));
  let networkDenied = false;
  let allowed = false;
  for (const [type, , rights = '', , , sid = ''] of aces) {
    if (type === 'D' && NETWORK.has(sid) && !allowed) networkDenied = true;
    if (type !== 'A') continue;
    allowed = true;
    const who = OPEN_SIDS.get(sid);
    if (who !== undefined && writes(rights))
      j.add('pipe-dacl-open', ['dacl'], `the pipe's DACL lets ${who} write (${rights})`);
  }
  if (!networkDenied)
    j.add(
      'pipe-remote-allowed',
      ['dacl'],
      "the pipe's DACL does not deny NETWORK logons before it allows anyone",
    );
}

// ---- the handshake -----------------------------------------------------------------------------

interface Seen {
  readonly key: Uint8Array;
  readonly payload: Readonly<Record<string, unknown>>;
}

/**
 * One handshake as an untrusted initiator: a fresh key pair, a trust function that records what
 * message 2 showed and refuses, so message 3 is never sent. Resolves with what was seen, or the
 * reason nothing was; a connection that cannot be made at all rejects (SIPC_ERR_CONNECT_FAILED).
 */
async function look(p: Probe, versions: readonly number[]): Promise<Seen | { reason: unknown }> {
  const keyPair = generateKeyPair();
  let seen: Seen | undefined;
  try {
    const { transport } = p.options;
    const client = await connect({
      transport: typeof transport === 'function' ? transport() : transport,
      address: p.address,
      keyPair,
      versions,
      handshakeTimeoutMs: p.options.handshakeTimeoutMs ?? DEFAULT_PROBE_TIMEOUT_MS,
      ...(p.options.appId === undefined ? {} : { appId: p.options.appId }),
      trust: (ctx) => {
        seen = { key: Uint8Array.from(ctx.remoteStaticKey), payload: ctx.payload };
        return { allow: false, reason: 'the doctor trusts no server: it only reads handshake message 2' };
      },
    });
    await client.close(); // a trust function that refuses cannot get here
    throw createError('SIPC_ERR_HANDSHAKE_FAILED', 'The doctor’s probe was admitted');
  } catch (err) {
    if (seen !== undefined) return seen;
    if (isSecureIpcError(err, 'SIPC_ERR_CONNECT_FAILED')) throw err;
    return { reason: err };
  } finally {
    zeroKeyPair(keyPair);
  }
}

function why(reason: unknown): string {
  if (!isSecureIpcError(reason)) return String(reason);
  const cause = reason.cause instanceof Error ? `; caused by ${reason.cause.message}` : '';
  return `${reason.message} (${reason.code}${cause})`;
}

async function handshakeChecks(p: Probe): Promise<void> {
  const first = await look(p, SUPPORTED_VERSIONS);
  if ('reason' in first) {
    p.notChecked.push({
      what: 'handshake',
      reason: `${why(first.reason)}: the server's key, certificate and versions were not seen`,
    });
    return;
  }
  const version = first.payload.version as number; // checked by the handshake (chosenVersion)
  const accepted = [version];
  for (const v of SUPPORTED_VERSIONS)
    if (v < version) {
      const older = await look(p, [v]);
      if (!('reason' in older)) accepted.push(v);
    }
  const key = encodeKey(first.key);
  p.checked.push(
    `handshake: server key ${keyFingerprint(first.key)}, version ${version} (accepts ${accepted.join(', ')})`,
  );
  if (version === 1) p.add('protocol-version-1', ['handshake'], 'the server speaks only protocol version 1');
  p.notChecked.push({
    what: 'trust',
    reason:
      'whether the key or the certificate’s issuer is one your clients trust, and the server’s revocation list: the doctor trusts nothing and reads no files of the server',
  });
  const cert = certificateOf(p, first);
  p.server = {
    key,
    fingerprint: keyFingerprint(first.key),
    version,
    versions: accepted,
    ...(cert === undefined ? {} : { certificate: certificateToJSON(cert) }),
  };
}

/** The certificate in message 2, judged; undefined when there is none (or it does not decode). */
function certificateOf(p: Probe, seen: Seen): Certificate | undefined {
  const raw = seen.payload.cert;
  if (raw === undefined) {
    p.add('no-certificate', ['certificate'], 'the server presents no certificate: clients must pin its key');
    return undefined;
  }
  let cert: Certificate;
  try {
    if (!(raw instanceof Uint8Array)) throw createError('SIPC_ERR_BAD_CERTIFICATE', 'cert is not binary');
    cert = decodeCertificate(raw);
  } catch (err) {
    p.add(
      'certificate-invalid',
      ['certificate'],
      `the server's certificate does not decode: ${(err as Error).message}`,
    );
    return undefined;
  }
  p.checked.push(
    `certificate: ${cert.name}, serial ${cert.serial}, ${new Date(cert.notBefore).toISOString()} to ${new Date(cert.notAfter).toISOString()}, issuer ${keyFingerprint(cert.issuer)}`,
  );
  judgeCertificate(p, ['certificate'], "the server's certificate", cert);
  const same = cert.subjectKey.length === seen.key.length && timingSafeEqual(cert.subjectKey, seen.key);
  if (!same)
    p.add(
      'certificate-key-mismatch',
      ['certificate'],
      `the server's certificate is for the key ${encodeKey(cert.subjectKey)}, not for the key it proves (${encodeKey(seen.key)})`,
      'issue the certificate for the server’s key',
    );
  return cert;
}
