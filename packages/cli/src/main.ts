#!/usr/bin/env node
/** The `secure-ipc` executable, loaded by the committed bin/secure-ipc.js that npm links. */
import { runCli } from './cli.js';

const code = await runCli(process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
});
process.exitCode = code;
