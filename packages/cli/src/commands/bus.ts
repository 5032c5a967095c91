/**
 * `secure-ipc bus serve`, `bus names` and `bus monitor` (docs/bus.md section 12): run a bus broker
 * (@secure-ipc/bus) on any address, with the bus configuration file of `--config` (policy, quotas,
 * activation), reporting peers, owner changes, quota diagnostics and activations — never a body —
 * until SIGINT or SIGTERM, the policy reloaded on SIGHUP; list a bus's names with their owners
 * and queues, as `busctl list` does; print the metadata of what a broker routes, as
 * `dbus-monitor` does. @secure-ipc/bus is imported only when `bus` runs.
 */
import { stat } from 'node:fs/promises';
import type { Broker, BusClient, BusConfig, MonitorRecord } from '@secure-ipc/bus';
import { createPolicy, isSecureIpcError, keyFingerprint } from '@secure-ipc/core';
import { jsonOption, parse, positiveInt, required } from '../args.js';
import { clientOptions, withClient } from '../client-options.js';
import { readBoundedText } from '../config-file.js';
import {
  CliError,
  type CliIo,
  describeError,
  ExitCode,
  errorJSON,
  printable,
  type Report,
  reporter,
} from '../io.js';
import { describePeer, peerJSON } from '../peer-line.js';
import { credentialOptionsFrom, transportFor } from '../transports.js';
import { auditSettings, reportAudit, serverSetup, servingOptions, untilStopped } from './serve.js';

const busPackage = () => import('@secure-ipc/bus');

const OS_OPTIONS =
  '[--allow-uid UID ...] [--allow-gid GID ...] [--socket-mode 0600|0660|0666] [--socket-group GROUP] [--allow-sid SID|NAME ...]';

/** Usage lines. */
export const usage =
  `secure-ipc bus serve --listen ADDRESS --key FILE (--allow PUBKEY ... | --cert FILE --trust-ca PUBKEY ... [--revocations FILE]) --config FILE [--app-id ID] [--allow-remote] [--allow-unmarked-key] ${OS_OPTIONS} [--audit DIR --audit-origin ORIGIN [--audit-hash-key FILE] [--audit-required] [--audit-checkpoint-every N]] [--json]\n` +
  '  secure-ipc bus names ADDRESS --key FILE (--server-key PUBKEY | --cert FILE --trust-ca PUBKEY ...) [--identity] [--app-id ID] [--json] [--allow-unmarked-key] [--allow-uid UID ...] [--allow-gid GID ...] [--allow-sid SID|NAME ...]\n' +
  '  secure-ipc bus monitor ADDRESS --key FILE (--server-key PUBKEY | --cert FILE --trust-ca PUBKEY ...) [--count N] [--app-id ID] [--json] [--allow-unmarked-key] [--allow-uid UID ...] [--allow-gid GID ...] [--allow-sid SID|NAME ...]';

/** The subcommands (error lines name them: `secure-ipc bus serve: ...`). */
export const subcommands = ['serve', 'names', 'monitor'] as const;

/** Run the command; resolves with the exit code (for `serve`, once stopped). */
export async function run(argv: string[], io: CliIo, stop?: AbortSignal): Promise<number> {
  const [sub, ...rest] = argv;
  if (sub === 'serve') return serveBroker(rest, io, stop);
  if (sub === 'names') return listNames(rest, io);
  if (sub === 'monitor') return monitorBus(rest, io, stop);
  throw new CliError(
    `unknown bus subcommand ${JSON.stringify(sub ?? '')} (expected serve, names or monitor)`,
  );
}

/**
 * Refuse (exit 3) a bus configuration another user could have written: on POSIX the file must be
 * owned by this user or root and not writable by group or others — whoever can write it grants
 * roles on the bus. (Windows: the file's ACL is not checked; docs/bus.md section 12.)
 */
async function checkConfigOwner(file: string): Promise<void> {
  if (process.platform === 'win32') return;
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(file);
  } catch (err) {
    throw new CliError(`cannot read ${file}: ${(err as Error).message}`, ExitCode.KeyOrFile);
  }
  const uid = process.getuid?.();
  if ((st.mode & 0o022) !== 0)
    throw new CliError(
      `${file} is writable by ${st.mode & 0o002 ? 'others' : 'its group'} (mode ${(st.mode & 0o777).toString(8).padStart(4, '0')}): whoever can write it grants roles on the bus; chmod go-w ${file}`,
      ExitCode.KeyOrFile,
    );
  if (uid !== undefined && st.uid !== uid && st.uid !== 0)
    throw new CliError(
      `${file} is owned by uid ${st.uid}, not by this user (${uid}) or root: whoever owns it grants roles on the bus`,
      ExitCode.KeyOrFile,
    );
}

