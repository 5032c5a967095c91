/**
 * `secure-ipc serve --listen ADDRESS --key FILE --allow PUBKEY [--allow PUBKEY ...] [--app-id ID] [--allow-remote]`,
 * or with certificates `--cert FILE --trust-ca PUBKEY [--trust-ca PUBKEY ...] [--revocations FILE]` in place of
 * `--allow`: serves `$ping` (and nothing else: the policy denies every other method) to any authenticated
 * peer, `$stats` to the keys of `--grant-stats`, until SIGINT or SIGTERM; prints `listening ADDRESS` on stdout once ready, then shuts down cleanly
 * (the socket file is removed). The revocation list file is watched: a revoked peer's channel closes.
 * With `--audit DIR --audit-origin ORIGIN`, everything served is recorded in that tamper-evident
 * log (docs/audit.md), its anchor printed once, and the witness built-ins granted to the keys of
 * `--grant-witness`. With `--json`, every event is one JSON line on stdout instead (package README,
 * "JSON output").
 */
import {
  type AuditLog,
  auditListener,
  createPolicy,
  createServer,
  enforceRevocation,
  type KeyPair,
  type Listener,
  openAuditLog,
  type PeerInfo,
  type PolicyOptions,
  type SecureChannel,
  type SecureListener,
  secureListen,
  type Trust,
  type WatchedRevocationList,
  watchRevocationList,
  zeroKeyPair,
} from '@secure-ipc/core';
import { jsonOption, parse, positiveInt, publicKeyArg, required } from '../args.js';
import { resolveTrust } from '../identity-options.js';
import { CliError, type CliIo, describeError, ExitCode, errorJSON, type Report, reporter } from '../io.js';
import { describePeer, osFactsJSON, peerJSON } from '../peer-line.js';
import { allowUnmarkedOption, loadKeyOption } from '../secret-key-input.js';
import { credentialOptionsFrom, peerCredentialOptions, transportFor } from '../transports.js';
import { unixSocketOptions } from '../unix-options.js';
import { guarded, loadAuditHashKey } from './audit.js';

/** Usage line. */
export const usage =
  'secure-ipc serve --listen ADDRESS --key FILE (--allow PUBKEY ... | --cert FILE --trust-ca PUBKEY ... [--revocations FILE]) [--app-id ID] [--allow-remote] [--allow-unmarked-key] [--allow-uid UID ...] [--allow-gid GID ...] [--socket-mode 0600|0660|0666] [--socket-group GROUP] [--allow-sid SID|NAME ...] [--grant-stats PUBKEY ...] [--audit DIR --audit-origin ORIGIN [--audit-hash-key FILE] [--audit-required] [--audit-checkpoint-every N] [--grant-witness PUBKEY ...]] [--json]';

/** Resolves on the first of SIGINT / SIGTERM (or when `signal` aborts, for tests). */
export function untilStopped(signal?: AbortSignal): Promise<string> {
  return new Promise((resolve) => {
    const stop = (why: string) => {
      process.off('SIGINT', onInt);
      process.off('SIGTERM', onTerm);
      resolve(why);
    };
    const onInt = () => stop('SIGINT');
    const onTerm = () => stop('SIGTERM');
    process.once('SIGINT', onInt);
    process.once('SIGTERM', onTerm);
    signal?.addEventListener('abort', () => stop('abort'), { once: true });
  });
}

/**
 * Report every connection: a channel when it opens (who, with which roles) and when it closes
 * (why), a connection the transport or the handshake refused.
 */
function reportConnections(listener: Listener, secure: SecureListener, report: Report): void {
  const rejected = (err: Error, peer: PeerInfo | undefined) =>
    report(
      { event: 'rejected', ...(peer ? { peer: osFactsJSON(peer) } : {}), ...errorJSON(err, 'serve') },
      `rejected a connection: ${describeError(err)}`,
      'stderr',
    );
  listener.on('reject', rejected);
  secure.on('handshakeError', rejected);
  secure.on('channel', (ch: SecureChannel) => {
    const who = ch.fingerprint;
    report(
      { event: 'connected', peer: peerJSON(ch.remoteStaticKey, ch.peer, ch.roles) },
      `peer ${describePeer(ch.remoteStaticKey, ch.peer)} connected`,
      'stderr',
    );
    ch.once('close', (err, info) => {
      const { reason } = info;
      report(
        { event: 'closed', peer: { fingerprint: who }, reason, ...(err ? errorJSON(err, 'serve') : {}) },
        `peer ${who} closed (${reason}${err ? `: ${describeError(err)}` : ''})`,
        'stderr',
      );
    });
  });
}

