/** Per-test setup helpers: every listener, connection and child is released in the test's teardown. */
import type { Connection, Listener, Transport } from '@secure-ipc/core';
import type { AbortOptions } from '@secure-ipc/core/transport';
import type { ExecutionContext } from 'ava';
import type { ConformanceOptions } from './options.js';
import { startFixture } from './spawn.js';

/** Listen on `address`, closing the listener when the test ends. */
export async function listen(
  t: ExecutionContext,
  transport: Transport,
  address: string,
  options?: AbortOptions,
): Promise<Listener> {
  const listener = await transport.listen(address, options);
  t.teardown(() => listener.close());
  return listener;
}

/** Connect to `address`, destroying the connection when the test ends. */
export async function connect(
  t: ExecutionContext,
  transport: Transport,
  address: string,
): Promise<Connection> {
  const conn = await transport.connect(address);
  t.teardown(() => void conn.destroy());
  return conn;
}

/** Listen and echo every byte back on every connection. */
export async function listenEcho(
  t: ExecutionContext,
  transport: Transport,
  address: string,
): Promise<Listener> {
  const listener = await listen(t, transport, address);
  listener.on('connection', (conn) => conn.pipe(conn));
  return listener;
}

/**
 * An echo server at a fresh address, in a child process when the transport can cross processes
 * (so the bytes really leave this process), otherwise in this process. Returns its address.
 */
export async function echoServer(t: ExecutionContext, o: ConformanceOptions): Promise<string> {
  if (o.child !== undefined) return (await startFixture(t, o.child, 'echo-server', o.address())).address;
  return (await listenEcho(t, o.transport, o.address())).address;
}

/** Title suffix saying why a cross-process case is skipped, when the transport cannot cross processes. */
export function needsChild(o: ConformanceOptions): string {
  return o.child === undefined ? `(skipped: the ${o.name} transport cannot cross processes)` : '';
}
