/**
 * Plain `net` listen/connect for the rows that bring their own protocol on top of a socket (raw
 * baseline, secret-stream). One place decides socket paths and TCP options so those rows run
 * over exactly the same kind of socket.
 */
import net from 'node:net';
import path from 'node:path';

/** Which socket a row runs over. */
export type NetKind = 'unix' | 'tcp';

/** Listen on a fresh Unix socket in `dir`, or on 127.0.0.1 with a kernel-chosen port. */
export async function listenNet(
  kind: NetKind,
  dir: string,
  onSocket: (socket: net.Socket) => void,
): Promise<{ address: string; close(): Promise<void> }> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    // Nagle would add up to 40 ms to small request/response pairs on TCP; every TCP row gets it off.
    if (kind === 'tcp') socket.setNoDelay(true);
    onSocket(socket);
  });
  server.maxConnections = 100_000;
  const address = await new Promise<string>((resolve, reject) => {
    server.once('error', reject);
    if (kind === 'unix') {
      const p = path.join(dir, 's.sock');
      server.listen({ path: p, backlog: 2048 }, () => resolve(p));
    } else {
      server.listen({ host: '127.0.0.1', port: 0, backlog: 2048 }, () => {
        resolve(`127.0.0.1:${(server.address() as net.AddressInfo).port}`);
      });
    }
  });
  return {
    address,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

/** Connect to an address made by `listenNet`. */
export function connectNet(kind: NetKind, address: string): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    let socket: net.Socket;
    if (kind === 'unix') {
      socket = net.connect({ path: address });
    } else {
      const i = address.lastIndexOf(':');
      socket = net.connect({ host: address.slice(0, i), port: Number(address.slice(i + 1)), noDelay: true });
    }
    socket.once('error', reject);
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
  });
}
