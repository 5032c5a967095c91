/**
 * End-to-end mode (docs/bus.md section 7): a caller opens a tunnel to a destination through the
 * broker (core's Noise_XX tunnel, docs/tunnel.md, its three messages carried as bodies of
 * `$tunnel.open` / `$tunnel.finish` calls), then every call in it carries a sealed body the
 * broker routes by name and method but cannot open. Each end decides by its own trust whom it
 * talks to; the broker's word is not needed.
 */
import { randomBytes } from 'node:crypto';
import {
  createError,
  decodeWireValue,
  encodeWireValue,
  type HandlerContext,
  isSecureIpcError,
  type KeyPair,
  PublicError,
  RemoteError,
  type Trust,
  type TunnelSession,
  tunnelInitiator,
  tunnelResponder,
} from '@secure-ipc/core';
import type { BusCallOptions, BusClient, Delivery } from './client.js';
import { NAME_OWNER_CHANGED, TUNNEL_FINISH, TUNNEL_ID_BYTES, TUNNEL_OPEN } from './protocol.js';

/** The binding's label (docs/bus.md section 7). */
export const BUS_TUNNEL_LABEL = 'secure-ipc/bus/1';
/** Tunnels one destination holds per sender by default. */
export const DEFAULT_MAX_TUNNELS = 64;
/** How long a destination keeps a tunnel whose handshake did not finish. */
export const TUNNEL_HANDSHAKE_MS = 30_000;

/** End-to-end settings of a bus client. */
export interface E2eOptions {
  /** Who may be the other end of a tunnel: pinned keys or a trust function (never the broker's word). */
  readonly trust: Trust;
  /** This end's static key (default: the key the client connected with). */
  readonly keyPair?: KeyPair;
  /** Tunnels held per sender as a destination (default 64). */
  readonly maxTunnels?: number;
}

/** The binding: the broker's key and the caller's unique name, which both ends know. */
function binding(brokerKey: Uint8Array, caller: string): Uint8Array {
  return encodeWireValue([BUS_TUNNEL_LABEL, brokerKey, caller]);
}
const requestAd = (method: string) => encodeWireValue(['req', method]);
const answerAd = (method: string, sealedRequest: Uint8Array) =>
  encodeWireValue(['res', method, sealedRequest.subarray(0, 8)]);

function idText(id: Uint8Array): string {
  return Buffer.from(id).toString('hex');
}

/** The answer inside a sealed body: a result or a public error. */
type Answer = { result: unknown } | { error: { code: string; message: string; data?: unknown } };

function errorFromAnswer(e: { code: string; message: string; data?: unknown }): Error {
  if (typeof e?.code !== 'string' || typeof e.message !== 'string')
    return createError('SIPC_ERR_PROTOCOL', 'An end-to-end answer with a malformed error');
  if (e.code.startsWith('SIPC_ERR_') && e.code !== 'SIPC_ERR_REMOTE')
    try {
      return createError(e.code as 'SIPC_ERR_HANDLER', e.message, {
        details: { remote: true, e2e: true, ...(e.data === undefined ? {} : { data: e.data }) },
      });
    } catch {
      // not a code of this version's table: an application error below
    }
  return new RemoteError(e.message, {
    remoteCode: e.code,
    data: e.data,
    details: { remote: true, e2e: true },
  });
}

/** An open end-to-end session with one destination. */
export class E2eSession {
  /** The destination's unique name (every call goes to this connection). */
  readonly destination: string;
  readonly #bus: BusClient;
  readonly #session: TunnelSession;
  readonly #tunnel: Uint8Array;

  /** Use `openE2eSession()`. */
  constructor(bus: BusClient, destination: string, session: TunnelSession, tunnel: Uint8Array) {
    this.#bus = bus;
    this.destination = destination;
    this.#session = session;
    this.#tunnel = tunnel;
  }

  /** The destination's static key, proven by the tunnel's handshake. */
  get remoteStaticKey(): Uint8Array {
    return this.#session.remoteStaticKey;
  }

  /** Its fingerprint. */
  get peerId(): string {
    return this.#session.peerId;
  }

