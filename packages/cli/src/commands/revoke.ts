/** `secure-ipc revoke --list FILE (--serial N | --pubkey KEY)`: add an entry to a revocation list file (created if absent). */
import { addToRevocationFile } from '@secure-ipc/core';
import { jsonOption, parse, positiveInt, publicKeyArg, required } from '../args.js';
import { CliError, type CliIo, ExitCode, reporter } from '../io.js';

/** Usage line. */
export const usage = 'secure-ipc revoke --list FILE (--serial N | --pubkey KEY) [--json]';

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values } = parse(argv, {
    list: { type: 'string' },
    serial: { type: 'string' },
    pubkey: { type: 'string' },
    ...jsonOption,
  });
  const list = required(values.list, 'list');
  if ((values.serial === undefined) === (values.pubkey === undefined))
    throw new CliError('give exactly one of --serial N or --pubkey KEY');
  const serial = values.serial === undefined ? undefined : positiveInt(values.serial, 'serial', 0);
  const entry =
    serial !== undefined ? { serials: [serial] } : { keys: [publicKeyArg(values.pubkey!, 'pubkey')] };
  // The file is replaced atomically, so a running `serve --revocations FILE` never reads half of it.
  const result = await addToRevocationFile(list, entry).catch((err: unknown) => {
    // An unreadable or malformed list is a file problem (exit 3), not a usage error.
    throw new CliError(`cannot update ${list}`, ExitCode.KeyOrFile, { cause: err });
  });
  reporter(io, values.json)(
    {
      list,
      revoked: serial !== undefined ? { serial } : { publicKey: values.pubkey!.trim() },
      serials: result.serials.size,
      keys: result.keys.size,
    },
    `revoked ${values.serial !== undefined ? `serial ${values.serial}` : `key ${values.pubkey}`} in ${list} ` +
      `(${result.serials.size} serials, ${result.keys.size} keys)`,
  );
  return ExitCode.Ok;
}
