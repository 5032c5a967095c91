/**
 * Drives a Noise_XX handshake over a Connection with the wire protocol v1 framing, payloads,
 * version negotiation, trust checks, a deadline and cancellation:
 *   -> e                     { versions }        (message 1, plaintext but hashed)
 *   <- e, ee, s, es          { version, ... }    (message 2)
 *   -> s, se                 { ... }             (message 3; only if the responder's key is trusted)
 * On failure the connection is destroyed (to the peer: just a closed connection) and the local
 * caller gets a typed error with the real reason in `cause`.
 *
 * Reading is demand-driven: the connection is read only while a handshake message is awaited,
 * and paused otherwise (while the trust decision runs, while we write). What arrived before the
 * pause stays in the frame decoder; more than one largest frame held while paused is a protocol
 * violation (a transport that ignores pause cannot make the handshake buffer without bound).
 * The responder also needs message 1 within `handshakeFirstMessageTimeoutMs` (default 1 s).
 */
import {
  DEFAULT_HANDSHAKE_FIRST_MESSAGE_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  FRAME_HEADER_SIZE,
  MAX_FRAME_SIZE,
  MAX_HANDSHAKE_MESSAGE1_SIZE,
  SUPPORTED_VERSIONS,
} from '../constants.js';
import { createError, isSecureIpcError, type SecureIpcError, toSecureIpcError } from '../errors.js';
import { encodeFrame, FrameReader, type FrameReaderOwner } from '../framing.js';
import type { Connection } from '../transport/contract.js';
import type { NoiseCipherState } from './cipher-state.js';
import type { HandshakeRunOptions } from './options.js';
import { chosenVersion, decodePayload, encodePayload, offeredVersions, selectVersion } from './payloads.js';
import { buildPrologue } from './prologue.js';
import { evaluateTrust, type TrustContext } from './trust.js';
import { NoiseHandshake } from './xx.js';

/** What a finished handshake hands to the channel. */
export interface HandshakeResult {
  /** Sending cipher state (owned by the caller from now on). */
  readonly tx: NoiseCipherState;
  /** Receiving cipher state (owned by the caller from now on). */
  readonly rx: NoiseCipherState;
  /** The peer's authenticated static public key. */
  readonly remoteStaticKey: Uint8Array;
  /** h after the last message (64 bytes). */
  readonly handshakeHash: Uint8Array;
  /** The peer's validated handshake payload map. */
  readonly remotePayload: Readonly<Record<string, unknown>>;
  /** The negotiated protocol version. */
  readonly version: number;
  /** Roles from the trust decision. */
  readonly roles: readonly string[];
  /** When the trust decision expires (ms epoch), if it does. */
  readonly expiresAt: number | undefined;
  /** The connection's frame reader, holding any bytes that arrived after the last handshake message; hand it on. */
  readonly reader: FrameReader;
  /** True if the peer already ended its side of the stream. */
  readonly ended: boolean;
  /**
   * When the handshake timeout runs out (`Date.now()` ms): a version-2 initiator waits for the
   * responder's acceptance (protocol 3.8) until then.
   */
  readonly deadline: number;
}

