/**
 * Drives a Noise_XX handshake over a Connection with the wire protocol v1 framing, payloads,
 * version negotiation, trust checks, a deadline and cancellation:
 *   -> e                     { versions }        (message 1, plaintext but hashed)
 *   <- e, ee, s, es          { version, ... }    (message 2)
 *   -> s, se                 { ... }             (message 3; only if the responder's key is trusted)
 * On failure the connection is destroyed (to the peer: just a closed connection) and the local
 * caller gets a typed error with the real reason in `cause`.
 */
import type { ChannelOptions, TrustContext } from '../channel/secure-channel.js';
import {
  DEFAULT_HANDSHAKE_TIMEOUT,
  MAX_FRAME_SIZE,
  MAX_HANDSHAKE_MESSAGE1_SIZE,
  SUPPORTED_VERSIONS,
} from '../constants.js';
import { createError, isSecureIpcError, type SecureIpcError, toSecureIpcError } from '../errors.js';
import { encodeFrame, FrameDecoder } from '../framing.js';
import type { Connection } from '../transport/contract.js';
import { type EphemeralGenerator, type NoiseCipherState, NoiseHandshake } from './noise.js';
import { chosenVersion, decodePayload, encodePayload, offeredVersions, selectVersion } from './payloads.js';
import { buildPrologue } from './prologue.js';
import { evaluateTrust, validateTrust } from './trust.js';

/** Options of `performHandshake`: the channel options plus internal knobs. */
export interface HandshakeOptions extends ChannelOptions {
  /** True for the side that sends message 1. */
  initiator: boolean;
  /** Versions this side speaks (tests of negotiation only; default `SUPPORTED_VERSIONS`). */
  versions?: readonly number[] | undefined;
  /** Fixed ephemeral keys (tests only). */
  generateEphemeral?: EphemeralGenerator | undefined;
}

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
  /** The frame decoder, holding any bytes that arrived after the last handshake message. */
  readonly decoder: FrameDecoder;
  /** True if the peer already ended its side of the stream. */
  readonly ended: boolean;
}

/** Validate the options shared by every handshake; throws `SIPC_ERR_INVALID_ARGUMENT`. */
export function validateChannelOptions(options: ChannelOptions): void {
  if (typeof options !== 'object' || options === null)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'channel options are required');
  const kp = options.keyPair;
  if (
    typeof kp !== 'object' ||
    kp === null ||
    !(kp.publicKey instanceof Uint8Array) ||
    !(kp.secretKey instanceof Uint8Array) ||
    kp.publicKey.byteLength !== 32 ||
    kp.secretKey.byteLength !== 32
  )
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'keyPair must hold a 32-byte publicKey and secretKey');
  validateTrust(options.trust);
  const numbers = {
    handshakeTimeout: options.handshakeTimeout,
    maxMessageSize: options.maxMessageSize,
    'rekey.messages': options.rekey?.messages,
    'rekey.bytes': options.rekey?.bytes,
    'rekey.intervalMs': options.rekey?.intervalMs,
  };
  for (const [name, v] of Object.entries(numbers))
    if (v !== undefined && !(typeof v === 'number' && Number.isFinite(v) && v > 0))
      throw createError('SIPC_ERR_INVALID_ARGUMENT', `${name} must be a positive number`);
  buildPrologue(options.appId, options.psk);
  if (options.payload !== undefined) encodePayload({}, options.payload);
}

