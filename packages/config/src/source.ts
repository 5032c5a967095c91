/**
 * Reading a configuration's text, JSONC or TOML, into a value plus a way back from a JSON
 * pointer to the line and column it came from, so that every problem, nested ones included, is
 * reported as `file:line:col: message`.
 */
import { type Node, type ParseError, parseTree, printParseErrorCode } from 'jsonc-parser';
import { parse as parseToml, TomlError } from 'smol-toml';

/** A place in a configuration file (1-based). */
export interface SourcePosition {
  /** Line, from 1. */
  readonly line: number;
  /** Column, from 1 (UTF-16 code units). */
  readonly column: number;
}

/** A configuration file's text, parsed. */
export interface ParsedSource {
  /** The value (undefined when the text does not parse). */
  readonly value: unknown;
  /** Syntax errors, with their positions. */
  readonly syntaxErrors: readonly { readonly position: SourcePosition; readonly message: string }[];
  /** Where the value at `path` (property names and array indexes) is, or the nearest enclosing one. */
  locate(path: readonly (string | number)[]): SourcePosition;
}

/** The formats a configuration may be written in. */
export type ConfigFormat = 'jsonc' | 'toml';

/** The format of `file` by its extension (`.json`, `.jsonc` or `.toml`); undefined for others. */
export function formatOf(file: string): ConfigFormat | undefined {
  const lower = file.toLowerCase();
  if (lower.endsWith('.toml')) return 'toml';
  if (lower.endsWith('.json') || lower.endsWith('.jsonc')) return 'jsonc';
  return undefined;
}

/** Offsets of line starts, for offset → line:column. */
function lineStarts(text: string): number[] {
  const starts = [0];
  for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) starts.push(i + 1);
  return starts;
}

function positionAt(starts: readonly number[], offset: number): SourcePosition {
  let lo = 0;
  let hi = starts.length - 1;
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1;
    if (starts[mid]! <= offset) lo = mid;
    else hi = mid - 1;
  }
  return { line: lo + 1, column: offset - starts[lo]! + 1 };
}

/** Parse `text` in `format`. */
export function parseSource(text: string, format: ConfigFormat): ParsedSource {
  return format === 'toml' ? parseTomlSource(text) : parseJsoncSource(text);
}

function parseJsoncSource(text: string): ParsedSource {
  const starts = lineStarts(text);
  const errors: ParseError[] = [];
  const tree = parseTree(text, errors, { allowTrailingComma: true, disallowComments: false });
  const syntaxErrors = errors.map((e) => ({
    position: positionAt(starts, e.offset),
    message: `syntax error: ${printParseErrorCode(e.error)}`,
  }));
  const value = errors.length === 0 && tree !== undefined ? nodeValue(tree) : undefined;
  return {
    value,
    syntaxErrors,
    locate(path) {
      let node = tree;
      let best = tree;
      for (const seg of path) {
        node = child(node, seg);
        if (node === undefined) break;
        best = node;
      }
      // A property's value: point at its key (the line a reader looks for).
      const at = best?.parent?.type === 'property' ? best.parent : best;
      return positionAt(starts, at?.offset ?? 0);
    },
  };
}

function child(node: Node | undefined, seg: string | number): Node | undefined {
  if (node === undefined) return undefined;
  if (node.type === 'object' && typeof seg === 'string') {
    const prop = node.children?.find((p) => p.children?.[0]?.value === seg);
    return prop?.children?.[1];
  }
  if (node.type === 'array' && typeof seg === 'number') return node.children?.[seg];
  return undefined;
}

/** The plain value of a jsonc node, without prototype-bearing keys turned into anything special. */
function nodeValue(node: Node): unknown {
  switch (node.type) {
    case 'object': {
      const o: Record<string, unknown> = Object.create(null);
      for (const p of node.children ?? []) {
        const [k, v] = p.children ?? [];
        if (k !== undefined && v !== undefined) o[k.value as string] = nodeValue(v);
      }
      return { ...o };
    }
    case 'array':
      return (node.children ?? []).map(nodeValue);
    default:
      return node.value;
  }
}

/**
 * TOML: smol-toml parses and reports syntax errors with their line and column; positions of
 * values come from a scan of the lines that tracks `[table]` and `[[array]]` headers and
 * `key = ` assignments (dotted and quoted keys included). A path inside an inline table or
 * array resolves to the line of its key.
 */
