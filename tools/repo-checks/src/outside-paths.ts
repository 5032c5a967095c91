/**
 * A scanner for references to paths outside the repository. A clone must work with nothing beside
 * it, so no source, test, script, config or CI file may point above the repository root. Three
 * rules, checked line by line on the text (the exact base of a relative path — the file's folder,
 * its compiled copy under dist/, a working directory — cannot be known from text, so each rule
 * errs on the side of the bases the repository actually uses):
 *
 * - `above-root`: a relative path climbs more levels than the file is deep. TypeScript runs
 *   compiled from `dist/`, one level deeper than its source, so it may climb one level more.
 * - `outside-name`: a relative path climbs (within the depth) and then descends into a name that
 *   exists neither at the level it reaches nor at any level above it inside the repository, nor
 *   is a generated (gitignored) folder: the shape of a sibling folder of the checkout.
 * - `machine-path`: an absolute path into a machine's home or work folders.
 *
 * Runs of `..` are found as `../..`, `..\\..` and as the separate arguments of `join('..', '..')`.
 */

/** Which rule a finding broke. */
export type OutsideRule = 'above-root' | 'outside-name' | 'machine-path';

/** One reference to a path outside the repository. */
export interface OutsideFinding {
  /** Repository-relative path of the file, with `/` separators. */
  readonly file: string;
  /** 1-based line number. */
  readonly line: number;
  /** 1-based column of the offending path. */
  readonly column: number;
  /** The rule it broke. */
  readonly rule: OutsideRule;
  /** Why, in one sentence. */
  readonly why: string;
  /** The line, trimmed (at most 160 characters). */
  readonly text: string;
}

/** What the scanner knows about the repository tree. */
export interface RepositoryView {
  /** True if the repository-relative path exists in the tree (a file or a folder). */
  exists(path: string): boolean;
  /** Names of generated folders that need not exist (the root .gitignore's plain `name/` entries). */
  readonly generated: ReadonlySet<string>;
}

const SEP = String.raw`(?:[\\/]+|['"\x60]\s*,\s*['"\x60])`;
const DOTDOT = String.raw`(?<![\w.])\.\.(?![\w.])`;
/** A run of `..` segments, then optionally the name it descends into (group 1). */
const RUN = new RegExp(String.raw`${DOTDOT}(?:${SEP}${DOTDOT})*(?:${SEP}([\w@+.-]+))?`, 'g');
const DOTDOT_IN_RUN = /\.\./g;
/** Absolute paths into a machine's own folders (Linux, macOS, Windows). */
const MACHINE_PATH = /(?<![\w.-])\/(?:work|home|root|Users|mnt)\/|\b[A-Za-z]:\\{1,2}Users\\/g;
const COMPILED = /\.[cm]?tsx?$/;

function parentOf(dir: string): string {
  const i = dir.lastIndexOf('/');
  return i < 0 ? '' : dir.slice(0, i);
}

function joinPath(dir: string, name: string): string {
  return dir === '' ? name : `${dir}/${name}`;
}

/** Climb `levels` from `dir` (repository-relative); undefined if that leaves the repository. */
function climb(dir: string, levels: number): string | undefined {
  let at = dir;
  for (let i = 0; i < levels; i++) {
    if (at === '') return undefined;
    at = parentOf(at);
  }
  return at;
}

/** The nearest folder at or above `dir` that holds a package.json ('' for the root). */
function packageDirOf(dir: string, view: RepositoryView): string {
  for (let at = dir; at !== ''; at = parentOf(at)) if (view.exists(joinPath(at, 'package.json'))) return at;
  return '';
}

/**
 * The folders a relative path climbing `levels` from `file` can reach: from the file's folder and,
 * for TypeScript, from its compiled copy under `<package>/dist/`, mapped back to the source tree
 * (the build mirrors it: rootDir ".", outDir "dist").
 */
