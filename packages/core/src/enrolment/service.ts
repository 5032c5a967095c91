/**
 * The enrolment service and its clients (docs/identity.md, "Enrolment"): a secure-ipc server that
 * issues short-lived certificates to the key a peer proved in its handshake, authorized by a
 * one-time token or by what the OS says about the peer (its user, its executable), and renews them; `enrolCertificate` and
 * `keepCertificateRenewed` are the peer's side (renewal at about 2/3 of the lifetime, with jitter,
 * swapped in by the caller's `apply`, e.g. `listener.update()`).
 */
import { timingSafeEqual } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { PublicError } from '../envelope/wire-errors.js';
import { createError, isSecureIpcError, type SecureIpcError, toSecureIpcError } from '../errors.js';
import type { AuthorityKeyPair } from '../identity/authority.js';
import {
  type Certificate,
  DEFAULT_CERTIFICATE_TTL_MS,
  decodeCertificate,
  issueCertificate,
  type RevocationCheck,
  verifyCertificate,
} from '../identity/certificate.js';
import { toKey } from '../keys/key-text.js';
import { createPolicy } from '../rpc/policy.js';
import {
  type ConnectOptions,
  connect,
  type ListeningServer,
  type ServeOptions,
  serve,
} from '../rpc/serve.js';
import type { HandlerContext } from '../rpc/service-types.js';
import type { PeerExecutable, PeerInfo } from '../transport/contract.js';
import { consumeEnrolmentToken, type EnrolmentGrant, validateGrant } from './tokens.js';

/** The methods of the enrolment protocol. */
export const ENROL_METHOD = 'ca.enrol';
/** Renewal of a certificate this authority issued. */
export const RENEW_METHOD = 'ca.renew';
/** The authority's status (its expiry), for monitoring. */
export const STATUS_METHOD = 'ca.status';
/** Warn this long before the authority's own end (`authorityNotAfter`) by default: 30 days. */
export const DEFAULT_AUTHORITY_WARNING_MS = 30 * 24 * 3_600_000;
/** The error every refused enrolment or renewal gets: one code, no hint of which check failed. */
export const ENROLMENT_REFUSED = 'SIPC_ERR_FORBIDDEN';

/** The executable a rule asks for, as `PeerInfo.executable` reports the peer's (at least one field). */
export interface ExecutableCondition {
  /** The image's full path, compared exactly (Linux: symlinks resolved, as /proc/PID/exe links it). */
  readonly path?: string;
  /** SHA-256 of the image, 64 hex characters (either case), compared in constant time. */
  readonly sha256?: string;
}

/**
 * An enrolment by what the OS says about the peer: a peer that matches every condition given gets
 * the grant (its `name` and `roles`). At least one condition; the first rule that matches wins.
 */
export interface EnrolmentRule extends EnrolmentGrant {
  /** `uid:N` (Unix, TCP loopback on Linux) or `sid:S-1-5-…` (Windows), as `PeerInfo.osIdentity` says it. */
  readonly osIdentity?: string;
  /** The peer process's executable image (Unix sockets on Linux, named pipes on Windows). */
  readonly executable?: ExecutableCondition;
}

/** Longest rule path accepted (bytes): Linux PATH_MAX, and above the Windows long-path limit in UTF-8. */
const MAX_RULE_PATH_BYTES = 4096;

interface CheckedRule {
  readonly grant: EnrolmentGrant;
  readonly osIdentity: string | undefined;
  readonly path: string | undefined;
  readonly sha256: Buffer | undefined;
}

const badRule = (why: string) => createError('SIPC_ERR_INVALID_ARGUMENT', `An enrolment rule ${why}`);

