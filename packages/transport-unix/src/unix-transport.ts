/** The Unix domain socket transport: `unix://`, `unix-abstract:` (Linux) and `local://` addresses. */
import net from 'node:net';
import path from 'node:path';
import {
  type AbortOptions,
  type Connection,
  createError,
  type Listener,
  type Transport,
} from '@secure-ipc/core';
import {
  abortError,
  awaitConnect,
  listenServer,
  socketConnection,
  TRANSPORT_BRAND,
} from '@secure-ipc/core/transport';
import { handedOverFd } from './activation.js';
import { type LocalDirectoryOptions, netPath, parseUnixAddress } from './address.js';
import { connectRetryingBusy, DEFAULT_CONNECT_BUSY_TIMEOUT_MS, validateBusyTimeout } from './busy-retry.js';
import {
  checkCredentials,
  mergePolicy,
  type UnixCredentialPolicy,
  validatePolicy,
} from './credential-policy.js';
import {
  bindOwnerOnly,
  clearStaleSocket,
  ensureSecureDirectory,
  ensureSystemDirectory,
  removeIfOurs,
  verifySecureDirectory,
  verifySystemSocket,
} from './hardening.js';
import { UnixListener, unixPeer } from './listener.js';
import { readPeerCredentials } from './peer-credentials.js';
import {
  directoryModeFor,
  mergeSocketAccess,
  type UnixSocketAccess,
  validateSocketAccess,
  widened,
} from './socket-access.js';

/** How long a connect waits out a full listen backlog. */
export interface UnixBusyOptions {
  /**
   * Milliseconds a connect keeps retrying while the server's listen backlog is full (Linux
   * EAGAIN), with a growing pause between attempts; 0 fails at once (default 5,000).
   */
  connectBusyTimeoutMs?: number | undefined;
}

/**
 * Options of `unixTransport()`: the credential policy of both sides, where `local://` lives, the
 * busy wait, and the access of the socket files it listens on.
 */
export interface UnixTransportOptions
  extends UnixCredentialPolicy,
    LocalDirectoryOptions,
    UnixBusyOptions,
    UnixSocketAccess {}

/** Options of `listen`: the policy applied to connecting clients and the socket's access, overriding the transport's. */
export interface UnixListenOptions extends AbortOptions, UnixCredentialPolicy, UnixSocketAccess {}

/** Options of `connect`: the policy applied to the server and the busy wait, overriding the transport's. */
export interface UnixConnectOptions extends AbortOptions, UnixCredentialPolicy, UnixBusyOptions {}

/**
 * A system endpoint's server must be root: unless the caller named who may serve (uids, gids or
 * any user), a client of `local://system/APP` accepts only uid 0, whatever its own uid.
 */
function systemServerPolicy(parsed: { kind: string; system?: boolean }, policy: UnixCredentialPolicy) {
  if (parsed.system !== true) return policy;
  if (policy.allowedUids !== undefined || policy.allowedGids !== undefined || policy.allowAnyUser === true)
    return policy;
  return { ...policy, allowedUids: [0] };
}

/** Why socketMode / socketGroup do not apply to an address kind. */
const ACCESS_ELSEWHERE = {
  abstract: 'unix-abstract: names (they have no file permissions)',
  local: 'local:// (a per-user directory no one else may enter)',
  inherited: 'systemd: sockets (set SocketMode= and SocketGroup= in the .socket unit)',
} as const;

function supportedSchemes(): readonly string[] {
  if (process.platform === 'win32') return [];
  return process.platform === 'linux'
    ? ['unix:', 'unix-abstract:', 'local:', 'systemd:']
    : ['unix:', 'local:'];
}

/** Listens and connects on Unix domain sockets, hardened (see the package README). */
export class UnixTransport implements Transport {
  /** Brand checked by core's `isTransport`. */
  readonly [TRANSPORT_BRAND] = true as const;
  /** Transport name reported in `PeerInfo.transport`. */
  readonly name = 'unix';
  /** Schemes handled on this OS. */
  readonly schemes: readonly string[] = supportedSchemes();
  readonly #options: UnixTransportOptions;

  /** Build a transport; the policy fields are validated here. */
  constructor(options: UnixTransportOptions = {}) {
    validatePolicy(options);
    validateBusyTimeout(options.connectBusyTimeoutMs);
    validateSocketAccess(options);
    this.#options = { ...options };
  }

