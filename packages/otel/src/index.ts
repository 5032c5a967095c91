/**
 * @secure-ipc/otel: OpenTelemetry traces and metrics for secure-ipc (docs/observability.md,
 * "OpenTelemetry"). Depends on `@opentelemetry/api` only; bring your own SDK.
 */
export {
  CALL_DURATION_BUCKETS,
  CONNECTION_DURATION_BUCKETS,
  DEFAULT_MAX_METHODS,
  INSTRUMENTATION_NAME,
  INSTRUMENTATION_VERSION,
  instrumentSecureIpc,
  MAX_PEER_LABELS,
  type SecureIpcInstrumentation,
  type SecureIpcInstrumentationOptions,
} from './instrument.js';
export {
  ATTR_ERROR_TYPE,
  ATTR_MESSAGING_DESTINATION_NAME,
  ATTR_MESSAGING_OPERATION_NAME,
  ATTR_MESSAGING_OPERATION_TYPE,
  ATTR_MESSAGING_SYSTEM,
  ATTR_RPC_METHOD,
  ATTR_RPC_METHOD_ORIGINAL,
  ATTR_RPC_RESPONSE_STATUS_CODE,
  ATTR_RPC_SYSTEM_NAME,
  METRIC_RPC_CLIENT_CALL_DURATION,
  METRIC_RPC_SERVER_CALL_DURATION,
  OTHER,
  RPC_SYSTEM,
} from './semconv.js';
