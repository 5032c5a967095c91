/**
 * `loadConfig(file)`: a validated configuration turned into what `serve()` takes (docs/
 * configuration.md, "Loading"): the key from its source, the trust (pinned keys, authorities and
 * the watched revocation list), the policy, one endpoint's address with its transport (loaded by
 * the address's scheme from the transport packages installed), the limits, the audit log and a
 * logger. A configuration with any problem is refused whole (SIPC_ERR_INVALID_CONFIG, every
 * problem in `details.problems`).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import {
  type AuditLog,
  type Certificate,
  certificateTrust,
  createError,
  decodeKey,
  type KeyPair,
  keyPairFromSecretKey,
  type Logger,
  loadSecretKey,
  openAuditLog,
  readAuditHashKey,
  readCertificateFile,
  readEncryptedKeyFile,
  readPassphraseFile,
  readSecretKeyFile,
  type ServeOptions,
  type Transport,
  type Trust,
  type WatchedRevocationList,
  watchRevocationList,
} from '@secure-ipc/core';
import type { Config, EndpointConfig, KeySourceConfig } from './schema.js';
import { type ConfigFormat, formatOf } from './source.js';
import { type ConfigProblem, formatProblem, policyOf, validateConfigText } from './validate.js';

/** Largest configuration file read (bytes). */
export const MAX_CONFIG_BYTES = 1_048_576;

/** Most hours a strict profile's own certificate may last. */
export const STRICT_MAX_CERTIFICATE_HOURS = 24;

