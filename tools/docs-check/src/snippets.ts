// The docs' TypeScript snippets as programs: find them, type-check them against the built
// packages, run them.
//
//   findDocs(root)          README.md, packages/*/README.md, docs/*.md (by glob: a new page is checked)
//   extractSnippets(md)     every ```ts block, with the marker comment just above it, if any
//   compileSnippets(list)   one TypeScript program for all of them, diagnostics per snippet
//   runSnippet(js)          a child process with a timeout, in a fresh scratch directory
//
// A snippet is a self-contained program unless marked on the line above its fence:
//   <!-- snippet: compile-only (reason) -->   type-checked, not run
//   <!-- snippet: no-run (reason) -->         neither (a fragment, a signature sketch)
// The reason is required: the test lists every excluded snippet with it.
import { spawn } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative, resolve } from 'node:path';
import ts from 'typescript';

/** The repository root (this file runs from tools/docs-check/dist/src). */
export const repoRoot = resolve(new URL('../../../..', import.meta.url).pathname);

/** How a snippet is checked. */
export type SnippetMode = 'run' | 'compile-only' | 'no-run';

/** One ```ts block of a Markdown file. */
export interface Snippet {
  /** The Markdown file, relative to the repository root. */
  readonly file: string;
  /** 1-based line of the opening fence. */
  readonly line: number;
  /** The code, its fence's indentation removed. */
  readonly code: string;
  readonly mode: SnippetMode;
  /** Why it is not run (required by a marker). */
  readonly reason: string | undefined;
  /** A marker that could not be read (no reason, unknown kind): the test fails on it. */
  readonly markerProblem: string | undefined;
}

/** The Markdown files whose snippets are checked. */
export function findDocs(root = repoRoot): string[] {
  const files = ['README.md'];
  for (const pkg of readdirSync(join(root, 'packages')).sort()) {
    try {
      readFileSync(join(root, 'packages', pkg, 'README.md'));
      files.push(`packages/${pkg}/README.md`);
    } catch {
      // a package without a README has no snippets
    }
  }
  for (const page of readdirSync(join(root, 'docs')).sort())
    if (page.endsWith('.md')) files.push(`docs/${page}`);
  return files;
}

// Anything after the language (```ts no-run: ...) is not a marker: reported, never silently skipped.
const FENCE_OPEN = /^( *)```(?:ts|typescript)(\s.*)?$/;
const MARKER = /^\s*<!--\s*snippet:\s*(.*?)\s*-->\s*$/;
const MARKER_BODY = /^(compile-only|no-run)\s+\((.+)\)$/;

/** Every ```ts block of `markdown` (file names the source in the result). */
export function extractSnippets(markdown: string, file: string): Snippet[] {
  const lines = markdown.split('\n');
  const out: Snippet[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = FENCE_OPEN.exec(lines[i] ?? '');
    if (open === null) continue;
    const indent = open[1] ?? '';
    const body: string[] = [];
    let j = i + 1;
    for (; j < lines.length && (lines[j] ?? '').trimEnd() !== `${indent}\`\`\``; j++)
      body.push(
        (lines[j] ?? '').startsWith(indent) ? (lines[j] ?? '').slice(indent.length) : (lines[j] ?? ''),
      );
    let mode: SnippetMode = 'run';
    let reason: string | undefined;
    let markerProblem: string | undefined;
    const info = (open[2] ?? '').trim();
    if (info !== '')
      markerProblem = `the fence has "${info}" after the language: use a <!-- snippet: ... --> marker line above it`;
    let k = i - 1;
    while (k >= 0 && (lines[k] ?? '').trim() === '') k--;
    const marker = MARKER.exec(lines[k] ?? '');
    if (marker !== null) {
      const parsed = MARKER_BODY.exec(marker[1] ?? '');
      if (parsed === null)
        markerProblem ??= `marker "${marker[1]}" is not "compile-only (reason)" or "no-run (reason)"`;
      else {
        mode = parsed[1] as SnippetMode;
        reason = parsed[2];
      }
    }
    out.push({ file, line: i + 1, code: `${body.join('\n')}\n`, mode, reason, markerProblem });
    i = j;
  }
  return out;
}

