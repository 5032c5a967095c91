/**
 * A listening named pipe whose instances this package creates itself (see hardening.ts): a few
 * instances wait in an overlapped ConnectNamedPipe; when one connects, the client's pid and SID are
 * checked against the policy before anyone sees the connection, and only then is the HANDLE given
 * to libuv (uv_open_osfhandle + `new net.Socket({ fd })`), which does all further I/O on Node's
 * completion port.
 *
 * Waiting for a connection uses RegisterWaitForSingleObject on the OVERLAPPED event: a Windows
 * thread-pool thread waits, and koffi queues the callback onto the JS thread. That takes no libuv or
 * koffi worker thread per listener (a blocking ConnectNamedPipe on koffi's async workers would, and a
 * few listeners would starve fs and crypto), and no polling.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { createError, type Listener } from '@secure-ipc/core';
import { type ListenerEvents, socketConnection } from '@secure-ipc/core/transport';
import {
  assertSoleInstance,
  createServerInstance,
  readSecurityDescriptor,
  type SecurityDescriptor,
} from './hardening.js';
import {
  checkCredentials,
  membershipQuery,
  type PipeCredentialPolicy,
  pipePeer,
  readPeerCredentials,
} from './peer-credentials.js';
import { withExecutable } from './peer-executable.js';
import {
  adoptHandle,
  closeFd,
  currentUserSid,
  type Handle,
  Win,
  type Win32,
  WinError,
  win32Error,
} from './win32-ffi.js';

/** Instances kept waiting for clients; a burst beyond this sees ERROR_PIPE_BUSY and retries. */
const PENDING_INSTANCES = 4;

/** sizeof(OVERLAPPED) on x64; hEvent is the last field, at offset 24. */
const OVERLAPPED_SIZE = 32;

/** Give a connected pipe HANDLE to Node; on failure the handle is closed and the error thrown. */
export function handleToSocket(w: Win32, h: Handle): net.Socket {
  let fd: number;
  try {
    fd = adoptHandle(w, h);
  } catch (cause) {
    w.CloseHandle(h);
    throw createError('SIPC_ERR_CONNECTION_CLOSED', 'The pipe closed before it reached Node', { cause });
  }
  try {
    // readable/writable must be explicit for an fd socket (Node's default for fds is neither).
    return new net.Socket({ fd, readable: true, writable: true });
  } catch (cause) {
    // Typically the peer hung up in between (uv_pipe_open cannot query a broken pipe).
    closeFd(fd);
    throw createError('SIPC_ERR_CONNECTION_CLOSED', 'The pipe closed before it reached Node', { cause });
  }
}

// ---- one koffi callback for every wait in the process --------------------------------------------
// Registered once and never unregistered: a wait that fires while being unregistered may still call
// it, and calling an unregistered koffi callback would crash the process. `ctx` carries the id.
const waiters = new Map<number, () => void>();
let nextWaitId = 1;
let waitCallback: unknown;

function registeredWaitCallback(w: Win32): unknown {
  waitCallback ??= w.koffi.register((ctx: unknown) => {
    const id = Number(w.koffi.address(ctx));
    const fn = waiters.get(id);
    waiters.delete(id);
    // Leave koffi's callback context first: the thread-pool thread is blocked until we return.
    if (fn !== undefined) setImmediate(fn);
  }, w.koffi.pointer(w.WAIT_CALLBACK));
  return waitCallback;
}

/** Overlapped buffers whose cancellation never completed: kept reachable forever, never reused. */
const leakedOverlapped: Buffer[] = [];

/** One server instance waiting in ConnectNamedPipe. */
interface PendingInstance {
  handle: Handle;
  event: Handle;
  overlapped: Buffer;
  wait: Handle;
  waitId: number;
  /** True while a ConnectNamedPipe is in flight (the kernel may still write the OVERLAPPED). */
  ioPending: boolean;
}

/** A listening named pipe with hardened instances that accepts clients allowed by the policy. */
export class PipeListener extends EventEmitter<ListenerEvents> implements Listener {
  /** The address as given to listen. */
  readonly address: string;
  /** The full pipe path (`\\.\pipe\...`). */
  readonly path: string;
  /** The SDDL every instance of this pipe is created with. */
  readonly sddl: string;
  readonly #w: Win32;
  readonly #sd: SecurityDescriptor;
  readonly #policy: PipeCredentialPolicy;
  readonly #pending = new Set<PendingInstance>();
  readonly #connections = new Set<net.Socket>();
  // The waits are on Windows threads, invisible to the event loop: this timer keeps the process
  // alive while listening, as a net.Server would.
  readonly #keepAlive: NodeJS.Timeout;
  #closing: Promise<void> | undefined;
  #failures = 0;

