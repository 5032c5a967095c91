/**
 * The bus configuration file (docs/bus.md section 12): what `secure-ipc bus serve --config FILE`
 * reads, as one JSON object of the broker's own settings — `policy`, `quotas`, `activation`,
 * `activationTimeoutMs`, `maxDroppedSignals` — with keys as text. Parsed strictly: an unknown key,
 * a wrong type or a bad value is SIPC_ERR_INVALID_ARGUMENT naming the file and the JSON pointer of
 * the setting. Nothing but the text is read; nothing is started.
 */
import { createError, createPolicy, type PolicyOptions, type RoleGrant } from '@secure-ipc/core';
import type { ActivationSpec } from './activation.js';
import { Activator } from './activation.js';
import { QuotaLedger, type QuotaOptions } from './quotas.js';

/** The most bytes a bus configuration file may have (1 MiB). */
export const MAX_BUS_CONFIG_BYTES = 1024 * 1024;
/** The longest activation wait a configuration may set: 10 minutes. */
export const MAX_ACTIVATION_TIMEOUT_MS = 600_000;

/** A parsed bus configuration: the broker options it sets. */
export interface BusConfig {
  readonly policy: PolicyOptions;
  readonly quotas?: QuotaOptions;
  readonly activation?: Readonly<Record<string, ActivationSpec>>;
  readonly activationTimeoutMs?: number;
  readonly maxDroppedSignals?: number;
}

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** The JSON pointer of `path` (RFC 6901). */
const pointer = (path: readonly (string | number)[]): string =>
  path.map((p) => `/${String(p).replaceAll('~', '~0').replaceAll('/', '~1')}`).join('') || '/';

class Reader {
  readonly #source: string;

  constructor(source: string) {
    this.#source = source;
  }

  fail(path: readonly (string | number)[], message: string, cause?: unknown): never {
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `${this.#source}: ${pointer(path)}: ${message}`, {
      ...(cause === undefined ? {} : { cause }),
    });
  }

  object(value: Json | undefined, path: (string | number)[], keys: readonly string[]): Record<string, Json> {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      this.fail(path, 'must be an object');
    for (const k of Object.keys(value))
      if (!keys.includes(k)) this.fail([...path, k], `unknown setting (expected one of ${keys.join(', ')})`);
    return value;
  }

  record(value: Json | undefined, path: (string | number)[]): Record<string, Json> {
    if (typeof value !== 'object' || value === null || Array.isArray(value))
      this.fail(path, 'must be an object');
    return value;
  }

  strings(value: Json | undefined, path: (string | number)[], nonEmpty = false): string[] {
    if (!Array.isArray(value) || !value.every((v) => typeof v === 'string'))
      this.fail(path, 'must be a list of strings');
    if (nonEmpty && value.length === 0) this.fail(path, 'must not be empty');
    return value as string[];
  }

  string(value: Json | undefined, path: (string | number)[]): string {
    if (typeof value !== 'string') this.fail(path, 'must be a string');
    return value;
  }

  int(value: Json | undefined, path: (string | number)[], max: number): number {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 1 || value > max)
      this.fail(path, `must be an integer from 1 to ${max}`);
    return value;
  }
}

const GRANT_KEYS = ['call', 'publish', 'subscribe', 'own'] as const;

function policyOf(r: Reader, value: Json | undefined): PolicyOptions {
  const p = r.object(value, ['policy'], ['roles', 'peers', 'defaultRoles']);
  const roles: Record<string, RoleGrant> = {};
  for (const [name, grant] of Object.entries(r.record(p.roles, ['policy', 'roles']))) {
    const g = r.object(grant, ['policy', 'roles', name], GRANT_KEYS);
    const out: Record<string, string[]> = {};
    for (const k of GRANT_KEYS)
      if (g[k] !== undefined) out[k] = r.strings(g[k], ['policy', 'roles', name, k]);
    roles[name] = out;
  }
  const peers =
    p.peers === undefined
      ? undefined
      : (() => {
          if (!Array.isArray(p.peers)) r.fail(['policy', 'peers'], 'must be a list');
          return p.peers.map((peer, i) => {
            const e = r.object(peer, ['policy', 'peers', i], ['key', 'roles']);
            return {
              key: r.string(e.key, ['policy', 'peers', i, 'key']),
              roles: r.strings(e.roles, ['policy', 'peers', i, 'roles']),
            };
          });
        })();
  const options: PolicyOptions = {
    roles,
    ...(peers === undefined ? {} : { peers }),
    ...(p.defaultRoles === undefined
      ? {}
      : { defaultRoles: r.strings(p.defaultRoles, ['policy', 'defaultRoles']) }),
  };
  try {
    createPolicy(options); // its own checks: known roles, patterns, keys
  } catch (err) {
    r.fail(['policy'], (err as Error).message, err);
  }
  return options;
}