/** Run the handshake on `connection`; resolves once this side has finished (initiator: after message 3). */
export async function performHandshake(
  connection: Connection,
  options: HandshakeRunOptions,
): Promise<HandshakeResult> {
  // The options were validated by the caller (establish, secureListen), once.
  const timeout = options.handshakeTimeoutMs ?? DEFAULT_HANDSHAKE_TIMEOUT_MS;
  const deadline = Date.now() + timeout;
  const io = new HandshakeIo(
    connection,
    timeout,
    options.initiator
      ? undefined
      : (options.handshakeFirstMessageTimeoutMs ?? DEFAULT_HANDSHAKE_FIRST_MESSAGE_TIMEOUT_MS),
    options.signal,
  );
  const progress = options.onPeerMessage;
  options.onCancelable?.((reason) => io.cancel(reason));
  let noise: NoiseHandshake | undefined;
  const start = () =>
    new NoiseHandshake({
      initiator: options.initiator,
      prologue: buildPrologue(options.appId, options.psk),
      staticKeyPair: options.keyPair,
      generateEphemeral: options.generateEphemeral,
    });
  try {
    const versions = options.versions ?? SUPPORTED_VERSIONS;
    let remotePayload: Readonly<Record<string, unknown>>;
    let version: number;
    let verdict: { roles: readonly string[]; expiresAt: number | undefined };
    if (options.initiator) {
      noise = start();
      io.write(noise.writeMessage(encodePayload({ versions: [...versions] })));
      remotePayload = decodePayload(
        readMessage2(noise, await io.next(MAX_FRAME_SIZE), CHANNEL_MESSAGE2_FAILED),
      );
      progress?.(2);
      version = chosenVersion(remotePayload, versions);
      // The responder cannot have sent anything else yet (it waits for message 3): keep reading
      // while the trust decision runs, and fail on the first byte instead of buffering it.
      io.expectSilence('Unexpected bytes after handshake message 2');
      // Check the responder before revealing our identity: an impostor never receives message 3.
      verdict = await io.race(evaluateTrust(options.trust, trustContext(noise, connection, remotePayload)));
      if (io.reader.partial)
        throw createError('SIPC_ERR_PROTOCOL', 'Unexpected bytes before handshake message 3');
      io.write(noise.writeMessage(encodePayload({}, options.payload)));
    } else {
      // The handshake state (a secure-memory arena) only once message 1 is here: a silent or
      // drip-feeding connection costs a frame reader and two timers, nothing more.
      const message1 = await io.next(MAX_HANDSHAKE_MESSAGE1_SIZE);
      const slot = options.onMessageOne?.();
      if (slot !== undefined) await io.race(slot);
      noise = start();
      const hello = decodePayload(noise.readMessage(message1));
      progress?.(1);
      const common = selectVersion(offeredVersions(hello), versions);
      // No common version: close without message 2 (nothing about this side is revealed).
      if (common === undefined)
        throw createError('SIPC_ERR_VERSION_MISMATCH', 'The initiator offered no version this side speaks', {
          details: { offered: hello.versions },
        });
      version = common;
      io.write(noise.writeMessage(encodePayload({ version }, options.payload)));
      remotePayload = decodePayload(noise.readMessage(await io.next(MAX_FRAME_SIZE)));
      progress?.(3);
      verdict = await io.race(evaluateTrust(options.trust, trustContext(noise, connection, remotePayload)));
    }
    const split = noise.split;
    if (split === undefined || noise.handshakeHash === undefined || noise.remoteStaticKey === undefined)
      throw createError('SIPC_ERR_HANDSHAKE_FAILED', 'The handshake did not complete');
    noise.split = undefined; // ownership moves to the channel
    const ended = io.finish();
    return {
      tx: split.tx,
      rx: split.rx,
      remoteStaticKey: noise.remoteStaticKey,
      handshakeHash: noise.handshakeHash,
      remotePayload,
      version,
      roles: verdict.roles,
      expiresAt: verdict.expiresAt,
      reader: io.reader,
      ended,
      deadline,
    };
  } catch (err) {
    noise?.dispose();
    const error = localError(err);
    io.abort(error);
    throw error;
  }
}

/** What a channel initiator is told when message 2 fails authentication. */
const CHANNEL_MESSAGE2_FAILED =
  'Handshake message 2 failed authentication: the server uses another application id (appId) ' +
  'or pre-shared key (psk), or it is not a secure-ipc server (or the handshake was altered on the way)';

/**
 * Read message 2. It fails authentication when the two sides' prologues differ (another
 * application id or psk, for a tunnel another binding) or the responder is not speaking this
 * protocol: say so in `explanation`, since that is what an operator meets.
 */
export function readMessage2(noise: NoiseHandshake, frame: Uint8Array, explanation: string): Uint8Array {
  try {
    return noise.readMessage(frame);
  } catch (err) {
    throw createError('SIPC_ERR_HANDSHAKE_FAILED', explanation, { cause: err, details: { message: 2 } });
  }
}

