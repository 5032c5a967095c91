/**
 * The enrolment service and its clients on the command line (docs/identity.md, "Enrolment";
 * package README, "ca serve"): `ca serve` issues short-lived certificates to peers proven by a
 * one-time token (`ca token`) or by their OS identity and/or executable, and renews them; `ca enrol` and `ca renew`
 * get one into a certificate file (renewal replaces it atomically).
 */
import { readFile } from 'node:fs/promises';
import {
  createEnrolmentToken,
  type EnrolmentRule,
  encodeKey,
  enrolCertificate,
  keyFingerprint,
  readAuthorityFile,
  readCertificateFile,
  renewCertificate,
  serveEnrolment,
  type WatchedRevocationList,
  watchRevocationList,
  writeCertificateFile,
  zeroAuthority,
  zeroKeyPair,
} from '@secure-ipc/core';
import { jsonOption, parse, publicKeyArg, required } from '../args.js';
import { parseDuration } from '../duration.js';
import { CliError, type CliIo, ExitCode, printable, reporter } from '../io.js';
import { loadKeyOption } from '../secret-key-input.js';
import { credentialOptionsFrom, peerCredentialOptions, transportFor } from '../transports.js';
import { unixSocketOptions } from '../unix-options.js';
import { untilStopped } from './serve.js';

const DAY_MS = 86_400_000;

/** `NAME[:ROLE,...]` of a rule option; undefined without a name. */
function grantArg(rest: string): { name: string; roles: string[] } | undefined {
  const colon = rest.indexOf(':');
  const name = colon < 0 ? rest : rest.slice(0, colon);
  const roles =
    colon < 0
      ? []
      : rest
          .slice(colon + 1)
          .split(',')
          .filter((r) => r !== '');
  return name === '' ? undefined : { name, roles };
}

/** `--enrol-uid 1000=sync-helper:helper,sync` → a rule for `uid:1000`. */
function ruleArg(text: string, kind: 'uid' | 'sid', option: string): EnrolmentRule {
  const eq = text.indexOf('=');
  const who = eq < 0 ? '' : text.slice(0, eq);
  const grant = grantArg(eq < 0 ? '' : text.slice(eq + 1));
  const ok = kind === 'uid' ? /^\d{1,10}$/.test(who) : /^S-1-[0-9-]{1,180}$/.test(who);
  if (!ok || grant === undefined)
    throw new CliError(
      `--${option} is ${kind === 'uid' ? 'UID' : 'SID'}=NAME[:ROLE,...], not ${JSON.stringify(text)}`,
    );
  return { osIdentity: `${kind}:${who}`, ...grant };
}

// `uid:1000,` or `sid:S-1-5-…,` before the path: the rule also needs that OS identity.
const EXE_IDENTITY = /^(uid:\d{1,10}|sid:S-1-[0-9-]{1,180}),/;
// An absolute path: `/…` (Unix), `C:\…` or `\\…` (Windows), as the OS reports a running image.
const ABSOLUTE = /^(\/|[A-Za-z]:\\|\\\\)/;

/**
 * `--enrol-exe [uid:UID,|sid:SID,]PATH[@SHA256]=NAME[:ROLE,...]`, or `@SHA256=…` for the hash
 * alone: a rule on the peer's executable (and its OS identity when given). The grant follows the
 * last `=`, so a path may hold `=` (and `@` not followed by hex digits alone); a name may not hold `=`.
 */
function exeRuleArg(text: string): EnrolmentRule {
  const eq = text.lastIndexOf('=');
  const grant = grantArg(eq < 0 ? '' : text.slice(eq + 1));
  let who = eq < 0 ? '' : text.slice(0, eq);
  const identity = EXE_IDENTITY.exec(who)?.[1];
  if (identity !== undefined) who = who.slice(identity.length + 1);
  // Hex after the last `@` is the hash (a mistyped one is an error, not part of the path).
  const hash = /@([0-9a-fA-F]*)$/.exec(who)?.[1];
  const path = hash === undefined ? who : who.slice(0, -hash.length - 1);
  const badHash = hash !== undefined && hash.length !== 64;
  if (
    grant === undefined ||
    badHash ||
    (path === '' && hash === undefined) ||
    (path !== '' && !ABSOLUTE.test(path))
  )
    throw new CliError(
      `--enrol-exe is [uid:UID,|sid:SID,]PATH[@SHA256]=NAME[:ROLE,...] with an absolute PATH or 64 hex digits of SHA256, not ${JSON.stringify(text)}`,
    );
  return {
    ...(identity === undefined ? {} : { osIdentity: identity }),
    executable: { ...(path === '' ? {} : { path }), ...(hash === undefined ? {} : { sha256: hash }) },
    ...grant,
  };
}

