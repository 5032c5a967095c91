/**
 * `secure-ipc config validate FILE [--json]` (docs/configuration.md): validate a configuration
 * file (JSONC or TOML) against the schema, its profile's rules and its policy tests, reading
 * nothing but the file; print every problem as `FILE:LINE:COL: message`, then a summary line.
 */
import { readFile } from 'node:fs/promises';
import { formatProblem, MAX_CONFIG_BYTES, validateConfigText } from '@secure-ipc/config';
import { jsonOption, parse } from '../args.js';
import { CliError, type CliIo, ExitCode, printable, printJSON, println } from '../io.js';

/** Usage line. */
export const usage = 'secure-ipc config validate FILE [--json]';

/** The subcommands (error lines name them: `secure-ipc config validate: ...`). */
export const subcommands = ['validate'] as const;

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub !== 'validate')
    throw new CliError(`unknown config subcommand ${JSON.stringify(sub ?? '')} (expected validate)`);
  const { values, positionals } = parse(rest, { ...jsonOption }, true);
  if (positionals.length !== 1)
    throw new CliError(`config validate takes one FILE (got ${positionals.length})`);
  const file = positionals[0]!;
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`, ExitCode.KeyOrFile);
  }
  if (bytes.byteLength > MAX_CONFIG_BYTES)
    throw new CliError(`${file} is over ${MAX_CONFIG_BYTES} bytes`, ExitCode.KeyOrFile);
  const v = validateConfigText(bytes.toString('utf8'), file);
  if (values.json === true) {
    printJSON(io.stdout, {
      ok: v.problems.length === 0,
      file,
      problems: v.problems,
      tests: v.tests,
      profile: v.config?.profile ?? null,
    });
  } else {
    // A message quotes the file's own text (a setting's name): control characters are escaped.
    for (const p of v.problems) println(io.stdout, printable(formatProblem(p)));
    println(
      io.stdout,
      v.problems.length === 0
        ? `ok: ${printable(file)} (profile ${v.config?.profile ?? 'baseline'}, ${v.tests.run} policy tests passed)`
        : `FAILED: ${printable(file)}, ${v.problems.length} problem${v.problems.length === 1 ? '' : 's'}`,
    );
  }
  return v.problems.length === 0 ? ExitCode.Ok : ExitCode.Failed;
}