/** The bus configuration file, parsed (exit 3 unreadable, too large or writable by others; exit 2 invalid). */
async function readBusConfig(file: string): Promise<BusConfig> {
  const { MAX_BUS_CONFIG_BYTES, parseBusConfig } = await busPackage();
  await checkConfigOwner(file);
  const text = await readBoundedText(file, MAX_BUS_CONFIG_BYTES);
  try {
    return parseBusConfig(text, file);
  } catch (err) {
    throw new CliError((err as Error).message, ExitCode.Usage, { cause: err });
  }
}

/** Report what the broker does: owner changes, quota diagnostics, activations, local failures. */
function reportBroker(broker: Broker, report: Report): void {
  broker.on('nameOwnerChanged', ({ name, oldOwner, newOwner }) => {
    if (name.startsWith(':')) return; // a unique name: the peer's own join / leave, reported below
    report(
      { event: 'nameOwnerChanged', name, oldOwner: oldOwner || null, newOwner: newOwner || null },
      printable(`name ${name}: ${oldOwner || '(none)'} -> ${newOwner || '(none)'}`),
      'stderr',
    );
  });
  broker.on('quota', (d) =>
    report(
      { event: 'quota', ...d, osIdentity: d.osIdentity ?? null },
      printable(
        `quota: ${d.peer} (${d.peerId}${d.osIdentity ? `, ${d.osIdentity}` : ''}) over ${d.scope} ${d.quota} by ${d.over} (limit ${d.limit}, used ${d.used}, asked ${d.requested}): ${d.action}`,
      ),
      'stderr',
    ),
  );
  broker.on('activation', (e) => {
    const what =
      e.line !== undefined
        ? `activation ${e.name}: ${e.line}`
        : e.event === 'started'
          ? `activation ${e.name}: started (pid ${e.pid})`
          : `activation ${e.name}: ${e.event}${e.exit === undefined ? '' : ` (${e.exit})`}`;
    const { event, ...rest } = e;
    report({ event: 'activation', activation: event, ...rest }, printable(what), 'stderr');
  });
  broker.on('error', (err) =>
    report(
      { event: 'error', ...errorJSON(err as Error, 'bus serve') },
      `bus: ${describeError(err as Error)}`,
      'stderr',
    ),
  );
  const secure = broker.server.listener;
  secure.on('handshakeError', (err) =>
    report(
      { event: 'rejected', ...errorJSON(err, 'bus serve') },
      `rejected a connection: ${describeError(err)}`,
      'stderr',
    ),
  );
  secure.on('channel', (ch) => {
    report(
      { event: 'connected', peer: peerJSON(ch.remoteStaticKey, ch.peer, ch.roles) },
      `peer ${describePeer(ch.remoteStaticKey, ch.peer)} connected`,
      'stderr',
    );
    ch.once('close', (err, info) =>
      report(
        {
          event: 'closed',
          peer: { fingerprint: ch.fingerprint },
          reason: info.reason,
          ...(err ? errorJSON(err, 'bus serve') : {}),
        },
        `peer ${ch.fingerprint} closed (${info.reason}${err ? `: ${describeError(err)}` : ''})`,
        'stderr',
      ),
    );
  });
}

/** The settings of a reloaded file that need a restart: those that differ from the running ones. */
function restartNeeded(running: BusConfig, next: BusConfig): string[] {
  const keys = ['quotas', 'activation', 'activationTimeoutMs', 'maxDroppedSignals'] as const;
  return keys.filter((k) => JSON.stringify(running[k]) !== JSON.stringify(next[k]));
}

