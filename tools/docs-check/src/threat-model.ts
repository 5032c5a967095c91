// docs/threat-model.md as data that cannot rot: its threat tables, each row's mitigation links and
// the tests it names, checked against the repository.
//
//   threatRows(md)          every row of a table whose header is `| id | threat | mitigation | test |`
//   testRefs(cell)          the `path/to/file.test.ts` "exact title" pairs of a test cell
//   declaredTests(file)     the titles a test file declares, read with the TypeScript parser
//   headingSlugs(md)        the anchors GitHub gives a page's headings (for the mitigation links)
//   checkThreatModel(root)  every problem, as `docs/threat-model.md:LINE: T-XX-NN: what`
//
// How titles are read (no regular expression over source text: a title can span lines, be a
// concatenation, or be registered through a wrapper such as `asRoot(...)` or
// `(hasWg ? test : test.skip)(...)`):
// - a call registers a test when its callee is `test`, `test.serial`, `test.skip`, ... or a name
//   bound to an expression built from those (`const maybe = cond ? test : test.skip`), or a local
//   function that passes its first parameter to one of them as the title;
// - its first argument is evaluated when it is a string, a `+` of strings, or a template whose
//   expressions the checker knows: `${o.name}` (the conformance suite's transport name) reads as
//   `<transport>`, and `${c.row}` / `${c.title}` (any `X.field`) expand once per object literal of
//   the same file that has every field used (the abuse suite's table of cases). Anything else
//   (`${where}`) is not evaluated, so such a title can never be cited.
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import ts from 'typescript';
import { repoRoot } from './snippets.js';

/** The page this module checks. */
export const THREAT_MODEL = 'docs/threat-model.md';

/** What a title's `${o.name}` reads as in the threat model: the suite runs once per transport. */
export const TRANSPORT_PLACEHOLDER = '<transport>';

/** One row of a threat table. */
export interface ThreatRow {
  /** 1-based line in the page. */
  readonly line: number;
  readonly id: string;
  readonly threat: string;
  readonly mitigation: string;
  readonly test: string;
}

/** One test a row cites. */
export interface TestRef {
  /** Repository-relative path of the file that declares it. */
  readonly file: string;
  /** The title, exactly as the test runner shows it (conformance: with `<transport>`). */
  readonly title: string;
}

const HEADER = ['id', 'threat', 'mitigation', 'test'];

/** Split one Markdown table line into its cells (`\|` is a literal bar inside a cell). */
function cells(line: string): string[] {
  const body = line.trim().replace(/^\|/, '').replace(/\|$/, '');
  return body.split(/(?<!\\)\|/).map((c) => c.trim().replaceAll('\\|', '|'));
}

/** Every row of every threat table of `markdown` (a table whose header is id, threat, mitigation, test). */
export function threatRows(markdown: string): ThreatRow[] {
  const lines = markdown.split('\n');
  const rows: ThreatRow[] = [];
  for (let i = 0; i < lines.length; i++) {
    const head = lines[i] ?? '';
    if (!head.trim().startsWith('|')) continue;
    if (cells(head).join(',').toLowerCase() !== HEADER.join(',')) continue;
    // The delimiter row, then rows until the table ends.
    let j = i + 2;
    for (; j < lines.length && (lines[j] ?? '').trim().startsWith('|'); j++) {
      const c = cells(lines[j] ?? '');
      rows.push({
        line: j + 1,
        id: c[0] ?? '',
        threat: c[1] ?? '',
        mitigation: c[2] ?? '',
        test: c.slice(3).join('|'),
      });
    }
    i = j;
  }
  return rows;
}

/** True when a row's test cell says the threat is not (fully) mitigated: it starts with `residual`. */
export function isResidual(row: ThreatRow): boolean {
  return /^\**residual\b/i.test(row.test);
}

