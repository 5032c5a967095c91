/**
 * The high-level entry: `serve()` listens on an address, runs the Noise handshake on every
 * connection and serves RPC with a policy; `connect()` opens a connection, authenticates the
 * server and returns a typed client. Both take any transport (unix, tcp, pipe, memory).
 */
import type { ChannelOptions } from '../channel/options.js';
import { secureConnect } from '../channel/secure-channel.js';
import { type SecureListener, type SecureListenerOptions, secureListen } from '../channel/secure-listener.js';
import type { Logger } from '../diagnostics/log.js';
import { createError } from '../errors.js';
import { enforceRevocation, type RevocationEnforcer, refuseRevoked } from '../identity/enforcement.js';
import type { RevocationList } from '../identity/revocation.js';
import { selectTransport, type Transport } from '../transport/contract.js';
import { handshakeFields, listenerUpdateFields } from './audit.js';
import { createClient, type RpcClient, type RpcClientOptions } from './client.js';
import { logClient, logServer } from './logging.js';
import { createServer, kAudit, type RpcServer, type RpcServerOptions } from './server.js';
import type { EventMap, ServiceDefinition } from './service-types.js';

/** Where to listen or connect: one transport, or several to choose from by the address's scheme. */
export interface TransportChoice {
  /** The transport(s); with several, the first whose schemes include the address's is used. */
  transport: Transport | readonly Transport[];
  /** The address, e.g. `unix:///run/app.sock`, `tcp://127.0.0.1:0`, `memory://name`. */
  address: string;
}

/** Options of `serve`. */
export interface ServeOptions extends TransportChoice, SecureListenerOptions, RpcServerOptions {
  /**
   * Where the server's log lines go (docs/observability.md, "Logging"): a pino logger, or
   * anything with `error`/`warn`/`info`/`debug(fields, message)`. Lines carry channel id, peer
   * fingerprint and method, never a payload; repeats are rate-limited.
   */
  logger?: Logger;
  /**
   * Revoked keys and certificate serials (a `RevocationList` or a watched one): a revoked peer is
   * refused at the handshake, and a live channel closes with SIPC_ERR_REVOKED once its peer is
   * revoked.
   */
  revocations?: RevocationList;
}

/** Options of `connect`. */
export interface ConnectOptions extends TransportChoice, ChannelOptions, RpcClientOptions {
  /** Where the client's log lines go (as `ServeOptions.logger`). */
  logger?: Logger;
}

/** What `serve()` returns: the RPC server, with what it built to listen. */
export interface ListeningServer<S extends object = ServiceDefinition, E extends object = EventMap>
  extends RpcServer<S, E> {
  /** The secure listener: its live channels, `update()` for key rotation, `handshakeError` events. */
  readonly listener: SecureListener;
  /**
   * The enforcer of `revocations` (its `decision` events feed an audit log), undefined without
   * them; it stops when the listener closes. A trust given later to `listener.update()` is not
   * wrapped by the handshake check, but the enforcer still closes a revoked peer's channel as
   * soon as its handshake ends.
   */
  readonly revocation: RevocationEnforcer | undefined;
}

function pick(choice: TransportChoice): Transport {
  const { transport, address } = choice;
  const found = Array.isArray(transport)
    ? selectTransport(address, transport as readonly Transport[])
    : (transport as Transport);
  if (found === undefined) throw createError('SIPC_ERR_INVALID_ADDRESS', `No transport handles ${address}`);
  return found;
}

/**
 * Record in `server`'s audit log (docs/audit.md, "What a server records") what only its listener
 * sees: the handshakes that gave no channel (`handshake.failed`), `listener.update()`
 * (`listener.update`) and the channels `revocation` cut (`revocation`). `serve()` does this; call it
 * for a server built from `createServer` and `secureListen`, before the first connection. Nothing
 * is recorded when the server does not audit.
 */
export function auditListener<S extends object, E extends object>(
  server: RpcServer<S, E>,
  listener: SecureListener,
  revocation?: RevocationEnforcer,
): void {
  const audit = server[kAudit]();
  if (audit === undefined) return;
  listener.on('handshakeFailed', (f) => audit.record('handshake.failed', handshakeFields(f)));
  listener.on('update', (u) => audit.record('listener.update', listenerUpdateFields(u)));
  revocation?.on('decision', (d) =>
    audit.record('revocation', {
      peer: d.who,
      reason: d.what,
      ...(d.serial === undefined ? {} : { serial: d.serial }),
      ...(d.name === undefined ? {} : { name: d.name }),
    }),
  );
}

/**
 * Listen on `address` and serve RPC to every peer that passes `trust` (and is not in
 * `revocations`), with `policy` deciding what each may do (deny by default). Register handlers on
 * the result right away: no request can arrive before the first handshake, which takes several
 * event loop turns.
 */
export async function serve<S extends object = ServiceDefinition, E extends object = EventMap>(
  options: ServeOptions,
): Promise<ListeningServer<S, E>> {
  const transport = pick(options);
  const { revocations } = options;
  const server = createServer<S, E>(options);
  const listener = await transport.listen(options.address, { signal: options.signal });
  let secure: SecureListener;
  let revocation: RevocationEnforcer | undefined;
  try {
    const trust = revocations === undefined ? options.trust : refuseRevoked(options.trust, revocations);
    secure = secureListen(listener, { ...options, trust });
    // Before the server attaches, so a revoked peer's channel is closed before it is served.
    if (revocations !== undefined) {
      const enforcer = enforceRevocation({ listener: secure, revocations });
      secure.once('close', () => enforcer.close());
      revocation = enforcer;
    }
    // Refused and failed handshakes, on the server a caller holds (never payload bytes or keys).
    secure.on('handshakeFailed', (failure) => server.emit('handshakeFailed', failure));
    auditListener(server, secure, revocation);
    if (options.logger !== undefined) logServer(server, options.logger, (stop) => secure.once('close', stop));
    server.listen(secure);
  } catch (err) {
    await listener.close();
    throw err;
  }
  return Object.assign(server, { listener: secure, revocation });
}

/** Connect to `address`, authenticate the server against `trust`, and return a typed client. */
export async function connect<S extends object = ServiceDefinition, E extends object = EventMap>(
  options: ConnectOptions,
): Promise<RpcClient<S, E>> {
  const transport = pick(options);
  const connection = await transport.connect(options.address, { signal: options.signal });
  try {
    const channel = await secureConnect(connection, options);
    if (options.logger !== undefined) logClient(channel, options.logger);
    return createClient<S, E>(channel, options);
  } catch (err) {
    connection.destroy();
    throw err;
  }
}
