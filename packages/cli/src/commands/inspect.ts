/**
 * `secure-ipc inspect ADDRESS --key FILE (--server-key PUBKEY | --cert FILE --trust-ca PUBKEY ...)
 * [--json]`: one `$stats` request over the channel `call` opens (same options, same code); prints
 * the server's live channels as a table, or with `--json` the answer itself on one line (package
 * README, "inspect and top"). A server whose policy does not grant `$stats` exits 6.
 */
import { jsonOption, parse } from '../args.js';
import { clientOptions, withClient } from '../client-options.js';
import { CliError, type CliIo, ExitCode, printJSON, println } from '../io.js';
import { toJSONValue } from '../json-values.js';
import { fetchStats, statsTable } from '../stats-view.js';

/** Usage line. */
export const usage =
  'secure-ipc inspect ADDRESS --key FILE (--server-key PUBKEY | --cert FILE --trust-ca PUBKEY ...) [--app-id ID] [--json] [--allow-unmarked-key] [--allow-uid UID ...] [--allow-gid GID ...] [--allow-sid SID|NAME ...]';

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, { ...clientOptions, ...jsonOption }, true);
  if (positionals.length !== 1) throw new CliError('give exactly one ADDRESS');
  return withClient(positionals[0]!, values, io, async (client) => {
    const { raw, stats } = await fetchStats(client);
    if (values.json === true) printJSON(io.stdout, toJSONValue(raw) as Record<string, unknown>);
    else {
      for (const line of statsTable(stats)) println(io.stdout, line);
      println(io.stdout, `${stats.channels.length} channel${stats.channels.length === 1 ? '' : 's'}`);
    }
    return ExitCode.Ok;
  });
}