function parseTomlSource(text: string): ParsedSource {
  let value: unknown;
  const syntaxErrors: { position: SourcePosition; message: string }[] = [];
  try {
    value = toPlain(parseToml(text));
  } catch (err) {
    if (err instanceof TomlError)
      syntaxErrors.push({
        position: { line: err.line, column: err.column },
        message: `syntax error: ${err.message.split('\n')[0]!.replace(/^Invalid TOML document: /, '')}`,
      });
    else throw err;
  }
  const index = syntaxErrors.length === 0 ? tomlPositions(text) : new Map<string, SourcePosition>();
  return {
    value,
    syntaxErrors,
    locate(path) {
      for (let n = path.length; n >= 0; n--) {
        const at = index.get(pathKey(path.slice(0, n)));
        if (at !== undefined) return at;
      }
      return { line: 1, column: 1 };
    },
  };
}

/** smol-toml's dates and bigints are not configuration values: keep them visible to the schema. */
function toPlain(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(toPlain);
  if (v !== null && typeof v === 'object' && Object.getPrototypeOf(v) === Object.prototype) {
    const o: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) o[k] = toPlain(x);
    return o;
  }
  if (typeof v === 'bigint') return Number.isSafeInteger(Number(v)) ? Number(v) : v.toString();
  return v;
}

const pathKey = (path: readonly (string | number)[]) => JSON.stringify(path);

/** Split a TOML key (`a."b.c".d`) into its parts; undefined when it is not a plain key. */
function tomlKeyParts(key: string): string[] | undefined {
  const parts: string[] = [];
  let i = 0;
  const s = key.trim();
  while (i < s.length) {
    while (s[i] === ' ' || s[i] === '\t') i++;
    if (s[i] === '"' || s[i] === "'") {
      const q = s[i]!;
      const end = s.indexOf(q, i + 1);
      if (end < 0) return undefined;
      parts.push(s.slice(i + 1, end));
      i = end + 1;
    } else {
      let j = i;
      while (j < s.length && /[A-Za-z0-9_-]/.test(s[j]!)) j++;
      if (j === i) return undefined;
      parts.push(s.slice(i, j));
      i = j;
    }
    while (s[i] === ' ' || s[i] === '\t') i++;
    if (i < s.length) {
      if (s[i] !== '.') return undefined;
      i++;
    }
  }
  return parts.length > 0 ? parts : undefined;
}

function tomlPositions(text: string): Map<string, SourcePosition> {
  const index = new Map<string, SourcePosition>();
  const arrays = new Map<string, number>();
  let table: (string | number)[] = [];
  const lines = text.split('\n');
  for (let n = 0; n < lines.length; n++) {
    const line = lines[n]!;
    const trimmed = line.trimStart();
    const column = line.length - trimmed.length + 1;
    if (trimmed.startsWith('[[')) {
      const parts = tomlKeyParts(trimmed.slice(2, trimmed.indexOf(']]')));
      if (parts === undefined) continue;
      const base = [...resolveArrays(parts.slice(0, -1), arrays), parts[parts.length - 1]!];
      const k = pathKey(base);
      const i = (arrays.get(k) ?? -1) + 1;
      arrays.set(k, i);
      table = [...base, i];
      if (!index.has(k)) index.set(k, { line: n + 1, column });
      index.set(pathKey(table), { line: n + 1, column });
    } else if (trimmed.startsWith('[')) {
      const parts = tomlKeyParts(trimmed.slice(1, trimmed.indexOf(']')));
      if (parts === undefined) continue;
      table = resolveArrays(parts, arrays);
      index.set(pathKey(table), { line: n + 1, column });
    } else if (trimmed.length > 0 && !trimmed.startsWith('#')) {
      const eq = trimmed.indexOf('=');
      if (eq <= 0) continue;
      const parts = tomlKeyParts(trimmed.slice(0, eq));
      if (parts === undefined) continue;
      const full = [...table, ...parts];
      for (let p = table.length + 1; p <= full.length; p++) {
        const k = pathKey(full.slice(0, p));
        if (!index.has(k)) index.set(k, { line: n + 1, column });
      }
    }
  }
  return index;
}

/** A header path with the current element of every array of tables it goes through. */
function resolveArrays(parts: readonly string[], arrays: ReadonlyMap<string, number>): (string | number)[] {
  const out: (string | number)[] = [];
  for (const p of parts) {
    out.push(p);
    const i = arrays.get(pathKey(out));
    if (i !== undefined) out.push(i);
  }
  return out;
}
