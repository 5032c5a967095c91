/**
 * How `serve` and `ping` decide whom to trust: pinned keys (`--allow` / `--server-key`), or
 * certificates from trusted authorities (`--cert FILE --trust-ca PUBKEY ...`), or both (pinned keys
 * are then accepted without a certificate). `--cert` is this side's certificate, sent in the
 * handshake payload; it must be for this side's own static key.
 */
import {
  type Certificate,
  certificateTrust,
  type KeyPair,
  type RevocationCheck,
  readCertificateFile,
  type Trust,
} from '@secure-ipc/core';
import { publicKeyArg } from './args.js';
import { CliError, ExitCode } from './io.js';

/** What the trust options resolve to. */
export interface ResolvedTrust {
  /** The channel's trust setting. */
  trust: Trust;
  /** Extra handshake payload (`{ cert }`) when this side has a certificate. */
  payload: Record<string, unknown> | undefined;
  /** This side's certificate, if any. */
  certificate: Certificate | undefined;
}

/** Build the trust setting from pinned keys, authorities and this side's certificate file. */
export async function resolveTrust(options: {
  keyPair: KeyPair;
  pinned: readonly string[];
  pinnedOption: string;
  certFile: string | undefined;
  authorities: readonly string[];
  revocations?: RevocationCheck;
}): Promise<ResolvedTrust> {
  const pinned = options.pinned.map((k) => publicKeyArg(k, options.pinnedOption));
  const authorities = options.authorities.map((k) => publicKeyArg(k, 'trust-ca'));
  if (pinned.length === 0 && authorities.length === 0)
    throw new CliError(
      `give --${options.pinnedOption} PUBKEY or --trust-ca PUBKEY (no peer is trusted by default)`,
    );
  if (options.revocations !== undefined && authorities.length === 0)
    throw new CliError('--revocations needs --trust-ca (revocation applies to certificate trust)');
  let certificate: Certificate | undefined;
  if (options.certFile !== undefined) {
    certificate = await readCertificateFile(options.certFile);
    // Public keys: a plain comparison is fine (nothing secret to leak through timing).
    if (!Buffer.from(certificate.subjectKey).equals(Buffer.from(options.keyPair.publicKey)))
      throw new CliError(`--cert ${options.certFile} is for another key than --key`, ExitCode.KeyOrFile);
  }
  const trust: Trust =
    authorities.length === 0
      ? { keys: pinned }
      : certificateTrust({ authorities, pinnedKeys: pinned, revocations: options.revocations });
  return { trust, payload: certificate ? { cert: certificate.bytes } : undefined, certificate };
}
