/**
 * An end-to-end tunnel (docs/tunnel.md is the specification): a Noise_XX session between two
 * ends whose three handshake messages and sealed messages are carried as opaque bytes by a relay
 * (the bus broker) that can drop, reorder, replay or alter them but cannot read or forge them.
 *
 *   initiator                                relay                       responder
 *   start()           -> message 1  e                      { versions: [1] }  -> respond(m1)
 *   receive(m2)       <- message 2  e, ee, s, es           { version: 1 }     <-
 *     trust(responder's key), then
 *                     -> message 3  s, se                  {}                 -> finish(m3)
 *   .session                                                                    trust(initiator's key)
 *                                                                               -> session
 *
 * The handshake is core's `NoiseHandshake` (xx.ts) with the prologue 'secure-ipc/tunnel/1' 0x00
 * binding. Unlike a channel's transport, where the stream keeps messages in order and the counter
 * is implicit, a sealed message carries its counter: BE64(n) || ChaChaPoly(k, 0^32 || LE64(n),
 * ad, plaintext), and the receiver keeps a replay window (replay-window.ts). Each direction has
 * its own Split() key, so one counter space per direction is enough.
 *
 * Every failure, a call out of order included, ends the handshake: its state is wiped and each
 * later call fails (`SIPC_ERR_HANDSHAKE_FAILED`). The relay only ever sees the bytes it carries.
 */
import {
  DEFAULT_TUNNEL_REPLAY_WINDOW,
  MAX_FRAME_SIZE,
  MAX_HANDSHAKE_MESSAGE1_SIZE,
  MAX_TUNNEL_REPLAY_WINDOW,
  TAG_LENGTH,
  TUNNEL_VERSIONS,
} from '../constants.js';
import { createError } from '../errors.js';
import { type KeyPair, keyFingerprint } from '../keys/key-pair.js';
import type { PeerInfo } from '../transport/contract.js';
import type { NoiseCipherState } from './cipher-state.js';
import { chosenVersion, decodePayload, encodePayload, offeredVersions, selectVersion } from './payloads.js';
import { localError, readMessage2 } from './perform-handshake.js';
import { buildTunnelPrologue } from './prologue.js';
import { ReplayWindow } from './replay-window.js';
import { evaluateTrust, type Trust, type TrustVerdict, validateTrust } from './trust.js';
import { NoiseHandshake } from './xx.js';

/** Options of either end of a tunnel. */
export interface TunnelOptions {
  /** This end's static key pair (used in place, never copied). */
  staticKeyPair: KeyPair;
  /** Which keys the other end may hold: pinned keys or a trust function, as for channels. */
  trust: Trust;
  /** Context bytes both ends must agree on and the relay cannot change (at most 1024 bytes). */
  binding: Uint8Array;
  /** Counters accepted out of order: 1 to 65,536 (default 1024). */
  replayWindow?: number;
}

/** An established tunnel: seals and opens messages of one session. */
export interface TunnelSession {
  /** The other end's static public key, authenticated by the handshake. */
  readonly remoteStaticKey: Uint8Array;
  /** The other end's key fingerprint (`keyFingerprint`). */
  readonly peerId: string;
  /** Roles from the trust decision. */
  readonly roles: readonly string[];
  /** When the trust decision expires (ms epoch), if it does: seal and open refuse from then on. */
  readonly expiresAt: number | undefined;
  /** Noise h after the last handshake message (64 bytes), for channel binding. */
  readonly handshakeHash: Uint8Array;
  /** Seal `plaintext` with associated data `ad`: BE64 counter || ciphertext || tag. */
  seal(ad: Uint8Array, plaintext: Uint8Array): Uint8Array;
  /** Open a sealed message with the same `ad`; throws `SIPC_ERR_DECRYPT_FAILED` if it cannot be accepted. */
  open(ad: Uint8Array, sealed: Uint8Array): Uint8Array;
  /** Wipe both keys; later seals and opens throw `SIPC_ERR_CHANNEL_CLOSED`. Safe to call twice. */
  close(): void;
}

/** The end that starts a tunnel. */
export interface TunnelInitiator {
  /** The session once `receive()` resolved. */
  readonly session: TunnelSession | undefined;
  /** Message 1 (`-> e`). */
  start(): Uint8Array;
  /** Read message 2, check the responder's key against `trust`, and return message 3. */
  receive(message2: Uint8Array): Promise<Uint8Array>;
  /** Abandon the handshake and wipe its state (no effect on a session already handed out). */
  destroy(): void;
}