/** Check a rule once, at construction: its grant, each condition's form, at least one condition. */
function checkRule(r: EnrolmentRule): CheckedRule {
  if (typeof r !== 'object' || r === null) throw badRule('is an object');
  validateGrant(r);
  const { osIdentity, executable } = r;
  if (osIdentity === undefined && executable === undefined)
    throw badRule('needs a condition: osIdentity, executable or both');
  if (
    osIdentity !== undefined &&
    (typeof osIdentity !== 'string' || !/^(uid:\d+|sid:S-1-[0-9-]+)$/.test(osIdentity))
  )
    throw badRule('osIdentity is uid:N or sid:S-1-…');
  if (executable === undefined) return { grant: r, osIdentity, path: undefined, sha256: undefined };
  if (typeof executable !== 'object' || executable === null)
    throw badRule('executable is { path?, sha256? }');
  const { path, sha256 } = executable;
  if (path === undefined && sha256 === undefined) throw badRule('executable needs a path, a sha256 or both');
  if (
    path !== undefined &&
    (typeof path !== 'string' ||
      path === '' ||
      Buffer.byteLength(path) > MAX_RULE_PATH_BYTES ||
      /\p{Cc}/u.test(path))
  )
    throw badRule(`executable path is 1..${MAX_RULE_PATH_BYTES} bytes without control characters`);
  if (sha256 !== undefined && (typeof sha256 !== 'string' || !/^[0-9a-fA-F]{64}$/.test(sha256)))
    throw badRule('executable sha256 is 64 hex characters');
  return {
    grant: r,
    osIdentity,
    path,
    sha256: sha256 === undefined ? undefined : Buffer.from(sha256, 'hex'),
  };
}

/** The peer's executable, undefined on any failure (a transport that rejects still fails closed). */
async function peerExecutable(peer: PeerInfo): Promise<PeerExecutable | undefined> {
  try {
    const exe = await peer.executable?.();
    return typeof exe?.path === 'string' && /^[0-9a-f]{64}$/.test(exe.sha256 ?? '') ? exe : undefined;
  } catch {
    return undefined;
  }
}

/** Does `exe` meet the rule's executable condition (path exactly, hash in constant time)? */
function executableMatches(rule: CheckedRule, exe: PeerExecutable | undefined): boolean {
  if (exe === undefined) return false;
  if (rule.path !== undefined && exe.path !== rule.path) return false;
  return rule.sha256 === undefined || timingSafeEqual(Buffer.from(exe.sha256, 'hex'), rule.sha256);
}

/** Options of the enrolment service. */
export interface EnrolmentServiceOptions {
  /** The authority that signs. */
  readonly authority: AuthorityKeyPair;
  /** Lifetime of the certificates issued (default 24 h; at least 3 s). */
  readonly ttlMs?: number;
  /** The token file (`createEnrolmentToken`, `secure-ipc ca token`). */
  readonly tokens?: string;
  /** Enrolment by OS identity and/or executable, tried in order. */
  readonly rules?: readonly EnrolmentRule[];
  /** Refuse renewal of a revoked certificate or key (a watched revocation list). */
  readonly revocations?: RevocationCheck;
  /** The authority's planned end (ms epoch): no certificate outlives it, and it is warned about. */
  readonly authorityNotAfter?: number;
  /** Warn this long before `authorityNotAfter` (default 30 days). */
  readonly authorityWarningMs?: number;
  /** The clock (default Date.now). */
  readonly now?: () => number;
}

/** A certificate the service issued. */
export interface EnrolmentIssue {
  /** How the peer was authorized (`executable`: by a rule with an executable condition). */
  readonly via: 'token' | 'os-identity' | 'executable' | 'renewal';
  /** The peer's key fingerprint. */
  readonly peer: string;
  /** The certificate. */
  readonly certificate: Certificate;
}

/** The authority's status, as `ca.status` answers and `authorityExpiring` says. */
export interface AuthorityStatus {
  /** The authority's public key, base64. */
  readonly authority: string;
  /** Its planned end (ms epoch), when configured. */
  readonly notAfter: number | undefined;
  /** Milliseconds left, when configured (negative once past). */
  readonly remainingMs: number | undefined;
  /** True within the warning window or past the end. */
  readonly expiring: boolean;
}

/** A refused enrolment or renewal, as the service tells it locally. */
export interface EnrolmentRefusal {
  /** `ca.enrol` or `ca.renew`. */
  readonly method: string;
  /** The peer's key fingerprint. */
  readonly peer: string;
  /** Why (never sent to the peer). */
  readonly reason: string;
}

/** What `ca.status` answers. */
export interface EnrolmentStatusAnswer {
  /** The authority's public key, base64. */
  readonly authority: string;
  /** Its planned end (ms epoch), or null when none is configured. */
  readonly notAfter: number | null;
  /** True within the warning window or past the end. */
  readonly expiring: boolean;
}

/** Events of the enrolment service. */
export interface EnrolmentServiceEvents {
  /** A certificate was issued. */
  issued: [issue: EnrolmentIssue];
  /** An enrolment or renewal was refused (the reason stays here; the peer gets SIPC_ERR_FORBIDDEN). */
  refused: [refusal: EnrolmentRefusal];
  /** The authority's end is within the warning window (on each issue, and from `checkAuthority()`). */
  authorityExpiring: [status: AuthorityStatus];
}

