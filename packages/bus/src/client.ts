/**
 * A bus peer (docs/bus.md): an RPC client of the broker that also answers the broker's
 * `bus.deliver` requests with the handlers registered here. Values cross as bodies (msgpack by the
 * wire's value rules, decoded under the decode budget); the broker never decodes them.
 */
import { EventEmitter } from 'node:events';
import {
  type ConnectOptions,
  connect,
  createError,
  decodeWireValue,
  encodeWireValue,
  type HandlerContext,
  type KeyPair,
  type RequestOptions,
  type RpcClient,
  type Trust,
} from '@secure-ipc/core';
import type { BusIdentity, MonitorRecord } from './broker.js';
import { type E2eOptions, E2eResponder, type E2eSession, openE2eSession } from './e2e.js';
import type { MatchRule } from './matches.js';
import {
  NameFlag,
  ReleaseNameReply,
  type ReleaseNameReplyCode,
  RequestNameReply,
  type RequestNameReplyCode,
} from './names.js';
import { assertMethod, BUS_EVENTS, BusDelivery, BusMethod, fields } from './protocol.js';
import type { QuotaReport } from './quotas.js';

/** What a handler of a routed call sees. */
export interface BusCallContext {
  /** The caller's unique name. */
  readonly sender: string;
  /** The name the caller addressed (one of ours). */
  readonly to: string;
  /** The method. */
  readonly method: string;
  /** The caller's identity as the broker attests it. */
  readonly identity: BusIdentity;
  /** Fires on the caller's cancel or deadline, or when the broker's channel closes. */
  readonly signal: AbortSignal;
  /** The end-to-end session the call came in, when it did (its key proven by the tunnel). */
  readonly e2e?: {
    readonly peerId: string;
    readonly remoteStaticKey: Uint8Array;
    readonly roles: readonly string[];
  };
}

/** A handler of routed calls. */
export type BusHandler = (params: unknown, context: BusCallContext) => unknown;

/** Where a signal came from. */
export interface SignalInfo {
  /** The sender's unique name (or `bus`). */
  readonly sender: string;
  /** The signal name. */
  readonly signal: string;
}

/** Options of `bus.call`. */
export interface BusCallOptions {
  /** The deadline (ms): sent on to the destination. */
  readonly timeoutMs?: number;
  /** Cancel the call. */
  readonly signal?: AbortSignal;
}

/** RequestName flags as names. */
export interface RequestNameFlags {
  /** A later replaceExisting request may take the name from us. */
  readonly allowReplacement?: boolean;
  /** Take the name if its owner allowed replacement. */
  readonly replaceExisting?: boolean;
  /** Do not wait in the queue. */
  readonly doNotQueue?: boolean;
}

/** RequestName replies as words. */
export type RequestNameResult = 'primary-owner' | 'in-queue' | 'exists' | 'already-owner';
/** ReleaseName replies as words. */
export type ReleaseNameResult = 'released' | 'non-existent' | 'not-owner';

const REQUEST_RESULT: Record<RequestNameReplyCode, RequestNameResult> = {
  [RequestNameReply.PRIMARY_OWNER]: 'primary-owner',
  [RequestNameReply.IN_QUEUE]: 'in-queue',
  [RequestNameReply.EXISTS]: 'exists',
  [RequestNameReply.ALREADY_OWNER]: 'already-owner',
};
const RELEASE_RESULT: Record<ReleaseNameReplyCode, ReleaseNameResult> = {
  [ReleaseNameReply.RELEASED]: 'released',
  [ReleaseNameReply.NON_EXISTENT]: 'non-existent',
  [ReleaseNameReply.NOT_OWNER]: 'not-owner',
};

/** Events of a bus client. */
export interface BusClientEvents {
  /** We became a name's primary owner. */
  nameAcquired: [name: string];
  /** We are no longer a name's primary owner. */
  nameLost: [name: string];
  /** Every signal we take (broadcasts through our match rules, and unicasts to us). */
  signal: [value: unknown, info: SignalInfo];
  /** The channel to the broker closed. */
  close: [error: Error | undefined];
  /** A local failure with no caller (a listener that threw, an undecodable signal). */
  error: [error: unknown];
}

