// The uid of a loopback TCP peer, read from /proc/net/tcp* by the connection's ports (Linux).
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import type { Socket } from 'node:net';
import type { Connection } from '@secure-ipc/core';
import test from 'ava';
import { tcpTransport } from '../src/index.js';
import {
  askKernel,
  candidateRows,
  isLoopbackAddress,
  LoopbackUidResolver,
  parseRows,
} from '../src/peer-identity.js';

const linux = process.platform === 'linux';
// Explicit platform gates: /proc/net/tcp is Linux's; running a client as uid 65534 needs root (CI runs as root).
const onLinux = linux ? test : test.skip;
const asRootOnLinux = linux && process.geteuid?.() === 0 ? test : test.skip;
const NOBODY = 65534;

// Rows as Linux prints them on a little-endian host (trimmed to the columns read).
const PROC_TCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:A1B2 0100007F:1F90 01 00000000:00000000 00:00000000 00000000  1000        0 111 1
   1: 0100007F:1F90 0100007F:A1B2 01 00000000:00000000 00:00000000 00000000     0        0 112 1
   2: 0100007F:C000 0100007F:1F90 06 00000000:00000000 03:00000A2F 00000000     0        0 0 3
`;

test('candidateRows names the client socket’s row in the kernel’s notation (IPv4, IPv6, mapped)', (t) => {
  if (process.arch !== 'x64' && process.arch !== 'arm64') return t.pass('the vectors are little-endian');
  const ends = { localAddress: '127.0.0.1', localPort: 8080, remoteAddress: '127.0.0.1', remotePort: 0xa1b2 };
  t.deepEqual(candidateRows(ends), [{ file: '/proc/net/tcp', key: '0100007F:A1B2 0100007F:1F90' }]);
  t.deepEqual(candidateRows({ ...ends, localAddress: '::1', remoteAddress: '::1' }), [
    {
      file: '/proc/net/tcp6',
      key: '00000000000000000000000001000000:A1B2 00000000000000000000000001000000:1F90',
    },
  ]);
  // Through a dual-stack listener an IPv4 client is ::ffff:127.0.0.1: its socket may be in either file.
  t.deepEqual(
    candidateRows({ ...ends, localAddress: '::ffff:127.0.0.1', remoteAddress: '::ffff:127.0.0.1' }).map(
      (r) => r.key,
    ),
    [
      '0100007F:A1B2 0100007F:1F90',
      '0000000000000000FFFF00000100007F:A1B2 0000000000000000FFFF00000100007F:1F90',
    ],
  );
});

test('parseRows takes the uid column of the wanted rows only, never a TIME_WAIT row (it prints uid 0)', (t) => {
  const found = new Map<string, number>();
  parseRows(
    PROC_TCP,
    new Set(['0100007F:A1B2 0100007F:1F90', '0100007F:C000 0100007F:1F90', '0100007F:DEAD 0100007F:1F90']),
    found,
  );
  t.deepEqual([...found], [['0100007F:A1B2 0100007F:1F90', 1000]]);
});

test('only loopback peers are looked up; other addresses are undefined at once, without reading /proc', async (t) => {
  t.true(isLoopbackAddress('127.0.0.1'));
  t.true(isLoopbackAddress('127.8.9.10'));
  t.true(isLoopbackAddress('::1'));
  t.true(isLoopbackAddress('::ffff:127.0.0.1'));
  for (const a of ['10.0.0.1', '::ffff:10.0.0.1', 'fe80::1', '128.0.0.1', undefined])
    t.false(isLoopbackAddress(a));
  let reads = 0;
  const resolver = new LoopbackUidResolver(async () => {
    reads++;
    return PROC_TCP;
  });
  t.is(
    await resolver.lookup({
      localAddress: '10.0.0.2',
      localPort: 1,
      remoteAddress: '10.0.0.1',
      remotePort: 2,
    }),
    undefined,
  );
  t.is(reads, 0);
});

test('one read answers a burst of lookups; a row not found gets one more read, then undefined', async (t) => {
  let reads = 0;
  const resolver = new LoopbackUidResolver(
    async () => {
      reads++;
      return PROC_TCP;
    },
    () => ({ kind: 'unavailable', reason: new Error('the /proc path is under test') }),
  );
  if (!linux) return t.pass('lookups run on Linux only');
  const ends = { localAddress: '127.0.0.1', localPort: 0x1f90, remoteAddress: '127.0.0.1' };
  const [a, b, missing] = await Promise.all([
    resolver.lookup({ ...ends, remotePort: 0xa1b2 }),
    resolver.lookup({ ...ends, remotePort: 0xa1b2 }),
    resolver.lookup({ ...ends, remotePort: 0xbeef }),
  ]);
  t.is(a, process.arch === 'x64' || process.arch === 'arm64' ? 1000 : undefined);
  t.is(b, a);
  t.is(missing, undefined);
  t.is(reads, 2, 'the burst shared the first read; the miss had a second');
});

onLinux(
  'NETLINK_SOCK_DIAG and /proc/net/tcp* agree on the owner of a real connection (IPv4, IPv6); a closed one is not found',
  async (t) => {
    const transport = tcpTransport();
    for (const address of ['tcp://127.0.0.1:0', 'tcp://[::1]:0']) {
      const listener = await transport.listen(address);
      t.teardown(() => listener.close());
      const accepted = once(listener, 'connection') as Promise<[Connection]>;
      const conn = await transport.connect(listener.address);
      t.teardown(() => void conn.destroy());
      const [server] = await accepted;
      const ends = server as unknown as Socket;
      t.deepEqual(askKernel(ends), { kind: 'found', uid: process.geteuid!() }, address);
      const viaProc = new LoopbackUidResolver(undefined, () => ({
        kind: 'unavailable',
        reason: new Error('test'),
      }));
      t.is(await viaProc.lookup(ends), process.geteuid!(), address);
      const snapshot = {
        localAddress: ends.localAddress,
        localPort: ends.localPort,
        remoteAddress: ends.remoteAddress,
        remotePort: ends.remotePort,
      };
      conn.destroy();
      server.destroy();
      await new Promise((r) => setTimeout(r, 50));
      t.is(askKernel(snapshot).kind, 'missing', 'gone, or TIME_WAIT (no owner)');
    }
  },
);

onLinux(
  'a loopback connection from this process carries osIdentity uid:<euid> on the accepting side, IPv4 and IPv6',
  async (t) => {
    const transport = tcpTransport();
    for (const address of ['tcp://127.0.0.1:0', 'tcp://[::1]:0']) {
      const listener = await transport.listen(address);
      t.teardown(() => listener.close());
      const accepted = once(listener, 'connection') as Promise<[Connection]>;
      const conn = await transport.connect(listener.address);
      t.teardown(() => void conn.destroy());
      const [server] = await accepted;
      t.is(server.peer.osIdentity, `uid:${process.geteuid!()}`, address);
      t.is(server.peer.port, (conn as unknown as Socket).localPort);
      t.is(conn.peer.osIdentity, undefined, 'the connecting side is not looked up');
    }
  },
);

asRootOnLinux(
  'a client process running as uid 65534 is uid:65534; 500 connections at once are all identified',
  async (t) => {
    const transport = tcpTransport();
    const listener = await transport.listen('tcp://127.0.0.1:0');
    t.teardown(() => listener.close());
    const port = Number(listener.address.split(':').at(-1));
    const seen: Connection[] = [];
    listener.on('connection', (c) => seen.push(c));
    const script = `const net=require('node:net');let n=0;for(let i=0;i<500;i++){const s=net.connect(${port},'127.0.0.1',()=>{if(++n===500)process.stdout.write('up\\n')});s.on('error',()=>{})}process.stdin.on('end',()=>process.exit(0));process.stdin.resume()`;
    const started = Date.now();
    const child = spawn(process.execPath, ['-e', script], {
      stdio: ['pipe', 'pipe', 'inherit'],
      uid: NOBODY,
      gid: NOBODY,
    });
    t.teardown(() => {
      child.kill('SIGKILL');
    });
    while (seen.length < 500) await new Promise((r) => setTimeout(r, 20));
    const elapsed = Date.now() - started;
    t.log(`500 connections from uid ${NOBODY} identified ${elapsed} ms after the child was spawned`);
    t.true(
      seen.every((c) => c.peer.osIdentity === `uid:${NOBODY}`),
      String(seen.find((c) => c.peer.osIdentity !== `uid:${NOBODY}`)?.peer.osIdentity),
    );
  },
);
