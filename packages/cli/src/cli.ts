/**
 * The `secure-ipc` command table and dispatcher. Each command lives in its own module under
 * ./commands and exports `usage` and `run(argv, io) → exit code`.
 */
import * as ca from './commands/ca.js';
import * as cert from './commands/cert.js';
import * as keygen from './commands/keygen.js';
import * as ping from './commands/ping.js';
import * as pubkey from './commands/pubkey.js';
import * as revoke from './commands/revoke.js';
import * as serve from './commands/serve.js';
import { type CliIo, describeError, ExitCode, exitCodeOf, println } from './io.js';

/** A command module. */
export interface Command {
  /** One usage line. */
  readonly usage: string;
  /** Run with the arguments after the command name; resolves with the exit code. */
  run(argv: string[], io: CliIo): Promise<number>;
}

/** Every command, by name. */
export const commands: Readonly<Record<string, Command>> = {
  keygen,
  pubkey,
  serve,
  ping,
  ca,
  cert,
  revoke,
};

function help(io: CliIo, stream: NodeJS.WritableStream): void {
  println(stream, 'usage:');
  for (const c of Object.values(commands)) println(stream, `  ${c.usage}`);
  println(
    stream,
    'exit codes: 0 ok, 1 failed, 2 usage, 3 key/file, 4 address/listen/connect, 5 authentication',
  );
  void io;
}

/** Run the CLI with `argv` (without node and the script); resolves with the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    help(io, name === undefined ? io.stderr : io.stdout);
    return name === undefined ? ExitCode.Usage : ExitCode.Ok;
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command) {
    println(io.stderr, `secure-ipc: unknown command ${JSON.stringify(name)}`);
    help(io, io.stderr);
    return ExitCode.Usage;
  }
  try {
    return await command.run(rest, io);
  } catch (err) {
    println(io.stderr, `secure-ipc ${name}: ${describeError(err)}`);
    const code = exitCodeOf(err);
    if (code === ExitCode.Usage) println(io.stderr, `usage: ${command.usage}`);
    return code;
  }
}