/** Every snippet of every checked page. */
export function allSnippets(root = repoRoot): Snippet[] {
  return findDocs(root).flatMap((file) => extractSnippets(readFileSync(join(root, file), 'utf8'), file));
}

/** A file name for a snippet: `docs/identity.md` line 40 → `docs_identity_md_L40`. */
export function snippetName(s: Snippet): string {
  return `${s.file.replace(/[^A-Za-z0-9]/g, '_')}_L${s.line}`;
}

/** What compiling gave for one snippet. */
export interface Compiled {
  readonly snippet: Snippet;
  /** The emitted program. */
  readonly js: string;
  /** Type errors, as `file:line:col message`, with the line in the Markdown file. */
  readonly errors: string[];
}

/**
 * Type-check and emit `snippets` as one program under `workDir` (inside this package, so the
 * imports resolve to the built workspace packages through node_modules, as an app's would).
 */
export function compileSnippets(snippets: readonly Snippet[], workDir: string): Compiled[] {
  rmSync(workDir, { recursive: true, force: true });
  const srcDir = join(workDir, 'src');
  const outDir = join(workDir, 'out');
  mkdirSync(srcDir, { recursive: true });
  const files = snippets.map((s) => {
    const path = join(srcDir, `${snippetName(s)}.ts`);
    // `export {}` makes every snippet a module (top-level await, its own scope).
    writeFileSync(path, `${s.code}export {};\n`);
    return path;
  });
  const program = ts.createProgram(files, {
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    lib: ['lib.es2023.d.ts', 'lib.esnext.disposable.d.ts'],
    types: ['node'],
    strict: true,
    skipLibCheck: true,
    rootDir: srcDir,
    outDir,
  });
  program.emit();
  const all = ts.getPreEmitDiagnostics(program);
  return snippets.map((snippet, i) => {
    const path = files[i] ?? '';
    const errors = all
      .filter((d) => d.file !== undefined && resolve(d.file.fileName) === resolve(path))
      .map((d) => {
        const { line, character } = d.file!.getLineAndCharacterOfPosition(d.start ?? 0);
        // The code starts on the line after the fence.
        const at = `${snippet.file}:${snippet.line + 1 + line}:${character + 1}`;
        return `${at} ${ts.flattenDiagnosticMessageText(d.messageText, '\n')}`;
      });
    const global = all
      .filter((d) => d.file === undefined)
      .map((d) => ts.flattenDiagnosticMessageText(d.messageText, '\n'));
    return { snippet, js: join(outDir, `${snippetName(snippet)}.js`), errors: [...global, ...errors] };
  });
}

/** The outcome of running one program. */
export interface RunResult {
  readonly ok: boolean;
  readonly code: number | null;
  readonly timedOut: boolean;
  readonly output: string;
}

/** Run `js` with this node in a fresh scratch directory; it must exit 0 within `timeoutMs`. */
export function runSnippet(js: string, timeoutMs = 30_000): Promise<RunResult> {
  const scratch = mkdtempSync(join(tmpdir(), 'sipc-snippet-'));
  return new Promise((done) => {
    const child = spawn(process.execPath, [js], { cwd: scratch, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (d) => (output += d));
    child.stderr.on('data', (d) => (output += d));
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      child.kill('SIGKILL');
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      rmSync(scratch, { recursive: true, force: true });
      done({ ok: code === 0 && !timedOut, code, timedOut, output });
    });
  });
}

/** Where a snippet is run: those needing Windows named pipes are type-checked only elsewhere. */
export function platformReason(s: Snippet, platform = process.platform): string | undefined {
  if (platform !== 'win32' && /from '@secure-ipc\/transport-win'/.test(s.code))
    return `uses @secure-ipc/transport-win (Windows named pipes): type-checked, run on win32 only (here: ${platform})`;
  return undefined;
}

/** `path` relative to the repository root, for messages. */
export function fromRoot(path: string): string {
  return relative(repoRoot, path);
}
