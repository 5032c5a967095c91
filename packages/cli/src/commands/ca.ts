/** `secure-ipc ca init --out FILE`: a new certificate authority key in FILE (0600); prints its public key. */
import {
  encodeKey,
  generateAuthority,
  isSecureIpcError,
  writeAuthorityFile,
  zeroAuthority,
} from '@secure-ipc/core';
import { parse, required } from '../args.js';
import { CliError, type CliIo, describeError, ExitCode, println } from '../io.js';

/** Usage line. */
export const usage = 'secure-ipc ca init --out FILE';

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'init')
    throw new CliError(`unknown ca subcommand ${JSON.stringify(sub ?? '')} (expected init)`);
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