/** The options of `--audit` (package README, "serve --audit"). */
export const auditOptions = {
  audit: { type: 'string' },
  'audit-origin': { type: 'string' },
  'audit-hash-key': { type: 'string' },
  'audit-required': { type: 'boolean' },
  'audit-checkpoint-every': { type: 'string' },
  'grant-witness': { type: 'string', multiple: true },
} as const;

/** What `auditOptions` parse to. */
export type AuditValues = ReturnType<typeof parse<typeof auditOptions>>['values'];

/** `--audit`'s settings, checked before any file is read; undefined without `--audit`. */
export function auditSettings(values: AuditValues) {
  if (values.audit === undefined) {
    const stray = Object.keys(auditOptions).find((k) => values[k as keyof AuditValues] !== undefined);
    if (stray !== undefined) throw new CliError(`--${stray} needs --audit DIR`);
    return undefined;
  }
  return {
    dir: values.audit,
    origin: required(values['audit-origin'], 'audit-origin'),
    hashKeyFile: values['audit-hash-key'],
    required: values['audit-required'] === true,
    checkpointEvery: positiveInt(values['audit-checkpoint-every'], 'audit-checkpoint-every', 256),
    witnessKeys: (values['grant-witness'] ?? []).map((k) => publicKeyArg(k, 'grant-witness')),
  };
}

/** Say which log records what was served, and the anchor to verify it by (once, at the start). */
export function reportAudit(report: Report, dir: string, log: AuditLog): void {
  report(
    { event: 'audit', dir, origin: log.origin, anchor: log.anchorVerifierKey, size: log.size },
    `audit ${log.origin} anchor ${log.anchorVerifierKey}`,
  );
}

/**
 * Deny by default: only `$ping` (allowed to any authenticated peer) is served, `$stats` to the
 * keys of --grant-stats and the witness built-ins to those of --grant-witness, each granted by its
 * exact name (docs/observability.md, docs/audit.md "Witnesses"); a key in both gets both roles.
 */
function grants(
  statsKeys: readonly Uint8Array[],
  witnessKeys: readonly Uint8Array[],
): PolicyOptions | undefined {
  if (statsKeys.length === 0 && witnessKeys.length === 0) return undefined;
  return {
    roles: { stats: { call: ['$stats'] }, witness: { call: ['$audit.checkpoint', '$audit.cosign'] } },
    peers: [
      ...statsKeys.map((key) => ({ key, roles: ['stats'] })),
      ...witnessKeys.map((key) => ({ key, roles: ['witness'] })),
    ],
  };
}

/**
 * parseArgs specs of a serving command (`serve`, `bus serve`): address, key, trust, revocations,
 * app id, `--audit`, the OS identity and socket file options.
 */
export const servingOptions = {
  listen: { type: 'string' },
  key: { type: 'string' },
  ...allowUnmarkedOption,
  allow: { type: 'string', multiple: true },
  cert: { type: 'string' },
  'trust-ca': { type: 'string', multiple: true },
  revocations: { type: 'string' },
  'app-id': { type: 'string' },
  'allow-remote': { type: 'boolean' },
  ...auditOptions,
  ...peerCredentialOptions,
  ...unixSocketOptions,
} as const;

