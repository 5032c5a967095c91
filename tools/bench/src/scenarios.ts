/**
 * The client-side measurement loops of the end-to-end benchmark. They run inside the client
 * process, talk only to the BenchClient interface, and return raw measurements; the parent turns
 * rounds of them into medians and ratios. Timing uses the monotonic clock (process.hrtime).
 */
import { type BenchClient, type Impl, KIND_ECHO, KIND_SINK, makeMessage, type SideSecrets } from './impl.js';
import { percentile } from './stats.js';

const now = () => Number(process.hrtime.bigint()) / 1e6; // milliseconds, sub-microsecond resolution

export interface RoundTripParams {
  iterations: number;
  warmup: number;
  size: number;
  /** Stop early after this long (slow rows); percentiles and rate use the samples taken. */
  maxMs: number;
}
export interface RoundTripResult {
  p50Us: number;
  p99Us: number;
  perSec: number;
}

/** One request in flight at a time: the latency of each round trip, and how many per second. */
export async function roundTrip(client: BenchClient, p: RoundTripParams): Promise<RoundTripResult> {
  const m = makeMessage(KIND_ECHO, p.size);
  for (let i = 0; i < p.warmup; i++) await client.request(m);
  const samples: number[] = [];
  const start = now();
  let t0 = start;
  for (let i = 0; i < p.iterations && t0 - start < p.maxMs; i++) {
    t0 = now();
    const reply = await client.request(m);
    samples.push(now() - t0);
    if (reply.length !== m.length) throw new Error(`echo returned ${reply.length} bytes, sent ${m.length}`);
  }
  const elapsed = now() - start;
  return {
    p50Us: percentile(samples, 50) * 1000,
    p99Us: percentile(samples, 99) * 1000,
    perSec: (samples.length / elapsed) * 1000,
  };
}

export interface PipelinedParams {
  total: number;
  inflight: number;
  size: number;
  /** Stop issuing after this long (slow rows); the rate counts the requests answered. */
  maxMs: number;
}

/** `inflight` requests kept outstanding until `total` have been answered: requests per second. */
export async function pipelined(client: BenchClient, p: PipelinedParams): Promise<{ perSec: number }> {
  const m = makeMessage(KIND_ECHO, p.size);
  let issued = 0;
  const start = now();
  const lane = async () => {
    while (issued < p.total && ((issued & 63) !== 0 || now() - start < p.maxMs)) {
      issued++;
      await client.request(m);
    }
  };
  await Promise.all(Array.from({ length: p.inflight }, lane));
  return { perSec: (issued / (now() - start)) * 1000 };
}

export interface BulkParams {
  size: number;
  bytes: number;
  maxMs: number;
}

/**
 * One-way messages of `size` bytes, sent as fast as back-pressure allows, then a flush that
 * returns once the server has read them all. Stops early after `maxMs` so a slow row cannot
 * stall the run; MB/s = 10^6 bytes per second over what was really sent.
 */
export async function bulk(client: BenchClient, p: BulkParams): Promise<{ mbPerSec: number; bytes: number }> {
  const m = makeMessage(KIND_SINK, p.size);
  const count = Math.max(1, Math.floor(p.bytes / p.size));
  const start = now();
  let sent = 0;
  while (sent < count) {
    await client.send(m);
    sent++;
    if ((sent & 15) === 0 && now() - start > p.maxMs) break;
  }
  await client.flush();
  const elapsed = now() - start;
  const bytes = sent * p.size;
  return { mbPerSec: bytes / 1e6 / (elapsed / 1000), bytes };
}

export interface ConnectParams {
  count: number;
  size: number;
  /** Stop early after this long (slow rows); percentiles use the samples taken. */
  maxMs: number;
}
export interface ConnectResult {
  p50Ms: number;
  p99Ms: number;
}

/** Fresh connection, handshake, first request answered; `count` times, one after another. */
export async function connectLatency(
  impl: Impl,
  address: string,
  secrets: SideSecrets,
  p: ConnectParams,
): Promise<ConnectResult> {
  const m = makeMessage(KIND_ECHO, p.size);
  const samples: number[] = [];
  const start = now();
  for (let i = 0; i < p.count && now() - start < p.maxMs; i++) {
    const t0 = now();
    const c = await impl.connect(address, secrets);
    await c.request(m);
    samples.push(now() - t0);
    await c.close();
  }
  return { p50Ms: percentile(samples, 50), p99Ms: percentile(samples, 99) };
}

/** Open `n` connections, each proven by one answered request, and keep them open. */
export async function openIdle(impl: Impl, address: string, secrets: SideSecrets, n: number) {
  const m = makeMessage(KIND_ECHO, 64);
  const clients: BenchClient[] = [];
  for (let i = 0; i < n; i++) {
    const c = await impl.connect(address, secrets);
    await c.request(m);
    clients.push(c);
  }
  return clients;
}

export interface ConnectionLoadResult {
  perSec: number;
  p50Us: number;
  p99Us: number;
}

/**
 * Every connection of `clients` at once, each with one `size`-byte echo request in flight at a
 * time, for `durationMs`: requests per second over all of them, and the latency percentiles of
 * every request answered (the connection sweep of issue 14, item 3).
 */
export async function connectionLoad(
  clients: BenchClient[],
  p: { durationMs: number; size: number },
): Promise<ConnectionLoadResult> {
  if (clients.length === 0) throw new Error('no connections open');
  const m = makeMessage(KIND_ECHO, p.size);
  const samples: number[] = [];
  const start = now();
  const lane = async (c: BenchClient) => {
    // Each connection answers at least one request, so a slow row still yields its percentiles.
    do {
      const t0 = now();
      await c.request(m);
      samples.push(now() - t0);
    } while (now() - start < p.durationMs);
  };
  await Promise.all(clients.map(lane));
  const elapsed = now() - start;
  return {
    perSec: (samples.length / elapsed) * 1000,
    p50Us: percentile(samples, 50) * 1000,
    p99Us: percentile(samples, 99) * 1000,
  };
}
