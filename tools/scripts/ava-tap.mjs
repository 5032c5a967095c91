#!/usr/bin/env node
// Run ava with its TAP reporter, show the TAP as it arrives, and keep it as this run's report.
//
//   node ../../tools/scripts/ava-tap.mjs [--variant=V] [ava args...]   (a package's `npm test`)
//       runs ava under this node in the current package; report .reports/<package>[-V].tap
//   node tools/scripts/ava-tap.mjs --record=FILE --exit-code=N [--variant=V]
//       files the TAP of a run made elsewhere (the Wine runner) as the current package's report
//   node tools/scripts/ava-tap.mjs --bail-out=REASON [--variant=V]
//       files a report saying the suite could not run at all (the Wine runner without wine)
//   node tools/scripts/ava-tap.mjs --discard [--variant=V]
//       removes the current package's report (the Wine runner, before it starts)
//
// The TAP is written to a partial file and renamed into place when ava has exited, so a run that
// was interrupted leaves no report (the summer then reports it missing) and never a truncated
// one. If ava exits non-zero although every test point passed (it crashed after its last test,
// or refused to start), a `Bail out!` line records that, so the report fails too.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseTap, repoRoot, reportDir, reportLine, reportPath, shortName } from './tap.mjs';

export const AVA_CLI = join(repoRoot, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');

const partialOf = (name) => join(reportDir, `${name}.tap.partial-${process.pid}`);

/** Move a finished run's TAP into place as report `name`; print its line; return the exit code to use. */
export function fileReport(name, partial, exitCode, signal) {
  let text = readFileSync(partial, 'utf8');
  const counted = parseTap(text);
  if (exitCode !== 0 && counted.failed === 0 && !counted.problem) {
    const why = signal ? `ava was killed by ${signal}` : `ava exited with code ${exitCode}`;
    text += `${text.endsWith('\n') ? '' : '\n'}Bail out! ${why} although no test failed\n`;
    writeFileSync(partial, text);
  }
  const file = reportPath(name);
  renameSync(partial, file);
  const r = parseTap(text);
  console.log(reportLine(name, r, file));
  return r.problem || r.failed > 0 ? exitCode || 1 : exitCode;
}

/** File a report for a suite that could not run at all; returns 1. */
export function fileBailOut(name, reason) {
  mkdirSync(reportDir, { recursive: true });
  const partial = partialOf(name);
  writeFileSync(partial, `TAP version 13\nBail out! ${reason}\n`);
  return fileReport(name, partial, 1);
}

/**
 * Run `command` (a runtime and ava's entry point) with `args` plus `--tap` in `cwd`, tee its
 * stdout to the terminal and to report `name`. Resolves to the exit code. `exclude` lists what
 * is not run, each `{ title, why }` (ava skips it by `--match='!title'`) or `{ file, why }` (the
 * caller leaves the file out of `args`); the report opens with one `# excluded: ...: why` comment
 * for each, so they are counted and never silent.
 * `timeoutMs`: a run still going then is killed and its report ends in a bail-out.
 */
export function runAvaTap({ cwd, name, command, args = [], env = process.env, exclude = [], timeoutMs }) {
  mkdirSync(reportDir, { recursive: true });
  rmSync(reportPath(name), { force: true }); // a previous run's report never stands in for this one
  const partial = partialOf(name);
  const out = createWriteStream(partial);
  for (const { title, file, why } of exclude) {
    const line = `# excluded: ${title ?? `every test in ${file}`}: ${why}\n`;
    process.stdout.write(line);
    out.write(line);
  }
  const [cmd, ...pre] = command;
  const match = exclude.filter((e) => e.title).map(({ title }) => `--match=!${title}`);
  const child = spawn(cmd, [...pre, '--tap', ...match, ...args], {
    cwd,
    env,
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child.stdout.on('data', (chunk) => {
    process.stdout.write(chunk);
    out.write(chunk);
  });
  const stop = (sig) => {
    child.kill(sig);
    rmSync(partial, { force: true });
    process.exit(130);
  };
  process.once('SIGINT', stop).once('SIGTERM', stop);
  const watchdog =
    timeoutMs &&
    setTimeout(() => {
      out.write(`\nBail out! no exit after ${timeoutMs / 1000} s: killed\n`);
      child.kill('SIGKILL');
    }, timeoutMs);
  return new Promise((resolveRun) => {
    const finish = (code, signal) =>
      out.end(() => {
        clearTimeout(watchdog);
        process.off('SIGINT', stop).off('SIGTERM', stop);
        resolveRun(fileReport(name, partial, code ?? 1, signal));
      });
    child.on('error', (err) => {
      out.write(`Bail out! could not start ${cmd}: ${err.message}\n`);
      finish(1);
    });
    child.on('close', finish);
  });
}

function option(args, key) {
  const i = args.findIndex((a) => a.startsWith(`--${key}=`));
  if (i < 0) return undefined;
  const [value] = args.splice(i, 1);
  return value.slice(key.length + 3);
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const args = process.argv.slice(2);
  const variant = option(args, 'variant');
  const name = shortName(process.cwd()) + (variant ? `-${variant}` : '');
  const record = option(args, 'record');
  const bailOut = option(args, 'bail-out');
  if (args.includes('--discard')) {
    rmSync(reportPath(name), { force: true });
  } else if (record !== undefined) {
    mkdirSync(reportDir, { recursive: true });
    const partial = partialOf(name);
    writeFileSync(partial, readFileSync(record, 'utf8').replace(/\r/g, ''));
    process.exitCode = fileReport(name, partial, Number(option(args, 'exit-code') ?? 1));
  } else if (bailOut !== undefined) {
    process.exitCode = fileBailOut(name, bailOut);
  } else {
    process.exitCode = await runAvaTap({
      cwd: process.cwd(),
      name,
      command: [process.execPath, AVA_CLI],
      args,
    });
  }
}
