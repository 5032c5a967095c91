/**
 * Every error secure-ipc throws or emits is generated from the one table below.
 * Each class has a stable `code` (match on it, never on the message), a `name`,
 * a default message and an optional `cause` carrying the real local reason.
 * A `Symbol.for` brand makes `isSecureIpcError` work across duplicate installs.
 * One row has a hand-written class: `SIPC_ERR_REMOTE` (`RemoteError`) also carries the peer's
 * own code and data.
 */

const BRAND = Symbol.for('@secure-ipc/error');

/** The table: code → [class name, default message]. Keep docs/errors.md in sync (a test checks). */
export const ERROR_TABLE = {
  SIPC_ERR_INVALID_ARGUMENT: ['InvalidArgumentError', 'Invalid argument'],
  SIPC_ERR_INVALID_ADDRESS: ['InvalidAddressError', 'Invalid or unsupported address'],
  SIPC_ERR_UNSUPPORTED_PLATFORM: [
    'UnsupportedPlatformError',
    'This transport is not supported on this platform',
  ],
  SIPC_ERR_ABORTED: ['AbortError', 'The operation was aborted'],
  SIPC_ERR_TIMEOUT: ['TimeoutError', 'The operation timed out'],
  SIPC_ERR_CONNECT_FAILED: ['ConnectFailedError', 'Could not connect to the address'],
  SIPC_ERR_ADDRESS_IN_USE: ['AddressInUseError', 'The address is in use by a live server'],
  SIPC_ERR_LISTEN_FAILED: ['ListenFailedError', 'Could not listen on the address'],
  SIPC_ERR_INSECURE_DIRECTORY: ['InsecureDirectoryError', 'The socket directory is not safe to use'],
  SIPC_ERR_NOT_A_SOCKET: ['NotASocketError', 'A file that is not a socket exists at the address'],
  SIPC_ERR_PATH_TOO_LONG: ['PathTooLongError', 'The socket path exceeds the platform limit'],
  SIPC_ERR_REMOTE_NOT_ALLOWED: [
    'RemoteNotAllowedError',
    'Refusing to bind a non-loopback address without allowRemote',
  ],
  SIPC_ERR_PEER_CREDENTIALS: ['PeerCredentialsError', 'The peer OS credentials are missing or not allowed'],
  SIPC_ERR_PIPE_SECURITY: ['PipeSecurityError', 'The named pipe security check failed'],
  SIPC_ERR_CONNECTION_CLOSED: ['ConnectionClosedError', 'The connection was closed'],
  SIPC_ERR_PROTOCOL: ['ProtocolError', 'Protocol violation'],
  SIPC_ERR_FRAME_EMPTY: ['FrameEmptyError', 'Received a zero-length frame'],
  SIPC_ERR_FRAME_TOO_LARGE: ['FrameTooLargeError', 'Frame exceeds the size limit'],
  SIPC_ERR_TRUNCATED: ['TruncatedError', 'The stream ended inside a frame'],
  SIPC_ERR_MESSAGE_TOO_LARGE: ['MessageTooLargeError', 'Message exceeds the size limit'],
  SIPC_ERR_HANDSHAKE_FAILED: ['HandshakeFailedError', 'The handshake failed'],
  SIPC_ERR_HANDSHAKE_TIMEOUT: ['HandshakeTimeoutError', 'The handshake did not finish in time'],
  SIPC_ERR_HANDSHAKE_LIMIT: ['HandshakeLimitError', 'Too many handshakes in progress'],
  SIPC_ERR_VERSION_MISMATCH: ['VersionMismatchError', 'No common protocol version'],
  SIPC_ERR_UNTRUSTED_PEER: ['UntrustedPeerError', 'The peer static key is not trusted'],
  SIPC_ERR_REFUSED: [
    'RefusedError',
    'The server did not accept this client (closed or refused the channel before confirming it)',
  ],
  SIPC_ERR_DECRYPT_FAILED: [
    'DecryptFailedError',
    'A transport message failed to decrypt (tampered, replayed, reordered or dropped)',
  ],
  SIPC_ERR_NONCE_EXHAUSTED: ['NonceExhaustedError', 'The cipher nonce space is exhausted'],
  SIPC_ERR_CHANNEL_CLOSED: ['ChannelClosedError', 'The secure channel is closed'],
  SIPC_ERR_BAD_KEY: ['BadKeyError', 'The key is malformed'],
  SIPC_ERR_INSECURE_KEY_FILE: ['InsecureKeyFileError', 'The secret key file is readable by group or others'],
  SIPC_ERR_INSECURE_FILE: ['InsecureFileError', 'The trust file is owned or writable by another user'],
  SIPC_ERR_BAD_ENVELOPE: ['BadEnvelopeError', 'The envelope is invalid'],
  SIPC_ERR_NO_SUCH_METHOD: ['NoSuchMethodError', 'No such method'],
  SIPC_ERR_FORBIDDEN: ['ForbiddenError', 'Forbidden by policy'],
  SIPC_ERR_CANCELLED: ['CancelledError', 'The request was cancelled'],
  SIPC_ERR_HANDLER: ['HandlerError', 'The handler failed'],
  SIPC_ERR_STREAM: ['StreamError', 'The stream failed'],
  SIPC_ERR_REMOTE: ['RemoteError', 'The peer answered with an application error'],
  SIPC_ERR_BUSY: ['BusyError', 'Refused: over a limit (too many requests or subscriptions at once)'],
  SIPC_ERR_UNAVAILABLE: [
    'UnavailableError',
    'The peer did not run the request (not executed); it may be sent again',
  ],
  SIPC_ERR_IDEMPOTENCY_CONFLICT: [
    'IdempotencyConflictError',
    'The idempotency key was already used for another request (other method or params)',
  ],
  SIPC_ERR_BAD_CERTIFICATE: ['BadCertificateError', 'The certificate is invalid'],
  SIPC_ERR_CERT_EXPIRED: ['CertificateExpiredError', 'The certificate is expired or not yet valid'],
  SIPC_ERR_REVOKED: ['RevokedError', 'The peer or its certificate is revoked'],
  SIPC_ERR_KEYSTORE: ['KeystoreError', 'The OS keystore operation failed'],
  SIPC_ERR_CIRCUIT_OPEN: ['CircuitOpenError', 'The circuit breaker is open: the call was not sent'],
  SIPC_ERR_SAGA_FAILED: ['SagaFailedError', 'A saga step failed; its completed steps were compensated'],
  SIPC_ERR_OUTBOX_FULL: ['OutboxFullError', 'The outbox holds its most entries or bytes'],
  SIPC_ERR_OUTBOX_CORRUPT: [
    'OutboxCorruptError',
    'An outbox journal or record failed its integrity check (the record is quarantined)',
  ],
  SIPC_ERR_OUTBOX_ROLLBACK: [
    'OutboxRollbackError',
    'The outbox journal is older than its anchor (a restored copy) or its anchor is missing or wrong',
  ],
  SIPC_ERR_AUDIT_CORRUPT: [
    'AuditCorruptError',
    'An audit log record, segment or checkpoint is malformed or fails verification',
  ],
  SIPC_ERR_AUDIT_FORK: [
    'AuditForkError',
    'An audit log showed a witness a history that does not extend the one it signed before',
  ],
  SIPC_ERR_INVALID_CONFIG: [
    'InvalidConfigError',
    'A configuration file has problems (each with its file, line and column in details.problems)',
  ],
  SIPC_ERR_INSUFFICIENT_PROTECTION: [
    'InsufficientProtectionError',
    'The protection available here is below the minimum asked for',
  ],
  SIPC_ERR_NAME_HAS_NO_OWNER: ['NameHasNoOwnerError', 'No peer owns the bus name'],
  SIPC_ERR_QUOTA_EXCEEDED: ['QuotaExceededError', 'Refused: over a bus quota'],
} as const;