function dateArg(text: string | undefined, option: string): number | undefined {
  if (text === undefined) return undefined;
  const t = /^\d{4}-\d{2}-\d{2}(T[0-9:.]+(Z|[+-]\d{2}:\d{2})?)?$/.test(text) ? Date.parse(text) : Number.NaN;
  if (!Number.isSafeInteger(t))
    throw new CliError(`--${option} is a date like 2027-06-30 or 2027-06-30T12:00:00Z`);
  return t;
}

const iso = (ms: number) => new Date(ms).toISOString();

/** `ca serve`: runs until SIGINT or SIGTERM. */
export async function serveCa(argv: string[], io: CliIo, stop?: AbortSignal): Promise<number> {
  const { values } = parse(argv, {
    ca: { type: 'string' },
    key: { type: 'string' },
    listen: { type: 'string' },
    tokens: { type: 'string' },
    'enrol-uid': { type: 'string', multiple: true },
    'enrol-sid': { type: 'string', multiple: true },
    'enrol-exe': { type: 'string', multiple: true },
    'cert-ttl': { type: 'string' },
    'authority-expires': { type: 'string' },
    'warn-before': { type: 'string' },
    revocations: { type: 'string' },
    'allow-remote': { type: 'boolean' },
    ...peerCredentialOptions,
    ...unixSocketOptions,
    ...jsonOption,
  });
  const report = reporter(io, values.json);
  const address = required(values.listen, 'listen');
  const caFile = required(values.ca, 'ca');
  const keyFile = required(values.key, 'key');
  const rules = [
    ...(values['enrol-uid'] ?? []).map((r) => ruleArg(r, 'uid', 'enrol-uid')),
    ...(values['enrol-sid'] ?? []).map((r) => ruleArg(r, 'sid', 'enrol-sid')),
    ...(values['enrol-exe'] ?? []).map(exeRuleArg),
  ];
  if (values.tokens === undefined && rules.length === 0)
    throw new CliError(
      'ca serve needs --tokens FILE or an --enrol-uid / --enrol-sid / --enrol-exe rule: nobody could enrol',
    );
  const ttlMs = values['cert-ttl'] === undefined ? DAY_MS : parseDuration(values['cert-ttl'], 'cert-ttl');
  const authorityNotAfter = dateArg(values['authority-expires'], 'authority-expires');
  const warnMs =
    values['warn-before'] === undefined ? 30 * DAY_MS : parseDuration(values['warn-before'], 'warn-before');
  const transport = transportFor(address, {
    allowRemote: values['allow-remote'] === true,
    ...credentialOptionsFrom(values),
  });
  const keyPair = await loadKeyOption(keyFile, io, false);
  const authority = await readAuthorityFile(caFile);
  let revocations: WatchedRevocationList | undefined;
  try {
    if (values.revocations !== undefined) revocations = await watchRevocationList(values.revocations);
    const { server, service } = await serveEnrolment({
      transport,
      address,
      keyPair,
      authority,
      ttlMs,
      ...(values.tokens !== undefined ? { tokens: values.tokens } : {}),
      rules,
      ...(revocations ? { revocations } : {}),
      ...(authorityNotAfter !== undefined ? { authorityNotAfter } : {}),
      authorityWarningMs: warnMs,
    });
    service.on('issued', ({ via, peer, certificate: c }) =>
      report(
        {
          event: 'issued',
          via,
          peer,
          serial: c.serial,
          name: c.name,
          roles: c.roles,
          notAfter: iso(c.notAfter),
        },
        `issued serial ${c.serial} to ${printable(c.name)} (${via}) for ${peer} until ${iso(c.notAfter)}`,
        'stderr',
      ),
    );
    service.on('refused', ({ method, peer, reason }) =>
      report(
        { event: 'refused', method, peer, reason },
        `refused ${method} from ${peer}: ${printable(reason)}`,
        'stderr',
      ),
    );
    // The authority's end, warned at start and daily while inside the window (Nebula's users'
    // top complaint is a CA that expired silently).
    let warnedAt = 0;
    service.on('authorityExpiring', (s) => {
      if (Date.now() - warnedAt < DAY_MS) return;
      warnedAt = Date.now();
      const days = ((s.remainingMs ?? 0) / DAY_MS).toFixed(1);
      report(
        { event: 'authorityExpiring', notAfter: iso(s.notAfter ?? 0), remainingMs: s.remainingMs },
        (s.remainingMs ?? 0) > 0
          ? `warning: the authority ends at ${iso(s.notAfter ?? 0)} (in ${days} days): rotate it (docs/identity.md)`
          : `warning: the authority ended at ${iso(s.notAfter ?? 0)}: nothing is issued any more`,
        'stderr',
      );
    });
    service.checkAuthority();
    const daily = setInterval(() => service.checkAuthority(), DAY_MS);
    daily.unref();
    report(
      {
        event: 'listening',
        address: server.listener.address,
        serverKey: encodeKey(keyPair.publicKey),
        authority: encodeKey(authority.publicKey),
        certTtlMs: ttlMs,
      },
      `listening ${server.listener.address} server-key ${encodeKey(keyPair.publicKey)} authority ${encodeKey(authority.publicKey)}`,
    );
    const why = await untilStopped(stop);
    clearInterval(daily);
    report({ event: 'shutdown', signal: why }, `${why}: shutting down`, 'stderr');
    await server.close();
    return ExitCode.Ok;
  } finally {
    revocations?.close();
    zeroAuthority(authority);
    zeroKeyPair(keyPair);
  }
}