/** The end that answers a tunnel. */
export interface TunnelResponder {
  /** Read message 1 and return message 2 (`<- e, ee, s, es`). */
  respond(message1: Uint8Array): Uint8Array;
  /** Read message 3, check the initiator's key against `trust`, and return the session. */
  finish(message3: Uint8Array): Promise<TunnelSession>;
  /** Abandon the handshake and wipe its state. */
  destroy(): void;
}

/** Start the initiating end of a tunnel; throws `SIPC_ERR_INVALID_ARGUMENT` on bad options. */
export function tunnelInitiator(options: TunnelOptions): TunnelInitiator {
  return new Initiator(validated(options));
}

/** Start the responding end of a tunnel; throws `SIPC_ERR_INVALID_ARGUMENT` on bad options. */
export function tunnelResponder(options: TunnelOptions): TunnelResponder {
  return new Responder(validated(options));
}

/** Bytes of the explicit counter in front of every sealed message. */
const COUNTER_LENGTH = 8;
const MIN_SEALED_LENGTH = COUNTER_LENGTH + TAG_LENGTH;
const TWO_POW_32 = 0x1_0000_0000;
/** The high half of a counter above 2^53-1 (which no sender uses) is at least this. */
const MAX_COUNTER_HIGH = 2 ** 21;

/** What a trust function sees as `peer`: a tunnel end has no OS identity the relay could vouch for. */
const TUNNEL_PEER: PeerInfo = Object.freeze({ transport: 'tunnel' });

interface Settings {
  staticKeyPair: KeyPair;
  trust: Trust;
  prologue: Buffer;
  replayWindow: number;
}

function validated(options: TunnelOptions): Settings {
  if (typeof options !== 'object' || options === null)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'tunnel options are required');
  const kp = options.staticKeyPair;
  if (
    !(kp?.publicKey instanceof Uint8Array) ||
    !(kp.secretKey instanceof Uint8Array) ||
    kp.publicKey.byteLength !== 32 ||
    kp.secretKey.byteLength !== 32
  )
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      'staticKeyPair must hold a 32-byte publicKey and secretKey',
    );
  validateTrust(options.trust);
  const replayWindow = options.replayWindow ?? DEFAULT_TUNNEL_REPLAY_WINDOW;
  if (!Number.isInteger(replayWindow) || replayWindow < 1 || replayWindow > MAX_TUNNEL_REPLAY_WINDOW)
    throw createError(
      'SIPC_ERR_INVALID_ARGUMENT',
      `replayWindow must be an integer from 1 to ${MAX_TUNNEL_REPLAY_WINDOW}`,
    );
  return {
    staticKeyPair: kp,
    trust: options.trust,
    prologue: buildTunnelPrologue(options.binding),
    replayWindow,
  };
}

/** The steps of either end: the message it expects next, then `trust`; `failed` and `done` are final. */
type Step = 'message1' | 'message2' | 'message3' | 'trust' | 'done' | 'failed';

/** What the two ends share: the Noise state, the step, failing closed, the session at the end. */
abstract class TunnelHandshake {
  protected noise: NoiseHandshake | undefined;
  protected step: Step = 'message1';

  constructor(
    protected readonly settings: Settings,
    private readonly initiator: boolean,
  ) {}

  destroy(): void {
    if (this.step !== 'done') this.step = 'failed';
    this.noise?.dispose();
    this.noise = undefined;
  }

  /** The precondition of each call: it is this step's turn; otherwise the handshake ends. */
  protected expect(step: Step, call: string): void {
    if (this.step === step) return;
    const was = this.step;
    this.destroy();
    throw createError(
      'SIPC_ERR_HANDSHAKE_FAILED',
      was === 'failed' || was === 'done'
        ? `The tunnel handshake is over: ${call} cannot be called now`
        : `${call} called out of order: the tunnel handshake ended`,
    );
  }

  protected open(): NoiseHandshake {
    this.noise = new NoiseHandshake({
      initiator: this.initiator,
      prologue: this.settings.prologue,
      staticKeyPair: this.settings.staticKeyPair,
    });
    return this.noise;
  }

