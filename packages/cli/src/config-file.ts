/**
 * Reading a configuration file for `config validate` and `doctor`: a file that cannot be read or
 * is over MAX_CONFIG_BYTES is a file error (exit 3); its problems are printed as
 * `FILE:LINE:COL: message` and a `FAILED` line (docs/configuration.md, "Validation").
 */
import { readFile } from 'node:fs/promises';
import type { ConfigProblem } from '@secure-ipc/config';
import { configPackage } from './config-package.js';
import { CliError, ExitCode, printable, println } from './io.js';

/** The text of the configuration file `file` (CliError exit 3 when unreadable or too large). */
export async function readConfigText(file: string): Promise<string> {
  const { MAX_CONFIG_BYTES } = await configPackage();
  let bytes: Buffer;
  try {
    bytes = await readFile(file);
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`, ExitCode.KeyOrFile);
  }
  if (bytes.byteLength > MAX_CONFIG_BYTES)
    throw new CliError(`${file} is over ${MAX_CONFIG_BYTES} bytes`, ExitCode.KeyOrFile);
  return bytes.toString('utf8');
}

/** Print every problem of `file` as `FILE:LINE:COL: message`, then `FAILED: FILE, N problems`. */
export async function printProblems(
  stream: NodeJS.WritableStream,
  file: string,
  problems: readonly ConfigProblem[],
): Promise<void> {
  const { formatProblem } = await configPackage();
  // A message quotes the file's own text (a setting's name): control characters are escaped.
  for (const p of problems) println(stream, printable(formatProblem(p)));
  println(
    stream,
    `FAILED: ${printable(file)}, ${problems.length} problem${problems.length === 1 ? '' : 's'}`,
  );
}