/** Every code of the error table (`SIPC_ERR_...`, listed in docs/errors.md). */
export type ErrorCode = keyof typeof ERROR_TABLE;

/** Options of a secure-ipc error. */
export interface SecureIpcErrorOptions {
  /** The underlying error (an OS error, the failed step), kept as the standard `cause`. */
  cause?: unknown;
  /** Extra machine-readable detail (never secrets or payloads). */
  details?: Record<string, unknown>;
}

/** Base class of every secure-ipc error. */
export class SecureIpcError extends Error {
  /** The stable code to match on (never the message). */
  readonly code: ErrorCode;
  /** Extra machine-readable detail, per code (docs/errors.md); never secrets or payloads. */
  readonly details: Record<string, unknown> | undefined;
  /** The brand that `isSecureIpcError` checks, so errors of another copy of this package match too. */
  readonly [BRAND] = true;

  constructor(code: ErrorCode, message?: string, options: SecureIpcErrorOptions = {}) {
    super(
      message ?? ERROR_TABLE[code][1],
      options.cause === undefined ? undefined : { cause: options.cause },
    );
    this.code = code;
    this.name = ERROR_TABLE[code][0];
    this.details = options.details;
  }
}

/** Options of a `RemoteError`. */
export interface RemoteErrorOptions extends SecureIpcErrorOptions {
  /** The code the peer sent (an application's own, e.g. `SHOP_EMPTY`). */
  remoteCode?: string;
  /** The machine-readable detail the peer sent with it. */
  data?: unknown;
}