function reachedFolders(file: string, levels: number, view: RepositoryView): string[] {
  const dir = parentOf(file);
  const out: string[] = [];
  const fromSource = climb(dir, levels);
  if (fromSource !== undefined) out.push(fromSource);
  if (COMPILED.test(file)) {
    const pkg = packageDirOf(dir, view);
    const inside = pkg === '' ? dir : dir.slice(pkg.length + 1);
    const runtime = joinPath(joinPath(pkg, 'dist'), inside).replace(/\/$/, '');
    const reached = climb(runtime, levels);
    const dist = joinPath(pkg, 'dist');
    if (reached !== undefined) {
      if (reached === dist) out.push(pkg);
      else if (reached.startsWith(`${dist}/`)) out.push(joinPath(pkg, reached.slice(dist.length + 1)));
      else out.push(reached);
    }
  }
  return out;
}

/** The names `name` may stand in the source tree under: `x.js` is compiled from `x.ts`. */
function sourceNames(name: string): string[] {
  const m = /^(.*)\.([cm]?)js$/.exec(name);
  return m ? [name, `${m[1]}.${m[2]}ts`, `${m[1]}.tsx`] : [name];
}

/** True if `name` exists at `folder` or at any level above it, or is a generated folder. */
function nameReachable(folder: string, name: string, view: RepositoryView): boolean {
  if (view.generated.has(name)) return true;
  const names = sourceNames(name);
  for (let at: string | undefined = folder; at !== undefined; at = at === '' ? undefined : parentOf(at)) {
    const level = at;
    if (names.some((n) => view.exists(joinPath(level, n)))) return true;
  }
  return false;
}

/** A run that starts mid-path (`$DIR/..`, `/a/../b`) is relative to something unknown: depth only. */
function startsMidPath(line: string, index: number): boolean {
  const before = line.slice(0, index);
  return /[\\/]$/.test(before) && !/(?:^|[^\w.])\.[\\/]$/.test(before);
}

/** Check one file's text. `file` is repository-relative with `/` separators. */
export function scanText(file: string, text: string, view: RepositoryView): OutsideFinding[] {
  const findings: OutsideFinding[] = [];
  const depth = file.split('/').length - 1;
  const compiled = COMPILED.test(file);
  const allowed = depth + (compiled ? 1 : 0);
  const lines = text.split(/\r?\n/);
  lines.forEach((line, i) => {
    const at = (rule: OutsideRule, index: number, why: string) =>
      findings.push({ file, line: i + 1, column: index + 1, rule, why, text: line.trim().slice(0, 160) });
    for (const m of line.matchAll(RUN)) {
      const levels = m[0].match(DOTDOT_IN_RUN)?.length ?? 0;
      const name = m[1];
      if (levels > allowed) {
        const where = compiled
          ? `${depth} deep (${allowed} from its compiled copy in dist/)`
          : `${depth} deep`;
        at('above-root', m.index, `climbs ${levels} levels from a file ${where}: above the repository root`);
        continue;
      }
      if (name === undefined || startsMidPath(line, m.index)) continue;
      const folders = reachedFolders(file, levels, view);
      if (folders.length > 0 && !folders.some((f) => nameReachable(f, name, view))) {
        at(
          'outside-name',
          m.index,
          `climbs to ${folders.map((f) => JSON.stringify(f === '' ? '.' : f)).join(' / ')} and descends into ` +
            `"${name}", which the repository does not have there or above: a folder beside the checkout`,
        );
      }
    }
    for (const m of line.matchAll(MACHINE_PATH)) {
      at('machine-path', m.index, `absolute path "${m[0]}" into a machine's own folders`);
    }
  });
  return findings;
}

/** Format findings one per line, `file:line:column rule: why` and the line itself. */
export function formatFindings(findings: readonly OutsideFinding[]): string {
  return findings.map((f) => `${f.file}:${f.line}:${f.column} ${f.rule}: ${f.why}\n    ${f.text}`).join('\n');
}
