/**
 * The public API of every public package, as a snapshot that a test compares with the committed
 * one (`tools/repo-checks/api/<package>.json`): for each entry point of the package's `exports`
 * map, every exported name, whether it exists at run time, and a digest of its declaration in the
 * built `.d.ts` (printed without comments, so a doc edit is not an API change). An unintended
 * change fails the test; an intended one is written with `npm run api:update` and comes with a
 * changeset.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import ts from 'typescript';

/** One exported name of an entry point. */
export interface ApiExport {
  /** `value` if the name exists at run time (a function, class, constant), else `type`. */
  kind: 'value' | 'type';
  /** sha256 (first 16 hex digits) of the declaration(s) as printed from the `.d.ts`. */
  digest: string;
}

/** A package's API: entry point (`.`, `./transport`, ...) → exported name → what it is. */
export interface ApiSnapshot {
  package: string;
  entries: Record<string, Record<string, ApiExport>>;
}

interface Manifest {
  name: string;
  private?: boolean;
  exports?: Record<string, { types?: string; import?: string } | string>;
}

/** The public (non-private) packages under `packages/`, with their directories. */
export function publicPackages(root: string): { dir: string; manifest: Manifest }[] {
  return readdirSync(join(root, 'packages'))
    .sort()
    .map((d) => ({
      dir: join(root, 'packages', d),
      manifest: JSON.parse(readFileSync(join(root, 'packages', d, 'package.json'), 'utf8')) as Manifest,
    }))
    .filter((p) => p.manifest.private !== true);
}

const printer = ts.createPrinter({ removeComments: true });

function declarationText(checker: ts.TypeChecker, symbol: ts.Symbol): string {
  const target = symbol.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(symbol) : symbol;
  return (target.declarations ?? [])
    .map((d) => printer.printNode(ts.EmitHint.Unspecified, d, d.getSourceFile()))
    .join('\n');
}

/** Compute the snapshot of one package from its built `.d.ts` files and its runtime modules. */
export async function apiSnapshot(dir: string, manifest: Manifest): Promise<ApiSnapshot> {
  const entries: ApiSnapshot['entries'] = {};
  for (const [subpath, target] of Object.entries(manifest.exports ?? {}).sort(([a], [b]) =>
    a.localeCompare(b),
  )) {
    if (typeof target === 'string' || target.types === undefined || target.import === undefined) continue;
    if (subpath.includes('*')) continue; // patterns are listed by their concrete entries
    const dts = resolve(dir, target.types);
    const program = ts.createProgram([dts], {
      module: ts.ModuleKind.NodeNext,
      moduleResolution: ts.ModuleResolutionKind.NodeNext,
      target: ts.ScriptTarget.ES2022,
      types: [],
      noEmit: true,
    });
    const checker = program.getTypeChecker();
    const source = program.getSourceFile(dts);
    if (source === undefined)
      throw new Error(`${manifest.name}${subpath.slice(1)}: ${target.types} is missing (build first)`);
    const moduleSymbol = checker.getSymbolAtLocation(source);
    const runtime = new Set(
      Object.keys((await import(pathToFileURL(resolve(dir, target.import)).href)) as object),
    );
    const names: Record<string, ApiExport> = {};
    for (const symbol of moduleSymbol === undefined ? [] : checker.getExportsOfModule(moduleSymbol)) {
      const name = symbol.getName();
      const digest = createHash('sha256').update(declarationText(checker, symbol)).digest('hex').slice(0, 16);
      names[name] = { kind: runtime.has(name) ? 'value' : 'type', digest };
    }
    for (const name of runtime) if (!(name in names)) names[name] = { kind: 'value', digest: 'untyped' };
    entries[subpath] = Object.fromEntries(Object.entries(names).sort(([a], [b]) => a.localeCompare(b)));
  }
  return { package: manifest.name, entries };
}

/** Where a package's committed snapshot lives. */
export function snapshotPath(root: string, packageName: string): string {
  return join(root, 'tools/repo-checks/api', `${packageName.replace('@secure-ipc/', '')}.json`);
}

/** The differences between two snapshots, one line each (empty when equal). */
export function apiDifferences(committed: ApiSnapshot, current: ApiSnapshot): string[] {
  const out: string[] = [];
  const subpaths = new Set([...Object.keys(committed.entries), ...Object.keys(current.entries)]);
  for (const sub of [...subpaths].sort()) {
    const a = committed.entries[sub];
    const b = current.entries[sub];
    const where = `${current.package}${sub === '.' ? '' : sub.slice(1)}`;
    if (a === undefined) out.push(`${where}: new entry point`);
    else if (b === undefined) out.push(`${where}: entry point removed`);
    else
      for (const name of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort()) {
        const x = a[name];
        const y = b[name];
        if (x === undefined) out.push(`${where}: ${name} added (${y!.kind})`);
        else if (y === undefined) out.push(`${where}: ${name} removed`);
        else if (x.kind !== y.kind) out.push(`${where}: ${name} is now a ${y.kind}`);
        else if (x.digest !== y.digest) out.push(`${where}: ${name} changed its declaration`);
      }
  }
  return out;
}
