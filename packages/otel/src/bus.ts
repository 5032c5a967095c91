/**
 * Metrics of a bus broker (@secure-ipc/bus, docs/bus.md section 9) from its `secure-ipc:bus`
 * messages: routed calls by outcome and their duration, bytes, signals routed or dropped, name
 * queue events, quota diagnostics, peers on the bus. Every label comes from a bounded set (codes,
 * outcomes, events, quota names) or, for the method, from the instrumentation's capped set.
 */
import type { Attributes, Meter } from '@opentelemetry/api';
import type { BusMessage } from '@secure-ipc/core';
import { ATTR_ERROR_TYPE, ATTR_RPC_METHOD } from './semconv.js';

/** The bus metrics' handler of `secure-ipc:bus` messages; `method` caps the method label. */
export function busMetrics(
  meter: Meter,
  method: (name: string) => string,
  buckets: readonly number[],
): (raw: unknown) => void {
  const counter = (name: string, unit: string, description: string) =>
    meter.createCounter(name, { description, unit });
  const calls = counter(
    'secure_ipc.bus.calls',
    '{call}',
    'Calls a broker routed or refused, by outcome (OK or the code the caller got)',
  );
  const callDuration = meter.createHistogram('secure_ipc.bus.call.duration', {
    description: 'From the broker reading a call to its answer or refusal',
    unit: 's',
    advice: { explicitBucketBoundaries: [...buckets] },
  });
  const bytes = counter(
    'secure_ipc.bus.bytes',
    'By',
    'Body bytes a broker routed: calls, answers and signals (sealed bodies at their sealed size)',
  );
  const signals = counter(
    'secure_ipc.bus.signals',
    '{signal}',
    'Signals handed to a receiver (routed) or dropped at its bytes quota, one per receiver',
  );
  const names = counter(
    'secure_ipc.bus.name.events',
    '{event}',
    "Changes of a connection's place in a well-known name's queue",
  );
  const quotas = counter(
    'secure_ipc.bus.quota.exceeded',
    '{diagnostic}',
    'Quota diagnostics: a request over a quota, by quota, scope and action',
  );
  const peers = meter.createUpDownCounter('secure_ipc.bus.peers', {
    description: 'Connections on the bus now',
    unit: '{connection}',
  });
  return (raw) => {
    const m = raw as BusMessage;
    switch (m.kind) {
      case 'call': {
        const attributes: Attributes = {
          [ATTR_RPC_METHOD]: method(m.method),
          'secure_ipc.bus.outcome': m.outcome,
          'secure_ipc.bus.e2e': m.e2e,
        };
        if (m.outcome !== 'OK') attributes[ATTR_ERROR_TYPE] = m.outcome;
        calls.add(1, attributes);
        callDuration.record(m.durationMs / 1000, { 'secure_ipc.bus.outcome': m.outcome });
        if (m.bytesIn > 0) bytes.add(m.bytesIn, { 'secure_ipc.bus.direction': 'call' });
        if (m.bytesOut > 0) bytes.add(m.bytesOut, { 'secure_ipc.bus.direction': 'answer' });
        return;
      }
      case 'signal':
        signals.add(1, { 'secure_ipc.bus.outcome': m.outcome });
        if (m.outcome === 'routed' && m.bytes > 0)
          bytes.add(m.bytes, { 'secure_ipc.bus.direction': 'signal' });
        return;
      case 'name':
        names.add(1, { 'secure_ipc.bus.name.event': m.event });
        return;
      case 'quota':
        quotas.add(1, {
          'secure_ipc.bus.quota': m.quota,
          'secure_ipc.bus.quota.scope': m.scope,
          'secure_ipc.bus.quota.action': m.action,
        });
        return;
      case 'peer':
        peers.add(m.event === 'joined' ? 1 : -1);
        return;
    }
  };
}