/** `ca token`: prints a one-time token (stdout), stores only its hash. */
export async function token(argv: string[], io: CliIo): Promise<number> {
  const { values } = parse(argv, {
    tokens: { type: 'string' },
    name: { type: 'string' },
    role: { type: 'string', multiple: true },
    ttl: { type: 'string' },
    ...jsonOption,
  });
  const file = required(values.tokens, 'tokens');
  const name = required(values.name, 'name');
  const ttlMs = values.ttl === undefined ? 3_600_000 : parseDuration(values.ttl, 'ttl');
  const t = await createEnrolmentToken(file, { name, roles: values.role ?? [], ttlMs });
  reporter(io, values.json)(
    { token: t.token, name, roles: values.role ?? [], expiresAt: iso(t.expiresAt) },
    t.token,
  );
  return ExitCode.Ok;
}

/** The options `ca enrol` and `ca renew` share: where the service is and whom to expect. */
const clientOptions = {
  address: { type: 'string' },
  'server-key': { type: 'string' },
  authority: { type: 'string' },
  key: { type: 'string' },
  ...peerCredentialOptions,
  ...jsonOption,
} as const;

async function clientOf(
  values: {
    address?: string | undefined;
    'server-key'?: string | undefined;
    authority?: string | undefined;
    key?: string | undefined;
  },
  io: CliIo,
) {
  const address = required(values.address, 'address');
  const serverKey = publicKeyArg(required(values['server-key'], 'server-key'), 'server-key');
  const authority = publicKeyArg(required(values.authority, 'authority'), 'authority');
  const keyFile = required(values.key, 'key');
  const transport = transportFor(address);
  const keyPair = await loadKeyOption(keyFile, io, false);
  return { transport, address, keyPair, trust: { keys: [serverKey] }, authority };
}

function certReport(
  io: CliIo,
  json: boolean | undefined,
  out: string,
  c: { serial: number; name: string; roles: readonly string[]; notAfter: number; subjectKey: Uint8Array },
) {
  reporter(io, json)(
    {
      cert: out,
      serial: c.serial,
      name: c.name,
      roles: c.roles,
      notAfter: iso(c.notAfter),
      subject: keyFingerprint(c.subjectKey),
    },
    `wrote ${out}: serial ${c.serial}, ${printable(c.name)}, until ${iso(c.notAfter)}`,
  );
}

/** `ca enrol`: a certificate for `--key`, by `--token-file` or by this process's OS identity. */
export async function enrol(argv: string[], io: CliIo): Promise<number> {
  const { values } = parse(argv, {
    ...clientOptions,
    out: { type: 'string' },
    'token-file': { type: 'string' },
  });
  const out = required(values.out, 'out');
  let tokenText: string | undefined;
  if (values['token-file'] !== undefined) {
    const f = values['token-file'];
    tokenText = (
      await readFile(f, 'utf8').catch((err: Error) => {
        throw new CliError(`cannot read ${f}: ${err.message}`, ExitCode.KeyOrFile);
      })
    ).trim();
  }
  const options = await clientOf(values, io);
  try {
    const cert = await enrolCertificate({
      ...options,
      ...(tokenText !== undefined ? { token: tokenText } : {}),
    });
    await writeCertificateFile(out, cert);
    certReport(io, values.json, out, cert);
    return ExitCode.Ok;
  } finally {
    zeroKeyPair(options.keyPair);
  }
}

/** `ca renew`: a new certificate for the one in `--cert`, written over it atomically. */
export async function renew(argv: string[], io: CliIo): Promise<number> {
  const { values } = parse(argv, { ...clientOptions, cert: { type: 'string' } });
  const file = required(values.cert, 'cert');
  const current = await readCertificateFile(file);
  const options = await clientOf(values, io);
  try {
    const cert = await renewCertificate(options, current);
    await writeCertificateFile(file, cert);
    certReport(io, values.json, file, cert);
    return ExitCode.Ok;
  } finally {
    zeroKeyPair(options.keyPair);
  }
}