/** Options of `loadConfig`. */
export interface LoadConfigOptions {
  /** The endpoint to serve, by name (default: the only one; required when there are several). */
  readonly endpoint?: string;
  /** The format, when the file's extension does not say it. */
  readonly format?: ConfigFormat;
  /** Where `passphraseEnv` is read (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** What `loadConfig` says of the configuration it loaded. */
export interface LoadedConfigInfo {
  /** The file, as given. */
  readonly file: string;
  /** SHA-256 (hex) of the configuration's canonical JSON: the same settings, the same hash. */
  readonly hash: string;
  /** The profile applied. */
  readonly profile: 'baseline' | 'strict';
  /** The endpoint served. */
  readonly endpoint: string;
  /** The validated configuration. */
  readonly config: Config;
  /** The audit log it opened, if any (close it after the server). */
  readonly auditLog: AuditLog | undefined;
  /** The revocation list it watches, if any (close it after the server). */
  readonly revocations: WatchedRevocationList | undefined;
  /** The certificate this endpoint presents, if any. */
  readonly certificate: Certificate | undefined;
  /** Close what loading opened (the audit log, the revocation watcher); call after the server closed. */
  close(): Promise<void>;
}

/** `serve()`'s options from a configuration, with what was loaded (`config`). */
export type ConfiguredServe = ServeOptions & { readonly config: LoadedConfigInfo };

/** The canonical JSON of a value: object keys sorted, no spaces. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v !== null && typeof v === 'object')
    return `{${Object.keys(v)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  return JSON.stringify(v);
}

/** SHA-256 (hex) of a configuration's canonical JSON. */
export function configHash(config: Config): string {
  return createHash('sha256').update(canonicalJson(config)).digest('hex');
}

function invalid(file: string, problems: readonly ConfigProblem[]): Error {
  const first = problems[0];
  return createError(
    'SIPC_ERR_INVALID_CONFIG',
    `${file}: ${problems.length} problem${problems.length === 1 ? '' : 's'}${first ? `; first ${formatProblem(first)}` : ''}`,
    { details: { problems } },
  );
}

/** Read and validate a configuration file (SIPC_ERR_INVALID_CONFIG with every problem when it has any). */
export async function readConfig(file: string, format?: ConfigFormat): Promise<Config> {
  const bytes = await readFile(file);
  if (bytes.byteLength > MAX_CONFIG_BYTES)
    throw createError('SIPC_ERR_INVALID_CONFIG', `${file} is over ${MAX_CONFIG_BYTES} bytes`);
  const v = validateConfigText(bytes.toString('utf8'), file, format ?? formatOf(file));
  if (v.config === undefined) throw invalid(file, v.problems);
  return v.config;
}

/**
 * Load `file` for `serve()`: `serve(await loadConfig('ipc.jsonc'))`. Paths in it are relative to
 * its directory. Close `config.close()` after the server, to close the audit log and the
 * revocation watcher it opened.
 */
export async function loadConfig(file: string, options: LoadConfigOptions = {}): Promise<ConfiguredServe> {
  const config = await readConfig(file, options.format);
  const base = dirname(resolve(file));
  const path = (p: string) => resolve(base, p);
  const endpoint = pickEndpoint(config, file, options.endpoint);
  const { keyPair, certificate } = await loadIdentity(config, path, options.env ?? process.env, file);
  let revocations: WatchedRevocationList | undefined;
  let auditLog: AuditLog | undefined;
  const close = async () => {
    await auditLog?.close();
    revocations?.close();
  };
  try {
    if (config.trust.revocations !== undefined)
      revocations = await watchRevocationList(path(config.trust.revocations));
    const trust = trustOf(config, revocations);
    let audit: ServeOptions['audit'];
    if (config.audit !== undefined) {
      const a = config.audit;
      auditLog = await openAuditLog({
        dir: path(a.dir),
        origin: a.origin,
        ...(a.checkpointEvery === undefined ? {} : { checkpointEvery: a.checkpointEvery }),
        ...(a.checkpointIntervalMs === undefined ? {} : { checkpointIntervalMs: a.checkpointIntervalMs }),
        ...(a.epochPeriodMs === undefined ? {} : { epochPeriodMs: a.epochPeriodMs }),
      });
      audit = {
        log: auditLog,
        ...(a.hashKeyFile === undefined ? {} : { hashKey: await readAuditHashKey(path(a.hashKeyFile)) }),
        ...(a.required === undefined ? {} : { required: a.required }),
      };
    }
    const transport = await transportFor(endpoint);
    const hash = configHash(config);
    const profile = config.profile ?? 'baseline';
    // The configuration in force goes to the audit log: its hash, file and profile.
    if (auditLog !== undefined) {
      const commit = await gitCommitOf(file);
      await auditLog.append({
        type: 'config.load',
        fields: {
          hash,
          file: resolve(file),
          profile,
          endpoint: endpoint.name,
          ...(commit ? { commit } : {}),
        },
      });
    }
    const l = config.limits ?? {};
    const logger = loggerFor(config.telemetry?.log);
    const info: LoadedConfigInfo = {
      file,
      hash,
      profile,
      endpoint: endpoint.name,
      config,
      auditLog,
      revocations,
      certificate,
      close,
    };
    return {
      transport,
      address: endpoint.listen,
      keyPair,
      trust,
      ...(certificate ? { payload: { cert: certificate.bytes } } : {}),
      policy: policyOf(config),
      ...(revocations ? { revocations } : {}),
      ...(audit ? { audit } : {}),
      ...(logger ? { logger } : {}),
      ...(config.resilience?.eventOverflow ? { eventOverflow: config.resilience.eventOverflow } : {}),
      ...pickDefined(l),
      config: info,
    };
  } catch (err) {
    await close();
    throw err;
  }
}

/** @internal The trust of `config`: pinned keys, or its authorities' certificate trust with them. */
export function trustOf(config: Config, revocations: WatchedRevocationList | undefined): Trust {
  const keys = (config.trust.keys ?? []).map(decodeKey);
  return (config.trust.authorities ?? []).length === 0
    ? { keys }
    : certificateTrust({ authorities: config.trust.authorities!, pinnedKeys: keys, revocations });
}

/**
 * @internal The key pair (from its source) and the certificate of `config` (it must be for that
 * key; strict: at most STRICT_MAX_CERTIFICATE_HOURS).
 */
export async function loadIdentity(
  config: Config,
  path: (p: string) => string,
  env: Readonly<Record<string, string | undefined>>,
  file: string,
): Promise<{ keyPair: KeyPair; certificate: Certificate | undefined }> {
  const problem = (pointer: string, message: string) =>
    invalid(file, [{ file, line: 1, column: 1, pointer, message }]);
  const keyPair = await loadKey(config.identity.key, path, env, file);
  if (config.identity.certificate === undefined) return { keyPair, certificate: undefined };
  const certificate = await readCertificateFile(path(config.identity.certificate));
  if (!Buffer.from(certificate.subjectKey).equals(Buffer.from(keyPair.publicKey)))
    throw problem('/identity/certificate', 'the certificate is for another key than identity.key');
  const hours = (certificate.notAfter - certificate.notBefore) / 3_600_000;
  if (
    (config.profile ?? 'baseline') === 'strict' &&
    hours > STRICT_MAX_CERTIFICATE_HOURS &&
    !weakened(config, 'strict.certificates')
  )
    throw problem(
      '/identity/certificate',
      `strict: the certificate lasts ${hours.toFixed(1)} h, over ${STRICT_MAX_CERTIFICATE_HOURS} h [strict.certificates]`,
    );
  return { keyPair, certificate };
}

/**
 * The git commit checked out where `file` is (its work tree's HEAD), read from `.git` without
 * running git; undefined outside a work tree or when HEAD cannot be read.
 */
export async function gitCommitOf(file: string): Promise<string | undefined> {
  let dir = dirname(resolve(file));
  for (;;) {
    let git = join(dir, '.git');
    // A linked work tree's .git is a file naming its git directory.
    const link = await readFile(git, 'utf8').catch(() => undefined);
    const gitdir = link === undefined ? undefined : /^gitdir: (.+)$/m.exec(link)?.[1];
    if (gitdir !== undefined) git = resolve(dir, gitdir.trim());
    const head = await readFile(join(git, 'HEAD'), 'utf8').catch(() => undefined);
    if (head !== undefined) {
      const ref = /^ref: (refs\/[^\s]+)\s*$/.exec(head);
      const hex = (s: string | undefined) => (s !== undefined && /^[0-9a-f]{40}$/.test(s) ? s : undefined);
      if (ref === null) return hex(head.trim());
      // A linked work tree keeps its refs in the common git directory.
      const common = (await readFile(join(git, 'commondir'), 'utf8').catch(() => undefined))?.trim();
      if (common) git = resolve(git, common);
      const loose = await readFile(join(git, ref[1]!), 'utf8').catch(() => undefined);
      if (loose !== undefined) return hex(loose.trim());
      const packed = await readFile(join(git, 'packed-refs'), 'utf8').catch(() => '');
      for (const line of packed.split('\n')) {
        const [sha, name] = line.split(' ');
        if (name === ref[1]) return hex(sha);
      }
      return undefined;
    }
    const up = dirname(dir);
    if (up === dir) return undefined;
    dir = up;
  }
}

function weakened(config: Config, rule: string): boolean {
  return (config.weakens ?? []).some((w) => w.rule === rule);
}

function pickDefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

function pickEndpoint(config: Config, file: string, name: string | undefined): EndpointConfig {
  if (name === undefined) {
    if (config.endpoints.length === 1) return config.endpoints[0]!;
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `${file} has ${config.endpoints.length} endpoints: name one (${config.endpoints.map((e) => e.name).join(', ')})`,
    );
  }
  const e = config.endpoints.find((x) => x.name === name);
  if (e === undefined)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `${file} has no endpoint ${JSON.stringify(name)}`);
  return e;
}

