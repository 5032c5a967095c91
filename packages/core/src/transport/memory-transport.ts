/**
 * Core's in-memory transport: `memory://NAME` addresses in one process, each connection a pair of
 * connected Duplex streams with backpressure. The reference transport for tests and conformance.
 */
import { EventEmitter } from 'node:events';
import { Duplex } from 'node:stream';
import { createError } from '../errors.js';
import {
  type AbortOptions,
  type Connection,
  type Listener,
  type ListenerEvents,
  type PeerInfo,
  TRANSPORT_BRAND,
  type Transport,
} from './contract.js';

const MEMORY_PEER: PeerInfo = Object.freeze({ transport: 'memory' });

// One namespace per process, like a socket directory: any memoryTransport() reaches any listener.
const listeners = new Map<string, MemoryListener>();

function parseAddress(address: string): string {
  const m = typeof address === 'string' ? /^memory:\/\/(.+)$/i.exec(address) : null;
  if (!m) throw createError('SIPC_ERR_INVALID_ADDRESS', `Not a memory address: ${String(address)}`);
  return m[1]!;
}

/** One end of an in-memory connection. */
export class MemoryConnection extends Duplex implements Connection {
  readonly peer: PeerInfo = MEMORY_PEER;
  /** The other end. */
  other: MemoryConnection | undefined;
  private pendingWrite: (() => void) | undefined;

  /** Create an unconnected end (use `memoryPair`). */
  constructor() {
    super({ allowHalfOpen: true });
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    const other = this.other;
    if (other === undefined || other.destroyed || other.readableEnded) {
      callback(createError('SIPC_ERR_CONNECTION_CLOSED', 'The other end of the memory connection is gone'));
      return;
    }
    // Backpressure: hold the callback until the reader asks for more.
    if (other.push(chunk)) callback();
    else other.pendingWrite = callback;
  }

  override _read(): void {
    const release = this.pendingWrite;
    this.pendingWrite = undefined;
    release?.();
  }

  override _final(callback: (error?: Error | null) => void): void {
    const other = this.other;
    if (other !== undefined && !other.destroyed) other.push(null);
    callback();
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    const other = this.other;
    this.other = undefined;
    // Like a socket close: the other end reads what was already delivered, then end-of-stream;
    // its writes blocked on our full buffer complete (the bytes are lost), later ones fail.
    if (other !== undefined && !other.destroyed) {
      other.other = undefined;
      if (!other.readableEnded) other.push(null);
    }
    const release = this.pendingWrite;
    this.pendingWrite = undefined;
    release?.();
    callback(error);
  }
}

/** Two connected in-memory ends. */
export function memoryPair(): [MemoryConnection, MemoryConnection] {
  const a = new MemoryConnection();
  const b = new MemoryConnection();
  a.other = b;
  b.other = a;
  return [a, b];
}

class MemoryListener extends EventEmitter<ListenerEvents> implements Listener {
  private readonly open = new Set<MemoryConnection>();
  private closed = false;

  constructor(
    readonly address: string,
    private readonly name: string,
  ) {
    super();
  }

  connectTo(): MemoryConnection {
    const [client, server] = memoryPair();
    this.open.add(server);
    server.once('close', () => this.open.delete(server));
    setImmediate(() => {
      if (this.closed) server.destroy();
      else this.emit('connection', server);
    });
    return client;
  }

  close(): Promise<void> {
    if (!this.closed) {
      this.closed = true;
      if (listeners.get(this.name) === this) listeners.delete(this.name);
      for (const c of this.open) c.destroy();
      setImmediate(() => this.emit('close'));
    }
    return Promise.resolve();
  }
}

class MemoryTransport implements Transport {
  readonly [TRANSPORT_BRAND] = true as const;
  readonly name = 'memory';
  readonly schemes: readonly string[] = ['memory:'];

  async listen(address: string, options?: AbortOptions): Promise<Listener> {
    const name = parseAddress(address);
    if (options?.signal?.aborted) throw createError('SIPC_ERR_ABORTED');
    if (listeners.has(name)) throw createError('SIPC_ERR_ADDRESS_IN_USE', `${address} is already listening`);
    const listener = new MemoryListener(address, name);
    listeners.set(name, listener);
    return listener;
  }

  async connect(address: string, options?: AbortOptions): Promise<Connection> {
    const name = parseAddress(address);
    if (options?.signal?.aborted) throw createError('SIPC_ERR_ABORTED');
    const listener = listeners.get(name);
    if (listener === undefined) throw createError('SIPC_ERR_CONNECT_FAILED', `Nothing listens at ${address}`);
    return listener.connectTo();
  }
}

/** The in-memory transport (`memory://NAME`), for tests and as the conformance reference. */
export function memoryTransport(): Transport {
  return new MemoryTransport();
}
