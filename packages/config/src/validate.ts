/**
 * Validating a configuration's text (docs/configuration.md, "Validation"): syntax, the schema,
 * the checks the schema cannot express (key sources, role references, tests), the profile's
 * rules and the policy tests. Every problem is reported with its place in the file; nothing is
 * read but the text (files the configuration names are read by `loadConfig`).
 */
import { createPolicy, decodeKey, type Policy, type PolicyAction } from '@secure-ipc/core';
import { Settings } from 'typebox/system';
import { Value } from 'typebox/value';
import { PROFILE_RULES, type ProfileName, profileRules } from './profiles.js';
import { type Config, ConfigSchema, type KeySourceConfig } from './schema.js';
import { type ConfigFormat, formatOf, parseSource, type SourcePosition } from './source.js';

/** One problem of a configuration. */
export interface ConfigProblem {
  /** The file. */
  readonly file: string;
  /** Where in it. */
  readonly line: number;
  /** Where in the line. */
  readonly column: number;
  /** The JSON pointer of the setting (`/endpoints/0/listen`), `` for the whole file. */
  readonly pointer: string;
  /** What is wrong. */
  readonly message: string;
  /** The profile rule broken, when it is one. */
  readonly rule?: string;
}

/** The outcome of `validateConfigText`. */
export interface ConfigValidation {
  /** The configuration, when there is no problem. */
  readonly config: Config | undefined;
  /** Every problem found, in file order. */
  readonly problems: readonly ConfigProblem[];
  /** The policy tests run, and how many passed (0 when the configuration did not get that far). */
  readonly tests: { readonly run: number; readonly passed: number };
}

/** `file:line:col: message`, as `secure-ipc config validate` prints a problem. */
export function formatProblem(p: ConfigProblem): string {
  return `${p.file}:${p.line}:${p.column}: ${p.message}`;
}

