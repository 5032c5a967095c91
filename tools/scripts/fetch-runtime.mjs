#!/usr/bin/env node
// Fetch one file (a runtime's executable) out of an npm package, from the npm registry only:
// `npm pack PKG@VERSION`, extract `package/<file>`, rename it into place. Cached: a file already
// there is used as is. The rename happens last, so an interrupted fetch leaves nothing behind
// that looks complete.
//
//   node tools/scripts/fetch-runtime.mjs PKG@VERSION FILE_IN_PACKAGE DEST
import { execFileSync } from 'node:child_process';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, renameSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';

/** Make sure `dest` holds `file` from npm package `spec` (`name@version`); returns `dest`. */
export function fetchRuntime(spec, file, dest) {
  if (existsSync(dest)) return dest;
  mkdirSync(dirname(dest), { recursive: true });
  const work = mkdtempSync(join(dirname(dest), '.fetch-'));
  try {
    const io = { cwd: work, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] };
    const tgz = execFileSync('npm', ['pack', '--silent', spec], io).trim().split('\n').at(-1);
    execFileSync('tar', ['-xzf', tgz, `package/${file}`], io);
    chmodSync(join(work, 'package', file), 0o755);
    renameSync(join(work, 'package', file), dest);
    return dest;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const [spec, file, dest] = process.argv.slice(2);
  if (!spec || !file || !dest) {
    console.error('usage: fetch-runtime.mjs PKG@VERSION FILE_IN_PACKAGE DEST');
    process.exit(2);
  }
  fetchRuntime(spec, file, dest);
}
