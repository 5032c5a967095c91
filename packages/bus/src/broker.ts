/**
 * The broker (docs/bus.md): a secure-ipc server whose peers find each other by name. It only
 * brokers: it authorizes every name, call and signal against its policy (deny by default), counts
 * every resource against quotas, and routes bodies it never decodes. Built on core's `serve()`, so
 * every peer's channel has the handshake, trust, revocation and limits of any secure-ipc server.
 */
import { channel } from 'node:diagnostics_channel';
import { EventEmitter } from 'node:events';
import { performance } from 'node:perf_hooks';
import {
  type BusMessage,
  createError,
  createPolicy,
  DIAGNOSTICS_CHANNELS,
  decodeCertificate,
  encodeKey,
  encodeWireValue,
  isSecureIpcError,
  type ListeningServer,
  type Policy,
  type PolicyOptions,
  PublicError,
  RemoteError,
  type RpcPeer,
  type ServeOptions,
  serve,
} from '@secure-ipc/core';
import {
  type ActivationEvent,
  type ActivationSpec,
  Activator,
  DEFAULT_ACTIVATION_TIMEOUT_MS,
} from './activation.js';
import { type CompiledMatch, compileMatch, matchTakes } from './matches.js';
import {
  assertFlags,
  assertName,
  BROKER_NAME,
  isOwnableName,
  isUniqueName,
  isWellKnownName,
  NameRegistry,
  type OwnerChange,
  queueEvents,
  uniqueName,
} from './names.js';
import {
  assertMethod,
  BUS_EVENTS,
  BUS_PROTOCOL_VERSION,
  BusDelivery,
  BusMethod,
  fields,
  IDENTITY_GRANT,
  MONITOR_GRANT,
  NAME_OWNER_CHANGED,
  TUNNEL_ID_BYTES,
} from './protocol.js';
import {
  type QuotaAccount,
  type QuotaDiagnostic,
  QuotaLedger,
  type QuotaOptions,
  type QuotaReport,
} from './quotas.js';

/** A peer's identity as the broker attests it (docs/bus.md section 6). */
export interface BusIdentity {
  /** Its unique name. */
  readonly name: string;
  /** Its key fingerprint. */
  readonly peer: string;
  /** Its static public key. */
  readonly key: Uint8Array;
  /** The roles the broker's policy gives it. */
  readonly roles: readonly string[];
  /** `uid:N` / `sid:S-…`, when its transport reports one. */
  readonly osIdentity?: string;
  /** Its process id, when its transport reports one. */
  readonly pid?: number;
  /** Its certificate, when it authenticated with one. */
  readonly certificate?: { readonly name: string; readonly serial: number; readonly notAfter: number };
}

/** Metadata of one routed message, as monitors and metrics see it (never a body). */
export interface MonitorRecord {
  /** ms epoch. */
  readonly at: number;
  /** What it was. */
  readonly kind: 'call' | 'reply' | 'error' | 'signal' | 'name';
  /** Who sent it (a unique name, or `bus`). */
  readonly sender: string;
  /** Where it went (a unique name), if one destination. */
  readonly destination?: string;
  /** The method (calls, replies, errors). */
  readonly method?: string;
  /** The signal (signals). */
  readonly signal?: string;
  /** The name (name changes). */
  readonly name?: string;
  /** Bytes of the body. */
  readonly bytes: number;
  /** The error code (errors). */
  readonly code?: string;
}

/** Counters of the broker (`stats()`). */
export interface BrokerStats {
  /** Peers connected. */
  peers: number;
  /** Well-known names with an owner. */
  names: number;
  /** Match rules. */
  matches: number;
  /** Calls delivered and answered. */
  callsRouted: number;
  /** Calls that failed after delivery (an error answer, a destination gone, a timeout). */
  callsFailed: number;
  /** Calls, names, signals and matches the policy refused. */
  refused: number;
  /** Body bytes routed (calls, answers, signals). */
  bytesRouted: number;
  /** Signal deliveries. */
  signalsRouted: number;
  /** Signal deliveries dropped (receiver over its bytes quota or event budget). */
  signalsDropped: number;
  /** Quota refusals, drops and disconnects. */
  quotaExceeded: number;
  /** Activations started. */
  activations: number;
}

