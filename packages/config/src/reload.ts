/**
 * Reloading a served configuration (docs/configuration.md, "Reload"): on SIGHUP, a change of the
 * file, or `reload()`, the file is validated whole (its policy tests included); the reloadable
 * settings that changed (the key, the certificate, the trust, the policy) are prepared, recorded
 * in the audit log, then applied at once: `listener.update()` for new handshakes,
 * `server.setPolicy()` for every channel. Settings that take a restart are reported, not applied.
 * On any error the last good configuration stays in force.
 */
import { EventEmitter } from 'node:events';
import { type StatWatcher, unwatchFile, watchFile } from 'node:fs';
import { dirname, resolve } from 'node:path';
import {
  createError,
  type KeyPair,
  type ListeningServer,
  type SecureIpcError,
  toSecureIpcError,
} from '@secure-ipc/core';
import { type ConfigChange, diffConfigs } from './diff.js';
import { type ConfiguredServe, configHash, gitCommitOf, loadIdentity, readConfig, trustOf } from './load.js';
import type { Config } from './schema.js';
import { policyOf, validateConfigText } from './validate.js';

/** Options of `watchConfig`. */
export interface WatchConfigOptions {
  /** Reload on this signal (default `SIGHUP`; null: none). */
  readonly signal?: NodeJS.Signals | null;
  /** Check the file for changes this often, in ms (default 1,000; 0: do not watch it). */
  readonly pollIntervalMs?: number;
  /** Where `passphraseEnv` is read (default `process.env`). */
  readonly env?: Readonly<Record<string, string | undefined>>;
}

/** What one reload did. */
export interface ConfigReload {
  /** The hash of the file's configuration. */
  readonly hash: string;
  /** The hash of the configuration in force now (differs from `hash` while a restart is pending). */
  readonly effectiveHash: string;
  /** The hash in force before. */
  readonly previousHash: string;
  /**
   * The settings applied, as the handbook names them (`policy.roles`, `trust.keys`); `identity.key`
   * and `identity.certificate` when the key or the certificate read from their files differ
   * (a file replaced in place counts).
   */
  readonly applied: readonly string[];
  /** What changed but takes a restart (not applied): the changes' paths. */
  readonly restartNeeded: readonly string[];
  /** The git commit of the file's work tree, when it is in one. */
  readonly commit: string | undefined;
  /** Every difference between the configuration in force before and the file (`diffConfigs`). */
  readonly changes: readonly ConfigChange[];
}

/** Events of a config watcher. */
export interface ConfigWatcherEvents {
  /** A reload went through (possibly with nothing to apply). */
  reload: [reload: ConfigReload];
  /** A reload was refused (SIPC_ERR_INVALID_CONFIG with `details.problems`, or what loading failed with); the last good configuration stays. */
  reloadError: [error: SecureIpcError];
}

/** A served configuration that follows its file. */
export interface ConfigWatcher extends EventEmitter<ConfigWatcherEvents> {
  /** The configuration in force (the start's, with each reload's reloadable settings). */
  readonly config: Config;
  /** Its hash. */
  readonly hash: string;
  /** Reload now (what SIGHUP and a file change do); rejects when refused, as `reloadError` says. */
  reload(): Promise<ConfigReload>;
  /** Stop following the file and the signal. */
  close(): void;
}

/** The value at a dotted path (a reloadable setting's; never under a list or a map). */
function at(config: unknown, path: string): unknown {
  let v = config;
  for (const k of path.split('.')) v = (v as Record<string, unknown> | undefined)?.[k];
  return v;
}

/** `config` with the value at dotted `path` replaced by `value` (removed when undefined), copied on the way. */
function withValue(config: Record<string, unknown>, path: string, value: unknown): Record<string, unknown> {
  const [head, ...rest] = path.split('.') as [string, ...string[]];
  const out = { ...config };
  const next =
    rest.length === 0
      ? value
      : withValue((config[head] as Record<string, unknown> | undefined) ?? {}, rest.join('.'), value);
  if (next === undefined) delete out[head];
  else out[head] = structuredClone(next);
  return out;
}

const sameBytes = (a: Uint8Array | undefined, b: Uint8Array | undefined) =>
  a === undefined || b === undefined ? a === b : Buffer.from(a).equals(Buffer.from(b));

/**
 * Follow `loaded`'s file for `server` (what `serve(loaded)` returned): reload on SIGHUP and when
 * the file changes. Close it before the server.
 */
export function watchConfig(
  server: ListeningServer,
  loaded: ConfiguredServe,
  options: WatchConfigOptions = {},
): ConfigWatcher {
  return new Watcher(server, loaded, options);
}

class Watcher extends EventEmitter<ConfigWatcherEvents> implements ConfigWatcher {
  readonly #server: ListeningServer;
  readonly #loaded: ConfiguredServe;
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #file: string;
  readonly #signal: NodeJS.Signals | null;
  readonly #onSignal = () => this.#triggered();
  #watching: StatWatcher | undefined;
  #config: Config;
  #hash: string;
  #keyPair: KeyPair;
  #certificate: Uint8Array | undefined;
  #queue: Promise<unknown> = Promise.resolve();
  #closed = false;

