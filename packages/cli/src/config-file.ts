/**
 * Reading a configuration file for `config validate` and `doctor`: a file that cannot be read or
 * is over MAX_CONFIG_BYTES is a file error (exit 3); its problems are printed as
 * `FILE:LINE:COL: message` and a `FAILED` line (docs/configuration.md, "Validation").
 */
import { type FileHandle, open } from 'node:fs/promises';
import type { ConfigProblem } from '@secure-ipc/config';
import { configPackage } from './config-package.js';
import { CliError, ExitCode, printable, println } from './io.js';

/** The text of the configuration file `file` (CliError exit 3 when unreadable or too large). */
export async function readConfigText(file: string): Promise<string> {
  const { MAX_CONFIG_BYTES } = await configPackage();
  return readBoundedText(file, MAX_CONFIG_BYTES);
}

/**
 * A text file of at most `max` bytes, read without holding more than `max + 1` of it: an
 * unreadable or longer file is exit 3 (a file problem).
 */
export async function readBoundedText(file: string, max: number): Promise<string> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(file, 'r');
    const buffer = Buffer.alloc(max + 1);
    let length = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, length, buffer.length - length, null);
      if (bytesRead === 0) break;
      length += bytesRead;
      if (length > max) throw new CliError(`${file} is over ${max} bytes`, ExitCode.KeyOrFile);
    }
    return buffer.subarray(0, length).toString('utf8');
  } catch (err) {
    if (err instanceof CliError) throw err;
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`, ExitCode.KeyOrFile);
  } finally {
    await handle?.close();
  }
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
