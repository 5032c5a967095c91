/**
 * What the report says about where it ran: CPU, cores, memory, OS, Node, load average, the
 * versions of every package measured, and the git commit of the tree (the workspace packages are
 * measured as built from the working tree, which may hold uncommitted work).
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const BENCH_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

export interface MachineInfo {
  cpu: string;
  cores: number;
  memoryGiB: number;
  os: string;
  node: string;
  commit: string;
  dirty: boolean;
}

export function machineInfo(): MachineInfo {
  let commit = 'unknown';
  let dirty = false;
  try {
    commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: BENCH_DIR,
      encoding: 'utf8',
    }).trim();
    dirty =
      execFileSync('git', ['status', '--porcelain', '--', '../../packages'], {
        cwd: BENCH_DIR,
        encoding: 'utf8',
      }).trim() !== '';
  } catch {
    // Not a git checkout: the report says "unknown".
  }
  return {
    cpu: os.cpus()[0]?.model.trim() ?? 'unknown',
    cores: os.availableParallelism(),
    memoryGiB: os.totalmem() / 2 ** 30,
    os: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    commit,
    dirty,
  };
}

/** The 1, 5 and 15 minute load averages, rounded. */
export function loadAverage(): string {
  return os
    .loadavg()
    .map((x) => x.toFixed(2))
    .join(' / ');
}

/** Installed version of `name`, looked up from tools/bench upwards like Node's resolver. */
export function packageVersion(name: string): string {
  let dir = BENCH_DIR;
  for (;;) {
    const p = path.join(dir, 'node_modules', name, 'package.json');
    if (fs.existsSync(p)) return (JSON.parse(fs.readFileSync(p, 'utf8')) as { version: string }).version;
    const up = path.dirname(dir);
    if (up === dir) return 'not installed';
    dir = up;
  }
}