/** Run the handshake on `connection`; resolves once this side has finished (initiator: after message 3). */
export async function performHandshake(
  connection: Connection,
  options: HandshakeOptions,
): Promise<HandshakeResult> {
  validateChannelOptions(options);
  const io = new HandshakeIo(
    connection,
    options.handshakeTimeout ?? DEFAULT_HANDSHAKE_TIMEOUT,
    options.signal,
  );
  let noise: NoiseHandshake | undefined;
  try {
    noise = new NoiseHandshake({
      initiator: options.initiator,
      prologue: buildPrologue(options.appId, options.psk),
      staticKeyPair: options.keyPair,
      generateEphemeral: options.generateEphemeral,
    });
    const versions = options.versions ?? SUPPORTED_VERSIONS;
    let remotePayload: Readonly<Record<string, unknown>>;
    let version: number;
    let verdict: { roles: readonly string[]; expiresAt: number | undefined };
    if (options.initiator) {
      io.write(noise.writeMessage(encodePayload({ versions: [...versions] })));
      remotePayload = decodePayload(noise.readMessage(await io.next(MAX_FRAME_SIZE)));
      version = chosenVersion(remotePayload, versions);
      // The responder cannot have sent anything else yet: it waits for message 3.
      if (io.decoder.partial)
        throw createError('SIPC_ERR_PROTOCOL', 'Unexpected bytes after handshake message 2');
      // Check the responder before revealing our identity: an impostor never receives message 3.
      verdict = await io.race(evaluateTrust(options.trust, trustContext(noise, connection, remotePayload)));
      if (io.decoder.partial)
        throw createError('SIPC_ERR_PROTOCOL', 'Unexpected bytes before handshake message 3');
      io.write(noise.writeMessage(encodePayload({}, options.payload)));
    } else {
      const hello = decodePayload(noise.readMessage(await io.next(MAX_HANDSHAKE_MESSAGE1_SIZE)));
      const common = selectVersion(offeredVersions(hello), versions);
      // No common version: close without message 2 (nothing about this side is revealed).
      if (common === undefined)
        throw createError('SIPC_ERR_VERSION_MISMATCH', 'The initiator offered no version this side speaks', {
          details: { offered: hello.versions },
        });
      version = common;
      io.write(noise.writeMessage(encodePayload({ version }, options.payload)));
      remotePayload = decodePayload(noise.readMessage(await io.next(MAX_FRAME_SIZE)));
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
      decoder: io.decoder,
      ended,
    };
  } catch (err) {
    noise?.dispose();
    const error = localError(err);
    io.abort(error);
    throw error;
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

function localError(err: unknown): SecureIpcError {
  if (isSecureIpcError(err) && SPECIFIC.has(err.code)) return err;
  const cause = toSecureIpcError(err, 'SIPC_ERR_PROTOCOL');
  return createError('SIPC_ERR_HANDSHAKE_FAILED', `The handshake failed: ${cause.message}`, { cause });
}

/** Frame I/O for the handshake: one waiter at a time, a deadline, cancellation. */
class HandshakeIo {
  readonly decoder = new FrameDecoder(MAX_FRAME_SIZE);
  private waiter: { resolve: (f: Buffer) => void; reject: (e: unknown) => void } | undefined;
  private raceReject: ((e: unknown) => void) | undefined;
  private closed = false;
  private failure: SecureIpcError | undefined;
  private ended = false;
  private readonly timer: NodeJS.Timeout;
  private readonly onData = (chunk: Buffer) => {
    this.decoder.push(chunk);
    this.pump();
  };
  private readonly onEnd = () => {
    this.ended = true;
    this.pump();
  };
  // After a clean end every byte is already in the decoder, so a close is only fatal while a frame
  // is still awaited (pump checks); an abrupt close (no end) is fatal at once.
  private readonly onClose = () => {
    this.closed = true;
    if (this.ended) this.pump();
    else this.fail(createError('SIPC_ERR_CONNECTION_CLOSED'));
  };
  private readonly onError = (err: Error) =>
    this.fail(createError('SIPC_ERR_CONNECTION_CLOSED', 'The connection failed', { cause: err }));
  private readonly onAbort = () =>
    this.fail(createError('SIPC_ERR_ABORTED', undefined, { cause: this.signal?.reason }));

  constructor(
    private readonly connection: Connection,
    timeout: number,
    private readonly signal: AbortSignal | undefined,
  ) {
    this.timer = setTimeout(
      () =>
        this.fail(
          createError('SIPC_ERR_HANDSHAKE_TIMEOUT', `The handshake did not finish within ${timeout} ms`),
        ),
      timeout,
    );
    connection.on('data', this.onData);
    connection.on('end', this.onEnd);
    connection.on('close', this.onClose);
    connection.on('error', this.onError);
    if (signal?.aborted) this.onAbort();
    else signal?.addEventListener('abort', this.onAbort, { once: true });
    if (connection.destroyed) this.onClose();
  }

  /** Send one handshake message as one frame. */
  write(message: Uint8Array): void {
    if (this.failure) throw this.failure;
    this.connection.write(encodeFrame(message));
  }

  /** The next frame, at most `limit` bytes. */
  next(limit: number): Promise<Buffer> {
    if (this.failure) return Promise.reject(this.failure);
    this.decoder.limit = limit;
    return new Promise<Buffer>((resolve, reject) => {
      this.waiter = { resolve, reject };
      this.pump();
    });
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
    this.connection.pause();
    this.detach();
    return this.ended || this.closed;
  }

  /** Fail and destroy the connection: the peer sees only a closed connection. */
  abort(error: SecureIpcError): void {
    this.fail(error);
    this.decoder.clear();
    this.connection.destroy();
  }

  private pump(): void {
    const waiter = this.waiter;
    if (waiter === undefined || this.failure) return;
    let frame: Buffer | undefined;
    try {
      frame = this.decoder.next();
      if (frame === undefined && (this.ended || this.closed)) {
        this.decoder.end();
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
    waiter.resolve(frame);
  }

  private fail(error: SecureIpcError): void {
    if (this.failure) return;
    this.failure = error;
    this.detach();
    const waiter = this.waiter;
    const raceReject = this.raceReject;
    this.waiter = undefined;
    this.raceReject = undefined;
    waiter?.reject(error);
    raceReject?.(error);
  }

  private detach(): void {
    clearTimeout(this.timer);
    this.signal?.removeEventListener('abort', this.onAbort);
    this.connection.off('data', this.onData);
    this.connection.off('end', this.onEnd);
    this.connection.off('close', this.onClose);
    this.connection.off('error', this.onError);
    // A late socket error after we let go must not become an uncaught exception.
    if (this.failure && this.connection.listenerCount('error') === 0) this.connection.on('error', () => {});
  }
}
