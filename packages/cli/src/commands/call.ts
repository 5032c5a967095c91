/**
 * `secure-ipc call ADDRESS METHOD [JSON-PARAMS] --key FILE (--server-key PUBKEY | --cert FILE
 * --trust-ca PUBKEY ...) [--timeout MS] [--json]`: one request to any method, over the channel
 * `ping` opens (same options, same code). The result is printed as JSON on stdout (values JSON
 * cannot hold in the forms of ../json-values.ts); an error the server answers with (forbidden by
 * its policy, no such method, the handler's error) exits 6 with its code and message.
 */
import { jsonOption, parse, positiveInt } from '../args.js';
import { clientOptions, withClient } from '../client-options.js';
import { CliError, type CliIo, ExitCode, printJSON, println } from '../io.js';
import { parseJSONParams, toJSONValue } from '../json-values.js';

/** Usage line. */
export const usage =
  'secure-ipc call ADDRESS METHOD [JSON-PARAMS] --key FILE (--server-key PUBKEY | --cert FILE --trust-ca PUBKEY ...) [--app-id ID] [--timeout MS] [--json] [--allow-unmarked-key] [--allow-uid UID ...] [--allow-gid GID ...] [--allow-sid SID|NAME ...]';

// As long as ping waits for one round trip.
const DEFAULT_TIMEOUT_MS = 10_000;

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { ...clientOptions, timeout: { type: 'string' }, ...jsonOption },
    true,
  );
  if (positionals.length < 2 || positionals.length > 3)
    throw new CliError('give ADDRESS, METHOD and at most one JSON-PARAMS argument');
  const [address, method, paramsText] = positionals as [string, string, string | undefined];
  if (method === '') throw new CliError('METHOD must not be empty');
  // Checked before anything connects: a typo in the params never reaches the server.
  const params = paramsText === undefined ? undefined : parseJSONParams(paramsText);
  const timeoutMs = positiveInt(values.timeout, 'timeout', DEFAULT_TIMEOUT_MS);
  return withClient(address, values, io, async (client) => {
    const result = await client.request(method, params, { timeoutMs });
    if (values.json === true) printJSON(io.stdout, { result: toJSONValue(result) });
    else println(io.stdout, JSON.stringify(toJSONValue(result), null, 2));
    return ExitCode.Ok;
  });
}