/** Run the command; resolves with the exit code once stopped. */
export async function run(argv: string[], io: CliIo, stop?: AbortSignal): Promise<number> {
  const { values } = parse(argv, {
    ...servingOptions,
    'grant-stats': { type: 'string', multiple: true },
    ...jsonOption,
  });
  const report = reporter(io, values.json);
  const address = required(values.listen, 'listen');
  const keyFile = required(values.key, 'key');
  if ((values['trust-ca'] ?? []).length === 0 && values.cert !== undefined)
    throw new CliError('--cert needs --trust-ca (the authorities whose certificates clients present)');
  const transport = transportFor(address, {
    allowRemote: values['allow-remote'] === true,
    ...credentialOptionsFrom(values),
  });
  // Checked before the key file is read, as every usage error.
  const statsKeys = (values['grant-stats'] ?? []).map((k) => publicKeyArg(k, 'grant-stats'));
  const auditing = auditSettings(values);
  const setup = await serverSetup(keyFile, values, auditing, io);
  const { keyPair, trust, payload, revocations, log, hashKey } = setup;
  try {
    const listener = await transport.listen(address);
    const secure = secureListen(listener, {
      keyPair,
      trust,
      ...(payload ? { payload } : {}),
      ...(values['app-id'] !== undefined ? { appId: values['app-id'] } : {}),
    });
    let enforcer: ReturnType<typeof enforceRevocation> | undefined;
    if (revocations) {
      enforcer = enforceRevocation({ listener: secure, revocations });
      enforcer.on('decision', (d) =>
        report(
          { event: 'policy', action: 'closed', peer: { fingerprint: d.who }, reason: d.what },
          `policy: closed the channel of ${d.who} (${d.what})`,
          'stderr',
        ),
      );
      revocations.on('reloadError', (err) =>
        report(
          { event: 'revocationsNotReloaded', ...errorJSON(err, 'serve') },
          `revocation list not reloaded: ${describeError(err)}`,
          'stderr',
        ),
      );
    }
    const policy = grants(statsKeys, auditing?.witnessKeys ?? []);
    const server = createServer({
      ...(policy ? { policy: createPolicy(policy) } : {}),
      ...(log
        ? { audit: { log, ...(hashKey ? { hashKey } : {}), required: auditing?.required === true } }
        : {}),
    });
    // The records of what only the listener sees (failed handshakes, revocations), as serve() makes.
    auditListener(server, secure, enforcer);
    // The first append that failed (reported once; with --audit-required the server now refuses).
    // A misbehaving peer's errors come here too: dropped, as without a listener.
    if (log)
      server.on('error', (err) => {
        if (err === server.audit?.failure)
          report(
            { event: 'auditFailed', ...errorJSON(err, 'serve') },
            `the audit log failed: ${describeError(err)}`,
            'stderr',
          );
      });
    server.listen(secure);
    reportConnections(listener, secure, report);
    // The address as bound: for tcp://127.0.0.1:0, with the port the OS picked.
    report({ event: 'listening', address: listener.address }, `listening ${listener.address}`);
    if (log) reportAudit(report, auditing!.dir, log);
    // A fatal listener error (the transport can no longer accept) stops the server with exit 4.
    const failed = new AbortController();
    secure.on('error', (err) => {
      report(
        { event: 'listenerFailed', ...errorJSON(err, 'serve') },
        `the listener failed: ${describeError(err)}`,
        'stderr',
      );
      failed.abort();
    });
    const why = await untilStopped(stop ? AbortSignal.any([stop, failed.signal]) : failed.signal);
    report({ event: 'shutdown', signal: why }, `${why}: shutting down`, 'stderr');
    await server.close();
    await listener.close();
    return failed.signal.aborted ? ExitCode.Address : ExitCode.Ok;
  } finally {
    await setup.close();
  }
}

/** What a serving command sets up before it listens (`serve`, `bus serve`). */
export interface ServerSetup {
  readonly keyPair: KeyPair;
  readonly trust: Trust;
  /** The handshake payload (`{ cert }`) with `--cert`. */
  readonly payload: Record<string, unknown> | undefined;
  readonly revocations: WatchedRevocationList | undefined;
  readonly log: AuditLog | undefined;
  readonly hashKey: Uint8Array | undefined;
  /** Stop watching, close the log (after the server: its last records, then the final checkpoint), wipe the keys. */
  close(): Promise<void>;
}

/**
 * The key of `--key`, the trust of `--allow` / `--cert --trust-ca`, the watched `--revocations`
 * list and the `--audit` log: what `serve` and `bus serve` read, in that order; everything read is
 * released if a later step fails.
 */
export async function serverSetup(
  keyFile: string,
  values: {
    allow?: string[] | undefined;
    cert?: string | undefined;
    'trust-ca'?: string[] | undefined;
    revocations?: string | undefined;
    'allow-unmarked-key'?: boolean | undefined;
  },
  auditing: ReturnType<typeof auditSettings>,
  io: CliIo,
): Promise<ServerSetup> {
  const keyPair = await loadKeyOption(keyFile, io, values['allow-unmarked-key'] === true);
  let revocations: WatchedRevocationList | undefined;
  let log: AuditLog | undefined;
  let hashKey: Uint8Array | undefined;
  const close = async () => {
    revocations?.close();
    await log?.close();
    hashKey?.fill(0);
    zeroKeyPair(keyPair);
  };
  try {
    if (values.revocations !== undefined) revocations = await watchRevocationList(values.revocations);
    if (auditing?.hashKeyFile !== undefined) hashKey = await loadAuditHashKey(auditing.hashKeyFile);
    const { trust, payload } = await resolveTrust({
      keyPair,
      pinned: values.allow ?? [],
      pinnedOption: 'allow',
      certFile: values.cert,
      authorities: values['trust-ca'] ?? [],
      ...(revocations ? { revocations } : {}),
    });
    if (auditing !== undefined) {
      const { dir, origin, checkpointEvery } = auditing;
      log = await guarded(dir, () => openAuditLog({ dir, origin, checkpointEvery }));
    }
    return { keyPair, trust, payload, revocations, log, hashKey, close };
  } catch (err) {
    await close();
    throw err;
  }
}