  /** Call `method` in the tunnel: the broker sees its name and size, never `params` or the result. */
  async call(method: string, params?: unknown, options?: BusCallOptions): Promise<unknown> {
    const sealed = this.#session.seal(requestAd(method), encodeWireValue(params ?? null, 'params'));
    const { body } = await this.#bus.rawCall(
      { to: this.destination, method, body: sealed, e2e: this.#tunnel },
      options,
    );
    const answer = decodeWireValue(this.#session.open(answerAd(method, sealed), body), 'answer') as Answer;
    if (typeof answer !== 'object' || answer === null)
      throw createError('SIPC_ERR_PROTOCOL', 'A malformed end-to-end answer');
    if ('error' in answer) throw errorFromAnswer(answer.error);
    return answer.result;
  }

  /** End the session: its keys are wiped (the destination forgets it when we leave the bus). */
  close(): void {
    this.#session.close();
  }
}

/** Open a tunnel to the owner of `to` (docs/bus.md section 7, steps 1 and 2). */
export async function openE2eSession(
  bus: BusClient,
  keyPair: KeyPair,
  to: string,
  trust: Trust,
  options?: BusCallOptions,
): Promise<E2eSession> {
  const init = tunnelInitiator({
    staticKeyPair: keyPair,
    trust,
    binding: binding(bus.rpc.remoteStaticKey, bus.name),
  });
  try {
    const first = await bus.rawCall({ to, method: TUNNEL_OPEN, body: init.start() }, options);
    const opened = decodeWireValue(first.body, 'tunnel answer') as { tunnel?: unknown; message?: unknown };
    if (!(opened?.tunnel instanceof Uint8Array) || opened.tunnel.byteLength !== TUNNEL_ID_BYTES)
      throw createError('SIPC_ERR_PROTOCOL', 'The destination answered $tunnel.open without a tunnel id');
    if (!(opened.message instanceof Uint8Array))
      throw createError('SIPC_ERR_PROTOCOL', 'The destination answered $tunnel.open without message 2');
    const message3 = await init.receive(opened.message);
    await bus.rawCall(
      {
        to: first.from,
        method: TUNNEL_FINISH,
        body: encodeWireValue({ tunnel: opened.tunnel, message: message3 }),
      },
      options,
    );
    return new E2eSession(bus, first.from, init.session!, opened.tunnel);
  } catch (err) {
    init.destroy();
    init.session?.close();
    throw err;
  }
}

interface Held {
  readonly sender: string;
  session?: TunnelSession;
  finish?: (m3: Uint8Array) => Promise<TunnelSession>;
  destroy?: () => void;
  timer?: NodeJS.Timeout;
}

/** A destination's tunnels: answers `$tunnel.*` and opens sealed calls. */
export class E2eResponder {
  readonly #bus: BusClient;
  readonly #keyPair: KeyPair;
  readonly #trust: Trust;
  readonly #max: number;
  readonly #tunnels = new Map<string, Held>();

  constructor(bus: BusClient, keyPair: KeyPair, options: E2eOptions) {
    const max = options.maxTunnels ?? DEFAULT_MAX_TUNNELS;
    if (!Number.isSafeInteger(max) || max < 1)
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'e2e.maxTunnels must be a positive integer');
    this.#bus = bus;
    this.#keyPair = keyPair;
    this.#trust = options.trust;
    this.#max = max;
  }