function trustContext(
  noise: NoiseHandshake,
  connection: Connection,
  payload: Readonly<Record<string, unknown>>,
): TrustContext {
  return { remoteStaticKey: Buffer.from(noise.remoteStaticKey!), peer: connection.peer, payload };
}

// Codes that are already the precise local reason; everything else becomes HANDSHAKE_FAILED with cause.
const SPECIFIC = new Set([
  'SIPC_ERR_HANDSHAKE_TIMEOUT',
  'SIPC_ERR_HANDSHAKE_LIMIT',
  'SIPC_ERR_ABORTED',
  'SIPC_ERR_UNTRUSTED_PEER',
  'SIPC_ERR_VERSION_MISMATCH',
  'SIPC_ERR_CERT_EXPIRED',
  'SIPC_ERR_REVOKED',
  'SIPC_ERR_BAD_CERTIFICATE',
  'SIPC_ERR_HANDSHAKE_FAILED',
  'SIPC_ERR_INVALID_ARGUMENT',
  'SIPC_ERR_BAD_KEY',
]);

/**
 * The error a local caller gets for a failed handshake (channel or tunnel): a precise code as it
 * is, anything else `SIPC_ERR_HANDSHAKE_FAILED` with the reason in `cause`.
 */
export function localError(err: unknown): SecureIpcError {
  if (isSecureIpcError(err) && SPECIFIC.has(err.code)) return err;
  const cause = toSecureIpcError(err, 'SIPC_ERR_PROTOCOL');
  return createError('SIPC_ERR_HANDSHAKE_FAILED', `The handshake failed: ${cause.message}`, { cause });
}

/** Most bytes held while no frame is awaited (reads paused): one largest frame with its header. */
const MAX_HELD_WHILE_PAUSED = FRAME_HEADER_SIZE + MAX_FRAME_SIZE;

/** Frame I/O for the handshake: one waiter at a time, reads only for it, deadlines, cancellation. */
class HandshakeIo implements FrameReaderOwner {
  readonly reader: FrameReader;
  private waiter: { resolve: (f: Buffer) => void; reject: (e: unknown) => void } | undefined;
  private raceReject: ((e: unknown) => void) | undefined;
  private failure: SecureIpcError | undefined;
  private readonly timer: NodeJS.Timeout;
  /** Set while no byte may arrive (the initiator between message 2 and message 3): the violation's message. */
  private silence: string | undefined;
  /** Armed until the first frame arrives (responder: message 1). */
  private firstTimer: NodeJS.Timeout | undefined;
  private readonly onAbort = () =>
    this.fail(createError('SIPC_ERR_ABORTED', undefined, { cause: this.signal?.reason }));

  constructor(
    private readonly connection: Connection,
    timeout: number,
    firstFrameTimeout: number | undefined,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.timer = setTimeout(
      () =>
        this.fail(
          createError('SIPC_ERR_HANDSHAKE_TIMEOUT', `The handshake did not finish within ${timeout} ms`),
        ),
      timeout,
    );
    if (firstFrameTimeout !== undefined && firstFrameTimeout < timeout)
      this.firstTimer = setTimeout(
        () =>
          this.fail(
            createError(
              'SIPC_ERR_HANDSHAKE_TIMEOUT',
              `Handshake message 1 did not arrive within ${firstFrameTimeout} ms`,
              { details: { message: 1, timeoutMs: firstFrameTimeout } },
            ),
          ),
        firstFrameTimeout,
      );
    this.reader = new FrameReader(connection, MAX_FRAME_SIZE, this);
    // Nothing is read until a frame is awaited (next()).
    connection.pause();
    if (signal?.aborted) this.onAbort();
    else signal?.addEventListener('abort', this.onAbort, { once: true });
    if (this.reader.closed) this.onClose();
  }

  onReadable(): void {
    if (this.silence !== undefined && this.reader.partial) {
      this.fail(createError('SIPC_ERR_PROTOCOL', this.silence));
      return;
    }
    if (this.waiter === undefined && this.reader.buffered > MAX_HELD_WHILE_PAUSED) {
      this.fail(
        createError(
          'SIPC_ERR_PROTOCOL',
          'The peer sent more than one frame while the handshake was not reading',
          { details: { buffered: this.reader.buffered, limit: MAX_HELD_WHILE_PAUSED } },
        ),
      );
      return;
    }
    this.pump();
  }