/** @internal The JSON pointer of a path into the configuration (`/endpoints/0/listen`). */
export const pointerOf = (path: readonly (string | number)[]) =>
  path.map((s) => `/${String(s).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('');

const pathOf = (pointer: string): (string | number)[] =>
  pointer === ''
    ? []
    : pointer
        .slice(1)
        .split('/')
        .map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'))
        .map((s) => (/^(0|[1-9][0-9]*)$/.test(s) ? Number(s) : s));

const SECRET_NAMES = new Set(['secretKey', 'privateKey', 'seed', 'passphrase', 'password']);

/** Validate a configuration's `text`, read from `file` (whose extension gives the format unless `format` does). */
export function validateConfigText(text: string, file: string, format?: ConfigFormat): ConfigValidation {
  const fmt = format ?? formatOf(file);
  const problems: ConfigProblem[] = [];
  const report = (at: SourcePosition, path: readonly (string | number)[], message: string, rule?: string) =>
    problems.push({
      file,
      line: at.line,
      column: at.column,
      pointer: pointerOf(path),
      message,
      ...(rule ? { rule } : {}),
    });
  if (fmt === undefined) {
    report({ line: 1, column: 1 }, [], 'unknown format: name the file .json, .jsonc or .toml');
    return { config: undefined, problems, tests: { run: 0, passed: 0 } };
  }
  const source = parseSource(text, fmt);
  for (const e of source.syntaxErrors) report(e.position, [], e.message);
  if (source.syntaxErrors.length > 0) return { config: undefined, problems, tests: { run: 0, passed: 0 } };
  const at = (path: readonly (string | number)[]) => source.locate(path);
  const value = source.value;

  // A secret written inline is refused by name, before the schema says "additional property".
  walk(value, [], (path, key) => {
    if (SECRET_NAMES.has(key))
      report(
        at(path),
        path,
        `${key}: secrets are never written in a configuration; use identity.key's keystore, encryptedFile or file`,
      );
  });
  const errors = schemaErrors(value);
  const unions = new Set(errors.filter((e) => e.keyword === 'anyOf').map((e) => e.instancePath));
  for (const e of errors) {
    if (e.keyword === 'boolean') continue; // the additionalProperties echo of the error below
    // A union's branches each fail: say it once, with the choices when they are constants.
    if (unions.has(e.instancePath) && e.keyword !== 'anyOf') continue;
    const path = pathOf(e.instancePath);
    if (e.keyword === 'anyOf') {
      const choices = literalChoices(e.schemaPath);
      const name = path.length === 0 ? '(file)' : pointerOf(path).slice(1);
      report(at(path), path, `${name}: ${choices ? `must be one of ${choices}` : e.message}`);
      continue;
    }
    if (e.keyword === 'additionalProperties') {
      for (const extra of (e.params as { additionalProperties?: string[] }).additionalProperties ?? []) {
        if (SECRET_NAMES.has(extra)) continue;
        report(at([...path, extra]), [...path, extra], `${extra}: unknown setting`);
      }
      continue;
    }
    if (e.keyword === 'required') {
      for (const missing of (e.params as { requiredProperties?: string[] }).requiredProperties ?? [])
        report(at(path), [...path, missing], `${missing}: required`);
      continue;
    }
    const name = path.length === 0 ? '(file)' : pointerOf(path).slice(1);
    report(at(path), path, `${name}: ${e.message}`);
  }
  if (problems.length > 0) return finish(problems, undefined, { run: 0, passed: 0 });
  const config = value as Config;

  // What the schema cannot say.
  keySource(config.identity.key, ['identity', 'key'], at, report);
  if (config.outbox !== undefined) keySource(config.outbox.key, ['outbox', 'key'], at, report);
  const roles = new Set(Object.keys(config.policy.roles));
  const roleRefs = (list: readonly string[] | undefined, path: (string | number)[]) =>
    (list ?? []).forEach((r, i) => {
      if (!roles.has(r))
        report(at([...path, i]), [...path, i], `role ${JSON.stringify(r)} is not defined in policy.roles`);
    });
  roleRefs(config.policy.defaultRoles, ['policy', 'defaultRoles']);
  for (const [i, p] of (config.policy.peers ?? []).entries())
    roleRefs(p.roles, ['policy', 'peers', i, 'roles']);
  const names = new Set<string>();
  config.endpoints.forEach((e, i) => {
    if (names.has(e.name))
      report(at(['endpoints', i, 'name']), ['endpoints', i, 'name'], `endpoint name ${e.name} is used twice`);
    names.add(e.name);
  });
  for (const [i, k] of (config.trust.keys ?? []).entries()) checkKey(k, ['trust', 'keys', i], at, report);
  for (const [i, k] of (config.trust.authorities ?? []).entries())
    checkKey(k, ['trust', 'authorities', i], at, report);
  const known = new Set(PROFILE_RULES.map((r) => r.id));
  config.weakens?.forEach((w, i) => {
    if (!known.has(w.rule))
      report(at(['weakens', i, 'rule']), ['weakens', i, 'rule'], `unknown profile rule ${w.rule}`);
  });

  // The profile, every endpoint, whatever the OS.
  const profile: ProfileName = config.profile ?? 'baseline';
  const weakened = new Set((config.weakens ?? []).map((w) => w.rule));
  for (const rule of profileRules(profile)) {
    if (weakened.has(rule.id)) continue;
    for (const v of rule.check(config)) report(at(v.path), v.path, `${v.message} [${rule.id}]`, rule.id);
  }

  // The policy tests, on the policy as it would apply.
  const tests = runPolicyTests(config, at, report);
  return finish(problems, config, tests);
}

/** Most schema problems reported for one file (TypeBox buffers at most this many). */
export const MAX_SCHEMA_PROBLEMS = 256;

/** TypeBox's errors for `value`, up to MAX_SCHEMA_PROBLEMS (its own cap, 8, is lifted for the call only). */
function schemaErrors(value: unknown) {
  const before = Settings.Get().maxErrors;
  Settings.Set({ maxErrors: MAX_SCHEMA_PROBLEMS });
  try {
    return [...Value.Errors(ConfigSchema, value)];
  } finally {
    Settings.Set({ maxErrors: before });
  }
}

