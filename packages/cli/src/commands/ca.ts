/**
 * `secure-ipc ca init --out FILE`: a new certificate authority key in FILE (0600); prints its
 * public key. `secure-ipc ca pubkey --key FILE`: prints the public key of an existing one. With
 * `--json`, one JSON line (package README, "JSON output"). `ca serve`, `ca token`, `ca enrol`
 * and `ca renew` are the enrolment service and its clients (docs/identity.md, "Enrolment").
 */
import {
  encodeKey,
  generateAuthority,
  readAuthorityFile,
  writeAuthorityFile,
  zeroAuthority,
} from '@secure-ipc/core';
import { jsonOption, parse, required } from '../args.js';
import { CliError, type CliIo, createSecretFile, ExitCode, println, reporter } from '../io.js';
import { enrol, renew, serveCa, token } from './ca-enrolment.js';

/** Usage lines. */
export const usage = [
  'secure-ipc ca init --out FILE [--json]',
  '  secure-ipc ca pubkey --key FILE [--json]',
  '  secure-ipc ca serve --ca FILE --key FILE --listen ADDRESS [--tokens FILE] [--enrol-uid UID=NAME[:ROLE,...] ...] [--enrol-sid SID=NAME[:ROLE,...] ...] [--enrol-exe [uid:UID,|sid:SID,]PATH[@SHA256]=NAME[:ROLE,...] ...] [--cert-ttl DURATION] [--authority-expires DATE] [--warn-before DURATION] [--revocations FILE] [--json]',
  '  secure-ipc ca token --tokens FILE --name NAME [--role ROLE ...] [--ttl DURATION] [--json]',
  '  secure-ipc ca enrol --address ADDRESS --server-key PUBKEY --authority PUBKEY --key FILE --out FILE [--token-file FILE] [--json]',
  '  secure-ipc ca renew --address ADDRESS --server-key PUBKEY --authority PUBKEY --key FILE --cert FILE [--json]',
].join('\n');

/** The subcommands (error lines name them: `secure-ipc ca pubkey: ...`). */
export const subcommands = ['init', 'pubkey', 'serve', 'token', 'enrol', 'renew'] as const;

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo, stop?: AbortSignal): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'pubkey') return pubkey(rest, io);
  if (sub === 'serve') return serveCa(rest, io, stop);
  if (sub === 'token') return token(rest, io);
  if (sub === 'enrol') return enrol(rest, io);
  if (sub === 'renew') return renew(rest, io);
  if (sub !== 'init')
    throw new CliError(
      `unknown ca subcommand ${JSON.stringify(sub ?? '')} (expected init, pubkey, serve, token, enrol or renew)`,
    );
  const { values } = parse(rest, { out: { type: 'string' }, ...jsonOption });
  const out = required(values.out, 'out');
  const authority = generateAuthority();
  try {
    // An existing file is never overwritten: it may be someone's CA key.
    await createSecretFile(out, () => writeAuthorityFile(out, authority));
  } finally {
    zeroAuthority(authority);
  }
  const publicKey = encodeKey(authority.publicKey);
  if (values.json !== true)
    println(io.stderr, `wrote authority key to ${out} (mode 0600); trust it with --trust-ca <the key below>`);
  reporter(io, values.json)({ authorityKeyFile: out, publicKey }, publicKey);
  return ExitCode.Ok;
}

// The authority's public key, to give to verifiers (--trust-ca); the secret half is wiped at once.
async function pubkey(argv: string[], io: CliIo): Promise<number> {
  const { values } = parse(argv, { key: { type: 'string' }, ...jsonOption });
  const authority = await readAuthorityFile(required(values.key, 'key'));
  try {
    const publicKey = encodeKey(authority.publicKey);
    reporter(io, values.json)({ publicKey }, publicKey);
  } finally {
    zeroAuthority(authority);
  }
  return ExitCode.Ok;
}