/** Options of `connectBus`: `connect()`'s (transport, address, keyPair, trust: the broker's key). */
export interface BusClientOptions extends Omit<ConnectOptions, 'handlers'> {
  /**
   * Answer end-to-end sessions (docs/bus.md section 7): who may open one to us, by our own trust.
   * Without it, `$tunnel.*` and sealed calls to us are SIPC_ERR_NO_SUCH_METHOD.
   */
  e2e?: E2eOptions;
}

/** A peer on a bus. */
export class BusClient extends EventEmitter<BusClientEvents> {
  /** The RPC client underneath (the channel to the broker). */
  readonly rpc: RpcClient;
  #name = '';
  #identity: BusIdentity | undefined;
  readonly #handlers = new Map<string, BusHandler>();
  readonly #matches = new Map<number, (value: unknown, info: SignalInfo) => void>();
  #monitor: ((record: MonitorRecord) => void) | undefined;
  /** Set by the end-to-end layer: answers tunnel methods and opens sealed calls. */
  deliverHook: ((p: Delivery, ctx: HandlerContext) => Promise<{ body: Uint8Array }> | undefined) | undefined;

  readonly #keyPair: KeyPair;
  #responder: E2eResponder | undefined;

  /** Use `connectBus()`. */
  constructor(rpc: RpcClient, keyPair: KeyPair) {
    super();
    this.rpc = rpc;
    this.#keyPair = keyPair;
    rpc.on('close', (error) => this.emit('close', error));
  }

  /** Our unique name (`:1.N`). */
  get name(): string {
    return this.#name;
  }

  /** Our identity as the broker attests it. */
  get identity(): BusIdentity {
    return this.#identity!;
  }

  /** @internal The handler of `method`. */
  handlerOf(method: string): BusHandler | undefined {
    return this.#handlers.get(method);
  }

  /** @internal hello + the `bus.*` subscription; connectBus runs it. */
  async start(): Promise<void> {
    await this.rpc.subscribe(BUS_EVENTS, (payload: unknown, info: { topic: string }) =>
      this.#event(info.topic, payload),
    );
    const hello = (await this.rpc.request(BusMethod.hello as never, {} as never)) as {
      name: string;
      identity: BusIdentity;
    };
    this.#name = hello.name;
    this.#identity = hello.identity;
  }

  /** Answer routed calls of `method` (SIPC_ERR_INVALID_ARGUMENT for a `$` name or a second handler). */
  handle(method: string, handler: BusHandler): this {
    assertMethod(method, false);
    if (typeof handler !== 'function')
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'handler must be a function');
    if (this.#handlers.has(method))
      throw createError('SIPC_ERR_INVALID_ARGUMENT', `${method} has a handler already`);
    this.#handlers.set(method, handler);
    return this;
  }

