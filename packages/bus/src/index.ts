/**
 * @secure-ipc/bus: a D-Bus-style local bus over secure-ipc (docs/bus.md). `serveBus()` runs a
 * broker on any secure-ipc transport; `connectBus()` joins it: names with D-Bus's ownership
 * semantics, calls routed under a deny-by-default policy, signals with match rules, quotas per
 * peer and per OS identity, introspection, monitoring, activation, and end-to-end sessions the
 * broker cannot read.
 */
export { type ActivationEvent, type ActivationSpec, DEFAULT_ACTIVATION_TIMEOUT_MS } from './activation.js';
export {
  Broker,
  type BrokerEvents,
  type BrokerOptions,
  type BrokerStats,
  type BusIdentity,
  DEFAULT_MAX_DROPPED_SIGNALS,
  type MonitorRecord,
  serveBus,
} from './broker.js';
export {
  type BusCallContext,
  type BusCallOptions,
  BusClient,
  type BusClientEvents,
  type BusClientOptions,
  type BusHandler,
  connectBus,
  type Delivery,
  type ReleaseNameResult,
  type RequestNameFlags,
  type RequestNameResult,
  type SignalInfo,
} from './client.js';
export { type BusConfig, MAX_ACTIVATION_TIMEOUT_MS, MAX_BUS_CONFIG_BYTES, parseBusConfig } from './config.js';
export {
  BUS_TUNNEL_LABEL,
  DEFAULT_MAX_TUNNELS,
  type E2eOptions,
  E2eSession,
  TUNNEL_HANDSHAKE_MS,
} from './e2e.js';
export { MAX_MATCH_PATTERN_BYTES, type MatchRule } from './matches.js';
export {
  BROKER_NAME,
  isUniqueName,
  isWellKnownName,
  MAX_NAME_LENGTH,
  type NameEvent,
  NameFlag,
  type NameOutcome,
  NameRegistry,
  type OwnerChange,
  type QueueEvent,
  queueEvents,
  ReleaseNameReply,
  type ReleaseNameReplyCode,
  RequestNameReply,
  type RequestNameReplyCode,
} from './names.js';
export { BUS_PROTOCOL_VERSION, BusDelivery, BusMethod, MAX_METHOD_BYTES } from './protocol.js';
export {
  DEFAULT_IDENTITY_QUOTAS,
  DEFAULT_PEER_QUOTAS,
  type QuotaDiagnostic,
  type QuotaLimits,
  type QuotaName,
  type QuotaOptions,
  type QuotaReport,
  type QuotaScope,
  type QuotaUsage,
} from './quotas.js';