// `path/file.test.ts` "title" (the title runs to the next `"` that ends it: end, `;` or `<br>`).
const REF = /`([^`\s]+\.ts)`\s*"(.+?)"(?=\s*(?:$|;|<br>))/g;

/** The tests a test cell cites. */
export function testRefs(cell: string): TestRef[] {
  return [...cell.matchAll(REF)].map((m) => ({ file: m[1] ?? '', title: m[2] ?? '' }));
}

// ---------------------------------------------------------------------------------------------
// Test titles from source

const TEST_MODIFIERS = new Set(['serial', 'skip', 'only', 'failing', 'todo']);

/** True when `expr` is a name that registers a test, `name.serial` (etc.) of one, or `(cond ? one : another)`. */
function testish(expr: ts.Expression, names: ReadonlySet<string>): boolean {
  if (ts.isParenthesizedExpression(expr)) return testish(expr.expression, names);
  if (ts.isConditionalExpression(expr))
    return testish(expr.whenTrue, names) && testish(expr.whenFalse, names);
  if (ts.isIdentifier(expr)) return names.has(expr.text);
  if (ts.isPropertyAccessExpression(expr))
    return TEST_MODIFIERS.has(expr.name.text) && testish(expr.expression, names);
  return false;
}

/** A first argument as text, each `${…}` resolved by `span` (undefined: cannot be evaluated). */
function evaluate(expr: ts.Expression, span: (e: ts.Expression) => string | undefined): string | undefined {
  if (ts.isStringLiteral(expr) || ts.isNoSubstitutionTemplateLiteral(expr)) return expr.text;
  if (ts.isParenthesizedExpression(expr)) return evaluate(expr.expression, span);
  if (ts.isBinaryExpression(expr) && expr.operatorToken.kind === ts.SyntaxKind.PlusToken) {
    const l = evaluate(expr.left, span);
    const r = evaluate(expr.right, span);
    return l === undefined || r === undefined ? undefined : l + r;
  }
  if (ts.isTemplateExpression(expr)) {
    let out = expr.head.text;
    for (const s of expr.templateSpans) {
      const v = span(s.expression);
      if (v === undefined) return undefined;
      out += v + s.literal.text;
    }
    return out;
  }
  return undefined;
}

/** `X.field` of a template span: the object name and the field. */
function fieldOf(e: ts.Expression): { object: string; field: string } | undefined {
  return ts.isPropertyAccessExpression(e) && ts.isIdentifier(e.expression)
    ? { object: e.expression.text, field: e.name.text }
    : undefined;
}

/** The literal fields of every object literal in the file (`{ row: 1, title: '…' }`). */
function objectLiterals(source: ts.SourceFile): Array<Map<string, string>> {
  const out: Array<Map<string, string>> = [];
  const visit = (node: ts.Node): void => {
    if (ts.isObjectLiteralExpression(node)) {
      const fields = new Map<string, string>();
      for (const p of node.properties) {
        if (!ts.isPropertyAssignment(p) || !ts.isIdentifier(p.name)) continue;
        const v = ts.isNumericLiteral(p.initializer)
          ? p.initializer.text
          : evaluate(p.initializer, () => undefined);
        if (v !== undefined) fields.set(p.name.text, v);
      }
      if (fields.size > 0) out.push(fields);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return out;
}

/** Every title a template can stand for: `${o.name}` → `<transport>`, `${c.f}` over the file's objects. */
function titlesOf(expr: ts.Expression, objects: () => Array<Map<string, string>>): string[] {
  const name = (e: ts.Expression) => {
    const f = fieldOf(e);
    return f !== undefined && f.object === 'o' && f.field === 'name' ? TRANSPORT_PLACEHOLDER : undefined;
  };
  const direct = evaluate(expr, name);
  if (direct !== undefined) return [direct];
  if (!ts.isTemplateExpression(expr)) return [];
  // Fields of one other object (`c.row`, `c.title`): one title per object literal that has them all.
  const used = expr.templateSpans.map((s) => fieldOf(s.expression)).filter((f) => f && f.object !== 'o');
  const objectNames = new Set(used.map((f) => f!.object));
  if (objectNames.size !== 1) return [];
  const fields = used.map((f) => f!.field);
  const titles: string[] = [];
  for (const obj of objects()) {
    if (!fields.every((f) => obj.has(f))) continue;
    const t = evaluate(expr, (e) => name(e) ?? (fieldOf(e) ? obj.get(fieldOf(e)!.field) : undefined));
    if (t !== undefined) titles.push(t);
  }
  return titles;
}

/** The titles of every test `file` (repository-relative) declares. */
export function declaredTests(file: string, root = repoRoot): Set<string> {
  const text = readFileSync(join(root, file), 'utf8');
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  // Names that register a test: ava's default import (or the suite's `test` parameter), plus
  // names bound to expressions of them, plus local wrappers, found until nothing new appears.
  const names = new Set(['test']);
  const wrappers = new Set<string>();
  const registers = (callee: ts.Expression) =>
    testish(callee, names) || (ts.isIdentifier(callee) && wrappers.has(callee.text));
  let grew = true;
  while (grew) {
    grew = false;
    const visit = (node: ts.Node): void => {
      if (ts.isVariableDeclaration(node) && ts.isIdentifier(node.name) && node.initializer) {
        const init = node.initializer;
        if (!names.has(node.name.text) && testish(init, names)) {
          names.add(node.name.text);
          grew = true;
        }
        if (ts.isArrowFunction(init) || ts.isFunctionExpression(init)) wrapper(node.name.text, init);
      }
      if (ts.isFunctionDeclaration(node) && node.name) wrapper(node.name.text, node);
      ts.forEachChild(node, visit);
    };
    // A function whose first parameter is the title of a test it registers (directly or in a template).
    const wrapper = (name: string, fn: ts.SignatureDeclaration & { body?: ts.Node }) => {
      const first = fn.parameters[0]?.name;
      if (wrappers.has(name) || first === undefined || !ts.isIdentifier(first) || fn.body === undefined)
        return;
      let passes = false;
      const look = (node: ts.Node): void => {
        if (ts.isCallExpression(node) && registers(node.expression)) {
          const arg = node.arguments[0];
          if (arg && ts.isIdentifier(arg) && arg.text === first.text) passes = true;
        }
        ts.forEachChild(node, look);
      };
      look(fn.body);
      if (passes) {
        wrappers.add(name);
        grew = true;
      }
    };
    visit(source);
  }
  let objects: Array<Map<string, string>> | undefined;
  const titles = new Set<string>();
  const visit = (node: ts.Node): void => {
    if (ts.isCallExpression(node) && registers(node.expression) && node.arguments[0] !== undefined)
      for (const title of titlesOf(node.arguments[0], () => (objects ??= objectLiterals(source))))
        titles.add(title);
    ts.forEachChild(node, visit);
  };
  visit(source);
  return titles;
}

// ---------------------------------------------------------------------------------------------
// Links

/** GitHub's anchor for a heading's text (lower case; punctuation but `-` and `_` dropped; spaces → `-`). */
export function slug(heading: string): string {
  return heading
    .trim()
    .toLowerCase()
    .replace(/[^\p{L}\p{N}\s_-]/gu, '')
    .replace(/ /g, '-');
}

/** The anchors of every heading of `markdown` (duplicates get `-1`, `-2`, … as on GitHub). */
export function headingSlugs(markdown: string): Set<string> {
  const seen = new Map<string, number>();
  const out = new Set<string>();
  let fenced = false;
  for (const line of markdown.split('\n')) {
    if (/^\s*```/.test(line)) fenced = !fenced;
    const m = fenced ? null : /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (m === null) continue;
    const base = slug(m[1] ?? '');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n === 0 ? base : `${base}-${n}`);
  }
  return out;
}

