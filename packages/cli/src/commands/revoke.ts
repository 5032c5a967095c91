/** `secure-ipc revoke --list FILE (--serial N | --pubkey KEY)`: add an entry to a revocation list file (created if absent). */
import { addToRevocationFile } from '@secure-ipc/core';
import { parse, positiveInt, publicKeyArg, required } from '../args.js';
import { CliError, type CliIo, describeError, ExitCode, println } from '../io.js';

/** Usage line. */
export const usage = 'secure-ipc revoke --list FILE (--serial N | --pubkey KEY)';

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values } = parse(argv, {
    list: { type: 'string' },
    serial: { type: 'string' },
    pubkey: { type: 'string' },
  });
  const list = required(values.list, 'list');
  if ((values.serial === undefined) === (values.pubkey === undefined))
    throw new CliError('give exactly one of --serial N or --pubkey KEY');
  const entry =
    values.serial !== undefined
      ? { serials: [positiveInt(values.serial, 'serial', 0)] }
      : { keys: [publicKeyArg(values.pubkey!, 'pubkey')] };
  // The file is replaced atomically, so a running `serve --revocations FILE` never reads half of it.
  const result = await addToRevocationFile(list, entry).catch((err: unknown) => {
    // An unreadable or malformed list is a file problem (exit 3), not a usage error.
    throw new CliError(`cannot update ${list}: ${describeError(err)}`, ExitCode.KeyOrFile);
  });
  println(
    io.stdout,
    `revoked ${values.serial !== undefined ? `serial ${values.serial}` : `key ${values.pubkey}`} in ${list} ` +
      `(${result.serials.size} serials, ${result.keys.size} keys)`,
  );
  return ExitCode.Ok;
}
