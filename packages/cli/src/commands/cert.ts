/**
 * `secure-ipc cert issue ...`: sign a certificate for a static public key with an authority key
 * file. `secure-ipc cert inspect FILE`: print a certificate as JSON with whether its signature
 * verifies under the issuer key it names (exit 1 when it does not). With `--json`, one JSON line each.
 */
import {
  certificateSignatureValid,
  certificateToJSON,
  issueCertificate,
  readAuthorityFile,
  readCertificateFile,
  writeCertificateFile,
  zeroAuthority,
} from '@secure-ipc/core';
import { jsonOption, parse, publicKeyArg, required } from '../args.js';
import { parseDuration } from '../duration.js';
import { CliError, type CliIo, ExitCode, printJSON, println } from '../io.js';

/** Usage lines. */
export const usage =
  'secure-ipc cert issue --ca FILE --pubkey KEY --name NAME [--role ROLE ...] [--ttl DURATION] --out FILE [--json]\n' +
  '  secure-ipc cert inspect FILE [--json]';

/** The subcommands (error lines name them: `secure-ipc cert issue: ...`). */
export const subcommands = ['issue', 'inspect'] as const;

async function issue(argv: string[], io: CliIo): Promise<number> {
  const { values } = parse(argv, {
    ca: { type: 'string' },
    pubkey: { type: 'string' },
    name: { type: 'string' },
    role: { type: 'string', multiple: true },
    ttl: { type: 'string' },
    out: { type: 'string' },
    ...jsonOption,
  });
  const caFile = required(values.ca, 'ca');
  const subjectKey = publicKeyArg(required(values.pubkey, 'pubkey'), 'pubkey');
  const name = required(values.name, 'name');
  const out = required(values.out, 'out');
  // Short-lived by default: 24 hours.
  const ttlMs = parseDuration(values.ttl ?? '24h', 'ttl');
  const authority = await readAuthorityFile(caFile);
  try {
    const cert = issueCertificate(authority, { subjectKey, name, roles: values.role ?? [], ttlMs });
    await writeCertificateFile(out, cert);
    if (values.json === true)
      printJSON(io.stdout, { certificateFile: out, certificate: certificateToJSON(cert) });
    else {
      println(io.stderr, `wrote certificate serial ${cert.serial} for ${name} to ${out}`);
      println(io.stdout, JSON.stringify(certificateToJSON(cert), null, 2));
    }
    return ExitCode.Ok;
  } finally {
    zeroAuthority(authority);
  }
}

async function inspect(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, jsonOption, true);
  if (positionals.length !== 1) throw new CliError('cert inspect takes exactly one FILE');
  const cert = await readCertificateFile(positionals[0]!);
  const signatureValid = certificateSignatureValid(cert);
  const now = Date.now();
  const inspected = {
    ...certificateToJSON(cert),
    // Valid under the issuer key named in the certificate; whether that issuer is trusted is
    // the verifier's --trust-ca decision.
    signatureValid,
    validNow: now >= cert.notBefore && now < cert.notAfter,
  };
  // The same object: indented for a person, one line with --json.
  println(io.stdout, JSON.stringify(inspected, null, values.json === true ? undefined : 2));
  return signatureValid ? ExitCode.Ok : ExitCode.Failed;
}

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'issue') return issue(rest, io);
  if (sub === 'inspect') return inspect(rest, io);
  throw new CliError(`unknown cert subcommand ${JSON.stringify(sub ?? '')} (expected issue or inspect)`);
}