/** Options of `serveBus`: `serve()`'s, with the bus policy, quotas and activation. */
export interface BrokerOptions extends Omit<ServeOptions, 'policy'> {
  /**
   * The bus policy (deny by default): `own` names, `call` `NAME/METHOD`, `publish` and
   * `subscribe` signal names, `$bus.identity` and `$bus.monitor` by exact name (docs/bus.md).
   */
  policy: Policy | PolicyOptions;
  /** Quotas per peer and per OS identity (docs/bus.md section 8). */
  quotas?: QuotaOptions;
  /** How to start the owner of a well-known name on its first call. */
  activation?: Readonly<Record<string, ActivationSpec>>;
  /** The activation wait when the caller gives no deadline (default 25 s). */
  activationTimeoutMs?: number;
  /** Signals dropped in a row after which a receiver is disconnected (default 1,024). */
  maxDroppedSignals?: number;
}

/** Events of a broker. */
export interface BrokerEvents {
  /** A quota refusal, drop or disconnect: which peer, which quota, by how much. */
  quota: [diagnostic: QuotaDiagnostic];
  /** A primary owner changed. */
  nameOwnerChanged: [change: OwnerChange];
  /** An activated process started, wrote a line, or exited. */
  activation: [event: ActivationEvent];
  /** Every routed message's metadata (as monitors get it). */
  routed: [record: MonitorRecord];
  /** A local failure with no caller to tell. */
  error: [error: unknown];
}

/** The most signals a receiver may have dropped in a row before it is disconnected. */
export const DEFAULT_MAX_DROPPED_SIGNALS = 1024;

/** The server-side policy: every authenticated peer may speak the bus protocol; the bus policy decides the rest. */
const PROTOCOL_ROLE = 'bus-protocol';
const PROTOCOL_POLICY = createPolicy({
  roles: { [PROTOCOL_ROLE]: { call: Object.values(BusMethod), subscribe: [BUS_EVENTS] } },
  defaultRoles: [PROTOCOL_ROLE],
});

/** Errors a broker handler raises about the caller's own request: they cross with their message. */
const OWN_PUBLIC = new Set([
  'SIPC_ERR_INVALID_ARGUMENT',
  'SIPC_ERR_NAME_HAS_NO_OWNER',
  'SIPC_ERR_QUOTA_EXCEEDED',
]);

interface Conn {
  readonly unique: string;
  readonly peer: RpcPeer;
  readonly account: QuotaAccount;
  readonly identity: Omit<BusIdentity, 'roles'>;
  readonly matches: Map<number, CompiledMatch>;
  nextMatch: number;
  monitor: boolean;
  droppedInRow: number;
}

function certificateOf(peer: RpcPeer): BusIdentity['certificate'] {
  const payload = (peer.channel as { remotePayload?: Readonly<Record<string, unknown>> }).remotePayload;
  const bytes = payload?.cert;
  if (!(bytes instanceof Uint8Array)) return undefined;
  try {
    const c = decodeCertificate(bytes);
    return { name: c.name, serial: c.serial, notAfter: c.notAfter };
  } catch {
    return undefined; // the handshake verified it; a certificate trust that did not is not ours to parse
  }
}

/** A compiled policy as given, or one compiled from options (SIPC_ERR_INVALID_ARGUMENT / BAD_KEY from createPolicy). */
function policyOf(policy: Policy | PolicyOptions): Policy {
  if (typeof (policy as Policy)?.allows === 'function') return policy as Policy;
  if (typeof policy !== 'object' || policy === null)
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      'policy is required: a Policy or { roles, peers?, defaultRoles? }',
    );
  return createPolicy(policy as PolicyOptions);
}

/** `secure-ipc:bus` (docs/observability.md): metrics' source; built only while someone listens. */
const busChannel = channel(DIAGNOSTICS_CHANNELS.bus);

/** Publish on `secure-ipc:bus` when it has subscribers; `make` builds the message only then. */
function diagnose(make: () => BusMessage): void {
  if (busChannel.hasSubscribers) busChannel.publish(make());
}

/** The code a failed call's caller is answered with. */
const codeOf = (err: unknown): string => {
  const code = (err as { code?: unknown } | undefined)?.code;
  return typeof code === 'string' ? code : 'SIPC_ERR_HANDLER';
};

/** What a routed call's diagnostics message says, filled in as the call is read. */
interface CallNote {
  method: string;
  e2e: boolean;
  bytesIn: number;
  bytesOut: number;
}

/** An optional positive integer option, or its default; SIPC_ERR_INVALID_ARGUMENT otherwise. */
function positive(value: number | undefined, name: string, fallback: number): number {
  if (value === undefined) return fallback;
  if (!Number.isSafeInteger(value) || value < 1)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `${name} must be a positive integer`);
  return value;
}