  // After a clean end every byte is already in the decoder, so a close is only fatal while a frame
  // is still awaited (pump checks); an abrupt close (no end) is fatal at once.
  onClose(): void {
    if (this.reader.ended) this.pump();
    else this.fail(createError('SIPC_ERR_CONNECTION_CLOSED'));
  }

  onFailure(error: SecureIpcError): void {
    this.fail(error);
  }

  /** Stop the handshake with `reason` (already the precise local reason, e.g. a listener's drop). */
  cancel(reason: SecureIpcError): void {
    this.fail(reason);
  }

  /** Send one handshake message as one frame. */
  write(message: Uint8Array): void {
    if (this.failure) throw this.failure;
    this.connection.write(encodeFrame(message));
  }

  /** The next frame, at most `limit` bytes. */
  next(limit: number): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    this.reader.limit = limit;
    return new Promise<Buffer>((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.pump();
      if (this.waiter !== undefined) this.connection.resume();
    });
  }

  /** From now until `finish()`, any byte from the peer is a protocol violation (`message`); reading goes on to see it at once. */
  expectSilence(message: string): void {
    this.silence = message;
    // What the stream already holds would otherwise wait for a flow that starts after the trust
    // decision (a pinned key resolves within microtasks): take it now, so it is checked now.
    while (this.connection.readableLength > 0 && this.connection.read() !== null);
    this.onReadable();
    if (this.failure) throw this.failure;
    this.connection.resume();
  }

  /** Wait for `promise` unless the handshake fails (deadline, abort, peer gone) first. */
  race<T>(promise: Promise<T>): Promise<T> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<T>((resolve, reject) => {
      this.raceReject = reject;
      promise.then(
        (v) => {
          this.raceReject = undefined;
          if (this.failure) reject(this.failure);
          else resolve(v);
        },
        (e) => {
          this.raceReject = undefined;
          reject(e);
        },
      );
    });
  }

  /** Stop handshake I/O and leave the connection paused for the channel; returns whether the peer ended. */
  finish(): boolean {
    if (this.failure) throw this.failure;
    this.silence = undefined;
    this.connection.pause();
    this.stop();
    // Until the channel takes the reader, what arrives is only buffered (ends and closes noted).
    this.reader.handTo(undefined);
    return this.reader.ended || this.reader.closed;
  }

  /** Fail and destroy the connection: the peer sees only a closed connection. */
  abort(error: SecureIpcError): void {
    this.fail(error);
    this.reader.detach();
    this.connection.destroy();
  }

  private pump(): void {
    const waiter = this.waiter;
    if (waiter === undefined || this.failure) return;
    let frame: Buffer | undefined;
    try {
      frame = this.reader.next();
      if (frame === undefined && (this.reader.ended || this.reader.closed)) {
        this.reader.end();
        throw createError(
          'SIPC_ERR_CONNECTION_CLOSED',
          'The peer closed the connection during the handshake',
        );
      }
    } catch (err) {
      this.fail(err as SecureIpcError);
      return;
    }
    if (frame === undefined) return;
    this.waiter = undefined;
    // Nobody awaits a frame until the next call to next(): stop reading (the trust decision may
    // take a while, and a peer must not make us buffer meanwhile).
    this.connection.pause();
    clearTimeout(this.firstTimer);
    this.firstTimer = undefined;
    waiter.resolve(frame);
  }

  private fail(error: SecureIpcError): void {
    if (this.failure) return;
    this.failure = error;
    this.stop();
    this.reader.detach();
    const waiter = this.waiter;
    const raceReject = this.raceReject;
    this.waiter = undefined;
    this.raceReject = undefined;
    waiter?.reject(error);
    raceReject?.(error);
  }

  private stop(): void {
    clearTimeout(this.timer);
    clearTimeout(this.firstTimer);
    this.signal?.removeEventListener('abort', this.onAbort);
  }
}