  #platformCheck(): void {
    if (process.platform === 'win32') {
      throw createError(
        'SIPC_ERR_UNSUPPORTED_PLATFORM',
        'transport-unix does not run on Windows; use transport-win',
      );
    }
  }

  /** Bind `address` (creating and verifying its directory) and accept connections from allowed users. */
  async listen(address: string, options: UnixListenOptions = {}): Promise<Listener> {
    this.#platformCheck();
    validatePolicy(options);
    validateSocketAccess(options);
    if (options.signal?.aborted) throw abortError(options);
    const parsed = parseUnixAddress(address, this.#options);
    const policy = mergePolicy(this.#options, options);
    const access = mergeSocketAccess(this.#options, options);
    const where = parsed.kind === 'path' ? (parsed.local ? 'local' : undefined) : parsed.kind;
    if ((widened(access) || access.socketGroup !== undefined) && where !== undefined)
      throw createError(
        'SIPC_ERR_INVALID_ARGUMENT',
        `socketMode and socketGroup apply to unix:// socket paths only, not to ${ACCESS_ELSEWHERE[where]}`,
      );
    const server = net.createServer({ pauseOnConnect: false });
    if (parsed.kind === 'inherited') {
      const fd = handedOverFd(address, parsed.name);
      // net.Server#listen takes a handle object { fd } (its types know only port/path/host options).
      await listenServer(server, { fd } as net.ListenOptions, address);
      // A TCP socket handed over here has a port; a Unix one none (Node gives null for an fd, Bun {}).
      const bound = server.address();
      if (bound !== null && typeof bound === 'object' && typeof bound.port === 'number') {
        await new Promise<void>((resolve) => server.close(() => resolve()));
        throw createError(
          'SIPC_ERR_LISTEN_FAILED',
          `Cannot listen on ${address}: the socket handed over is not a Unix socket (ListenStream= must name a path)`,
        );
      }
      // The service manager owns the socket file: it is never removed here.
      return this.#finishListen(address, server, policy, async () => {}, options);
    }
    if (parsed.kind === 'abstract') {
      await listenServer(server, { path: netPath(parsed) }, address);
      return this.#finishListen(address, server, policy, async () => {}, options);
    }
    let dirMode: number;
    if (parsed.system === true) {
      if (process.geteuid!() !== 0)
        throw createError(
          'SIPC_ERR_INVALID_ARGUMENT',
          `local://system/ addresses are served by root (this process runs as uid ${process.geteuid!()}); a service account can serve a unix:// path with socketMode`,
        );
      dirMode = await ensureSystemDirectory(path.dirname(parsed.path));
    } else {
      // The group on the directory only where the group alone may traverse it (0710).
      const mode = directoryModeFor(access);
      const group = mode === 0o710 ? access.socketGroup : undefined;
      dirMode = await ensureSecureDirectory(path.dirname(parsed.path), { local: parsed.local }, mode, group);
    }
    if (options.signal?.aborted) throw abortError(options);
    await clearStaleSocket(parsed.path, options);
    const identity = await bindOwnerOnly(server, parsed.path, dirMode, access);
    return this.#finishListen(address, server, policy, () => removeIfOurs(parsed.path, identity), options);
  }

  async #finishListen(
    address: string,
    server: net.Server,
    policy: UnixCredentialPolicy,
    release: () => Promise<void>,
    options: AbortOptions,
  ): Promise<Listener> {
    server.removeAllListeners('error');
    const listener = new UnixListener(address, server, policy, release);
    // Aborted while binding: release everything rather than hand back a listener nobody wants.
    if (options.signal?.aborted) {
      await listener.close();
      throw abortError(options);
    }
    return listener;
  }

  /** Connect to `address` and check the server's OS credentials against the policy. */
  async connect(address: string, options: UnixConnectOptions = {}): Promise<Connection> {
    this.#platformCheck();
    validatePolicy(options);
    validateBusyTimeout(options.connectBusyTimeoutMs);
    if (options.signal?.aborted) throw abortError(options);
    const parsed = parseUnixAddress(address, this.#options);
    if (parsed.kind === 'path' && parsed.local)
      await verifySecureDirectory(path.dirname(parsed.path), { local: true });
    if (parsed.kind === 'path' && parsed.system === true) await verifySystemSocket(parsed.path);
    const policy = systemServerPolicy(parsed, mergePolicy(this.#options, options));
    const busyTimeoutMs =
      options.connectBusyTimeoutMs ?? this.#options.connectBusyTimeoutMs ?? DEFAULT_CONNECT_BUSY_TIMEOUT_MS;
    const socket = await connectRetryingBusy(
      () => awaitConnect(net.connect(netPath(parsed)), address, options),
      busyTimeoutMs,
      options,
    );
    const creds = readPeerCredentials(socket);
    const refusal = checkCredentials(policy, creds, 'server');
    if (refusal !== undefined) {
      socket.destroy();
      throw refusal;
    }
    return socketConnection(socket, unixPeer(creds, socket));
  }
}
