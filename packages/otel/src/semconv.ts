/**
 * The OpenTelemetry semantic-convention names this package emits, copied here (not imported from
 * an incubating entry point, whose names move between releases). RPC: semantic conventions 1.38+
 * (`rpc.system.name`, `rpc.method`, `rpc.response.status_code`, `rpc.{client,server}.call.duration`
 * in seconds); messaging: the messaging conventions' send / process spans.
 */

/** `rpc.system.name`: the RPC system; ours is {@link RPC_SYSTEM}. */
export const ATTR_RPC_SYSTEM_NAME = 'rpc.system.name';
/** `rpc.method`: the method, or `_OTHER` when it is not one the server knows. */
export const ATTR_RPC_METHOD = 'rpc.method';
/** `rpc.method_original`: the method a peer asked for when `rpc.method` is `_OTHER` (spans only). */
export const ATTR_RPC_METHOD_ORIGINAL = 'rpc.method_original';
/** `rpc.response.status_code`: `OK` or the `SIPC_ERR_*` (or application) code, as a string. */
export const ATTR_RPC_RESPONSE_STATUS_CODE = 'rpc.response.status_code';
/** `error.type`: the code of a failed call (absent on success). */
export const ATTR_ERROR_TYPE = 'error.type';
/** `messaging.system`. */
export const ATTR_MESSAGING_SYSTEM = 'messaging.system';
/** `messaging.operation.name`: `send` or `process`. */
export const ATTR_MESSAGING_OPERATION_NAME = 'messaging.operation.name';
/** `messaging.operation.type`: `send` or `process`. */
export const ATTR_MESSAGING_OPERATION_TYPE = 'messaging.operation.type';
/** `messaging.destination.name`: the topic. */
export const ATTR_MESSAGING_DESTINATION_NAME = 'messaging.destination.name';
/** The value of `rpc.system.name` and `messaging.system`. */
export const RPC_SYSTEM = 'secure-ipc';
/** The value semantic conventions use for a method outside the known set. */
export const OTHER = '_OTHER';

/** `rpc.client.call.duration` (s). */
export const METRIC_RPC_CLIENT_CALL_DURATION = 'rpc.client.call.duration';
/** `rpc.server.call.duration` (s). */
export const METRIC_RPC_SERVER_CALL_DURATION = 'rpc.server.call.duration';