async function serveBroker(argv: string[], io: CliIo, stop?: AbortSignal): Promise<number> {
  const { values } = parse(argv, {
    ...servingOptions,
    config: { type: 'string' },
    ...jsonOption,
  });
  if (values['grant-witness'] !== undefined)
    throw new CliError('--grant-witness is for serve: a bus grants what its --config policy says');
  const report = reporter(io, values.json);
  const address = required(values.listen, 'listen');
  const keyFile = required(values.key, 'key');
  const configFile = required(values.config, 'config');
  if ((values['trust-ca'] ?? []).length === 0 && values.cert !== undefined)
    throw new CliError('--cert needs --trust-ca (the authorities whose certificates peers present)');
  const transport = transportFor(address, {
    allowRemote: values['allow-remote'] === true,
    ...credentialOptionsFrom(values),
  });
  const auditing = auditSettings(values);
  let running = await readBusConfig(configFile);
  const { serveBus } = await busPackage();
  const setup = await serverSetup(keyFile, values, auditing, io);
  const { keyPair, trust, payload, revocations, log, hashKey } = setup;
  try {
    const broker = await serveBus({
      transport,
      address,
      keyPair,
      trust,
      ...(payload ? { payload } : {}),
      ...(values['app-id'] !== undefined ? { appId: values['app-id'] } : {}),
      ...(revocations ? { revocations } : {}),
      ...(log
        ? { audit: { log, ...(hashKey ? { hashKey } : {}), required: auditing?.required === true } }
        : {}),
      ...running,
    });
    reportBroker(broker, report);
    report(
      { event: 'listening', address: broker.address, key: keyFingerprint(keyPair.publicKey) },
      `listening ${broker.address}`,
    );
    if (log) reportAudit(report, auditing!.dir, log);
    // SIGHUP: the file again; its policy applies to every later request, the rest at a restart.
    const reload = () => {
      void readBusConfig(configFile).then(
        (next) => {
          broker.setPolicy(createPolicy(next.policy));
          const restart = restartNeeded(running, next);
          running = { ...running, policy: next.policy };
          report(
            { event: 'reloaded', file: configFile, restartNeeded: restart },
            `reloaded the policy of ${configFile}${restart.length > 0 ? `; ${restart.join(', ')} apply at a restart` : ''}`,
            'stderr',
          );
        },
        (err: Error) =>
          report(
            { event: 'notReloaded', file: configFile, ...errorJSON(err, 'bus serve') },
            `${configFile} not reloaded (the running policy stays): ${describeError(err)}`,
            'stderr',
          ),
      );
    };
    process.on('SIGHUP', reload);
    const failed = new AbortController();
    broker.server.listener.on('error', (err) => {
      report(
        { event: 'listenerFailed', ...errorJSON(err, 'bus serve') },
        `the listener failed: ${describeError(err)}`,
        'stderr',
      );
      failed.abort();
    });
    const why = await untilStopped(stop ? AbortSignal.any([stop, failed.signal]) : failed.signal);
    process.off('SIGHUP', reload);
    report({ event: 'shutdown', signal: why }, `${why}: shutting down`, 'stderr');
    await broker.close();
    return failed.signal.aborted ? ExitCode.Address : ExitCode.Ok;
  } finally {
    await setup.close();
  }
}

/** One name's line: the name, its primary owner, and the owners queued behind it. */
interface NameRow {
  name: string;
  owner: string | null;
  queued: string[];
  identity?: { peer: string; osIdentity: string | null; roles: readonly string[] };
}

async function listNames(argv: string[], io: CliIo): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { ...clientOptions, identity: { type: 'boolean' }, ...jsonOption },
    true,
  );
  if (positionals.length !== 1) throw new CliError(`bus names takes one ADDRESS (got ${positionals.length})`);
  const address = positionals[0]!;
  const { BROKER_NAME, connectBus } = await busPackage();
  const rows = await withClient(
    address,
    values,
    io,
    async (bus: BusClient) => {
      const out: NameRow[] = [];
      for (const name of (await bus.listNames()).sort()) {
        const wellKnown = !name.startsWith(':');
        // A name released between the two calls has no queue any more: listed without an owner.
        const queue = wellKnown
          ? await bus.listQueuedOwners(name).catch((err: unknown) => {
              if (isSecureIpcError(err, 'SIPC_ERR_NAME_HAS_NO_OWNER')) return [];
              throw err;
            })
          : [name];
        const row: NameRow = { name, owner: queue[0] ?? null, queued: queue.slice(1) };
        // The broker (`bus`) is the server this command authenticated; a peer that left since
        // has no identity to show.
        if (values.identity === true && row.owner !== null && row.owner !== BROKER_NAME) {
          const id = await bus.identityOf(row.owner).catch((err: unknown) => {
            if (isSecureIpcError(err, 'SIPC_ERR_NAME_HAS_NO_OWNER')) return undefined;
            throw err;
          });
          if (id !== undefined)
            row.identity = { peer: id.peer, osIdentity: id.osIdentity ?? null, roles: id.roles };
        }
        out.push(row);
      }
      return out;
    },
    connectBus,
  );
  const report = reporter(io, values.json);
  for (const row of rows) {
    const who = row.identity
      ? ` ${row.identity.peer}${row.identity.osIdentity ? ` ${row.identity.osIdentity}` : ''}${row.identity.roles.length > 0 ? ` [${row.identity.roles.join(', ')}]` : ''}`
      : '';
    const queued = row.queued.length > 0 ? ` (queued: ${row.queued.join(' ')})` : '';
    report(
      { event: 'name', ...row },
      printable(
        row.name === row.owner ? `${row.name}${who}` : `${row.name} ${row.owner ?? '(none)'}${who}${queued}`,
      ),
    );
  }
  return ExitCode.Ok;
}

