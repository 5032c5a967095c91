/**
 * The bus protocol's method and event names and the checks of its maps (docs/bus.md): every
 * request's `p` is a map with exactly the listed fields, each of its type, checked before
 * anything else runs; a field not listed is SIPC_ERR_INVALID_ARGUMENT, so a field can be added
 * later without being silently ignored by an old broker.
 */
import { createError } from '@secure-ipc/core';

/** The bus protocol version `bus.hello` answers. */
export const BUS_PROTOCOL_VERSION = 1;

/** The broker's methods. */
export const BusMethod = {
  hello: 'bus.hello',
  requestName: 'bus.requestName',
  releaseName: 'bus.releaseName',
  getNameOwner: 'bus.getNameOwner',
  nameHasOwner: 'bus.nameHasOwner',
  listNames: 'bus.listNames',
  listQueuedOwners: 'bus.listQueuedOwners',
  call: 'bus.call',
  emit: 'bus.emit',
  addMatch: 'bus.addMatch',
  removeMatch: 'bus.removeMatch',
  identity: 'bus.identity',
  becomeMonitor: 'bus.becomeMonitor',
  quota: 'bus.quota',
} as const;

/** What the broker sends a peer: the request it answers, and the events it takes. */
export const BusDelivery = {
  /** A routed call (a request the peer answers). */
  deliver: 'bus.deliver',
  /** A signal (event). */
  signal: 'bus.signal',
  /** The peer became a name's primary owner (event). */
  nameAcquired: 'bus.nameAcquired',
  /** The peer is no longer a name's primary owner (event). */
  nameLost: 'bus.nameLost',
  /** Monitor metadata (event). */
  monitor: 'bus.monitor',
} as const;

/** The pattern a bus peer subscribes to on its channel. */
export const BUS_EVENTS = 'bus.*';
/** The broker's signal of owner changes. */
export const NAME_OWNER_CHANGED = 'bus.NameOwnerChanged';
/** The exact-name grants of introspection and monitoring. */
export const IDENTITY_GRANT = '$bus.identity';
/** The grant of `bus.becomeMonitor`. */
export const MONITOR_GRANT = '$bus.monitor';
/** The longest method name, in UTF-8 bytes. */
export const MAX_METHOD_BYTES = 256;
/** The tunnel methods of end-to-end mode (docs/bus.md section 7). */
export const TUNNEL_OPEN = '$tunnel.open';
/** The second tunnel method. */
export const TUNNEL_FINISH = '$tunnel.finish';
/** Bytes of a tunnel id. */
export const TUNNEL_ID_BYTES = 16;

type FieldType = 'string' | 'bytes' | 'int' | 'bool' | 'map';

function typeOk(v: unknown, type: FieldType): boolean {
  switch (type) {
    case 'string':
      return typeof v === 'string';
    case 'bytes':
      return v instanceof Uint8Array;
    case 'int':
      return typeof v === 'number' && Number.isSafeInteger(v);
    case 'bool':
      return typeof v === 'boolean';
    case 'map':
      return typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Uint8Array);
  }
}

/**
 * Check that `p` is a map of exactly these fields (a `?` suffix: optional) and return it typed;
 * SIPC_ERR_INVALID_ARGUMENT (public: the message is about the caller's own request) otherwise.
 */
export function fields<T>(p: unknown, method: string, spec: Readonly<Record<string, FieldType>>): T {
  const map = p ?? {};
  if (!typeOk(map, 'map')) throw createError('SIPC_ERR_INVALID_ARGUMENT', `${method} takes a map`);
  const m = map as Record<string, unknown>;
  const known = new Set<string>();
  for (const [key, type] of Object.entries(spec)) {
    const optional = key.endsWith('?');
    const name = optional ? key.slice(0, -1) : key;
    known.add(name);
    const v = m[name];
    if (v === undefined) {
      if (!optional) throw createError('SIPC_ERR_INVALID_ARGUMENT', `${method}: ${name} is required`);
      continue;
    }
    if (!typeOk(v, type))
      throw createError(
        'SIPC_ERR_INVALID_ARGUMENT',
        `${method}: ${name} must be ${type === 'int' ? 'an int' : `a ${type}`}`,
      );
  }
  for (const key of Object.keys(m))
    if (!known.has(key))
      throw createError(
        'SIPC_ERR_INVALID_ARGUMENT',
        `${method}: unknown field ${JSON.stringify(key.slice(0, 64))}`,
      );
  return m as T;
}

/** Throw SIPC_ERR_INVALID_ARGUMENT unless `method` is 1-256 UTF-8 bytes (a `$` start only for tunnel methods). */
export function assertMethod(method: string, allowTunnel: boolean): void {
  const bytes = Buffer.byteLength(method, 'utf8');
  if (bytes === 0 || bytes > MAX_METHOD_BYTES)
    throw createError('SIPC_ERR_INVALID_ARGUMENT', `method must be 1 to ${MAX_METHOD_BYTES} UTF-8 bytes`);
  if (method.startsWith('$') && !(allowTunnel && (method === TUNNEL_OPEN || method === TUNNEL_FINISH)))
    throw createError('SIPC_ERR_INVALID_ARGUMENT', 'method names starting with $ are reserved');
}