async function loadKey(
  k: KeySourceConfig,
  path: (p: string) => string,
  env: Readonly<Record<string, string | undefined>>,
  file: string,
): Promise<KeyPair> {
  if (k.keystore !== undefined) {
    const secret = await loadSecretKey(
      k.keystore.account,
      k.keystore.service ? { service: k.keystore.service } : {},
    );
    if (secret === undefined)
      throw createError(
        'SIPC_ERR_BAD_KEY',
        `${file}: the keystore has no key for account ${k.keystore.account}`,
      );
    return keyPairFromSecretKey(secret);
  }
  if (k.encryptedFile !== undefined) {
    let passphrase: Buffer;
    if (k.passphraseEnv !== undefined) {
      const v = env[k.passphraseEnv];
      if (v === undefined || v.length === 0)
        throw createError(
          'SIPC_ERR_BAD_KEY',
          `${file}: the environment variable ${k.passphraseEnv} (passphraseEnv) is not set`,
        );
      passphrase = Buffer.from(v, 'utf8');
    } else {
      // A secret file's checks (owner, no group/other access, no link, 4 KiB), as the CLI's.
      passphrase = await readPassphraseFile(path(k.passphraseFile!));
    }
    try {
      return keyPairFromSecretKey(await readEncryptedKeyFile(path(k.encryptedFile), passphrase));
    } finally {
      passphrase.fill(0);
    }
  }
  return readSecretKeyFile(path(k.file!));
}