/** A caller's error passed on to its caller (docs/bus.md section 4). */
function passOn(err: unknown): Error {
  if (err instanceof RemoteError)
    return new PublicError(err.remoteCode, err.message, { data: (err as { data?: unknown }).data });
  if (isSecureIpcError(err)) {
    const details = (err.details ?? {}) as { remote?: boolean; data?: unknown };
    if (details.remote === true) {
      if (err.code === 'SIPC_ERR_UNAVAILABLE') return createError('SIPC_ERR_BUSY');
      return new PublicError(err.code, err.message, { data: details.data });
    }
    if (err.code === 'SIPC_ERR_TIMEOUT' || err.code === 'SIPC_ERR_CANCELLED') return err;
    if (err.code === 'SIPC_ERR_CONNECTION_CLOSED' || err.code === 'SIPC_ERR_CHANNEL_CLOSED')
      return new PublicError('SIPC_ERR_CONNECTION_CLOSED', 'The destination left the bus before answering');
    if (err.code === 'SIPC_ERR_BUSY') return err;
  }
  return err instanceof Error ? err : new Error(String(err));
}

/** Run a broker handler: its own checks' errors become public (they are about the request). */
function publicly<T>(fn: () => T | Promise<T>): Promise<T> {
  return (async () => {
    try {
      return await fn();
    } catch (err) {
      if (
        isSecureIpcError(err) &&
        OWN_PUBLIC.has(err.code) &&
        (err.details as { remote?: boolean })?.remote !== true
      )
        throw new PublicError(err.code, err.message, { data: (err.details as { data?: unknown })?.data });
      throw err;
    }
  })();
}

/** What a bus.call handler is given. */
type CallContext = {
  channelId?: number | undefined;
  signal: AbortSignal;
  headers: { timeoutMs?: number };
};