/** What `ca.enrol` and `ca.renew` answer. */
export interface EnrolmentAnswer {
  /** The certificate's encoding. */
  readonly cert: Uint8Array;
  /** Its end (ms epoch). */
  readonly notAfter: number;
}

/** The service: its handlers, to register on a server, and its events. */
export class EnrolmentService extends EventEmitter<EnrolmentServiceEvents> {
  readonly #o: EnrolmentServiceOptions;
  readonly #ttl: number;
  readonly #now: () => number;
  readonly #rules: readonly CheckedRule[];

  constructor(options: EnrolmentServiceOptions) {
    super();
    const ttl = options.ttlMs ?? DEFAULT_CERTIFICATE_TTL_MS;
    if (!Number.isSafeInteger(ttl) || ttl < 3000)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'ttlMs is an integer of at least 3,000');
    if (options.authorityNotAfter !== undefined && !Number.isSafeInteger(options.authorityNotAfter))
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'authorityNotAfter is a time in ms');
    if (options.rules !== undefined && !Array.isArray(options.rules))
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'rules is an array');
    this.#rules = (options.rules ?? []).map(checkRule);
    this.#o = options;
    this.#ttl = ttl;
    this.#now = options.now ?? Date.now;
  }

  /** The authority's status now; emits `authorityExpiring` when it is. */
  checkAuthority(): AuthorityStatus {
    const end = this.#o.authorityNotAfter;
    const remainingMs = end === undefined ? undefined : end - this.#now();
    const status: AuthorityStatus = {
      authority: Buffer.from(this.#o.authority.publicKey).toString('base64'),
      notAfter: end,
      remainingMs,
      expiring:
        remainingMs !== undefined &&
        remainingMs <= (this.#o.authorityWarningMs ?? DEFAULT_AUTHORITY_WARNING_MS),
    };
    if (status.expiring) this.emit('authorityExpiring', status);
    return status;
  }

  #refuse(method: string, ctx: HandlerContext, reason: string): never {
    this.emit('refused', { method, peer: ctx.peerId, reason });
    throw new PublicError(ENROLMENT_REFUSED, 'Enrolment refused');
  }

  #issue(
    via: EnrolmentIssue['via'],
    ctx: HandlerContext,
    grant: EnrolmentGrant,
    method: string,
  ): EnrolmentAnswer {
    const now = this.#now();
    const status = this.checkAuthority();
    const end = status.notAfter === undefined ? now + this.#ttl : Math.min(now + this.#ttl, status.notAfter);
    // Not even a minute left under the authority: nothing worth issuing.
    if (end - now < 60_000 && status.notAfter !== undefined)
      this.#refuse(method, ctx, 'the authority has ended');
    const certificate = issueCertificate(this.#o.authority, {
      subjectKey: ctx.remoteStaticKey,
      name: grant.name,
      roles: grant.roles ?? [],
      notBefore: now,
      ttlMs: end - now,
    });
    this.emit('issued', { via, peer: ctx.peerId, certificate });
    return { cert: certificate.bytes, notAfter: certificate.notAfter };
  }

  /** `ca.enrol { token? }`: a certificate for the channel's key, by token or by OS identity. */
  readonly enrol = async (params: unknown, ctx: HandlerContext): Promise<EnrolmentAnswer> => {
    const token = (params as { token?: unknown } | undefined)?.token;
    if (token !== undefined && typeof token !== 'string')
      this.#refuse(ENROL_METHOD, ctx, 'token is not a string');
    if (typeof token === 'string') {
      const grant =
        this.#o.tokens === undefined
          ? undefined
          : await consumeEnrolmentToken(this.#o.tokens, token, this.#now());
      if (grant === undefined) this.#refuse(ENROL_METHOD, ctx, 'unknown, used or expired token');
      return this.#issue('token', ctx, grant, ENROL_METHOD);
    }
    const id = ctx.peer.osIdentity;
    // The executable is read (hashed) at most once per call, and only if a rule asks for it.
    let exe: Promise<PeerExecutable | undefined> | undefined;
    let matched: CheckedRule | undefined;
    for (const rule of this.#rules) {
      if (rule.osIdentity !== undefined && rule.osIdentity !== id) continue;
      if (rule.path !== undefined || rule.sha256 !== undefined) {
        exe ??= peerExecutable(ctx.peer);
        if (!executableMatches(rule, await exe)) continue;
      }
      matched = rule;
      break;
    }
    if (matched === undefined) {
      const known = exe === undefined ? undefined : await exe;
      const running =
        exe === undefined
          ? ''
          : ` running ${known ? `${JSON.stringify(known.path)} sha256 ${known.sha256}` : 'an unknown executable'}`;
      this.#refuse(ENROL_METHOD, ctx, `no token and no rule for ${id ?? 'an unknown OS identity'}${running}`);
    }
    const via = matched.path !== undefined || matched.sha256 !== undefined ? 'executable' : 'os-identity';
    return this.#issue(via, ctx, matched.grant, ENROL_METHOD);
  };

  /** `ca.renew { cert }`: a new certificate, same name and roles, for the key that holds a valid one. */
  readonly renew = (params: unknown, ctx: HandlerContext): EnrolmentAnswer => {
    const cert = (params as { cert?: unknown } | undefined)?.cert;
    if (!(cert instanceof Uint8Array)) this.#refuse(RENEW_METHOD, ctx, 'cert is not bytes');
    let current: Certificate;
    try {
      // The certificate is public; what proves it is the peer's is its subject key, which must
      // be the key this channel's handshake proved.
      current = verifyCertificate(cert, {
        authorities: [this.#o.authority.publicKey],
        subjectKey: ctx.remoteStaticKey,
        revocations: this.#o.revocations,
        now: this.#now(),
        clockSkewMs: 0,
      });
    } catch (err) {
      this.#refuse(RENEW_METHOD, ctx, (err as Error).message);
    }
    return this.#issue('renewal', ctx, { name: current.name, roles: current.roles }, RENEW_METHOD);
  };

  /** `ca.status`: the authority's public key and planned end. */
  readonly status = (): EnrolmentStatusAnswer => {
    const s = this.checkAuthority();
    return { authority: s.authority, notAfter: s.notAfter ?? null, expiring: s.expiring };
  };
}

/** What `serveEnrolment` returns. */
export interface EnrolmentServer {
  /** The secure-ipc server (close it to stop). */
  readonly server: ListeningServer;
  /** The service (events). */
  readonly service: EnrolmentService;
}

/**
 * Serve enrolment on `options.address`: any peer may complete the handshake (its key is what it
 * enrols), and may call only `ca.enrol`, `ca.renew` and `ca.status`, within the listener's usual
 * connection caps.
 */
export async function serveEnrolment(
  options: EnrolmentServiceOptions & Omit<ServeOptions, 'trust' | 'policy'>,
): Promise<EnrolmentServer> {
  const service = new EnrolmentService(options);
  const server = await serve({
    ...options,
    // Every key is admitted to the enrolment methods: the handshake proves the key, the method
    // decides whether it gets a certificate.
    trust: () => ({ allow: true, roles: ['enrolment'] }),
    policy: createPolicy({
      roles: { enrolment: { call: [ENROL_METHOD, RENEW_METHOD, STATUS_METHOD] } },
      defaultRoles: ['enrolment'],
    }),
  });
  server.handle(ENROL_METHOD, service.enrol);
  server.handle(RENEW_METHOD, service.renew);
  server.handle(STATUS_METHOD, service.status);
  return { server, service };
}

/** Options of the peer's side: how to reach the service (its key pinned in `trust`) and the authority expected. */
export type EnrolmentClientOptions = Omit<ConnectOptions, 'payload'> & {
  /** The authority the certificate must be issued by (its public key). */
  readonly authority: Uint8Array | string;
};

async function ask(options: EnrolmentClientOptions, method: string, params: Record<string, unknown>) {
  const authority = toKey(options.authority, 'The authority key', 'SIPC_ERR_BAD_KEY');
  const client = await connect(options);
  try {
    const answer = (await client.request(method, params)) as { cert?: unknown };
    if (!(answer?.cert instanceof Uint8Array))
      throw createError('SIPC_ERR_BAD_CERTIFICATE', 'The enrolment service answered without a certificate');
    // What came back must be ours, from the expected authority, valid now.
    return verifyCertificate(decodeCertificate(answer.cert), {
      authorities: [authority],
      subjectKey: options.keyPair.publicKey,
    });
  } finally {
    await client.close();
  }
}

/** Enrol: a certificate for `options.keyPair` by `token`, or by this process's OS identity without one. */
export function enrolCertificate(
  options: EnrolmentClientOptions & { readonly token?: string },
): Promise<Certificate> {
  const { token, ...rest } = options;
  return ask(rest, ENROL_METHOD, token === undefined ? {} : { token });
}

/** Renew `certificate` (it must be valid still): a new one with the same name and roles. */
export function renewCertificate(
  options: EnrolmentClientOptions,
  certificate: Certificate,
): Promise<Certificate> {
  return ask(options, RENEW_METHOD, { cert: certificate.bytes });
}

/**
 * When to renew `cert`: at 2/3 of its lifetime, moved by up to 1/20 of the lifetime either way
 * (`random` in [0, 1)), so many peers issued at once do not renew at once.
 */
export function renewalTime(
  cert: Pick<Certificate, 'notBefore' | 'notAfter'>,
  random: () => number = Math.random,
): number {
  const life = cert.notAfter - cert.notBefore;
  return Math.round(cert.notBefore + (life * 2) / 3 + (random() * 2 - 1) * (life / 20));
}

/** Events of `keepCertificateRenewed`. */
export interface CertificateRenewalEvents {
  /** A new certificate was applied. */
  renewed: [certificate: Certificate];
  /** A renewal failed; it is tried again (every 1/20 of the lifetime, at least 1 s) until the certificate expires. */
  error: [error: SecureIpcError];
  /** The certificate expired before a renewal went through; renewal stopped (enrol again). */
  expired: [certificate: Certificate];
}

/** A running renewal. */
export interface CertificateRenewal extends EventEmitter<CertificateRenewalEvents> {
  /** The certificate in force. */
  readonly certificate: Certificate;
  /** When the next renewal is tried (ms epoch), undefined once stopped. */
  readonly nextRenewalAt: number | undefined;
  /** Stop renewing. */
  stop(): void;
}

/**
 * Keep `certificate` renewed: at `renewalTime`, renew it and hand the new one to `apply` (e.g.
 * `(c) => server.listener.update({ payload: { cert: c.bytes } })`, and write it to its file);
 * live channels are not touched. A failed renewal or `apply` is told as `error` and tried again.
 */
export function keepCertificateRenewed(
  options: EnrolmentClientOptions & {
    readonly certificate: Certificate;
    readonly apply: (certificate: Certificate) => void | Promise<void>;
    readonly random?: () => number;
  },
): CertificateRenewal {
  const { certificate, apply, random, ...client } = options;
  return new Renewal(client, certificate, apply, random ?? Math.random);
}

class Renewal extends EventEmitter<CertificateRenewalEvents> implements CertificateRenewal {
  #certificate: Certificate;
  #timer: NodeJS.Timeout | undefined;
  #next: number | undefined;
  #stopped = false;
  readonly #client: EnrolmentClientOptions;
  readonly #apply: (certificate: Certificate) => void | Promise<void>;
  readonly #random: () => number;

  constructor(
    client: EnrolmentClientOptions,
    certificate: Certificate,
    apply: (certificate: Certificate) => void | Promise<void>,
    random: () => number,
  ) {
    super();
    this.#client = client;
    this.#certificate = certificate;
    this.#apply = apply;
    this.#random = random;
    this.#schedule(renewalTime(certificate, random));
  }

  get certificate(): Certificate {
    return this.#certificate;
  }

  get nextRenewalAt(): number | undefined {
    return this.#next;
  }

  stop(): void {
    this.#stopped = true;
    clearTimeout(this.#timer);
    this.#next = undefined;
  }

  #schedule(at: number): void {
    if (this.#stopped) return;
    this.#next = at;
    this.#timer = setTimeout(() => void this.#renew(), Math.max(0, at - Date.now()));
    this.#timer.unref();
  }

  async #renew(): Promise<void> {
    const current = this.#certificate;
    try {
      const fresh = await renewCertificate(this.#client, current);
      if (this.#stopped) return;
      await this.#apply(fresh);
      this.#certificate = fresh;
      this.#schedule(renewalTime(fresh, this.#random));
      if (this.listenerCount('renewed') > 0) this.emit('renewed', fresh);
    } catch (err) {
      if (this.#stopped) return;
      if (this.listenerCount('error') > 0) this.emit('error', toSecureIpcError(err, 'SIPC_ERR_UNAVAILABLE'));
      const retry = Date.now() + Math.max(1000, (current.notAfter - current.notBefore) / 20);
      if (retry >= current.notAfter || isSecureIpcError(err, 'SIPC_ERR_CERT_EXPIRED')) {
        this.stop();
        this.emit('expired', current);
        return;
      }
      this.#schedule(retry);
    }
  }
}