  /** Check the other end's key; the state may be destroyed meanwhile (then this fails). */
  protected async trusted(payload: Readonly<Record<string, unknown>>): Promise<TrustVerdict> {
    this.step = 'trust';
    const verdict = await evaluateTrust(this.settings.trust, {
      remoteStaticKey: Buffer.from(this.noise!.remoteStaticKey!),
      peer: TUNNEL_PEER,
      payload,
    });
    if (this.step !== 'trust' || this.noise === undefined)
      throw createError(
        'SIPC_ERR_HANDSHAKE_FAILED',
        'The tunnel handshake was destroyed during the trust decision',
      );
    return verdict;
  }

  /** Hand the split keys to a session; the handshake state is already wiped (xx.ts). */
  protected handOver(verdict: TrustVerdict): TunnelSession {
    const noise = this.noise!;
    const split = noise.split!;
    noise.split = undefined;
    this.noise = undefined;
    this.step = 'done';
    return new Session(
      split.tx,
      split.rx,
      noise.remoteStaticKey!,
      noise.handshakeHash!,
      verdict,
      this.settings,
    );
  }

  /** Run one call at its step; any failure ends the handshake (wiping everything) with the precise reason. */
  protected attempt<T>(step: Step, call: string, body: () => T): T {
    this.expect(step, call);
    try {
      return body();
    } catch (err) {
      this.destroy();
      throw localError(err);
    }
  }

  /** `attempt` for a call that awaits the trust decision. */
  protected async attemptAsync<T>(step: Step, call: string, body: () => Promise<T>): Promise<T> {
    this.expect(step, call);
    try {
      return await body();
    } catch (err) {
      this.destroy();
      throw localError(err);
    }
  }
}

class Initiator extends TunnelHandshake implements TunnelInitiator {
  private established: TunnelSession | undefined;

  constructor(settings: Settings) {
    super(settings, true);
  }

  get session(): TunnelSession | undefined {
    return this.established;
  }

  // -> e   { versions: [1] }
  start(): Uint8Array {
    return this.attempt('message1', 'start()', () => {
      const message1 = this.open().writeMessage(encodePayload({ versions: [...TUNNEL_VERSIONS] }));
      this.step = 'message2';
      return message1;
    });
  }

  // <- e, ee, s, es   { version }   then, once the responder's key is trusted: -> s, se   {}
  receive(message2: Uint8Array): Promise<Uint8Array> {
    return this.attemptAsync('message2', 'receive()', async () => {
      const payload = decodePayload(readMessage2(this.noise!, checked(message2, 2), MESSAGE2_FAILED));
      chosenVersion(payload, TUNNEL_VERSIONS);
      // Check the responder before revealing this end's identity: an impostor never gets message 3.
      const verdict = await this.trusted(payload);
      const message3 = this.noise!.writeMessage(encodePayload({}));
      this.established = this.handOver(verdict);
      return message3;
    });
  }
}

class Responder extends TunnelHandshake implements TunnelResponder {
  constructor(settings: Settings) {
    super(settings, false);
  }

  // -> e   { versions }   then   <- e, ee, s, es   { version }
  respond(message1: Uint8Array): Uint8Array {
    return this.attempt('message1', 'respond()', () => {
      // Checked before any state is made (the arena comes only with a message 1 of a sane size).
      checked(message1, 1);
      const noise = this.open();
      const hello = decodePayload(noise.readMessage(message1));
      const version = selectVersion(offeredVersions(hello), TUNNEL_VERSIONS);
      if (version === undefined)
        throw createError(
          'SIPC_ERR_VERSION_MISMATCH',
          'The initiator offered no tunnel version this end speaks',
          {
            details: { offered: hello.versions },
          },
        );
      const message2 = noise.writeMessage(encodePayload({ version }));
      this.step = 'message3';
      return message2;
    });
  }

  // -> s, se   {}   then the initiator's key is checked
  finish(message3: Uint8Array): Promise<TunnelSession> {
    return this.attemptAsync('message3', 'finish()', async () => {
      const payload = decodePayload(this.noise!.readMessage(checked(message3, 3)));
      return this.handOver(await this.trusted(payload));
    });
  }
}

/**
 * Most bytes of each handshake message: message 1 is unauthenticated plaintext that anyone who
 * can reach the responder through the relay can send, so it is capped as a channel's is; 2 and 3
 * by the Noise limit.
 */
const MAX_MESSAGE_SIZE: Readonly<Record<1 | 2 | 3, number>> = {
  1: MAX_HANDSHAKE_MESSAGE1_SIZE,
  2: MAX_FRAME_SIZE,
  3: MAX_FRAME_SIZE,
};

