/**
 * A man in the middle on the transport: accepts connections, opens one to the real server for
 * each, and forwards whole frames (2-byte big-endian length + body) both ways through a hook that
 * may drop, duplicate, reorder or alter them. The hook sees each direction's frame index
 * (0 = Noise message 1 or 2 in that direction, ...).
 */
import type { Connection, Transport } from '@secure-ipc/core';
import type { ExecutionContext } from 'ava';
import { listen } from './harness.js';

/** Which way a frame travels. */
export type Direction = 'toServer' | 'toClient';

/** Decide what to forward for one frame: the frames to send now (possibly none, several or altered). */
export type FrameHook = (direction: Direction, index: number, frame: Buffer) => Buffer[];

function pump(from: Connection, to: Connection, direction: Direction, hook: FrameHook): void {
  let buffered = Buffer.alloc(0);
  let index = 0;
  from.on('data', (chunk: Buffer) => {
    buffered = Buffer.concat([buffered, chunk]);
    while (buffered.length >= 2) {
      const size = 2 + buffered.readUInt16BE(0);
      if (buffered.length < size) break;
      const frame = buffered.subarray(0, size);
      buffered = buffered.subarray(size);
      for (const out of hook(direction, index++, Buffer.from(frame))) to.write(out);
    }
  });
  from.on('end', () => to.end());
  from.on('close', () => to.destroy());
}

/** Start a proxy in front of `upstream`; returns the address clients should use. */
export async function startMitm(
  t: ExecutionContext,
  transport: Transport,
  address: string,
  upstream: string,
  hook: FrameHook,
): Promise<string> {
  const listener = await listen(t, transport, address);
  listener.on('connection', (client) => {
    void transport.connect(upstream).then(
      (server) => {
        t.teardown(() => void server.destroy());
        pump(client, server, 'toServer', hook);
        pump(server, client, 'toClient', hook);
      },
      () => client.destroy(),
    );
  });
  return listener.address;
}

/** A copy of `frame` with one bit of its body flipped (the length header is left intact). */
export function flipBit(frame: Buffer, offset = 0): Buffer {
  const copy = Buffer.from(frame);
  const at = 2 + Math.min(offset, copy.length - 3);
  copy[at]! ^= 0x01;
  return copy;
}