/** A running broker. */
export class Broker extends EventEmitter<BrokerEvents> {
  /** The secure-ipc server underneath (its listener, audit, `stats()`). */
  readonly server: ListeningServer;
  #policy: Policy;
  readonly #names = new NameRegistry();
  readonly #quotas: QuotaLedger;
  readonly #activator: Activator;
  readonly #activationTimeoutMs: number;
  readonly #maxDropped: number;
  readonly #byChannel = new Map<number, Conn>();
  readonly #byUnique = new Map<string, Conn>();
  #next = 1;
  readonly #log: NonNullable<BrokerOptions['audit']>['log'] | undefined;
  readonly #stats: BrokerStats = {
    peers: 0,
    names: 0,
    matches: 0,
    callsRouted: 0,
    callsFailed: 0,
    refused: 0,
    bytesRouted: 0,
    signalsRouted: 0,
    signalsDropped: 0,
    quotaExceeded: 0,
    activations: 0,
  };

  /** Use `serveBus()`. */
  constructor(server: ListeningServer, options: BrokerOptions) {
    super();
    this.server = server;
    this.#policy = policyOf(options.policy);
    this.#quotas = new QuotaLedger(options.quotas, (d) => {
      this.#stats.quotaExceeded++;
      this.#emit('quota', d);
      diagnose(() => ({
        v: 1,
        kind: 'quota',
        quota: d.quota,
        scope: d.scope,
        action: d.action,
        over: d.over,
        at: Date.now(),
      }));
      this.#audit('bus.quota', {
        peer: d.peer,
        peerId: d.peerId,
        osIdentity: d.osIdentity ?? null,
        quota: d.quota,
        scope: d.scope,
        limit: d.limit,
        used: d.used,
        requested: d.requested,
        over: d.over,
        action: d.action,
      });
    });
    this.#activator = new Activator(options.activation, (e) => {
      if (e.event === 'started' && e.line === undefined) this.#stats.activations++;
      this.#emit('activation', e);
    });
    this.#activator.starterEnv = () => ({
      SIPC_BUS_ADDRESS: server.address ?? options.address,
      SIPC_BUS_KEY: encodeKey(options.keyPair.publicKey),
    });
    this.#activationTimeoutMs = positive(
      options.activationTimeoutMs,
      'activationTimeoutMs',
      DEFAULT_ACTIVATION_TIMEOUT_MS,
    );
    this.#maxDropped = positive(options.maxDroppedSignals, 'maxDroppedSignals', DEFAULT_MAX_DROPPED_SIGNALS);
    this.#log = options.audit?.log;
    server.on('peer', (peer) => this.#open(peer));
    server.on('peerClose', (peer) => this.#close(peer));
    this.#register();
  }

  /** The address it listens on. */
  get address(): string | undefined {
    return this.server.address;
  }

  /** The bus policy in force. */
  get policy(): Policy {
    return this.#policy;
  }

  /** Replace the bus policy (a reload): every later request is decided by it. */
  setPolicy(policy: Policy): void {
    this.#policy = policyOf(policy);
  }

  /** Counters (never a body or a name's params). */
  stats(): BrokerStats {
    return { ...this.#stats, peers: this.#byUnique.size, names: this.#names.names().length };
  }

  /** The primary owner of a name (unique name), or undefined. */
  ownerOf(name: string): string | undefined {
    if (name === BROKER_NAME) return BROKER_NAME;
    if (isUniqueName(name)) return this.#byUnique.has(name) ? name : undefined;
    return this.#names.ownerOf(name);
  }

  /** Stop: close the listener and every channel. */
  async close(): Promise<void> {
    this.#activator.close();
    await this.server.close();
    await this.server.listener.close();
  }

  #emit<K extends keyof BrokerEvents>(event: K, ...args: BrokerEvents[K]): void {
    if (this.listenerCount(event) === 0) return;
    try {
      this.emit(event, ...(args as never));
    } catch (err) {
      if (event !== 'error' && this.listenerCount('error') > 0) this.emit('error', err);
    }
  }

  /** Append a `bus.*` record to the server's audit log (docs/bus.md section 9); never a body. */
  #audit(type: string, fields: Record<string, string | number | boolean | null>): void {
    const log = this.#log;
    if (log === undefined) return;
    log.append({ type, fields }).catch((err: unknown) => this.#emit('error', err));
  }

  #rolesOf(conn: Conn): readonly string[] {
    return this.#policy.rolesOf({
      remoteStaticKey: conn.peer.channel.remoteStaticKey,
      channelRoles: conn.peer.channel.roles,
      fingerprint: conn.identity.peer,
    });
  }

  #identity(conn: Conn): BusIdentity {
    return { ...conn.identity, roles: this.#rolesOf(conn) };
  }

  #open(peer: RpcPeer): void {
    const id = peer.channel.id;
    if (id === undefined) {
      void peer.close(createError('SIPC_ERR_PROTOCOL', 'A bus channel needs an id'));
      return;
    }
    const unique = uniqueName(this.#next++);
    const info = peer.channel.peer;
    const certificate = certificateOf(peer);
    const identity: Omit<BusIdentity, 'roles'> = {
      name: unique,
      peer: peer.peerId,
      key: peer.channel.remoteStaticKey,
      ...(info.osIdentity === undefined ? {} : { osIdentity: info.osIdentity }),
      ...(info.pid === undefined ? {} : { pid: info.pid }),
      ...(certificate === undefined ? {} : { certificate }),
    };
    const conn: Conn = {
      unique,
      peer,
      account: { peer: unique, peerId: peer.peerId, osIdentity: info.osIdentity },
      identity,
      matches: new Map(),
      nextMatch: 1,
      monitor: false,
      droppedInRow: 0,
    };
    this.#byChannel.set(id, conn);
    this.#byUnique.set(unique, conn);
    this.#quotas.open(conn.account);
    diagnose(() => ({ v: 1, kind: 'peer', event: 'joined', at: Date.now() }));
    this.#ownerChanged({ name: unique, oldOwner: '', newOwner: unique });
  }

  #close(peer: RpcPeer): void {
    const id = peer.channel.id;
    const conn = id === undefined ? undefined : this.#byChannel.get(id);
    if (conn === undefined || id === undefined) return;
    this.#byChannel.delete(id);
    this.#byUnique.delete(conn.unique);
    this.#stats.matches -= conn.matches.size;
    diagnose(() => ({ v: 1, kind: 'peer', event: 'left', at: Date.now() }));
    const before = new Map<string, string[]>();
    if (this.#queueWatched())
      for (const name of this.#names.names()) {
        const queue = this.#names.queueOf(name);
        if (queue.includes(conn.unique)) before.set(name, queue);
      }
    const changes = this.#names.dropOwner(conn.unique);
    for (const [name, queue] of before) this.#auditQueue(name, queue, conn);
    for (const change of changes) this.#ownerChanged(change);
    this.#quotas.close(conn.account);
    this.#ownerChanged({ name: conn.unique, oldOwner: conn.unique, newOwner: '' });
  }

  #conn(ctx: { channelId?: number | undefined }): Conn {
    const conn = ctx.channelId === undefined ? undefined : this.#byChannel.get(ctx.channelId);
    if (conn === undefined) throw createError('SIPC_ERR_CONNECTION_CLOSED', 'The caller left the bus');
    return conn;
  }

  #resolve(name: string): Conn | undefined {
    if (isUniqueName(name)) return this.#byUnique.get(name);
    const owner = this.#names.ownerOf(name);
    return owner === undefined ? undefined : this.#byUnique.get(owner);
  }

  #refused(what: string): never {
    this.#stats.refused++;
    throw createError('SIPC_ERR_FORBIDDEN', what);
  }

  /**
   * Audit what a request, release or disconnect did to `name`'s queue (`before` it): one `bus.name`
   * record per connection whose place changed. `left` is a connection already gone from the bus.
   */
  #auditQueue(name: string, before: readonly string[], left?: Conn): void {
    if (!this.#queueWatched()) return;
    for (const { owner, event } of queueEvents(before, this.#names.queueOf(name))) {
      const conn = owner === left?.unique ? left : this.#byUnique.get(owner);
      this.#audit('bus.name', { name, peer: conn?.identity.peer ?? null, owner, event });
      diagnose(() => ({ v: 1, kind: 'name', event, at: Date.now() }));
    }
  }

  /** Whether a name queue's events go anywhere (an audit log, a `secure-ipc:bus` subscriber). */
  #queueWatched(): boolean {
    return this.#log !== undefined || busChannel.hasSubscribers;
  }

  /** Tell the old and new owner, then every matching peer; wake activation waiters. */
  #ownerChanged(change: OwnerChange): void {
    const { name, oldOwner, newOwner } = change;
    const wellKnown = !isUniqueName(name);
    if (wellKnown) {
      const lost = this.#byUnique.get(oldOwner);
      if (lost !== undefined) lost.peer.queuePublish(BusDelivery.nameLost, { name });
      const got = this.#byUnique.get(newOwner);
      if (got !== undefined) got.peer.queuePublish(BusDelivery.nameAcquired, { name });
      if (newOwner !== '') this.#activator.acquired(name);
    }
    this.#emit('nameOwnerChanged', change);
    this.#monitor({ at: Date.now(), kind: 'name', sender: BROKER_NAME, name, bytes: 0 });
    this.#broadcast(BROKER_NAME, NAME_OWNER_CHANGED, encodeOwnerChange(change), undefined);
  }

  #monitor(record: MonitorRecord): void {
    this.#emit('routed', record);
    for (const conn of this.#byUnique.values())
      if (conn.monitor) conn.peer.queuePublish(BusDelivery.monitor, record);
  }

  /** Deliver a signal to one receiver within its bytes quota; false if dropped. */
  #deliverSignal(to: Conn, sender: string, signal: string, body: Uint8Array, matches?: number[]): void {
    if (!this.#quotas.tryCharge(to.account, 'bytes', body.byteLength, 'dropped')) {
      this.#dropped(to, body.byteLength);
      return;
    }
    const outcome = to.peer.queuePublish(BusDelivery.signal, {
      sender,
      signal,
      body,
      ...(matches === undefined ? {} : { matches }),
    });
    // The bytes are held only until the transport takes them; queuePublish does not say when, so
    // the charge covers the call (the event budget beneath bounds the queue itself).
    this.#quotas.release(to.account, 'bytes', body.byteLength);
    if (outcome === 'over') this.#dropped(to, body.byteLength);
    else if (outcome === 'queued') {
      to.droppedInRow = 0;
      this.#stats.signalsRouted++;
      this.#stats.bytesRouted += body.byteLength;
      diagnose(() => ({ v: 1, kind: 'signal', outcome: 'routed', bytes: body.byteLength, at: Date.now() }));
    }
  }

  #dropped(to: Conn, bytes: number): void {
    this.#stats.signalsDropped++;
    diagnose(() => ({ v: 1, kind: 'signal', outcome: 'dropped', bytes, at: Date.now() }));
    if (++to.droppedInRow <= this.#maxDropped) return;
    this.#quotas.reportDisconnect(to.account, 'bytes', 0);
    void to.peer.close(
      createError(
        'SIPC_ERR_QUOTA_EXCEEDED',
        `The receiver dropped more than ${this.#maxDropped} signals in a row`,
      ),
    );
  }

  #broadcast(sender: string, signal: string, body: Uint8Array, from: Conn | undefined): void {
    const owns = (n: string) => this.#names.ownerOf(n) === sender;
    const brokerSignal = sender === BROKER_NAME;
    for (const conn of this.#byUnique.values()) {
      if (conn === from) continue;
      const ids: number[] = [];
      for (const rule of conn.matches.values()) if (matchTakes(rule, signal, sender, owns)) ids.push(rule.id);
      if (ids.length === 0) continue;
      if (!brokerSignal && !this.#policy.allows(this.#rolesOf(conn), 'subscribe', signal)) continue;
      this.#deliverSignal(conn, sender, signal, body, ids);
    }
  }

  #register(): void {
    const s = this.server;
    s.handle(BusMethod.hello, (p: unknown, ctx) =>
      publicly(() => {
        fields(p, BusMethod.hello, {});
        const conn = this.#conn(ctx);
        return { name: conn.unique, bus: BUS_PROTOCOL_VERSION, identity: this.#identity(conn) };
      }),
    );
    s.handle(BusMethod.requestName, (p: unknown, ctx) =>
      publicly(() => {
        const { name, flags } = fields<{ name: string; flags: number }>(p, BusMethod.requestName, {
          name: 'string',
          flags: 'int',
        });
        if (!isOwnableName(name))
          throw createError('SIPC_ERR_INVALID_ARGUMENT', 'name must be a well-known name other than bus.*');
        assertFlags(flags);
        const conn = this.#conn(ctx);
        if (!this.#policy.allows(this.#rolesOf(conn), 'own', name)) this.#refused(`own ${name}`);
        const queue = this.#names.queueOf(name);
        const heldBefore = queue.includes(conn.unique);
        if (!heldBefore) this.#quotas.charge(conn.account, 'names', 1);
        const outcome = this.#names.request(conn.unique, name, flags);
        this.#auditQueue(name, queue);
        const heldNow = this.#names.queueOf(name).includes(conn.unique);
        if (!heldBefore && !heldNow) this.#quotas.release(conn.account, 'names', 1);
        if (heldBefore && !heldNow) this.#quotas.release(conn.account, 'names', 1);
        this.#releaseDisplaced(name);
        if (outcome.change !== undefined) this.#ownerChanged(outcome.change);
        return { reply: outcome.reply };
      }),
    );
    s.handle(BusMethod.releaseName, (p: unknown, ctx) =>
      publicly(() => {
        const { name } = fields<{ name: string }>(p, BusMethod.releaseName, { name: 'string' });
        if (!isWellKnownName(name))
          throw createError('SIPC_ERR_INVALID_ARGUMENT', 'name must be a well-known name');
        const conn = this.#conn(ctx);
        const queue = this.#names.queueOf(name);
        const outcome = this.#names.release(conn.unique, name);
        this.#auditQueue(name, queue);
        if (outcome.held === -1) this.#quotas.release(conn.account, 'names', 1);
        if (outcome.change !== undefined) this.#ownerChanged(outcome.change);
        return { reply: outcome.reply };
      }),
    );
    s.handle(BusMethod.getNameOwner, (p: unknown) =>
      publicly(() => {
        const { name } = fields<{ name: string }>(p, BusMethod.getNameOwner, { name: 'string' });
        assertName(name);
        const owner = this.ownerOf(name);
        if (owner === undefined) throw createError('SIPC_ERR_NAME_HAS_NO_OWNER', `${name} has no owner`);
        return { owner };
      }),
    );
    s.handle(BusMethod.nameHasOwner, (p: unknown) =>
      publicly(() => {
        const { name } = fields<{ name: string }>(p, BusMethod.nameHasOwner, { name: 'string' });
        assertName(name);
        return { owned: this.ownerOf(name) !== undefined };
      }),
    );
    s.handle(BusMethod.listNames, (p: unknown) =>
      publicly(() => {
        fields(p, BusMethod.listNames, {});
        return { names: [BROKER_NAME, ...this.#names.names(), ...this.#byUnique.keys()] };
      }),
    );
    s.handle(BusMethod.listQueuedOwners, (p: unknown) =>
      publicly(() => {
        const { name } = fields<{ name: string }>(p, BusMethod.listQueuedOwners, { name: 'string' });
        assertName(name);
        const owners = isWellKnownName(name)
          ? this.#names.queueOf(name)
          : this.ownerOf(name) === undefined
            ? []
            : [name];
        if (owners.length === 0) throw createError('SIPC_ERR_NAME_HAS_NO_OWNER', `${name} has no owner`);
        return { owners };
      }),
    );
    s.handle(BusMethod.call, (p: unknown, ctx) => publicly(() => this.#diagnosedCall(p, ctx)));
    s.handle(BusMethod.emit, (p: unknown, ctx) =>
      publicly(() => {
        const { signal, body, to } = fields<{ signal: string; body: Uint8Array; to?: string }>(
          p,
          BusMethod.emit,
          {
            signal: 'string',
            body: 'bytes',
            'to?': 'string',
          },
        );
        if (!isWellKnownName(signal) || signal.startsWith(`${BROKER_NAME}.`))
          throw createError(
            'SIPC_ERR_INVALID_ARGUMENT',
            'signal must be a signal name (the syntax of a well-known name), not bus.*',
          );
        const conn = this.#conn(ctx);
        if (!this.#policy.allows(this.#rolesOf(conn), 'publish', signal)) this.#refused(`publish ${signal}`);
        this.#monitor({
          at: Date.now(),
          kind: 'signal',
          sender: conn.unique,
          signal,
          bytes: body.byteLength,
        });
        if (to === undefined) {
          this.#broadcast(conn.unique, signal, body, conn);
          return {};
        }
        assertName(to, 'to');
        const dest = this.#resolve(to);
        if (dest === undefined) throw createError('SIPC_ERR_NAME_HAS_NO_OWNER', `${to} has no owner`);
        if (this.#policy.allows(this.#rolesOf(dest), 'subscribe', signal))
          this.#deliverSignal(dest, conn.unique, signal, body);
        return {};
      }),
    );
    s.handle(BusMethod.addMatch, (p: unknown, ctx) =>
      publicly(() => {
        const rule = fields<{ signal?: string; sender?: string }>(p, BusMethod.addMatch, {
          'signal?': 'string',
          'sender?': 'string',
        });
        const conn = this.#conn(ctx);
        const pattern = rule.signal ?? '*';
        const brokerOnly =
          pattern.startsWith(`${BROKER_NAME}.`) && !pattern.slice(BROKER_NAME.length + 1).includes('*');
        if (!brokerOnly && !this.#policy.allows(this.#rolesOf(conn), 'subscribe', pattern))
          this.#refused(`subscribe ${pattern}`);
        const compiled = compileMatch(conn.nextMatch, rule);
        this.#quotas.charge(conn.account, 'matches', 1);
        conn.matches.set(compiled.id, compiled);
        conn.nextMatch++;
        this.#stats.matches++;
        return { id: compiled.id };
      }),
    );
    s.handle(BusMethod.removeMatch, (p: unknown, ctx) =>
      publicly(() => {
        const { id } = fields<{ id: number }>(p, BusMethod.removeMatch, { id: 'int' });
        const conn = this.#conn(ctx);
        if (!conn.matches.delete(id))
          throw createError('SIPC_ERR_INVALID_ARGUMENT', `no match rule ${id} on this connection`);
        this.#quotas.release(conn.account, 'matches', 1);
        this.#stats.matches--;
        return {};
      }),
    );
    s.handle(BusMethod.identity, (p: unknown, ctx) =>
      publicly(() => {
        const { name } = fields<{ name: string }>(p, BusMethod.identity, { name: 'string' });
        assertName(name);
        const conn = this.#conn(ctx);
        if (name !== conn.unique && !this.#policy.allows(this.#rolesOf(conn), 'call', IDENTITY_GRANT))
          this.#refused(IDENTITY_GRANT);
        const owner = this.#resolve(name);
        if (owner === undefined) throw createError('SIPC_ERR_NAME_HAS_NO_OWNER', `${name} has no owner`);
        return this.#identity(owner);
      }),
    );
    s.handle(BusMethod.becomeMonitor, (p: unknown, ctx) =>
      publicly(() => {
        fields(p, BusMethod.becomeMonitor, {});
        const conn = this.#conn(ctx);
        if (!this.#policy.allows(this.#rolesOf(conn), 'call', MONITOR_GRANT)) this.#refused(MONITOR_GRANT);
        conn.monitor = true;
        return {};
      }),
    );
    s.handle(BusMethod.quota, (p: unknown, ctx) =>
      publicly((): QuotaReport => {
        fields(p, BusMethod.quota, {});
        return this.#quotas.report(this.#conn(ctx).account);
      }),
    );
  }

  /** Entries that left a queue in a request (DO_NOT_QUEUE) give their `names` place back. */
  #releaseDisplaced(_name: string): void {
    // NameRegistry keeps each owner's held set; the quota mirrors it (below) by recounting.
    for (const conn of this.#byUnique.values()) {
      const held = this.#names.heldCount(conn.unique);
      const charged = this.#quotas.report(conn.account).peer.names.used;
      if (charged > held) this.#quotas.release(conn.account, 'names', charged - held);
    }
  }

  /** {@link #call}, with its `call` message on `secure-ipc:bus` when that has subscribers. */
  async #diagnosedCall(p: unknown, ctx: CallContext) {
    if (!busChannel.hasSubscribers) return this.#call(p, ctx);
    const started = performance.now();
    const note: CallNote = { method: '', e2e: false, bytesIn: 0, bytesOut: 0 };
    let outcome = 'OK';
    try {
      return await this.#call(p, ctx, note);
    } catch (err) {
      outcome = codeOf(err);
      throw err;
    } finally {
      const durationMs = performance.now() - started;
      diagnose(() => ({ v: 1, kind: 'call', ...note, outcome, durationMs, at: Date.now() }));
    }
  }

  async #call(p: unknown, ctx: CallContext, note?: CallNote) {
    const { to, method, body, e2e } = fields<{
      to: string;
      method: string;
      body: Uint8Array;
      e2e?: Uint8Array;
    }>(p, BusMethod.call, { to: 'string', method: 'string', body: 'bytes', 'e2e?': 'bytes' });
    assertName(to, 'to');
    assertMethod(method, true);
    if (e2e !== undefined && e2e.byteLength !== TUNNEL_ID_BYTES)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', `e2e is a ${TUNNEL_ID_BYTES}-byte tunnel id`);
    if (note !== undefined) {
      note.method = method;
      note.e2e = e2e !== undefined;
      note.bytesIn = body.byteLength;
    }
    const conn = this.#conn(ctx);
    const roles = this.#rolesOf(conn);
    let dest = this.#resolve(to);
    const names = dest === undefined ? [to] : [to, ...this.#names.ownedBy(dest.unique)];
    if (!names.some((n) => this.#policy.allows(roles, 'call', `${n}/${method}`)))
      this.#refused(`call ${to}/${method}`);
    if (dest === undefined) {
      if (!isWellKnownName(to) || !this.#activator.has(to))
        throw createError('SIPC_ERR_NAME_HAS_NO_OWNER', `${to} has no owner`);
      await this.#activator.wait(to, ctx.headers.timeoutMs ?? this.#activationTimeoutMs, ctx.signal);
      dest = this.#resolve(to);
      if (dest === undefined) throw createError('SIPC_ERR_NAME_HAS_NO_OWNER', `${to} has no owner`);
    }
    this.#quotas.charge(conn.account, 'pendingReplies', 1);
    try {
      this.#quotas.charge(conn.account, 'bytes', body.byteLength);
    } catch (err) {
      this.#quotas.release(conn.account, 'pendingReplies', 1);
      throw err;
    }
    const started = Date.now();
    this.#monitor({
      at: started,
      kind: 'call',
      sender: conn.unique,
      destination: dest.unique,
      method,
      bytes: body.byteLength,
    });
    this.#audit('bus.route', {
      caller: conn.unique,
      to,
      destination: dest.unique,
      method,
      bytes: body.byteLength,
      e2e: e2e !== undefined,
    });
    try {
      const timeoutMs =
        ctx.headers.timeoutMs === undefined
          ? undefined
          : Math.max(1, ctx.headers.timeoutMs - (Date.now() - started));
      const answer = await dest.peer.request(
        BusDelivery.deliver,
        {
          sender: conn.unique,
          to,
          method,
          body,
          identity: this.#identity(conn),
          ...(e2e === undefined ? {} : { e2e }),
        },
        { signal: ctx.signal, ...(timeoutMs === undefined ? {} : { timeoutMs }) },
      );
      const out = answer as { body?: unknown } | undefined;
      if (!(out?.body instanceof Uint8Array))
        throw new PublicError('SIPC_ERR_HANDLER', 'The destination answered without a body');
      this.#stats.callsRouted++;
      this.#stats.bytesRouted += body.byteLength + out.body.byteLength;
      if (note !== undefined) note.bytesOut = out.body.byteLength;
      this.#monitor({
        at: Date.now(),
        kind: 'reply',
        sender: dest.unique,
        destination: conn.unique,
        method,
        bytes: out.body.byteLength,
      });
      return { body: out.body, from: dest.unique };
    } catch (err) {
      this.#stats.callsFailed++;
      const passed = passOn(err);
      this.#monitor({
        at: Date.now(),
        kind: 'error',
        sender: dest.unique,
        destination: conn.unique,
        method,
        bytes: 0,
        code: (passed as { code?: string }).code ?? 'SIPC_ERR_HANDLER',
      });
      throw passed;
    } finally {
      this.#quotas.release(conn.account, 'pendingReplies', 1);
      this.#quotas.release(conn.account, 'bytes', body.byteLength);
    }
  }
}

function encodeOwnerChange(change: OwnerChange): Uint8Array {
  return encodeWireValue({ name: change.name, oldOwner: change.oldOwner, newOwner: change.newOwner });
}

/** Listen on `options.address` and run a broker there. */
export async function serveBus(options: BrokerOptions): Promise<Broker> {
  // The bus policy is checked here first, so a bad one fails before anything listens.
  const policy = policyOf(options.policy);
  const server = await serve({ ...options, policy: PROTOCOL_POLICY });
  try {
    return new Broker(server, { ...options, policy });
  } catch (err) {
    await server.close();
    await server.listener.close();
    throw err;
  }
}