  constructor(server: ListeningServer, loaded: ConfiguredServe, o: WatchConfigOptions) {
    super();
    const interval = o.pollIntervalMs ?? 1000;
    if (!Number.isSafeInteger(interval) || interval < 0)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'pollIntervalMs must be an integer >= 0');
    this.#server = server;
    this.#loaded = loaded;
    this.#env = o.env ?? process.env;
    this.#file = loaded.config.file;
    this.#config = loaded.config.config;
    this.#hash = loaded.config.hash;
    this.#keyPair = loaded.keyPair;
    this.#certificate = loaded.config.certificate?.bytes;
    this.#signal = o.signal === undefined ? 'SIGHUP' : o.signal;
    if (this.#signal !== null) process.on(this.#signal, this.#onSignal);
    if (interval > 0)
      this.#watching = watchFile(this.#file, { interval, persistent: false }, (cur, prev) => {
        if (cur.mtimeMs !== prev.mtimeMs || cur.size !== prev.size || cur.ino !== prev.ino) this.#triggered();
      });
  }

  get config(): Config {
    return this.#config;
  }

  get hash(): string {
    return this.#hash;
  }

  close(): void {
    this.#closed = true;
    if (this.#signal !== null) process.off(this.#signal, this.#onSignal);
    if (this.#watching !== undefined) unwatchFile(this.#file);
    this.#watching = undefined;
  }

  #triggered(): void {
    // Errors are told as reloadError; nothing escapes into the signal or the file watcher.
    this.reload().catch(() => {});
  }

  reload(): Promise<ConfigReload> {
    const next = this.#queue.then(() => this.#reload());
    this.#queue = next.catch(() => {});
    return next;
  }

  async #reload(): Promise<ConfigReload> {
    if (this.#closed) throw createError('SIPC_ERR_INVALID_ARGUMENT', 'The config watcher is closed');
    try {
      return await this.#apply();
    } catch (err) {
      const e = toSecureIpcError(err, 'SIPC_ERR_INVALID_CONFIG');
      if (this.listenerCount('reloadError') > 0) this.emit('reloadError', e);
      throw e;
    }
  }

  async #apply(): Promise<ConfigReload> {
    const file = this.#file;
    const next = await readConfig(file);
    const base = dirname(resolve(file));
    const path = (p: string) => resolve(base, p);
    const changes = diffConfigs(this.#config, next);
    const settings = [...new Set(changes.filter((c) => c.reloadable).map((c) => c.setting))];
    const restartNeeded = [...new Set(changes.filter((c) => !c.reloadable).map((c) => c.path))];
    // The configuration in force after: the old one with the reloadable settings of the new.
    let effective = this.#config as unknown as Record<string, unknown>;
    for (const s of settings) effective = withValue(effective, s, at(next, s));
    const config = effective as unknown as Config;
    if (restartNeeded.length > 0) {
      // Mixed with the settings kept until a restart, it must still hold as a whole (a profile
      // weakening removed while what it allowed stays, say).
      const v = validateConfigText(JSON.stringify(config), `${file} (in force until a restart)`, 'jsonc');
      if (v.config === undefined)
        throw createError(
          'SIPC_ERR_INVALID_CONFIG',
          `${file}: its reloadable settings do not hold with the settings in force until a restart (${restartNeeded.join(', ')}); restart to apply it (${v.problems.length} problem${v.problems.length === 1 ? '' : 's'}, first: ${v.problems[0]?.message ?? ''})`,
          { details: { problems: v.problems } },
        );
    }
    // Prepared whole before anything is applied: a key or a certificate that does not load leaves
    // everything as it was. The key and the certificate are read again on every reload: a file
    // rotated in place (a renewed certificate at the same path) is a change too.
    const identity = await loadIdentity(config, path, this.#env, file);
    const keyChanged = !sameBytes(identity.keyPair.publicKey, this.#keyPair.publicKey);
    const certChanged = !sameBytes(identity.certificate?.bytes, this.#certificate);
    const trustChanged = settings.some((s) => s.startsWith('trust.'));
    const policyChanged = settings.some((s) => s.startsWith('policy.'));
    const trust = trustChanged ? trustOf(config, this.#loaded.config.revocations) : undefined;
    const policy = policyChanged ? policyOf(config) : undefined;
    const applied = [
      ...new Set([
        ...settings.filter((s) => !s.startsWith('identity.')),
        ...(keyChanged ? ['identity.key'] : []),
        ...(certChanged ? ['identity.certificate'] : []),
      ]),
    ].sort();
    const hash = configHash(next);
    const effectiveHash = configHash(config);
    const commit = await gitCommitOf(file);
    const reload: ConfigReload = {
      hash,
      effectiveHash,
      previousHash: this.#hash,
      applied,
      restartNeeded,
      commit,
      changes,
    };
    // Recorded before it applies: with an audit log that cannot record, nothing changes.
    await this.#loaded.config.auditLog?.append({
      type: 'config.reload',
      fields: {
        hash,
        effectiveHash,
        previousHash: this.#hash,
        applied: [...applied],
        restartNeeded: [...restartNeeded],
        ...(commit ? { commit } : {}),
      },
    });
    if (keyChanged || certChanged || trust !== undefined)
      this.#server.listener.update({
        ...(keyChanged ? { keyPair: identity.keyPair } : {}),
        ...(certChanged
          ? { payload: identity.certificate ? { cert: identity.certificate.bytes } : undefined }
          : {}),
        ...(trust ? { trust } : {}),
      });
    if (policy !== undefined) this.#server.setPolicy(policy);
    this.#keyPair = identity.keyPair;
    this.#certificate = identity.certificate?.bytes;
    this.#config = config;
    this.#hash = effectiveHash;
    if (this.listenerCount('reload') > 0) this.emit('reload', reload);
    return reload;
  }
}
