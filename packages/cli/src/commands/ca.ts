/**
 * `secure-ipc ca init --out FILE`: a new certificate authority key in FILE (0600); prints its
 * public key. `secure-ipc ca pubkey --key FILE`: prints the public key of an existing one.
 */
import {
  encodeKey,
  generateAuthority,
  isSecureIpcError,
  readAuthorityFile,
  writeAuthorityFile,
  zeroAuthority,
} from '@secure-ipc/core';
import { parse, required } from '../args.js';
import { CliError, type CliIo, describeError, ExitCode, println } from '../io.js';

/** Usage lines. */
export const usage = 'secure-ipc ca init --out FILE\n  secure-ipc ca pubkey --key FILE';

/** The subcommands (error lines name them: `secure-ipc ca pubkey: ...`). */
export const subcommands = ['init', 'pubkey'] as const;

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'pubkey') return pubkey(rest, io);
  if (sub !== 'init')
    throw new CliError(`unknown ca subcommand ${JSON.stringify(sub ?? '')} (expected init or pubkey)`);
  const { values } = parse(rest, { out: { type: 'string' } });
  const out = required(values.out, 'out');
  const authority = generateAuthority();
  try {
    await writeAuthorityFile(out, authority);
  } catch (err) {
    // An existing file is never overwritten: it may be someone's CA key.
    if (isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT')) {
      const exists = (err.cause as { code?: string } | undefined)?.code === 'EEXIST';
      throw new CliError(
        exists
          ? `cannot create ${out}: it must not exist yet`
          : `cannot create ${out}: ${describeError(err)}`,
        ExitCode.KeyOrFile,
      );
    }
    throw err;
  } finally {
    zeroAuthority(authority);
  }
  println(io.stderr, `wrote authority key to ${out} (mode 0600); trust it with --trust-ca <the key below>`);
  println(io.stdout, encodeKey(authority.publicKey));
  return ExitCode.Ok;
}

// The authority's public key, to give to verifiers (--trust-ca); the secret half is wiped at once.
async function pubkey(argv: string[], io: CliIo): Promise<number> {
  const { values } = parse(argv, { key: { type: 'string' } });
  const authority = await readAuthorityFile(required(values.key, 'key'));
  try {
    println(io.stdout, encodeKey(authority.publicKey));
  } finally {
    zeroAuthority(authority);
  }
  return ExitCode.Ok;
}