/** The transport package for an address's scheme (optional peers: installed when used). */
async function transportFor(e: EndpointConfig): Promise<Transport> {
  const scheme = e.listen.slice(0, Math.max(0, e.listen.indexOf(':')));
  const missing = (pkg: string) => (err: unknown) => {
    throw createError('SIPC_ERR_INVALID_ADDRESS', `${e.listen} needs ${pkg}: npm install ${pkg}`, {
      cause: err,
    });
  };
  if (scheme === 'tcp') {
    const m = await import('@secure-ipc/transport-tcp').catch(missing('@secure-ipc/transport-tcp'));
    return m.tcpTransport({ allowRemote: e.allowRemote === true });
  }
  const windows = process.platform === 'win32';
  if (scheme === 'pipe' || (windows && scheme === 'local')) {
    const m = await import('@secure-ipc/transport-win').catch(missing('@secure-ipc/transport-win'));
    return m.pipeTransport(e.allowSids ? { allowedSids: e.allowSids } : {});
  }
  if (['unix', 'local', 'unix-abstract', 'systemd'].includes(scheme)) {
    const m = await import('@secure-ipc/transport-unix').catch(missing('@secure-ipc/transport-unix'));
    return m.unixTransport({
      ...(e.allowUids ? { allowedUids: e.allowUids } : {}),
      ...(e.allowGids ? { allowedGids: e.allowGids } : {}),
      ...(e.socketMode ? { socketMode: Number.parseInt(e.socketMode, 8) } : {}),
      ...(e.socketGroup !== undefined ? { socketGroup: e.socketGroup } : {}),
    });
  }
  throw createError(
    'SIPC_ERR_INVALID_ADDRESS',
    `${e.listen}: no transport for the scheme ${JSON.stringify(scheme)}`,
  );
}

const LEVELS = ['error', 'warn', 'info', 'debug'] as const;

/** A logger writing JSON lines on stderr from `level` (none: no logger). */
function loggerFor(level: 'none' | (typeof LEVELS)[number] | undefined): Logger | undefined {
  if (level === undefined || level === 'none') return undefined;
  const max = LEVELS.indexOf(level);
  const line = (lvl: (typeof LEVELS)[number]) => (fields: Record<string, unknown>, message: string) => {
    if (LEVELS.indexOf(lvl) <= max)
      process.stderr.write(`${JSON.stringify({ level: lvl, time: Date.now(), msg: message, ...fields })}\n`);
  };
  return { error: line('error'), warn: line('warn'), info: line('info'), debug: line('debug') };
}
