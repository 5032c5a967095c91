/**
 * Wire protocol v1 constants and the default limits (docs/protocol.md is the normative text).
 */

/** The Noise protocol name; the only suite wire protocol v1 speaks. */
export const NOISE_PROTOCOL_NAME = 'Noise_XX_25519_ChaChaPoly_BLAKE2b';

/** ASCII bytes that start every prologue. */
export const PROLOGUE_PREFIX = 'secure-ipc/1';

/** ASCII bytes that start every end-to-end tunnel prologue (docs/tunnel.md). */
export const TUNNEL_PROLOGUE_PREFIX = 'secure-ipc/tunnel/1';

/** Most bytes of a tunnel's binding (the context bound into its prologue). */
export const MAX_TUNNEL_BINDING_LENGTH = 1024;

/** Messages a tunnel session accepts out of order by default (its replay window). */
export const DEFAULT_TUNNEL_REPLAY_WINDOW = 1024;

/** The largest replay window a tunnel session may ask for (a bitmap of 8 KiB). */
export const MAX_TUNNEL_REPLAY_WINDOW = 65_536;

/** The tunnel versions this implementation speaks (docs/tunnel.md, "Payloads"). */
export const TUNNEL_VERSIONS: readonly number[] = Object.freeze([1]);

/** BLAKE2b-256 message keyed with the PSK to derive the prologue's PSK binding. */
export const PSK_BINDING_LABEL = 'secure-ipc/psk/1';

/** The highest wire protocol version this implementation speaks. */
export const PROTOCOL_VERSION = 4;

/** Every protocol version this implementation can negotiate, in the order message 1 offers them. */
export const SUPPORTED_VERSIONS: readonly number[] = Object.freeze([PROTOCOL_VERSION, 3, 2, 1]);

/** Bytes of the big-endian frame length header. */
export const FRAME_HEADER_SIZE = 2;

/** The Noise maximum message length, and the largest length a 2-byte header can carry. */
export const MAX_FRAME_SIZE = 65_535;

/** X25519 public/secret key length. */
export const KEY_LENGTH = 32;

/** ChaChaPoly authentication tag length. */
export const TAG_LENGTH = 16;

/** BLAKE2b handshake hash length. */
export const HANDSHAKE_HASH_LENGTH = 64;

/**
 * Handshake message 1 is unauthenticated plaintext that any local process can send: it carries
 * only the 32-byte ephemeral key and the version list, so it is capped far below a full frame.
 */
export const MAX_HANDSHAKE_MESSAGE1_SIZE = 1024;

/** Bytes of the flag byte that starts every transport plaintext. */
export const FLAG_SIZE = 1;

/** Flag bit 0: the frame carries the last chunk of a message. */
export const FLAG_LAST = 0x01;

/** Flag bit 1: the sender rekeys its sending key right after this frame. */
export const FLAG_REKEY = 0x02;

/**
 * Flag bit 2 (protocol version 2 only): the frame is a control frame, its chunk a control message
 * (docs/protocol.md 5.5), not part of an application message. Reserved (MUST be 0) in version 1.
 */
export const FLAG_CONTROL = 0x04;

/** Control message ACCEPTED: the responder admitted the initiator (its first transport frame in v2). */
export const CONTROL_ACCEPTED = 0x01;

/** Control message REFUSED: the responder refuses the channel; one reason byte follows. */
export const CONTROL_REFUSED = 0x02;

/** Control message CLOSE: the sender ends the channel (protocol 7); one reason byte follows. */
export const CONTROL_CLOSE = 0x03;

/** CLOSE reason 0: a normal close. */
export const CLOSE_NORMAL = 0x00;

/** CLOSE reason 1: the sender revoked the receiver's key or certificate. */
export const CLOSE_REVOKED = 0x01;

/** CLOSE reason 2: the receiver's admission (e.g. its certificate) expired. */
export const CLOSE_EXPIRED = 0x02;

/** REFUSED reason 0: unspecified. */
export const REFUSED_UNSPECIFIED = 0x00;

/** REFUSED reason 1: busy (over a limit on established channels; retry later). */
export const REFUSED_BUSY = 0x01;

/** Smallest transport frame: flag byte plus tag (an empty last chunk). */
export const MIN_TRANSPORT_FRAME_SIZE = FLAG_SIZE + TAG_LENGTH;

/** Largest chunk one transport frame carries. */
export const MAX_CHUNK_SIZE = MAX_FRAME_SIZE - FLAG_SIZE - TAG_LENGTH;

/** Default maximum reassembled message size (16 MiB). */
export const DEFAULT_MAX_MESSAGE_SIZE = 16 * 1024 * 1024;

/** Default time allowed from connect to a finished handshake (ms). */
export const DEFAULT_HANDSHAKE_TIMEOUT_MS = 10_000;

/** Default time from connect to a complete handshake message 1 on the responder (ms). */
export const DEFAULT_HANDSHAKE_FIRST_MESSAGE_TIMEOUT_MS = 1_000;

/** Default maximum number of handshakes in progress per listener. */
export const DEFAULT_MAX_PENDING_HANDSHAKES = 64;

/** Default maximum number of handshakes in progress per listener from one OS identity. */
export const DEFAULT_MAX_PENDING_HANDSHAKES_PER_IDENTITY = 32;

/**
 * Listen backlog asked for by the socket transports (the kernel caps it at its own maximum,
 * `net.core.somaxconn`, 4096 on current Linux): with Node's 511, a flood of connections filled
 * the queue and a legitimate client's SYN was dropped, costing it a 1 s retransmit (the
 * handshake flood suite); a full Unix socket queue refuses with EAGAIN instead.
 */
export const LISTEN_BACKLOG = 4096;

/** Default maximum number of established channels per listener. */
export const DEFAULT_MAX_CONNECTIONS = 1_024;

/** Default maximum number of established channels per listener from one OS identity. */
export const DEFAULT_MAX_CONNECTIONS_PER_IDENTITY = 256;

/** Default maximum number of established channels per listener with one peer static key. */
export const DEFAULT_MAX_CONNECTIONS_PER_KEY = 128;

/**
 * Default time from `close()` to a torn-down connection (ms): pending sends, our end and the
 * peer's end must all happen within it, else the connection is destroyed.
 */
export const DEFAULT_CLOSE_TIMEOUT_MS = 5_000;

/** Default rekey thresholds per direction: whichever comes first. */
export const DEFAULT_REKEY = Object.freeze({
  /** Transport messages (frames) sent with one key. */
  messages: 2 ** 20,
  /** Plaintext bytes sent with one key (1 GiB). */
  bytes: 2 ** 30,
  /** Time one key is used for sending (10 minutes). */
  intervalMs: 10 * 60 * 1000,
});

/** Longest application id, in UTF-8 bytes. */
export const MAX_APP_ID_LENGTH = 255;

/** The longest delay `setTimeout` can wait (2^31-1 ms); a longer one would fire at once. */
export const MAX_TIMER_MS = 2 ** 31 - 1;