function quotasOf(r: Reader, value: Json | undefined): QuotaOptions {
  const q = r.object(value, ['quotas'], ['peer', 'identity']);
  const out: Record<string, Record<string, number>> = {};
  for (const scope of ['peer', 'identity'] as const) {
    if (q[scope] === undefined) continue;
    const limits = r.object(q[scope], ['quotas', scope], ['names', 'matches', 'pendingReplies', 'bytes']);
    out[scope] = Object.fromEntries(
      Object.entries(limits).map(([k, v]) => [k, r.int(v, ['quotas', scope, k], Number.MAX_SAFE_INTEGER)]),
    );
  }
  try {
    new QuotaLedger(out);
  } catch (err) {
    r.fail(['quotas'], (err as Error).message, err);
  }
  return out;
}

function activationOf(r: Reader, value: Json | undefined): Record<string, ActivationSpec> {
  const out: Record<string, ActivationSpec> = {};
  for (const [name, spec] of Object.entries(r.record(value, ['activation']))) {
    const path = ['activation', name];
    const s = r.object(spec, path, ['command', 'env', 'cwd']);
    const command = r.strings(s.command, [...path, 'command'], true) as [string, ...string[]];
    const env =
      s.env === undefined
        ? undefined
        : Object.fromEntries(
            Object.entries(r.record(s.env, [...path, 'env'])).map(([k, v]) => [
              k,
              r.string(v, [...path, 'env', k]),
            ]),
          );
    out[name] = {
      command,
      ...(env === undefined ? {} : { env }),
      ...(s.cwd === undefined ? {} : { cwd: r.string(s.cwd, [...path, 'cwd']) }),
    };
  }
  try {
    new Activator(out, () => {}).close();
  } catch (err) {
    r.fail(['activation'], (err as Error).message, err);
  }
  return out;
}

/**
 * Parse a bus configuration's text; `source` names it in errors (a file name). Throws
 * SIPC_ERR_INVALID_ARGUMENT for text over {@link MAX_BUS_CONFIG_BYTES}, not JSON, or any setting
 * the broker would refuse.
 */
export function parseBusConfig(text: string, source = 'bus configuration'): BusConfig {
  const r: Reader = new Reader(source);
  if (Buffer.byteLength(text) > MAX_BUS_CONFIG_BYTES) r.fail([], `is over ${MAX_BUS_CONFIG_BYTES} bytes`);
  const json = ((): Json => {
    try {
      return JSON.parse(text) as Json;
    } catch (err) {
      r.fail([], `is not JSON: ${(err as Error).message}`, err);
    }
  })();
  const top = r.object(
    json,
    [],
    ['policy', 'quotas', 'activation', 'activationTimeoutMs', 'maxDroppedSignals'],
  );
  if (top.policy === undefined)
    r.fail(['policy'], 'is required (deny by default: the bus grants nothing without it)');
  return {
    policy: policyOf(r, top.policy),
    ...(top.quotas === undefined ? {} : { quotas: quotasOf(r, top.quotas) }),
    ...(top.activation === undefined ? {} : { activation: activationOf(r, top.activation) }),
    ...(top.activationTimeoutMs === undefined
      ? {}
      : {
          activationTimeoutMs: r.int(
            top.activationTimeoutMs,
            ['activationTimeoutMs'],
            MAX_ACTIVATION_TIMEOUT_MS,
          ),
        }),
    ...(top.maxDroppedSignals === undefined
      ? {}
      : { maxDroppedSignals: r.int(top.maxDroppedSignals, ['maxDroppedSignals'], 1_000_000) }),
  };
}