/**
 * An application error the peer answered with: `code` is always `SIPC_ERR_REMOTE`, the peer's
 * own code is `remoteCode` and its detail `data`. Rethrown by a handler it is not public (it
 * crosses as SIPC_ERR_HANDLER): a proxy that means to pass it on wraps it in a `PublicError`.
 */
export class RemoteError extends SecureIpcError {
  /** Always `SIPC_ERR_REMOTE`. */
  static readonly code = 'SIPC_ERR_REMOTE';
  /** Always `SIPC_ERR_REMOTE`: the peer's own code is `remoteCode`. */
  declare readonly code: 'SIPC_ERR_REMOTE';
  /** The code the peer sent. */
  readonly remoteCode: string;
  /** The detail the peer sent (undefined if none). */
  readonly data: unknown;

  constructor(message?: string, options: RemoteErrorOptions = {}) {
    super('SIPC_ERR_REMOTE', message, options);
    this.remoteCode = options.remoteCode ?? 'SIPC_ERR_REMOTE';
    this.data = options.data;
  }
}

/** The error type of `code` (`RemoteError` for SIPC_ERR_REMOTE). */
/** The error type `isSecureIpcError(value, code)` narrows to: `RemoteError` for SIPC_ERR_REMOTE. */
export type SecureIpcErrorOf<C extends ErrorCode> = C extends 'SIPC_ERR_REMOTE'
  ? RemoteError
  : SecureIpcError & { readonly code: C };

/** True for any secure-ipc error, even one from another copy of this package. */
export function isSecureIpcError(value: unknown): value is SecureIpcError;
/** True for a secure-ipc error with this `code`. */
export function isSecureIpcError<C extends ErrorCode>(value: unknown, code: C): value is SecureIpcErrorOf<C>;
export function isSecureIpcError(value: unknown, code?: ErrorCode): value is SecureIpcError {
  if (typeof value !== 'object' || value === null || (value as Record<symbol, unknown>)[BRAND] !== true)
    return false;
  return code === undefined || (value as SecureIpcError).code === code;
}

/** Wrap anything as a secure-ipc error with `code`, keeping the original as `cause`. */
export function toSecureIpcError(err: unknown, code: ErrorCode, message?: string): SecureIpcError {
  if (isSecureIpcError(err)) return err;
  return createError(code, message, { cause: err });
}

type ErrorClassName = (typeof ERROR_TABLE)[ErrorCode][0];
type CodeOfName<N extends ErrorClassName> = {
  [C in ErrorCode]: (typeof ERROR_TABLE)[C][0] extends N ? C : never;
}[ErrorCode];

/** A generated error class: `new Errors.HandshakeFailedError(message?, { cause })`. */
export type ErrorClass<C extends ErrorCode> = {
  new (message?: string, options?: SecureIpcErrorOptions): SecureIpcError & { readonly code: C };
  /** The code of the errors this class makes. */
  readonly code: C;
};

/** The rows whose class is written by hand rather than generated. */
const HAND_WRITTEN: Partial<Record<ErrorCode, ErrorClass<ErrorCode>>> = { SIPC_ERR_REMOTE: RemoteError };

/** One class per code, generated from the table (for `instanceof` checks and direct construction). */
export const Errors = Object.fromEntries(
  (Object.keys(ERROR_TABLE) as ErrorCode[]).map((code) => {
    const name = ERROR_TABLE[code][0];
    const own = HAND_WRITTEN[code];
    if (own !== undefined) return [name, own];
    const cls = class extends SecureIpcError {
      static readonly code = code;
      constructor(message?: string, options?: SecureIpcErrorOptions) {
        super(code, message, options);
      }
    };
    Object.defineProperty(cls, 'name', { value: name });
    return [name, cls];
  }),
) as unknown as { [N in Exclude<ErrorClassName, 'RemoteError'>]: ErrorClass<CodeOfName<N>> } & {
  readonly RemoteError: typeof RemoteError;
};

const classByCode = new Map<ErrorCode, ErrorClass<ErrorCode>>(
  (Object.keys(ERROR_TABLE) as ErrorCode[]).map((code) => [
    code,
    (Errors as Record<string, ErrorClass<ErrorCode>>)[ERROR_TABLE[code][0]]!,
  ]),
);

/** Create a typed error by code; the result is an instance of the generated class for that code. */
export function createError<C extends ErrorCode>(
  code: C,
  message?: string,
  options?: SecureIpcErrorOptions,
): SecureIpcErrorOf<C> {
  const cls = classByCode.get(code)!;
  return new cls(message, options) as SecureIpcErrorOf<C>;
}