  /** Forget the tunnels of senders that left the bus (connectBus subscribes it to NameOwnerChanged). */
  watch(): Promise<unknown> {
    return this.#bus.addMatch({ signal: NAME_OWNER_CHANGED }, (v) => {
      const change = v as { name?: unknown; newOwner?: unknown };
      if (change?.newOwner === '' && typeof change.name === 'string') this.forget(change.name);
    });
  }

  /** Drop every tunnel of `sender` (its keys wiped). */
  forget(sender: string): void {
    for (const [id, held] of this.#tunnels) if (held.sender === sender) this.#drop(id, held);
  }

  /** Drop everything (the client closes). */
  close(): void {
    for (const [id, held] of this.#tunnels) this.#drop(id, held);
  }

  #drop(id: string, held: Held): void {
    this.#tunnels.delete(id);
    clearTimeout(held.timer);
    held.destroy?.();
    held.session?.close();
  }

  /** Handle a delivery that belongs to end-to-end mode, or undefined for a plain call. */
  handle(p: Delivery, ctx: HandlerContext): Promise<{ body: Uint8Array }> | undefined {
    if (p.method === TUNNEL_OPEN) return Promise.resolve(this.#open(p));
    if (p.method === TUNNEL_FINISH) return this.#finish(p);
    if (p.e2e !== undefined) return this.#call(p, ctx);
    return undefined;
  }

  #open(p: Delivery): { body: Uint8Array } {
    let count = 0;
    for (const held of this.#tunnels.values()) if (held.sender === p.sender) count++;
    if (count >= this.#max) throw createError('SIPC_ERR_BUSY');
    const responder = tunnelResponder({
      staticKeyPair: this.#keyPair,
      trust: this.#trust,
      binding: binding(this.#bus.rpc.remoteStaticKey, p.sender),
    });
    let message2: Uint8Array;
    try {
      message2 = responder.respond(p.body);
    } catch {
      responder.destroy();
      throw new PublicError('SIPC_ERR_HANDSHAKE_FAILED', 'The tunnel handshake failed');
    }
    const tunnel = randomBytes(TUNNEL_ID_BYTES);
    const id = idText(tunnel);
    const held: Held = {
      sender: p.sender,
      finish: (m3) => responder.finish(m3),
      destroy: () => responder.destroy(),
    };
    held.timer = setTimeout(() => this.#drop(id, held), TUNNEL_HANDSHAKE_MS);
    held.timer.unref();
    this.#tunnels.set(id, held);
    return { body: encodeWireValue({ tunnel: new Uint8Array(tunnel), message: message2 }) };
  }

  async #finish(p: Delivery): Promise<{ body: Uint8Array }> {
    const m = decodeWireValue(p.body, 'tunnel finish') as { tunnel?: unknown; message?: unknown };
    const id = m?.tunnel instanceof Uint8Array ? idText(m.tunnel) : '';
    const held = this.#tunnels.get(id);
    if (
      held === undefined ||
      held.sender !== p.sender ||
      held.finish === undefined ||
      !(m.message instanceof Uint8Array)
    )
      throw new PublicError('SIPC_ERR_HANDSHAKE_FAILED', 'No such tunnel handshake');
    const finish = held.finish;
    held.finish = undefined;
    try {
      held.session = await finish(m.message);
    } catch (err) {
      this.#drop(id, held);
      if (isSecureIpcError(err, 'SIPC_ERR_UNTRUSTED_PEER'))
        throw new PublicError(
          'SIPC_ERR_UNTRUSTED_PEER',
          'The destination does not trust this key end to end',
        );
      throw new PublicError('SIPC_ERR_HANDSHAKE_FAILED', 'The tunnel handshake failed');
    }
    clearTimeout(held.timer);
    held.destroy = undefined;
    return { body: encodeWireValue({}) };
  }

  async #call(p: Delivery, ctx: HandlerContext): Promise<{ body: Uint8Array }> {
    const held = this.#tunnels.get(idText(p.e2e!));
    const session = held?.sender === p.sender ? held.session : undefined;
    let params: unknown;
    try {
      if (session === undefined) throw new Error('no session');
      params = decodeWireValue(session.open(requestAd(p.method), p.body), 'params');
    } catch {
      // Nothing runs: a body that does not open (replayed, moved, altered) or no such tunnel.
      throw new PublicError('SIPC_ERR_DECRYPT_FAILED', 'The end-to-end body did not open');
    }
    const ad = answerAd(p.method, p.body);
    const seal = (answer: Answer) => ({ body: session.seal(ad, encodeWireValue(answer)) });
    const handler = this.#bus.handlerOf(p.method);
    if (handler === undefined)
      return seal({ error: { code: 'SIPC_ERR_NO_SUCH_METHOD', message: 'No such method' } });
    try {
      const result = await handler(params, {
        sender: p.sender,
        to: p.to,
        method: p.method,
        identity: p.identity as never,
        signal: ctx.signal,
        e2e: { peerId: session.peerId, remoteStaticKey: session.remoteStaticKey, roles: session.roles },
      });
      return seal({ result: result ?? null });
    } catch (err) {
      if (err instanceof PublicError)
        return seal({
          error: {
            code: err.code,
            message: err.message,
            ...(err.data === undefined ? {} : { data: err.data }),
          },
        });
      if (this.#bus.listenerCount('error') > 0) this.#bus.emit('error', err);
      return seal({ error: { code: 'SIPC_ERR_HANDLER', message: 'The handler failed' } });
    }
  }
}