/** The constants of the union at `schemaPath` (`#/properties/...`), as `a, b or c`; undefined otherwise. */
function literalChoices(schemaPath: string): string | undefined {
  let node: unknown = ConfigSchema;
  for (const seg of pathOf(schemaPath.replace(/^#/, '')))
    node = (node as Record<string | number, unknown>)?.[seg];
  const branches = (node as { anyOf?: { const?: unknown }[] } | undefined)?.anyOf;
  if (!branches?.every((b) => b.const !== undefined)) return undefined;
  const names = branches.map((b) => JSON.stringify(b.const));
  return names.length === 1 ? names[0] : `${names.slice(0, -1).join(', ')} or ${names[names.length - 1]}`;
}

function finish(
  problems: ConfigProblem[],
  config: Config | undefined,
  tests: { run: number; passed: number },
): ConfigValidation {
  problems.sort((a, b) => a.line - b.line || a.column - b.column);
  return { config: problems.length === 0 ? config : undefined, problems, tests };
}

type Report = (
  at: SourcePosition,
  path: readonly (string | number)[],
  message: string,
  rule?: string,
) => void;
type Locate = (path: readonly (string | number)[]) => SourcePosition;

function walk(
  v: unknown,
  path: (string | number)[],
  visit: (path: (string | number)[], key: string) => void,
): void {
  if (Array.isArray(v)) {
    for (const [i, x] of v.entries()) walk(x, [...path, i], visit);
  } else if (v !== null && typeof v === 'object')
    for (const [k, x] of Object.entries(v)) {
      visit([...path, k], k);
      walk(x, [...path, k], visit);
    }
}

function keySource(k: KeySourceConfig, path: (string | number)[], at: Locate, report: Report): void {
  const given = (['keystore', 'encryptedFile', 'file'] as const).filter((n) => k[n] !== undefined);
  if (given.length !== 1)
    report(
      at(path),
      path,
      `${path.join('.')}: exactly one of keystore, encryptedFile or file (${given.length} given)`,
    );
  const passphrases = [k.passphraseEnv, k.passphraseFile].filter((p) => p !== undefined).length;
  if (k.encryptedFile !== undefined && passphrases !== 1)
    report(
      at([...path, 'encryptedFile']),
      [...path, 'encryptedFile'],
      'encryptedFile needs exactly one of passphraseEnv or passphraseFile',
    );
  if (k.encryptedFile === undefined && passphrases > 0)
    report(at(path), path, 'passphraseEnv and passphraseFile go with encryptedFile');
}

function checkKey(text: string, path: (string | number)[], at: Locate, report: Report): void {
  try {
    decodeKey(text);
  } catch (err) {
    report(at(path), path, `not a public key: ${(err as Error).message}`);
  }
}

/** A configuration's policy (core's createPolicy of its `policy`). */
export function policyOf(config: Config): Policy {
  return createPolicy({
    roles: config.policy.roles,
    ...(config.policy.peers ? { peers: config.policy.peers } : {}),
    ...(config.policy.defaultRoles ? { defaultRoles: config.policy.defaultRoles } : {}),
  });
}

function runPolicyTests(config: Config, at: Locate, report: Report): { run: number; passed: number } {
  const tests = config.tests ?? [];
  if (tests.length === 0) return { run: 0, passed: 0 };
  const policy = policyOf(config);
  let passed = 0;
  tests.forEach((t, i) => {
    const path = ['tests', i];
    const actions = (['call', 'publish', 'subscribe', 'own'] as const).filter((a) => t[a] !== undefined);
    if (actions.length !== 1) {
      report(at(path), path, 'a test names exactly one of call, publish, subscribe or own');
      return;
    }
    const action: PolicyAction = actions[0]!;
    const roles = policy.rolesOf({
      remoteStaticKey: t.peer === undefined ? new Uint8Array(32) : decodeKey(t.peer),
      channelRoles: t.roles ?? [],
    });
    const allowed = policy.allows(roles, action, t[action]!);
    if ((t.expect === 'allow') === allowed) passed++;
    else
      report(
        at(path),
        path,
        `policy test ${t.name ? `${JSON.stringify(t.name)} ` : ''}failed: ${action} ${t[action]} is ${allowed ? 'allowed' : 'denied'}, expected ${t.expect}`,
      );
  });
  return { run: tests.length, passed };
}
