/**
 * @secure-ipc/core: the application API. Serve and call typed RPC over a mutually authenticated
 * Noise_XX channel (`serve`, `connect`), or use the channel alone (`secureConnect`,
 * `secureAccept`, `secureListen`); authorize with a deny-by-default policy; manage keys,
 * certificates and revocation. No OS-specific code lives here: install the transports you need
 * (`@secure-ipc/transport-unix`, `-tcp`, `-win`) beside it. What transport authors need is on the
 * `@secure-ipc/core/transport` subpath; the wire codecs and the RPC engine are not exported.
 *
 * Every name is exported on purpose (no `export *`); test/api-snapshot.test.ts fails on a change
 * that was not meant (update its snapshot and add a changeset).
 *
 * @packageDocumentation
 */

// Channels.
export {
  type AuditAppendResult,
  type AuditLog,
  type AuditLogOptions,
  openAuditLog,
} from './audit/log.js';
export {
  consistencyProof,
  hashLeaf,
  inclusionProof,
  MerkleTree,
  merkleRoot,
  verifyConsistency,
  verifyInclusion,
} from './audit/merkle.js';
export { AUDIT_HASH_KEY_BYTES, auditMessageHash, readAuditHashKey } from './audit/message-hash.js';
export {
  type Checkpoint,
  type NoteSignature,
  type ParsedCheckpoint,
  parseCheckpoint,
  parseVerifierKey,
  type SignedNote,
  signCheckpoint,
  type VerifierKey,
  verifierKey,
  verifyCheckpoint,
} from './audit/note.js';
export {
  type AuditEntry,
  type AuditFields,
  type AuditRecord,
  type AuditValue,
  decodeAuditRecord,
} from './audit/record.js';
export {
  type AuditEpoch,
  type AuditLogState,
  type AuditProblem,
  type AuditProblemKind,
  type AuditReport,
  type AuditSegmentEnd,
  readAuditLog,
  type VerifyAuditLogOptions,
  verifyAuditLog,
} from './audit/verify.js';
export {
  type AcceptedCosignature,
  type AuditWitness,
  type AuditWitnessEpoch,
  type AuditWitnessOptions,
  type AuditWitnessRequest,
  type AuditWitnessResult,
  type AuditWitnessState,
  type AuditWitnessUpdate,
  type Cosignature,
  cosignatureKeyId,
  cosignatureLine,
  createAuditWitness,
  generateWitnessKey,
  MAX_WITNESS_EPOCHS,
  verifyCosignature,
} from './audit/witness.js';
export {
  readAuditWitnessState,
  readWitnessKeyFile,
  writeAuditWitnessState,
  writeWitnessKeyFile,
} from './audit/witness-files.js';
export type {
  ChannelEvents,
  ChannelOptions,
  CloseInfo,
  CloseReason,
  RekeyOptions,
  SecureChannel,
} from './channel/options.js';
export {
  type SendChunkedOptions,
  secureAccept,
  secureConnect,
  sendChunked,
} from './channel/secure-channel.js';
export {
  type AdmissionLimit,
  type HandshakeFailure,
  type LimitDecision,
  type ListenerUpdate,
  type SecureListener,
  type SecureListenerEvents,
  type SecureListenerOptions,
  secureListen,
} from './channel/secure-listener.js';
// Protocol constants and default limits.
export {
  DEFAULT_HANDSHAKE_FIRST_MESSAGE_TIMEOUT_MS,
  DEFAULT_HANDSHAKE_TIMEOUT_MS,
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_CONNECTIONS_PER_IDENTITY,
  DEFAULT_MAX_CONNECTIONS_PER_KEY,
  DEFAULT_MAX_MESSAGE_SIZE,
  DEFAULT_MAX_PENDING_HANDSHAKES,
  DEFAULT_MAX_PENDING_HANDSHAKES_PER_IDENTITY,
  DEFAULT_REKEY,
  DEFAULT_TUNNEL_REPLAY_WINDOW,
  MAX_APP_ID_LENGTH,
  MAX_TUNNEL_BINDING_LENGTH,
  MAX_TUNNEL_REPLAY_WINDOW,
  NOISE_PROTOCOL_NAME,
  PROTOCOL_VERSION,
  SUPPORTED_VERSIONS,
} from './constants.js';
export { type AuditSeverity, auditFieldText, auditSeverity } from './diagnostics/audit-forwarding.js';
export {
  type AuditAppendMessage,
  type BreakerStateMessage,
  type BusCallMessage,
  type BusMessage,
  type BusNameMessage,
  type BusPeerMessage,
  type BusQuotaMessage,
  type BusSignalMessage,
  type ChannelCloseMessage,
  type ChannelOpenMessage,
  DIAGNOSTICS_CHANNELS,
  DIAGNOSTICS_VERSION,
  type OutboxMessage,
  type PolicyDecisionMessage,
  type RetryMessage,
} from './diagnostics/channels.js';
export { LOG_RATE_LIMIT, type LogFields, type Logger, type LogLevel } from './diagnostics/log.js';
export {
  type ClientRequestMessage,
  type EventMessage,
  type HandshakeMessage,
  type ServerRequestMessage,
  TRACING_CHANNELS,
  type TracedOutcome,
} from './diagnostics/tracing.js';
export {
  type AuthorityStatus,
  type CertificateRenewal,
  type CertificateRenewalEvents,
  DEFAULT_AUTHORITY_WARNING_MS,
  ENROL_METHOD,
  ENROLMENT_REFUSED,
  type EnrolmentAnswer,
  type EnrolmentClientOptions,
  type EnrolmentIssue,
  type EnrolmentRefusal,
  type EnrolmentRule,
  type EnrolmentServer,
  EnrolmentService,
  type EnrolmentServiceEvents,
  type EnrolmentServiceOptions,
  type EnrolmentStatusAnswer,
  type ExecutableCondition,
  enrolCertificate,
  keepCertificateRenewed,
  RENEW_METHOD,
  renewalTime,
  renewCertificate,
  STATUS_METHOD,
  serveEnrolment,
} from './enrolment/service.js';
export {
  consumeEnrolmentToken,
  createEnrolmentToken,
  DEFAULT_ENROLMENT_TOKEN_TTL_MS,
  ENROLMENT_TOKEN_PREFIX,
  ENROLMENT_TOKENS_VERSION,
  type EnrolmentGrant,
  type EnrolmentToken,
  MAX_ENROLMENT_TOKEN_FILE_BYTES,
  MAX_ENROLMENT_TOKENS,
} from './enrolment/tokens.js';
export type { WireError } from './envelope/types.js';
export { PublicError, type PublicErrorOptions } from './envelope/wire-errors.js';
// Errors.
export {
  createError,
  type ErrorClass,
  type ErrorCode,
  Errors,
  isSecureIpcError,
  RemoteError,
  type RemoteErrorOptions,
  type SecureIpcError,
  type SecureIpcErrorOf,
  type SecureIpcErrorOptions,
  toSecureIpcError,
} from './errors.js';
export type { HandshakeOptions } from './handshake/options.js';
export type { Trust, TrustContext, TrustDecision } from './handshake/trust.js';
// End-to-end tunnels through a relay (docs/tunnel.md).
export {
  type TunnelInitiator,
  type TunnelOptions,
  type TunnelResponder,
  type TunnelSession,
  tunnelInitiator,
  tunnelResponder,
} from './handshake/tunnel.js';
// Identity: authorities, certificates, certificate trust, revocation.
export {
  type AuthorityKeyPair,
  authorityFromSeed,
  generateAuthority,
  readAuthorityFile,
  writeAuthorityFile,
  zeroAuthority,
} from './identity/authority.js';
export {
  type CertificateTrustDecision,
  type CertificateTrustOptions,
  certificateTrust,
} from './identity/cert-trust.js';
export {
  CERTIFICATE_VERSION,
  type Certificate,
  type CertificateRefusal,
  certificateFromText,
  certificateRefusal,
  certificateSignatureValid,
  certificateToJSON,
  certificateToText,
  DEFAULT_CERTIFICATE_TTL_MS,
  DEFAULT_CLOCK_SKEW_MS,
  decodeCertificate,
  encodeCertificate,
  type IssueCertificateOptions,
  issueCertificate,
  MAX_CERTIFICATE_BYTES,
  MAX_CERTIFICATE_ROLES,
  type RevocationCheck,
  readCertificateFile,
  type VerifyCertificateOptions,
  verifyCertificate,
  writeCertificateFile,
} from './identity/certificate.js';
export {
  type EnforceRevocationOptions,
  enforceRevocation,
  type LifecycleDecision,
  type LifecycleReason,
  type RevocationEnforcer,
  type RevocationEnforcerEvents,
  refuseRevoked,
} from './identity/enforcement.js';
export {
  addToRevocationFile,
  MAX_REVOCATION_FILE_BYTES,
  parseRevocationList,
  REVOCATION_LIST_VERSION,
  type RevocationEntries,
  RevocationList,
  type RevocationListEvents,
  readRevocationFile,
} from './identity/revocation.js';
export {
  type WatchedRevocationList,
  type WatchRevocationListOptions,
  watchRevocationList,
} from './identity/revocation-watch.js';
export type { AccessGuard } from './keys/access-guard.js';
// Keys: key pairs, key text, key files, encrypted key files, the OS keystore.
export {
  decryptSecretKey,
  ENCRYPTED_KEY_FILE_VERSION,
  encryptSecretKey,
  MAX_PASSPHRASE_FILE_BYTES,
  type PasswordHashLimits,
  readEncryptedKeyFile,
  readPassphraseFile,
  writeEncryptedKeyFile,
} from './keys/encrypted-key-file.js';
export {
  type ReadSecretKeyOptions,
  readSecretKeyFile,
  secretKeyFromText,
  secretKeyToText,
  writeSecretKeyFile,
} from './keys/key-file.js';
export {
  generateKeyPair,
  type KeyPair,
  keyFingerprint,
  keyPairFromSecretKey,
  zeroKeyPair,
} from './keys/key-pair.js';
export { decodeKey, encodeKey } from './keys/key-text.js';
export {
  deleteSecretKey,
  KEYSTORE_SERVICE,
  type KeystoreOptions,
  loadSecretKey,
  storeSecretKey,
} from './keys/keystore.js';
export { decodeWireValue, encodeWireValue } from './msgpack/wire-value.js';
export { type GuardedKind, type OutboxAccessGuard, posixOwnerOnly } from './outbox/access.js';
export {
  OUTBOX_RETRY_INITIAL_MS,
  OUTBOX_RETRY_MAX_MS,
  outboxVerdict,
  TERMINAL_OUTBOX_CODES,
} from './outbox/delivery.js';
export { type DoneResult, MAX_OUTBOX_ENTRY_BYTES } from './outbox/format.js';
export {
  type AnchorStatus,
  type InspectOutboxOptions,
  inspectOutbox,
  type OutboxLaneReport,
  type OutboxReport,
} from './outbox/inspect.js';
export type { QuarantinedRecord, QuarantineReason } from './outbox/journal.js';
export type { OutboxFileKey, OutboxKeySource, OutboxKeystoreKey } from './outbox/key-source.js';
export {
  DEFAULT_OUTBOX_MAX_BYTES,
  DEFAULT_OUTBOX_MAX_ENTRIES,
  MAX_OUTBOX_MAX_BYTES,
  MAX_OUTBOX_MAX_ENTRIES,
  MAX_OUTBOX_TTL_MS,
  MIN_OUTBOX_MAX_BYTES,
  OUTBOX_COMPACT_SLACK_BYTES,
  Outbox,
  type OutboxDelivered,
  type OutboxEntryInfo,
  type OutboxEvents,
  type OutboxExpired,
  type OutboxFailed,
  type OutboxOptions,
  type OutboxProtection,
  openOutbox,
  type ProtectionLevel,
  type QuarantineEvent,
} from './outbox/outbox.js';
// Resilience: injectable time and randomness, backoff, circuit breakers (docs/resilience.md).
export {
  type Backoff,
  type BackoffOptions,
  type BackoffStep,
  createBackoff,
  DEFAULT_BACKOFF_INITIAL_MS,
  DEFAULT_BACKOFF_JITTER,
  DEFAULT_BACKOFF_MAX_MS,
  DEFAULT_BACKOFF_MULTIPLIER,
  DEFAULT_MIN_CONNECT_TIMEOUT_MS,
  MAX_BACKOFF_MS,
  MAX_BACKOFF_MULTIPLIER,
} from './resilience/backoff.js';
export {
  type CircuitBreaker,
  type CircuitBreakerEvents,
  type CircuitBreakerOptions,
  type CircuitExecuteOptions,
  type CircuitOutcome,
  type CircuitState,
  type CircuitStateChange,
  createCircuitBreaker,
  DEFAULT_CONSECUTIVE_FAILURES,
  DEFAULT_HALF_OPEN_AFTER_MS,
  defaultClassify,
  type FailureRatioOptions,
  MAX_HALF_OPEN_PROBES,
  MAX_RATIO_BUCKETS,
} from './resilience/breaker.js';
export {
  type Clock,
  MAX_TIMER_MS,
  type ManualClock,
  manualClock,
  type RandomSource,
  seededRandom,
  systemClock,
  systemRandom,
  type TimerHandle,
} from './resilience/clock.js';
export {
  DEFAULT_IDEMPOTENCY_FILE_MAX_BYTES,
  type FileIdempotencyStore,
  type FileIdempotencyStoreOptions,
  fileIdempotencyStore,
  IDEMPOTENCY_FILE_HEADER,
  MAX_IDEMPOTENCY_RECORD_BYTES,
} from './resilience/idempotency-file-store.js';
// Retries decided by the protocol, per-method retry policies, ordering lanes (docs/resilience.md).
export {
  DEFAULT_MAX_QUEUED_PER_LANE,
  MAX_LANE_NAME_LENGTH,
  MAX_QUEUED_PER_LANE,
} from './resilience/lanes.js';
// The reconnecting client: gRPC connectivity states and backoff (docs/resilience.md).
export {
  type ClientOutbox,
  type ClientOutboxAttachment,
  type ConnectivityState,
  type ConnectivityStateChange,
  createReconnectingClient,
  DEFAULT_CLOSED_RETRIES,
  type EnqueuedEntry,
  type EnqueueOptions,
  isTerminalConnectError,
  MAX_CLOSED_RETRIES,
  type ReadyOptions,
  type ReadyRequestArgs,
  type ReadyRequestOptions,
  ReconnectingClient,
  type ReconnectingClientEvents,
  type ReconnectingClientOptions,
  type SubscriptionLost,
  TERMINAL_CONNECT_CODES,
} from './resilience/reconnect.js';
export {
  type CallRetryOption,
  classifyFailure,
  createRetryPolicy,
  DEFAULT_RETRY_BACKOFF_MULTIPLIER,
  DEFAULT_RETRY_INITIAL_BACKOFF_MS,
  DEFAULT_RETRY_MAX_BACKOFF_MS,
  type FailureKind,
  MAX_RETRY_ATTEMPTS,
  MAX_RETRY_METHOD_PATTERNS,
  MAX_RETRYABLE_CODES,
  NEVER_RETRIED_CODES,
  type RetryOptions,
  type RetryPolicy,
  type RetryPolicyOptions,
  type RetryThrottleOptions,
  readPushback,
  retryBackoffMs,
} from './resilience/retry.js';
// Sagas: steps with compensations, journaled for crash recovery (docs/resilience.md).
export {
  DEFAULT_SAGA_COMPENSATION_ATTEMPTS,
  DEFAULT_SAGA_COMPENSATION_BACKOFF_MS,
  defineSaga,
  MAX_SAGA_COMPENSATION_ATTEMPTS,
  MAX_SAGA_NAME_BYTES,
  MAX_SAGA_STEPS,
  type RunSagaOptions,
  resumeSagas,
  runSaga,
  type SagaCompensationContext,
  type SagaDefinition,
  type SagaDefinitionOptions,
  type SagaExecutionOptions,
  type SagaRecovery,
  type SagaResult,
  type SagaStep,
  type SagaStepContext,
  sagaIdempotencyKey,
} from './resilience/saga.js';
export {
  DEFAULT_SAGA_JOURNAL_MAX_BYTES,
  type FileJournalOptions,
  type FileSagaJournal,
  fileJournal,
  SAGA_JOURNAL_HEADER,
} from './resilience/saga-file-journal.js';
export {
  MAX_SAGA_RECORD_BYTES,
  memoryJournal,
  type SagaBeginRecord,
  type SagaEndRecord,
  type SagaJournal,
  type SagaLog,
  type SagaRecord,
  type SagaRecordBase,
  type SagaRecordType,
  type SagaStepDoneRecord,
  type SagaStepFailedRecord,
  type SagaStepStartedRecord,
  type SagaUndoRecord,
  type SagaUndoStuckRecord,
} from './resilience/saga-journal.js';
export {
  type BreakerClient,
  MAX_BREAKER_METHOD_PATTERNS,
  type WithCircuitBreakerOptions,
  withCircuitBreaker,
} from './resilience/with-breaker.js';
export { DEFAULT_MAX_PENDING_AUDIT, type ServerAuditOptions, type ServerAuditState } from './rpc/audit.js';
// RPC: clients, servers, policy, typed services.
export {
  createClient,
  type GoingAwayInfo,
  type RpcClient,
  type RpcClientEvents,
  type RpcClientOptions,
} from './rpc/client.js';
export type { HandlerFailure } from './rpc/dispatcher.js';
export {
  DEFAULT_MAX_BUFFERED_EVENTS,
  type EventIterator,
  type EventIteratorOptions,
  type MatchedEvent,
  type ReceivedEvent,
} from './rpc/event-stream.js';
export type { EventListener } from './rpc/events.js';
export {
  DEFAULT_IDEMPOTENCY_MAX_DETACHED,
  DEFAULT_IDEMPOTENCY_MAX_DETACHED_MS,
  DEFAULT_IDEMPOTENCY_MAX_DETACHED_PER_PEER,
  DEFAULT_IDEMPOTENCY_MAX_ENTRIES,
  DEFAULT_IDEMPOTENCY_MAX_ENTRIES_PER_PEER,
  DEFAULT_IDEMPOTENCY_WINDOW_MS,
  type IdempotencyOptions,
  requestFingerprint,
} from './rpc/idempotency.js';
export {
  type IdempotencyRecord,
  type IdempotencyStore,
  type MemoryIdempotencyStoreOptions,
  memoryIdempotencyStore,
  type StoredOutcome,
} from './rpc/idempotency-store.js';
export type { RpcPeer } from './rpc/peer.js';
export {
  createPolicy,
  DENY_ALL,
  type Policy,
  type PolicyAction,
  type PolicyDecision,
  type PolicyOptions,
  type PolicySubject,
  type RoleGrant,
} from './rpc/policy.js';
export {
  type InferSchemaInput,
  type InferSchemaOutput,
  MAX_ISSUE_MESSAGE_BYTES,
  MAX_ISSUE_PATH,
  MAX_ISSUES,
  type MethodSchemas,
  type StandardSchemaIssue,
  type StandardSchemaProps,
  type StandardSchemaResult,
  type StandardSchemaV1,
  type ValidationErrorData,
  type WireIssue,
} from './rpc/schema.js';
export {
  auditListener,
  type ConnectOptions,
  connect,
  type ListeningServer,
  type ServeOptions,
  serve,
  type TransportChoice,
} from './rpc/serve.js';
export {
  type ChannelSource,
  createServer,
  type EventDrop,
  type ParamsSchemaCheck,
  type PolicyUpdate,
  type PublishResult,
  type RpcServer,
  type RpcServerEvents,
  type RpcServerOptions,
  type SchemaHandler,
  type SchemaParamsOf,
  type SchemaResultOf,
  type ServerCloseOptions,
} from './rpc/server.js';
export type {
  CrossesWire,
  EventContext,
  EventMap,
  EventPayloadOf,
  Handler,
  HandlerContext,
  InputItemOf,
  MethodName,
  NotWire,
  ParamsOf,
  PatternCheck,
  PatternTemplate,
  PublishPayload,
  Received,
  RequestArgs,
  RequestHeaders,
  RequestOptions,
  ResultOf,
  ServiceDefinition,
  StreamItemOf,
  TopicsMatching,
} from './rpc/service-types.js';
export type { RpcChannel } from './rpc/session.js';
export { type CallCounts, type ChannelStats, type ServerStats, STATS_VERSION } from './rpc/stats.js';
export type { RemoteStream } from './rpc/streams.js';
export type { WitnessRoundResult } from './rpc/witness.js';
// The transport contract's types, as the options above name them (the rest: `./transport`).
export type {
  AbortOptions,
  Connection,
  Listener,
  PeerExecutable,
  PeerInfo,
  Transport,
} from './transport/contract.js';