  /**
   * Create the first instance (FILE_FLAG_FIRST_PIPE_INSTANCE, then the sole-instance check), then
   * the other pending instances. Throws typed errors; nothing is left open on failure.
   */
  constructor(w: Win32, address: string, path: string, sd: SecurityDescriptor, policy: PipeCredentialPolicy) {
    super();
    this.#w = w;
    this.address = address;
    this.path = path;
    this.sddl = sd.sddl;
    this.#sd = sd;
    this.#policy = policy;
    try {
      const first = createServerInstance(w, path, sd, true);
      try {
        assertSoleInstance(w, first, path);
      } catch (err) {
        w.CloseHandle(first);
        throw err;
      }
      // #arm owns the handle from here: it closes it itself when it fails.
      this.#arm(first);
      for (let i = 1; i < PENDING_INSTANCES; i++) this.#arm(createServerInstance(w, path, sd, false));
    } catch (err) {
      for (const inst of this.#pending) this.#cancel(inst);
      this.#pending.clear();
      sd.free();
      throw err;
    }
    this.#keepAlive = setInterval(() => {}, 2 ** 31 - 1);
  }

  /** Start an overlapped ConnectNamedPipe on `handle` and wait for it on the thread pool. */
  #arm(handle: Handle): void {
    const w = this.#w;
    const event = w.CreateEventW(null, true, false, null);
    if (event === null || w.koffi.address(event) === 0n) {
      const errno = w.GetLastError();
      w.CloseHandle(handle);
      throw createError('SIPC_ERR_LISTEN_FAILED', 'CreateEventW failed', {
        cause: win32Error('CreateEventW', errno),
      });
    }
    // Backed by its own ArrayBuffer, which V8 never moves: the kernel writes to this address
    // asynchronously (a small Buffer.alloc may start on the V8 heap).
    const overlapped = Buffer.from(new ArrayBuffer(OVERLAPPED_SIZE));
    overlapped.writeBigUInt64LE(BigInt(w.koffi.address(event)), 24);
    const inst: PendingInstance = { handle, event, overlapped, wait: null, waitId: 0, ioPending: false };
    const connected = w.ConnectNamedPipe(handle, overlapped);
    const errno = connected ? 0 : w.GetLastError();
    if (connected || errno === WinError.PIPE_CONNECTED) {
      // A client connected between CreateNamedPipeW and ConnectNamedPipe.
      this.#pending.add(inst);
      setImmediate(() => this.#completed(inst, true));
      return;
    }
    if (errno !== WinError.IO_PENDING) {
      w.CloseHandle(event);
      w.CloseHandle(handle);
      throw createError('SIPC_ERR_LISTEN_FAILED', 'ConnectNamedPipe failed', {
        cause: win32Error('ConnectNamedPipe', errno),
      });
    }
    inst.ioPending = true;
    const waitId = nextWaitId++;
    waiters.set(waitId, () => this.#completed(inst));
    const wait: Handle[] = [null];
    if (
      !w.RegisterWaitForSingleObject(
        wait,
        event,
        registeredWaitCallback(w),
        waitId,
        Win.INFINITE,
        Win.WT_EXECUTEONLYONCE,
      )
    ) {
      const err = w.GetLastError();
      waiters.delete(waitId);
      this.#cancel(inst);
      throw createError('SIPC_ERR_LISTEN_FAILED', 'RegisterWaitForSingleObject failed', {
        cause: win32Error('RegisterWaitForSingleObject', err),
      });
    }
    inst.wait = wait[0];
    inst.waitId = waitId;
    this.#pending.add(inst);
  }

  /**
   * A ConnectNamedPipe finished (its event is signalled) or connected synchronously (`immediate`):
   * replace the instance, then check the client and hand it over.
   */
  #completed(inst: PendingInstance, immediate = false): void {
    if (!this.#pending.delete(inst)) return; // already cancelled by close()
    const w = this.#w;
    if (inst.wait !== null) w.UnregisterWait(inst.wait);
    // bWait = TRUE although the event is already signalled: under Wine the OVERLAPPED status is
    // written by an APC that runs on this thread's next wineserver call, after the event fires
    // (measured: with bWait = FALSE about 30 of 100 concurrent connects read ERROR_IO_INCOMPLETE);
    // the wait is that call. On Windows the status is final before the event is set, so it returns
    // at once. A synchronous connect never had I/O pending, so there is nothing to read.
    const ok = immediate || w.GetOverlappedResult(inst.handle, inst.overlapped, [0], true);
    const errno = ok ? 0 : w.GetLastError();
    w.CloseHandle(inst.event);
    this.#replenish();
    // ERROR_PIPE_CONNECTED is success; ERROR_NO_DATA means the client came and went already.
    if (!ok && errno !== WinError.PIPE_CONNECTED) {
      w.CloseHandle(inst.handle);
      if (errno !== WinError.NO_DATA && errno !== WinError.OPERATION_ABORTED) {
        this.emit(
          'reject',
          createError('SIPC_ERR_CONNECTION_CLOSED', 'A pipe connection failed before it was accepted', {
            cause: win32Error('ConnectNamedPipe', errno),
          }),
          undefined,
        );
      }
      return;
    }
    this.#accept(inst.handle);
  }

  /** Check the connected client's credentials; hand allowed ones to Node and emit them. */
  #accept(handle: Handle): void {
    const w = this.#w;
    const creds = readPeerCredentials(w, handle, 'server', membershipQuery(this.#policy));
    const peer = pipePeer(creds);
    const refusal = checkCredentials(this.#policy, creds, currentUserSid, 'client');
    if (refusal !== undefined) {
      // Refused before a byte is read: disconnect so the client sees the pipe break at once.
      w.DisconnectNamedPipe(handle);
      w.CloseHandle(handle);
      this.emit('reject', refusal, peer);
      return;
    }
    let socket: net.Socket;
    try {
      socket = handleToSocket(w, handle);
    } catch (err) {
      this.emit('reject', err as Error, peer);
      return;
    }
    this.#connections.add(socket);
    socket.once('close', () => this.#connections.delete(socket));
    this.emit('connection', socketConnection(socket, withExecutable(peer, w, socket)));
  }

  /** Keep PENDING_INSTANCES waiting; a failure is reported and retried later, never thrown. */
  #replenish(): void {
    while (this.#closing === undefined && this.#pending.size < PENDING_INSTANCES) {
      try {
        this.#arm(createServerInstance(this.#w, this.path, this.#sd, false));
        this.#failures = 0;
      } catch (err) {
        this.#failures++;
        this.emit('reject', err as Error, undefined);
        // Out of handles or similar: try again a little later instead of spinning.
        const retry = setTimeout(() => this.#replenish(), Math.min(1000, 10 * 2 ** this.#failures));
        retry.unref();
        return;
      }
    }
  }

  /** Cancel a pending ConnectNamedPipe and release the instance. */
  #cancel(inst: PendingInstance): void {
    const w = this.#w;
    if (inst.wait !== null) w.UnregisterWait(inst.wait);
    waiters.delete(inst.waitId);
    if (inst.ioPending) {
      w.CancelIoEx(inst.handle, inst.overlapped);
      // The kernel writes the cancellation status into the OVERLAPPED: wait until it has, so the
      // buffer is never freed under it. Cancelling a ConnectNamedPipe completes at once; if it
      // somehow does not within 5 s, keep the buffer alive forever rather than risk a corruption.
      if (w.WaitForSingleObject(inst.event, 5000) !== 0) leakedOverlapped.push(inst.overlapped);
    }
    w.CloseHandle(inst.handle);
    w.CloseHandle(inst.event);
  }

  /**
   * Read the security descriptor back from one of this listener's own instance handles
   * (GetSecurityInfo, as SDDL with owner and group): what the pipe file system stored, for audits
   * and tests. It shows the configuration; whether the OS enforces it is another matter (Wine does not).
   */
  readSecurityDescriptor(): string {
    const inst = this.#pending.values().next().value;
    if (inst === undefined) throw createError('SIPC_ERR_CHANNEL_CLOSED', 'The listener has no open instance');
    return readSecurityDescriptor(this.#w, inst.handle);
  }

  /** Stop accepting, cancel the waiting instances and destroy open connections; idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const inst of this.#pending) this.#cancel(inst);
      this.#pending.clear();
      clearInterval(this.#keepAlive);
      const closed = [...this.#connections].map(
        (socket) => new Promise<void>((resolve) => socket.once('close', () => resolve())),
      );
      for (const socket of this.#connections) socket.destroy();
      await Promise.all(closed);
      this.#sd.free();
      // A named pipe has no file: once the last instance is closed the name is gone.
      this.emit('close');
    })();
    return this.#closing;
  }
}
