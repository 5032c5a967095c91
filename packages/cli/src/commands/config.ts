/**
 * `secure-ipc config validate FILE [--json]` (docs/configuration.md): validate a configuration
 * file (JSONC or TOML) against the schema, its profile's rules and its policy tests, reading
 * nothing but the file; print every problem as `FILE:LINE:COL: message`, then a summary line.
 * `secure-ipc config diff OLD NEW [--json]`: the semantic difference of two valid files, each
 * change with whether a reload applies it.
 */
import type { ConfigValidation } from '@secure-ipc/config';
import { jsonOption, parse } from '../args.js';
import { printProblems, readConfigText } from '../config-file.js';
import { configPackage } from '../config-package.js';
import { CliError, type CliIo, ExitCode, printable, printJSON, println } from '../io.js';

/** Usage line. */
export const usage = 'secure-ipc config validate FILE [--json] | config diff OLD NEW [--json]';

/** The subcommands (error lines name them: `secure-ipc config validate: ...`). */
export const subcommands = ['validate', 'diff'] as const;

/** Run the command; resolves with the exit code. */
export async function run(argv: string[], io: CliIo): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'diff') return diff(rest, io);
  if (sub !== 'validate')
    throw new CliError(`unknown config subcommand ${JSON.stringify(sub ?? '')} (expected validate or diff)`);
  const { values, positionals } = parse(rest, { ...jsonOption }, true);
  if (positionals.length !== 1)
    throw new CliError(`config validate takes one FILE (got ${positionals.length})`);
  const file = positionals[0]!;
  const v = await validateFile(file);
  if (values.json === true) {
    printJSON(io.stdout, {
      ok: v.problems.length === 0,
      file,
      problems: v.problems,
      tests: v.tests,
      profile: v.config?.profile ?? null,
    });
  } else if (v.problems.length > 0) await printProblems(io.stdout, file, v.problems);
  else
    println(
      io.stdout,
      `ok: ${printable(file)} (profile ${v.config?.profile ?? 'baseline'}, ${v.tests.run} policy tests passed)`,
    );
  return v.problems.length === 0 ? ExitCode.Ok : ExitCode.Failed;
}

/** Read and validate one file; unreadable or too large is exit 3 (readConfigText). */
async function validateFile(file: string): Promise<ConfigValidation> {
  const { validateConfigText } = await configPackage();
  return validateConfigText(await readConfigText(file), file);
}

/** `config diff OLD NEW`: exit 0 when the settings are the same, 1 when they differ, 3 when a file is not valid. */
async function diff(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(argv, { ...jsonOption }, true);
  if (positionals.length !== 2)
    throw new CliError(`config diff takes OLD and NEW (got ${positionals.length} files)`);
  const [oldFile, newFile] = positionals as [string, string];
  const { canonicalJson, diffConfigs, formatProblem } = await configPackage();
  const [a, b] = [await validateFile(oldFile), await validateFile(newFile)];
  if (a.config === undefined || b.config === undefined) {
    // Only valid files have settings to compare: the problems, as validate prints them.
    for (const p of [...a.problems, ...b.problems]) println(io.stderr, printable(formatProblem(p)));
    throw new CliError(
      `${[a, b].filter((v) => v.config === undefined).length === 2 ? 'both files are' : `${printable(a.config === undefined ? oldFile : newFile)} is`} not a valid configuration (config validate says why)`,
      ExitCode.KeyOrFile,
    );
  }
  const changes = diffConfigs(a.config, b.config);
  if (values.json === true) {
    printJSON(io.stdout, { same: changes.length === 0, changes });
    return changes.length === 0 ? ExitCode.Ok : ExitCode.Failed;
  }
  const mark = { added: '+', removed: '-', changed: '~' } as const;
  const value = (v: unknown) => printable(canonicalJson(v));
  for (const c of changes)
    println(
      io.stdout,
      `${mark[c.kind]} ${printable(c.path)}: ${c.kind === 'changed' ? `${value(c.before)} -> ${value(c.after)}` : value(c.kind === 'added' ? c.after : c.before)}  (${c.reloadable ? 'reload' : 'restart'})`,
    );
  const restart = changes.filter((c) => !c.reloadable).length;
  println(
    io.stdout,
    changes.length === 0
      ? 'same settings'
      : `${changes.length} change${changes.length === 1 ? '' : 's'}: ${changes.length - restart} applied by a reload, ${restart} need${restart === 1 ? 's' : ''} a restart`,
  );
  return changes.length === 0 ? ExitCode.Ok : ExitCode.Failed;
}
