/**
 * The repository as the checks see it: the files git lists (tracked, plus untracked ones it does
 * not ignore, so a new file is checked before its first commit), read from the working tree.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type OutsideFinding, type RepositoryView, scanText } from './outside-paths.js';

/** Files whose content is prose or generated, not read by anything that runs. */
const NOT_SCANNED = [/\.md$/, /(^|\/)package-lock\.json$/];

/** Every file git lists under `root` (repository-relative, `/` separators), sorted. */
export function listedFiles(root: string): string[] {
  const out = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: root,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return [...new Set(out.split('\0').filter((f) => f !== ''))].sort();
}

/** The files the outside-path check reads: everything listed except Markdown and package-locks. */
export function scannedFiles(root: string): string[] {
  return listedFiles(root).filter((f) => !NOT_SCANNED.some((re) => re.test(f)));
}

/** Plain folder names in the root .gitignore (`dist/`, `node_modules/`): generated, may be absent. */
export function generatedNames(root: string): Set<string> {
  const file = join(root, '.gitignore');
  if (!existsSync(file)) return new Set();
  const names = readFileSync(file, 'utf8')
    .split(/\r?\n/)
    .map((l) => /^\/?([\w.-]+)\/?$/.exec(l.trim())?.[1])
    .filter((n): n is string => n !== undefined);
  return new Set(names);
}

/** A view of the working tree under `root`. */
export function repositoryView(root: string): RepositoryView {
  return { exists: (p) => existsSync(join(root, p)), generated: generatedNames(root) };
}

/** Scan every listed file under `root`; binary files, links and deleted files are passed over. */
export function scanRepository(root: string): { files: number; findings: OutsideFinding[] } {
  const view = repositoryView(root);
  const findings: OutsideFinding[] = [];
  let files = 0;
  for (const file of scannedFiles(root)) {
    const full = join(root, file);
    if (!existsSync(full) || !lstatSync(full).isFile()) continue;
    const text = readFileSync(full, 'utf8');
    if (text.includes('\0')) continue;
    files++;
    findings.push(...scanText(file, text, view));
  }
  return { files, findings };
}
