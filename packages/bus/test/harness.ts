/**
 * The bus suite's harness: a broker in its own process over a real transport, and peers in this
 * process that join it with their own keys.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { encodeKey, generateKeyPair, type KeyPair, type PolicyOptions } from '@secure-ipc/core';
import type { ExecutionContext } from 'ava';
import { type BrokerOptions, type BusClient, type BusClientOptions, connectBus } from '../src/index.js';
import { type TransportName, transportOf } from './fixtures/transports.js';

export const BROKER = fileURLToPath(new URL('./fixtures/broker.js', import.meta.url));
export const PEER = fileURLToPath(new URL('./fixtures/peer.js', import.meta.url));

/** A transport the suite runs over. */
export interface SuiteTransport {
  readonly name: TransportName;
  /** A fresh address to listen on. */
  address(): string;
  /** Whether its peers have an OS identity (uid / SID). */
  readonly osIdentity: boolean;
}

/** A broker process. */
export interface BrokerProcess {
  readonly child: ChildProcess;
  readonly address: string;
  /** The broker's public key (base64). */
  readonly key: string;
  /** Every line it printed after `ready`. */
  readonly lines: string[];
  /** Resolves with the first line (present or to come) starting with `prefix` that `pick` accepts. */
  line(prefix: string, pick?: (rest: string) => boolean): Promise<string>;
}

/** A peer's key pair and its policy entry. */
export interface PeerKey {
  readonly keyPair: KeyPair;
  readonly key: string;
}

/** `n` fresh peer keys. */
export function peerKeys(n: number): PeerKey[] {
  return Array.from({ length: n }, () => {
    const keyPair = generateKeyPair();
    return { keyPair, key: encodeKey(keyPair.publicKey) };
  });
}

/** What the broker process is started with (trust: every key given). */
export interface BrokerSpec {
  readonly trust: readonly PeerKey[];
  readonly policy: PolicyOptions;
  readonly quotas?: BrokerOptions['quotas'];
  readonly activation?: BrokerOptions['activation'];
  readonly maxDroppedSignals?: number;
  readonly routed?: boolean;
  /** Strings the broker reports whenever a message it decrypted holds one (`saw S`). */
  readonly sentinels?: readonly string[];
}

/** Start a broker process; it is killed when the test ends. */
export async function startBroker(
  t: ExecutionContext,
  tr: SuiteTransport,
  spec: BrokerSpec,
): Promise<BrokerProcess> {
  const arg = {
    transport: tr.name,
    address: tr.address(),
    trust: spec.trust.map((k) => k.key),
    policy: spec.policy,
    quotas: spec.quotas,
    activation: spec.activation,
    maxDroppedSignals: spec.maxDroppedSignals,
    routed: spec.routed,
    sentinels: spec.sentinels,
  };
  const child = spawn(process.execPath, [BROKER, JSON.stringify(arg)], {
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const exited = once(child, 'exit');
  t.teardown(async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    await exited;
  });
  const lines: string[] = [];
  const waiters = new Set<() => void>();
  let partial = '';
  child.stdout!.setEncoding('utf8');
  child.stdout!.on('data', (chunk: string) => {
    const parts = (partial + chunk).split('\n');
    partial = parts.pop()!;
    lines.push(...parts);
    for (const w of [...waiters]) w();
  });
  const find = (prefix: string, pick: (rest: string) => boolean = () => true) =>
    lines.find((l) => l.startsWith(`${prefix} `) && pick(l.slice(prefix.length + 1)));
  const line = (prefix: string, pick?: (rest: string) => boolean) =>
    new Promise<string>((resolve, reject) => {
      const check = () => {
        const found = find(prefix, pick);
        if (found === undefined) return;
        waiters.delete(check);
        resolve(found.slice(prefix.length + 1));
      };
      waiters.add(check);
      child.once('exit', (code) => reject(new Error(`the broker exited (${code}) before a ${prefix} line`)));
      check();
    });
  const ready = await line('ready');
  const [address, key] = ready.split(' ') as [string, string];
  return { child, address, key, lines, line };
}

/** Join the bus as `peer`; closed when the test ends. */
export async function join(
  t: ExecutionContext,
  tr: SuiteTransport,
  broker: BrokerProcess,
  peer: PeerKey,
  extra: Pick<BusClientOptions, 'e2e'> = {},
): Promise<BusClient> {
  const bus = await connectBus({
    transport: await transportOf(tr.name),
    address: broker.address,
    keyPair: peer.keyPair,
    trust: { keys: [broker.key] },
    ...extra,
  });
  t.teardown(() => bus.close());
  return bus;
}

/** Wait until `predicate` holds, polling (for events that cross two processes). */
export async function until(predicate: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!predicate()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** The error code of a rejected promise. */
export async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (err) {
    return (err as { code?: string }).code;
  }
}
