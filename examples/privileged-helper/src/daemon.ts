/**
 * The privileged helper: a daemon that runs as root (a system service; see README.md) and serves
 * one unprivileged app a narrow set of methods.
 *
 *   node dist/src/daemon.js /etc/privileged-helper/daemon.json
 *
 * A connection passes three gates, each of which must say yes (docs/deployment.md):
 *   1. the socket file's mode (`socketMode`) or the pipe's DACL: who may connect() at all;
 *   2. the OS user, checked at accept from the kernel's credentials (`allowedUids`) or the client's
 *      process token (`allowedSids`): a user not named is dropped before a byte is read;
 *   3. the Noise handshake (only the pinned `appKeys` / `adminKeys`), then the policy per method:
 *      role `app` may call `status.get`, role `admin` also `admin.shutdown`; anything else is
 *      SIPC_ERR_FORBIDDEN.
 *
 * It prints `listening ADDRESS` on stdout once ready and one line per connection, refusal and denied
 * call on stderr (never a key or a payload: keys appear as fingerprints). SIGTERM, SIGINT and
 * `admin.shutdown` close it cleanly (a Unix socket file is removed). A bad config, key file or
 * address is a typed error on stderr and exit code 2; a listener that fails later, exit code 1.
 *
 * serve() would do steps 2-3 in one call, but it does not surface the transport's refusals at
 * accept; a daemon wants them in its log, so this builds the same pipeline from its three parts
 * (transport.listen, secureListen, createServer), as the `secure-ipc serve` command does.
 */
import {
  createPolicy,
  createServer,
  type HandlerContext,
  type KeyPair,
  keyFingerprint,
  type PeerInfo,
  type Policy,
  readSecretKeyFile,
  secureListen,
  type Transport,
  zeroKeyPair,
} from '@secure-ipc/core';
import { type DaemonConfig, readDaemonConfig } from './config.js';
import type { HelperService, HelperStatus } from './service.js';
import { daemonTransport } from './transports.js';

const started = Date.now();
const log = (line: string) => process.stderr.write(`daemon: ${line}\n`);
const codeOf = (err: unknown) => (err as { code?: string }).code ?? String(err);

/** Who is at the other end, as the OS says: `uid 1000 pid 4242` or `sid S-1-5-21-... pid 4242`. */
function describePeer(peer: PeerInfo | undefined): string {
  if (peer === undefined) return 'an unknown peer';
  const who = peer.uid !== undefined ? `uid ${peer.uid}` : `sid ${peer.sid ?? 'unknown'}`;
  return `${who} pid ${peer.pid ?? 'unknown'}`;
}

/** The narrow policy: deny by default; `app` reads status, `admin` may also stop the daemon. */
function helperPolicy(config: DaemonConfig): Policy {
  return createPolicy({
    roles: { app: { call: ['status.get'] }, admin: { call: ['status.get', 'admin.shutdown'] } },
    peers: [
      ...config.appKeys.map((key) => ({ key, roles: ['app'] })),
      ...config.adminKeys.map((key) => ({ key, roles: ['admin'] })),
    ],
  });
}

function status(ctx: HandlerContext): HelperStatus {
  return {
    service: 'privileged-helper',
    pid: process.pid,
    uid: process.geteuid?.() ?? null,
    uptimeMs: Date.now() - started,
    caller: {
      peerId: ctx.peerId,
      roles: [...ctx.roles],
      uid: ctx.peer.uid ?? null,
      sid: ctx.peer.sid ?? null,
      pid: ctx.peer.pid ?? null,
    },
  };
}

/** Listen as `config` says; resolves once stopped (a signal or `admin.shutdown`). */
async function run(config: DaemonConfig): Promise<void> {
  const transport = await daemonTransport(config);
  const keyPair = await readSecretKeyFile(config.keyFile);
  try {
    await serveUntilStopped(config, transport, keyPair);
  } finally {
    zeroKeyPair(keyPair); // the secret leaves memory whatever happened
  }
}

async function serveUntilStopped(
  config: DaemonConfig,
  transport: Transport,
  keyPair: KeyPair,
): Promise<void> {
  const listener = await transport.listen(config.address);
  // Gate 2's refusals: an OS user not in allowedUids / allowedSids.
  listener.on('reject', (err, peer) => log(`refused at accept: ${describePeer(peer)} (${codeOf(err)})`));
  const secure = secureListen(listener, {
    keyPair,
    trust: { keys: [...config.appKeys, ...config.adminKeys] },
  });
  // Gate 3's refusals: an untrusted key, a failed or abandoned handshake.
  secure.on('handshakeFailed', (f) =>
    log(`handshake ${f.kind}: ${describePeer(f.peer)} key ${f.fingerprint ?? 'none'} (${f.code})`),
  );
  secure.on('channel', (ch) =>
    log(`connected: ${describePeer(ch.peer)} key ${keyFingerprint(ch.remoteStaticKey)}`),
  );
  const server = createServer<HelperService>({ policy: helperPolicy(config) });
  server.on('decision', (d) => {
    if (!d.allowed)
      log(`denied: ${d.action} ${d.what} for key ${d.who} (roles: ${d.roles.join(', ') || 'none'})`);
  });

  let stop: (why: string) => void = () => {};
  const stopped = new Promise<string>((resolve) => {
    stop = resolve;
  });
  server.handle('status.get', (_params, ctx) => status(ctx));
  server.handle('admin.shutdown', (_params, ctx) => {
    log(`admin.shutdown by key ${ctx.peerId}`);
    setImmediate(() => stop('admin.shutdown')); // after the answer is on its way
    return { stopping: true as const };
  });
  server.listen(secure);
  // A fatal accept error (the transport can no longer accept): stop, and exit 1 for the service manager.
  secure.on('error', (err) => {
    log(`the listener failed: ${codeOf(err)}`);
    process.exitCode = 1;
    stop('listener failed');
  });
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  console.log(`listening ${listener.address}`);

  log(`${await stopped}: shutting down`);
  await server.close(); // closes every channel gracefully, then the listener (and its socket file)
  log('stopped');
}

const configPath = process.argv[2];
if (configPath === undefined) {
  log('usage: node daemon.js CONFIG.json');
  process.exitCode = 2;
} else {
  try {
    await run(await readDaemonConfig(configPath));
  } catch (err) {
    log(`cannot start: ${codeOf(err)}: ${(err as Error).message}`);
    process.exitCode = 2;
  }
}
