/**
 * The layering check behind layering.test.ts: reads the allowed directions from
 * docs/architecture.md (the "Layers of `@secure-ipc/core`" and "Packages" tables), the imports of
 * every source file (TypeScript's own pre-processor: type imports, re-exports and dynamic imports
 * included), and reports every file outside a layer, forbidden edge and import cycle.
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve, sep } from 'node:path';
import ts from 'typescript';

/** One layer of core: the paths it owns (`dir/` or `file.ts`, relative to src) and what it may import. */
export interface LayerRule {
  name: string;
  owns: string[];
  mayImport: Set<string>;
}

/** A package and the workspace packages it may import. */
export interface PackageRule {
  name: string;
  mayImport: Set<string>;
}

/** The cells of the first markdown table after the heading that starts with `heading`. */
export function tableAfter(markdown: string, heading: string): string[][] {
  const lines = markdown.split('\n');
  const start = lines.findIndex((l) => /^#+ /.test(l) && l.replace(/^#+ /, '').startsWith(heading));
  if (start < 0) throw new Error(`docs/architecture.md has no heading "${heading}"`);
  const rows: string[][] = [];
  let i = start + 1;
  while (i < lines.length && !lines[i]!.startsWith('|')) i++;
  for (; i < lines.length && lines[i]!.startsWith('|'); i++) {
    const cells = lines[i]!.slice(1, -1)
      .split('|')
      .map((c) => c.trim());
    if (cells.every((c) => /^-+$/.test(c))) continue;
    rows.push(cells);
  }
  return rows.slice(1); // without the header row
}

function names(cell: string): string[] {
  return cell
    .replace(/\(nothing\)|\(none\)/g, '')
    .split(',')
    .map((s) => s.trim().replace(/`/g, ''))
    .filter((s) => s.length > 0);
}

/** Parse the layer table of docs/architecture.md. */
export function parseLayers(markdown: string): LayerRule[] {
  return tableAfter(markdown, 'Layers of `@secure-ipc/core`').map(([name, owns, may]) => ({
    name: name!,
    owns: names(owns!),
    mayImport: new Set(names(may!)),
  }));
}

/** Parse the package table of docs/architecture.md. */
export function parsePackages(markdown: string): PackageRule[] {
  return tableAfter(markdown, 'Packages').map(([name, may]) => ({
    name: name!.replace(/`/g, ''),
    mayImport: new Set(names(may!)),
  }));
}

/** The layer owning `file` (a path relative to src, with `/`), or undefined. */
export function layerOf(layers: readonly LayerRule[], file: string): string | undefined {
  for (const layer of layers)
    for (const own of layer.owns)
      if (own.endsWith('/') ? file.startsWith(own) : file === own) return layer.name;
  return undefined;
}

/** Every import specifier of a TypeScript source (type imports, re-exports, dynamic imports). */
export function importsOf(source: string): string[] {
  return ts.preProcessFile(source, true, true).importedFiles.map((f) => f.fileName);
}

/** The `.ts` files below `dir`, as paths relative to it with `/`. */
export function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d)) {
      const p = join(d, entry);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts')) out.push(relative(dir, p).split(sep).join('/'));
    }
  };
  walk(dir);
  return out.sort();
}

/** Resolve a relative specifier of `from` (both relative to one src dir) to a source file path. */
export function resolveRelative(from: string, specifier: string): string {
  const target = join(dirname(from), specifier).split(sep).join('/');
  return target.replace(/\.js$/, '.ts');
}

/** A source file with its imports, for the checks below. */
export interface SourceFile {
  path: string;
  imports: string[];
}

/** Read the files of one `src` dir with their imports. */
export function readSources(srcDir: string): SourceFile[] {
  return sourceFiles(srcDir).map((path) => ({
    path,
    imports: importsOf(readFileSync(join(srcDir, path), 'utf8')),
  }));
}

/** Problems in core: files outside every layer, imports the layer table forbids. */
export function layerViolations(files: readonly SourceFile[], layers: readonly LayerRule[]): string[] {
  const problems: string[] = [];
  for (const file of files) {
    const from = layerOf(layers, file.path);
    if (from === undefined) {
      problems.push(`${file.path} belongs to no layer of docs/architecture.md`);
      continue;
    }
    const rule = layers.find((l) => l.name === from)!;
    for (const spec of file.imports) {
      if (!spec.startsWith('.')) continue;
      const target = resolveRelative(file.path, spec);
      if (target.startsWith('../')) {
        problems.push(`${file.path} imports ${spec}, outside the package`);
        continue;
      }
      const to = layerOf(layers, target);
      if (to === undefined) problems.push(`${file.path} imports ${spec}, which belongs to no layer`);
      else if (to !== from && !rule.mayImport.has(to))
        problems.push(`${file.path} (${from}) imports ${spec} (${to}): not allowed by docs/architecture.md`);
    }
  }
  return problems;
}

/** Every cycle of a directed graph, each as its node loop (first node repeated at the end). */
export function findCycles(edges: ReadonlyMap<string, readonly string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const visit = (node: string) => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of edges.get(node) ?? []) {
      if (!edges.has(next)) continue;
      const s = state.get(next);
      if (s === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (s === undefined) visit(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of edges.keys()) if (!state.has(node)) visit(node);
  return found;
}

/** Every import cycle among the files (relative imports, type imports included). */
export function cycles(files: readonly SourceFile[]): string[][] {
  return findCycles(
    new Map(
      files.map((f) => [
        f.path,
        f.imports.filter((s) => s.startsWith('.')).map((s) => resolveRelative(f.path, s)),
      ]),
    ),
  );
}

/** The cycles of the layer table itself (layer names). */
export function layerTableCycles(layers: readonly LayerRule[]): string[][] {
  return findCycles(new Map(layers.map((l) => [l.name, [...l.mayImport]])));
}

/** Problems across packages: imports of workspace packages the package table does not allow. */
export function packageViolations(
  packageFiles: ReadonlyMap<string, readonly SourceFile[]>,
  rules: readonly PackageRule[],
): string[] {
  const problems: string[] = [];
  for (const [pkg, files] of packageFiles) {
    const rule = rules.find((r) => r.name === pkg);
    if (rule === undefined) {
      problems.push(`${pkg} has no row in the package table of docs/architecture.md`);
      continue;
    }
    for (const file of files)
      for (const spec of file.imports) {
        if (spec.startsWith('.')) {
          if (resolveRelative(file.path, spec).startsWith('../'))
            problems.push(`${pkg}: ${file.path} imports ${spec}, outside its package`);
          continue;
        }
        const m = /^(@secure-ipc\/[^/]+)/.exec(spec);
        if (m === null || m[1] === pkg) continue;
        if (!rule.mayImport.has(m[1]!)) problems.push(`${pkg}: ${file.path} imports ${spec}: not allowed`);
      }
  }
  return problems;
}

/** The repository root, from this file's place in `packages/core/dist/test`. */
export const REPO_ROOT = resolve(dirname(new URL(import.meta.url).pathname), '../../../..');