  #request<T>(method: string, p: unknown, options?: RequestOptions): Promise<T> {
    return this.rpc.request(method as never, p as never, options as never) as Promise<T>;
  }

  /** Call `method` of the owner of `to`; resolves with its result (decoded). */
  async call(to: string, method: string, params?: unknown, options: BusCallOptions = {}): Promise<unknown> {
    assertMethod(method, false);
    const body = encodeWireValue(params ?? null, 'params');
    const answer = await this.#request<{ body: Uint8Array }>(BusMethod.call, { to, method, body }, options);
    return decodeWireValue(answer.body, 'result');
  }

  /** @internal a raw bus.call (the end-to-end layer's). */
  rawCall(p: Record<string, unknown>, options?: BusCallOptions): Promise<{ body: Uint8Array; from: string }> {
    return this.#request(BusMethod.call, p, options);
  }

  /** RequestName (docs/bus.md section 3). */
  async requestName(name: string, flags: RequestNameFlags = {}): Promise<RequestNameResult> {
    const bits =
      (flags.allowReplacement ? NameFlag.ALLOW_REPLACEMENT : 0) |
      (flags.replaceExisting ? NameFlag.REPLACE_EXISTING : 0) |
      (flags.doNotQueue ? NameFlag.DO_NOT_QUEUE : 0);
    const { reply } = await this.#request<{ reply: RequestNameReplyCode }>(BusMethod.requestName, {
      name,
      flags: bits,
    });
    return REQUEST_RESULT[reply];
  }

  /** ReleaseName. */
  async releaseName(name: string): Promise<ReleaseNameResult> {
    const { reply } = await this.#request<{ reply: ReleaseNameReplyCode }>(BusMethod.releaseName, { name });
    return RELEASE_RESULT[reply];
  }

  /** The primary owner's unique name (SIPC_ERR_NAME_HAS_NO_OWNER without one). */
  async getNameOwner(name: string): Promise<string> {
    return (await this.#request<{ owner: string }>(BusMethod.getNameOwner, { name })).owner;
  }

  /** Whether the name has an owner. */
  async nameHasOwner(name: string): Promise<boolean> {
    return (await this.#request<{ owned: boolean }>(BusMethod.nameHasOwner, { name })).owned;
  }

  /** `bus`, the owned well-known names, the connected unique names. */
  async listNames(): Promise<string[]> {
    return (await this.#request<{ names: string[] }>(BusMethod.listNames, {})).names;
  }

  /** The queue of a name, primary owner first. */
  async listQueuedOwners(name: string): Promise<string[]> {
    return (await this.#request<{ owners: string[] }>(BusMethod.listQueuedOwners, { name })).owners;
  }

  /** Who owns `name`, with which identity (needs `$bus.identity` unless it is us). */
  identityOf(name: string): Promise<BusIdentity> {
    return this.#request(BusMethod.identity, { name });
  }

  /** Our quota usage and limits. */
  quota(): Promise<QuotaReport> {
    return this.#request(BusMethod.quota, {});
  }

  /** Send a signal: a broadcast to every matching peer, or with `to` to that name's owner. */
  async signal(signal: string, value?: unknown, options: { to?: string } = {}): Promise<void> {
    const body = encodeWireValue(value ?? null, 'value');
    await this.#request(BusMethod.emit, {
      signal,
      body,
      ...(options.to === undefined ? {} : { to: options.to }),
    });
  }

  /** Take the signals `rule` matches; resolves with a function that removes the rule. */
  async addMatch(
    rule: MatchRule,
    listener: (value: unknown, info: SignalInfo) => void,
  ): Promise<() => Promise<void>> {
    if (typeof listener !== 'function')
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'listener must be a function');
    const p = {
      ...(rule.signal === undefined ? {} : { signal: rule.signal }),
      ...(rule.sender === undefined ? {} : { sender: rule.sender }),
    };
    const { id } = await this.#request<{ id: number }>(BusMethod.addMatch, p);
    this.#matches.set(id, listener);
    return async () => {
      if (!this.#matches.delete(id)) return;
      await this.#request(BusMethod.removeMatch, { id });
    };
  }

  /** Become a monitor (needs `$bus.monitor`): `listener` gets the metadata of everything routed. */
  async becomeMonitor(listener: (record: MonitorRecord) => void): Promise<void> {
    await this.#request(BusMethod.becomeMonitor, {});
    this.#monitor = listener;
  }

  /** @internal Answer end-to-end sessions (connectBus, with `e2e`). */
  async answerE2e(options: E2eOptions): Promise<void> {
    const responder = new E2eResponder(this, options.keyPair ?? this.#keyPair, options);
    this.#responder = responder;
    this.deliverHook = (p, ctx) => responder.handle(p, ctx);
    await responder.watch();
  }

  /**
   * Open an end-to-end session with the owner of `to` (docs/bus.md section 7): the broker routes
   * its calls by name and method but cannot read their params or results. `trust` decides which
   * key the other end may have (pinned keys or a function: never the broker's word).
   */
  openSession(
    to: string,
    options: { trust: Trust; keyPair?: KeyPair } & BusCallOptions,
  ): Promise<E2eSession> {
    const { trust, keyPair, ...call } = options;
    return openE2eSession(this, keyPair ?? this.#keyPair, to, trust, call);
  }

  /** Leave the bus (end-to-end sessions held as a destination are wiped). */
  close(): Promise<void> {
    this.#responder?.close();
    return this.rpc.close();
  }

  #safe(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      if (this.listenerCount('error') > 0) this.emit('error', err);
    }
  }

  #event(topic: string, payload: unknown): void {
    const p = payload as Record<string, unknown>;
    if (topic === BusDelivery.nameAcquired || topic === BusDelivery.nameLost) {
      if (typeof p?.name !== 'string') return;
      const event = topic === BusDelivery.nameAcquired ? 'nameAcquired' : 'nameLost';
      this.#safe(() => this.emit(event, p.name as string));
    } else if (topic === BusDelivery.monitor) {
      const m = this.#monitor;
      if (m !== undefined) this.#safe(() => m(p as unknown as MonitorRecord));
    } else if (topic === BusDelivery.signal) {
      const { sender, signal, body, matches } = p as {
        sender: string;
        signal: string;
        body: Uint8Array;
        matches?: number[];
      };
      let value: unknown;
      try {
        value = decodeWireValue(body, 'signal body');
      } catch (err) {
        if (this.listenerCount('error') > 0) this.emit('error', err);
        return;
      }
      const info: SignalInfo = { sender, signal };
      this.#safe(() => this.emit('signal', value, info));
      for (const id of Array.isArray(matches) ? matches : []) {
        const listener = this.#matches.get(id);
        if (listener !== undefined) this.#safe(() => listener(value, info));
      }
    }
  }

  /** @internal Answer one `bus.deliver` (connectBus registers it). */
  async deliver(params: unknown, ctx: HandlerContext): Promise<{ body: Uint8Array }> {
    const p = fields<Delivery>(params, BusDelivery.deliver, {
      sender: 'string',
      to: 'string',
      method: 'string',
      body: 'bytes',
      identity: 'map',
      'e2e?': 'bytes',
    });
    const hooked = this.deliverHook?.(p, ctx);
    if (hooked !== undefined) return hooked;
    if (p.e2e !== undefined || p.method.startsWith('$')) throw createError('SIPC_ERR_NO_SUCH_METHOD'); // no end-to-end layer here
    const handler = this.#handlers.get(p.method);
    if (handler === undefined) throw createError('SIPC_ERR_NO_SUCH_METHOD');
    const params2 = decodeWireValue(p.body, 'params');
    const result = await handler(params2, {
      sender: p.sender,
      to: p.to,
      method: p.method,
      identity: p.identity as unknown as BusIdentity,
      signal: ctx.signal,
    });
    return { body: encodeWireValue(result ?? null, 'result') };
  }
}

/** One `bus.deliver` request. */
export interface Delivery {
  readonly sender: string;
  readonly to: string;
  readonly method: string;
  readonly body: Uint8Array;
  readonly identity: Record<string, unknown>;
  readonly e2e?: Uint8Array;
}

/** Connect to a broker and join its bus (hello, and the subscription to its events). */
export async function connectBus(options: BusClientOptions): Promise<BusClient> {
  let bus: BusClient | undefined;
  const { e2e: _e2e, ...connectOptions } = options;
  const rpc = await connect({
    ...connectOptions,
    handlers: new Map([
      [
        BusDelivery.deliver,
        (p: unknown, ctx: HandlerContext) => {
          if (bus === undefined) throw createError('SIPC_ERR_NO_SUCH_METHOD');
          return bus.deliver(p, ctx);
        },
      ],
    ]),
  });
  bus = new BusClient(rpc, options.keyPair);
  try {
    await bus.start();
    if (options.e2e !== undefined) await bus.answerE2e(options.e2e);
  } catch (err) {
    await rpc.close();
    throw err;
  }
  return bus;
}