function checked(bytes: Uint8Array, message: 1 | 2 | 3): Uint8Array {
  if (!(bytes instanceof Uint8Array))
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `Tunnel message ${message} must be a Uint8Array`);
  const limit = MAX_MESSAGE_SIZE[message];
  if (bytes.byteLength > limit)
    throw createError('SIPC_ERR_FRAME_TOO_LARGE', `Tunnel message ${message} is larger than ${limit} bytes`, {
      details: { message, size: bytes.byteLength, limit },
    });
  return bytes;
}

// Message 2 is where two ends with different bindings (or a relay that altered message 1 or 2)
// first fail: say so, it is what an operator meets.
const MESSAGE2_FAILED =
  'Tunnel message 2 failed authentication: the two ends use different bindings, or the relay altered the handshake';

class Session implements TunnelSession {
  readonly remoteStaticKey: Uint8Array;
  readonly peerId: string;
  readonly roles: readonly string[];
  readonly expiresAt: number | undefined;
  readonly handshakeHash: Uint8Array;
  private readonly window: ReplayWindow;
  /** The next counter this end seals with. */
  private sendCounter = 0;
  private closed = false;

  constructor(
    private readonly tx: NoiseCipherState,
    private readonly rx: NoiseCipherState,
    remoteStaticKey: Uint8Array,
    handshakeHash: Uint8Array,
    verdict: TrustVerdict,
    settings: Settings,
  ) {
    this.remoteStaticKey = remoteStaticKey;
    this.peerId = keyFingerprint(remoteStaticKey);
    this.roles = verdict.roles;
    this.expiresAt = verdict.expiresAt;
    this.handshakeHash = handshakeHash;
    this.window = new ReplayWindow(settings.replayWindow);
  }

  seal(ad: Uint8Array, plaintext: Uint8Array): Uint8Array {
    this.usable();
    if (!(ad instanceof Uint8Array) || !(plaintext instanceof Uint8Array))
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'seal(ad, plaintext) takes two Uint8Arrays');
    const n = this.sendCounter;
    if (n > Number.MAX_SAFE_INTEGER)
      throw createError(
        'SIPC_ERR_NONCE_EXHAUSTED',
        'The tunnel session sealed 2^53 messages: start a new one',
      );
    const out = Buffer.allocUnsafe(COUNTER_LENGTH + plaintext.byteLength + TAG_LENGTH);
    out.writeUInt32BE(Math.floor(n / TWO_POW_32), 0);
    out.writeUInt32BE(n % TWO_POW_32, 4);
    this.tx.encryptAt(n, out.subarray(COUNTER_LENGTH), ad, plaintext);
    this.sendCounter = n + 1;
    return out;
  }

  open(ad: Uint8Array, sealed: Uint8Array): Uint8Array {
    this.usable();
    if (!(ad instanceof Uint8Array) || !(sealed instanceof Uint8Array))
      throw createError('SIPC_ERR_INVALID_ARGUMENT', 'open(ad, sealed) takes two Uint8Arrays');
    if (sealed.byteLength < MIN_SEALED_LENGTH)
      throw createError('SIPC_ERR_DECRYPT_FAILED', 'The sealed message is shorter than a counter and a tag');
    const view = new DataView(sealed.buffer, sealed.byteOffset, COUNTER_LENGTH);
    const high = view.getUint32(0);
    if (high >= MAX_COUNTER_HIGH)
      throw createError('SIPC_ERR_DECRYPT_FAILED', 'The sealed message has a counter no sender uses');
    const n = high * TWO_POW_32 + view.getUint32(4);
    // Before the decryption, so a replay costs no AEAD; recorded only after it succeeded.
    if (!this.window.check(n))
      throw createError(
        'SIPC_ERR_DECRYPT_FAILED',
        'The sealed message is a replay or older than the replay window',
      );
    const out = Buffer.allocUnsafe(sealed.byteLength - MIN_SEALED_LENGTH);
    this.rx.decryptAt(n, out, ad, sealed.subarray(COUNTER_LENGTH));
    this.window.record(n);
    return out;
  }

  close(): void {
    this.closed = true;
    this.tx.destroy();
    this.rx.destroy();
  }

  private usable(): void {
    if (this.closed) throw createError('SIPC_ERR_CHANNEL_CLOSED', 'The tunnel session is closed');
    if (this.expiresAt !== undefined && Date.now() >= this.expiresAt) {
      this.close();
      throw createError('SIPC_ERR_CERT_EXPIRED', 'The trust decision of this tunnel session expired');
    }
  }
}