// `[text](page.md#anchor)`: links from docs/threat-model.md to its sibling pages (or ../README.md).
const LINK = /\]\(([^)\s#]+\.md)?(?:#([^)\s]+))?\)/g;

/** The `(page, anchor)` of every Markdown link in a cell, relative to docs/. */
export function links(cell: string): Array<{ page: string | undefined; anchor: string | undefined }> {
  return [...cell.matchAll(LINK)].map((m) => ({ page: m[1], anchor: m[2] }));
}

// ---------------------------------------------------------------------------------------------
// The check

/** Every problem of the threat model at `page` (repository-relative), as `page:LINE: ID: what`. */
export function checkThreatModel(root = repoRoot, page = THREAT_MODEL): string[] {
  const markdown = readFileSync(join(root, page), 'utf8');
  const rows = threatRows(markdown);
  const problems: string[] = [];
  const at = (r: ThreatRow, what: string) =>
    problems.push(`${page}:${r.line}: ${r.id || '(no id)'}: ${what}`);
  if (rows.length === 0)
    problems.push(`${page}: no threat table (header | id | threat | mitigation | test |)`);
  const titlesCache = new Map<string, Set<string>>();
  const slugCache = new Map<string, Set<string> | undefined>();
  const pageDir = page.includes('/') ? page.slice(0, page.lastIndexOf('/')) : '';
  const ids = new Set<string>();
  for (const r of rows) {
    if (!/^T-[A-Z]+-\d{2}$/.test(r.id)) at(r, 'the id is not T-LAYER-NN');
    if (ids.has(r.id)) at(r, 'the id is used twice');
    ids.add(r.id);
    if (r.threat === '') at(r, 'no threat');
    if (r.mitigation === '') at(r, 'no mitigation');
    const residual = isResidual(r);
    const ls = links(r.mitigation);
    if (!residual && ls.length === 0) at(r, 'the mitigation links to no doc section');
    for (const l of ls) {
      const target = l.page === undefined ? page : join(pageDir, l.page).replaceAll('\\', '/');
      if (!slugCache.has(target))
        slugCache.set(
          target,
          existsSync(join(root, target)) ? headingSlugs(readFileSync(join(root, target), 'utf8')) : undefined,
        );
      const slugs = slugCache.get(target);
      if (slugs === undefined) at(r, `links to ${target}, which does not exist`);
      else if (l.anchor !== undefined && !slugs.has(l.anchor))
        at(r, `links to ${target}#${l.anchor}, which is no heading there`);
    }
    const refs = testRefs(r.test);
    if (!residual && refs.length === 0)
      at(r, 'names no test (`path/to/file.test.ts` "exact title") and is not marked residual');
    for (const ref of refs) {
      if (!existsSync(join(root, ref.file))) {
        at(r, `${ref.file} does not exist`);
        continue;
      }
      const titles = titlesCache.get(ref.file) ?? declaredTests(ref.file, root);
      titlesCache.set(ref.file, titles);
      if (!titles.has(ref.title)) at(r, `${ref.file} declares no test titled "${ref.title}"`);
    }
  }
  return problems;
}
