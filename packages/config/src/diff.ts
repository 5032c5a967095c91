/**
 * The semantic difference of two configurations (docs/configuration.md, "Diff"): what
 * `secure-ipc config diff OLD NEW` prints and what a reload applies. Objects are compared key by
 * key, lists of values as sets (an order change is no change), lists of tables as sets of tables;
 * each change names the setting it belongs to (the handbook's row) and whether a reload applies
 * it, as the schema's `x-reloadable` says.
 */
import { canonicalJson } from './load.js';
import { type Config, ConfigSchema } from './schema.js';

/** One difference between two configurations. */
export interface ConfigChange {
  /**
   * Where, as the handbook writes paths: `limits.maxConnections`, `policy.roles.NAME.call` with the
   * name filled in (`policy.roles.app.call`), `trust.keys[]` for an element of a list.
   */
  readonly path: string;
  /** `added` and `removed` (a setting or a list element), or `changed` (a value replaced). */
  readonly kind: 'added' | 'removed' | 'changed';
  /** The old value (absent when added). */
  readonly before?: unknown;
  /** The new value (absent when removed). */
  readonly after?: unknown;
  /** The setting it belongs to: the nearest enclosing path the schema annotates (`policy.roles`). */
  readonly setting: string;
  /** A reload applies it (`x-reloadable`); false: it takes a restart. */
  readonly reloadable: boolean;
  /** The setting's security impact (`x-security`), when the schema gives one. */
  readonly security?: string;
}

interface SchemaNode {
  properties?: Record<string, SchemaNode>;
  patternProperties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  anyOf?: SchemaNode[];
  'x-reloadable'?: boolean;
  'x-security'?: string;
}

type Segment = { readonly key: string } | { readonly element: true };

const isTable = (v: unknown): v is Record<string, unknown> =>
  v !== null && typeof v === 'object' && !Array.isArray(v);

/** The schema nodes a value at `node` may match (a union's branches, or the node). */
const branches = (node: SchemaNode | undefined): SchemaNode[] =>
  node === undefined ? [] : node.anyOf ? node.anyOf.flatMap(branches) : [node];

function childOf(node: SchemaNode | undefined, seg: Segment): SchemaNode | undefined {
  for (const b of branches(node)) {
    if ('element' in seg) {
      if (b.items) return b.items;
      continue;
    }
    const p = b.properties?.[seg.key];
    if (p) return p;
    const map = Object.values(b.patternProperties ?? {})[0];
    if (map) return map;
  }
  return undefined;
}

/** The handbook's name of a path: map keys under a patternProperties node become NAME. */
function settingOf(segments: readonly Segment[]): {
  setting: string;
  reloadable: boolean;
  security?: string;
} {
  let node: SchemaNode | undefined = ConfigSchema as unknown as SchemaNode;
  let path = '';
  let found: { setting: string; reloadable: boolean; security?: string } | undefined;
  for (const seg of segments) {
    const named = !('element' in seg) && !branches(node).some((b) => b.properties?.[seg.key]);
    node = childOf(node, seg);
    path = 'element' in seg ? `${path}[]` : `${path === '' ? '' : `${path}.`}${named ? 'NAME' : seg.key}`;
    if (node?.['x-reloadable'] !== undefined)
      found = {
        setting: path,
        reloadable: node['x-reloadable'],
        ...(node['x-security'] === undefined ? {} : { security: node['x-security'] }),
      };
  }
  // A setting the schema does not annotate, in no annotated section: only a restart applies it.
  return found ?? { setting: path.split(/[.[]/)[0] ?? path, reloadable: false };
}

const render = (segments: readonly Segment[]) =>
  segments.reduce<string>((p, s) => ('element' in s ? `${p}[]` : p === '' ? s.key : `${p}.${s.key}`), '');

function walk(a: unknown, b: unknown, segments: Segment[], out: ConfigChange[]): void {
  const change = (kind: ConfigChange['kind'], before: unknown, after: unknown, at = segments) =>
    out.push({
      path: render(at),
      kind,
      ...(before === undefined ? {} : { before }),
      ...(after === undefined ? {} : { after }),
      ...settingOf(at),
    });
  if (a === undefined && b === undefined) return;
  if (a === undefined) return void change('added', undefined, b);
  if (b === undefined) return void change('removed', a, undefined);
  if (isTable(a) && isTable(b)) {
    for (const k of [...new Set([...Object.keys(a), ...Object.keys(b)])].sort())
      walk(a[k], b[k], [...segments, { key: k }], out);
    return;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    // Lists compare as multisets of canonical values: what left, what came.
    const count = (list: readonly unknown[]) => {
      const m = new Map<string, { value: unknown; n: number }>();
      for (const v of list) {
        const k = canonicalJson(v);
        const e = m.get(k);
        if (e) e.n++;
        else m.set(k, { value: v, n: 1 });
      }
      return m;
    };
    const ca = count(a);
    const cb = count(b);
    const at = [...segments, { element: true } as const];
    for (const [k, { value, n }] of ca)
      for (let i = cb.get(k)?.n ?? 0; i < n; i++) change('removed', value, undefined, at);
    for (const [k, { value, n }] of cb)
      for (let i = ca.get(k)?.n ?? 0; i < n; i++) change('added', undefined, value, at);
    return;
  }
  if (canonicalJson(a) !== canonicalJson(b)) change('changed', a, b);
}

/** Every difference from `before` to `after`, in path order. */
export function diffConfigs(before: Config, after: Config): ConfigChange[] {
  const out: ConfigChange[] = [];
  walk(before, after, [], out);
  return out;
}

/** The settings a reload can apply (annotated `x-reloadable: true`), as handbook paths. */
export function reloadableSettings(): string[] {
  const out: string[] = [];
  const visit = (node: SchemaNode | undefined, path: string) => {
    for (const b of branches(node)) {
      if (b['x-reloadable'] === true && path !== '') out.push(path);
      for (const [k, child] of Object.entries(b.properties ?? {}))
        visit(child, path === '' ? k : `${path}.${k}`);
      if (b.items) visit(b.items, `${path}[]`);
      for (const child of Object.values(b.patternProperties ?? {})) visit(child, `${path}.NAME`);
    }
  };
  visit(ConfigSchema as unknown as SchemaNode, '');
  return [...new Set(out)];
}