/**
 * The fields of a monitor record the broker sent, each kept only with its documented type (the
 * broker is authenticated, but what it sends is printed: nothing else goes through).
 */
function monitorFields(r: MonitorRecord): Record<string, string | number> {
  const raw = r as unknown as Record<string, unknown>;
  const out: Record<string, string | number> = {};
  for (const k of ['at', 'bytes'] as const)
    if (typeof raw[k] === 'number' && Number.isFinite(raw[k])) out[k] = raw[k];
  for (const k of ['kind', 'sender', 'destination', 'method', 'signal', 'name', 'code'] as const)
    if (typeof raw[k] === 'string') out[k] = raw[k];
  return out;
}

/** `2026-12-07T12:40:01.123Z call :1.3 -> :1.1 sync.echo 12 B`. */
function monitorLine(f: Record<string, string | number>): string {
  const at = typeof f.at === 'number' && Math.abs(f.at) <= 8.64e15 ? new Date(f.at).toISOString() : '?';
  const to = f.destination === undefined ? '' : ` -> ${f.destination}`;
  const what = f.method ?? f.signal ?? f.name ?? '?';
  const code = f.code === undefined ? '' : ` ${f.code}`;
  return `${at} ${f.kind ?? '?'} ${f.sender ?? '?'}${to} ${what} ${f.bytes ?? '?'} B${code}`;
}

async function monitorBus(argv: string[], io: CliIo, stop?: AbortSignal): Promise<number> {
  const { values, positionals } = parse(
    argv,
    { ...clientOptions, count: { type: 'string' }, ...jsonOption },
    true,
  );
  if (positionals.length !== 1)
    throw new CliError(`bus monitor takes one ADDRESS (got ${positionals.length})`);
  const address = positionals[0]!;
  const count = values.count === undefined ? undefined : positiveInt(values.count, 'count', 1);
  const { connectBus } = await busPackage();
  const report = reporter(io, values.json);
  return withClient(
    address,
    values,
    io,
    async (bus: BusClient) => {
      // Ends with a signal (0), the count reached (0) or the broker's close (1).
      const ended = new AbortController();
      stop?.addEventListener('abort', () => ended.abort(), { once: true });
      let finish!: (code: number) => void;
      const finished = new Promise<number>((resolve) => {
        finish = resolve;
      });
      bus.once('close', (error) => {
        if (ended.signal.aborted) return; // our own close, after the end
        report(
          { event: 'closed', ...(error === undefined ? {} : errorJSON(error, 'bus monitor')) },
          `the broker closed the channel${error === undefined ? '' : `: ${describeError(error)}`}`,
          'stderr',
        );
        finish(ExitCode.Failed);
      });
      let seen = 0;
      await bus.becomeMonitor((record) => {
        if (count !== undefined && seen >= count) return;
        seen++;
        const fields = monitorFields(record);
        report({ event: 'monitor', ...fields }, printable(monitorLine(fields)));
        if (seen === count) finish(ExitCode.Ok);
      });
      report(
        { event: 'monitoring', address, name: bus.name },
        printable(`monitoring ${address} as ${bus.name} (metadata only, never a body)`),
        'stderr',
      );
      const code = await Promise.race([finished, untilStopped(ended.signal).then(() => ExitCode.Ok)]);
      ended.abort(); // removes the signal handlers; the close that follows is ours
      return code;
    },
    connectBus,
  );
}
