/**
 * The `secure-ipc` command table and dispatcher. Each command lives in its own module under
 * ./commands and exports `usage` and `run(argv, io) → exit code`.
 */
import * as audit from './commands/audit.js';
import * as bus from './commands/bus.js';
import * as ca from './commands/ca.js';
import * as call from './commands/call.js';
import * as cert from './commands/cert.js';
import * as config from './commands/config.js';
import * as doctor from './commands/doctor.js';
import * as inspect from './commands/inspect.js';
import * as keygen from './commands/keygen.js';
import * as outbox from './commands/outbox.js';
import * as ping from './commands/ping.js';
import * as pubkey from './commands/pubkey.js';
import * as revoke from './commands/revoke.js';
import * as serve from './commands/serve.js';
import * as top from './commands/top.js';
import {
  CliError,
  type CliIo,
  describeError,
  ExitCode,
  errorJSON,
  exitCodeOf,
  printJSON,
  println,
} from './io.js';
import { cliVersion } from './version.js';

/** A command module. */
export interface Command {
  /** One usage line. */
  readonly usage: string;
  /** Run with the arguments after the command name; resolves with the exit code. */
  run(argv: string[], io: CliIo): Promise<number>;
  /** Its subcommands, if it has any (`cert issue`): error lines name the one that failed. */
  readonly subcommands?: readonly string[];
}

/** True when `argv` asks for help (`--help` or `-h` anywhere, as every command's first option). */
function asksForHelp(argv: readonly string[]): boolean {
  return argv.includes('--help') || argv.includes('-h');
}

/** True when `argv` asks for JSON output: a failure is then reported as one JSON object on stdout. */
function asksForJson(argv: readonly string[]): boolean {
  return argv.includes('--json');
}

/** Every command, by name. */
export const commands: Readonly<Record<string, Command>> = {
  keygen,
  pubkey,
  serve,
  bus,
  ping,
  call,
  inspect,
  top,
  ca,
  cert,
  revoke,
  outbox,
  audit,
  config,
  doctor,
};

function help(stream: NodeJS.WritableStream): void {
  println(stream, 'usage:');
  for (const c of Object.values(commands)) println(stream, `  ${c.usage}`);
  println(stream, '  secure-ipc --version | -V');
  println(stream, '  secure-ipc --help | -h');
  println(
    stream,
    'exit codes: 0 ok, 1 failed, 2 usage, 3 key/file, 4 address/listen/connect, 5 authentication, 6 the server answered with an error, 7 audit log fork',
  );
}

/** An option that stands where a command would: what it prints, and the exit code. */
type GlobalOption = (argv: string[], io: CliIo) => number;

const printHelp: GlobalOption = (_argv, io) => {
  help(io.stdout);
  return ExitCode.Ok;
};
const printVersion: GlobalOption = (argv, io) => {
  if (argv.length > 0) throw new CliError(`--version takes no arguments (got ${JSON.stringify(argv[0])})`);
  println(io.stdout, cliVersion());
  return ExitCode.Ok;
};

/** Every option that stands instead of a command, by spelling. */
export const globalOptions: Readonly<Record<string, GlobalOption>> = {
  '--help': printHelp,
  '-h': printHelp,
  help: printHelp,
  '--version': printVersion,
  '-V': printVersion,
};

/** Run the CLI with `argv` (without node and the script); resolves with the exit code. */
export async function runCli(argv: string[], io: CliIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined) {
    help(io.stderr);
    return ExitCode.Usage;
  }
  const option = Object.hasOwn(globalOptions, name) ? globalOptions[name] : undefined;
  if (option) {
    try {
      return option(rest, io);
    } catch (err) {
      println(io.stderr, `secure-ipc ${name}: ${describeError(err)}`);
      return exitCodeOf(err);
    }
  }
  const command = Object.hasOwn(commands, name) ? commands[name] : undefined;
  if (!command) {
    println(io.stderr, `secure-ipc: unknown command ${JSON.stringify(name)}`);
    help(io.stderr);
    return ExitCode.Usage;
  }
  if (asksForHelp(rest)) {
    println(io.stdout, `usage: ${command.usage}`);
    return ExitCode.Ok;
  }
  // `secure-ipc cert issue: ...`: the subcommand that failed, when there is one.
  const sub = rest[0] !== undefined && command.subcommands?.includes(rest[0]) ? ` ${rest[0]}` : '';
  try {
    return await command.run(rest, io);
  } catch (err) {
    return reportFailure(err, `${name}${sub}`, command, asksForJson(rest), io);
  }
}

/** Report a command's failure (one line on stderr, or one JSON object on stdout); resolves the exit code. */
function reportFailure(err: unknown, name: string, command: Command, json: boolean, io: CliIo): number {
  const code = exitCodeOf(err);
  if (json) {
    printJSON(io.stdout, errorJSON(err, name));
    return code;
  }
  println(io.stderr, `secure-ipc ${name}: ${describeError(err)}`);
  if (code === ExitCode.Usage) println(io.stderr, `usage: ${command.usage}`);
  return code;
}
