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
// one.
//
// Timing: the report ends with a `# time: N s` comment (the wall time of the ava run), which the
// report line shows (`[tap] PASS core: ... in 245 s, .reports/core.tap`). ava's TAP has no
// durations, so the slowest files are estimated from when each file's results arrived: a file's
// span runs from the previous result (or the start of the run) before its first one to its last
// one. With ava's concurrency (2 files at a time here) two files' spans overlap, so a span is an
// upper bound on that file's time, and a file that runs alone shows its own time. If ava exits non-zero although every test point passed (it crashed after its last test,
// or refused to start), a `Bail out!` line records that, so the report fails too.
import { spawn } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseTap, repoRoot, reportDir, reportLine, reportPath, shortName } from './tap.mjs';

export const AVA_CLI = join(repoRoot, 'node_modules', 'ava', 'entrypoints', 'cli.mjs');

const partialOf = (name) => join(reportDir, `${name}.tap.partial-${process.pid}`);

/** Move a finished run's TAP into place as report `name`; print its line; return the exit code to use.
 * `seconds`: the run's wall time, appended to the report as `# time: N s`. */
export function fileReport(name, partial, exitCode, signal, seconds) {
  let text = readFileSync(partial, 'utf8');
  const counted = parseTap(text);
  if (exitCode !== 0 && counted.failed === 0 && !counted.problem) {
    const why = signal ? `ava was killed by ${signal}` : `ava exited with code ${exitCode}`;
    text += `${text.endsWith('\n') ? '' : '\n'}Bail out! ${why} although no test failed\n`;
    writeFileSync(partial, text);
  }
  if (seconds !== undefined) {
    text += `${text.endsWith('\n') ? '' : '\n'}# time: ${Math.round(seconds)} s\n`;
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

// A test point's file: ava titles results `file › title` (no prefix when the run has one file).
const POINT_FILE = /^(?:not )?ok \d+ - (.+?) › /;
const SLOWEST = 5;

/** Collects when each file's results arrive (see the timing note at the top of this file). */
function fileClock() {
  const start = performance.now();
  const files = new Map();
  let last = 0;
  let rest = '';
  return {
    start,
    feed(chunk) {
      const lines = (rest + chunk).split('\n');
      rest = lines.pop() ?? '';
      for (const line of lines) {
        const file = POINT_FILE.exec(line)?.[1];
        if (!file) continue;
        const now = (performance.now() - start) / 1000;
        const f = files.get(file) ?? { from: last, to: now, tests: 0 };
        f.to = now;
        f.tests++;
        files.set(file, f);
        last = now;
      }
    },
    /** The `SLOWEST` longest file spans, one line, or undefined when there are fewer than two files. */
    slowest(name) {
      if (files.size < 2) return undefined;
      const spans = [...files]
        .map(([file, f]) => ({ file, s: f.to - f.from, tests: f.tests }))
        .sort((a, b) => b.s - a.s)
        .slice(0, SLOWEST)
        .map(({ file, s, tests }) => `${file} ${Math.round(s)} s (${tests})`);
      return `[tap] ${name} slowest files (span of their results, tests): ${spans.join(', ')}`;
    },
  };
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
  const clock = fileClock();
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
    clock.feed(chunk.toString());
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
        const slowest = clock.slowest(name);
        if (slowest) console.log(slowest);
        const seconds = (performance.now() - clock.start) / 1000;
        resolveRun(fileReport(name, partial, code ?? 1, signal, seconds));
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
