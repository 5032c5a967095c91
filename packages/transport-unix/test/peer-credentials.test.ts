import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { type Connection, isSecureIpcError, type PeerInfo } from '@secure-ipc/core';
import test, { type ExecutionContext } from 'ava';
import { checkCredentials } from '../src/credential-policy.js';
import { type UnixTransportOptions, unixTransport } from '../src/index.js';
import { PEER, peerProcess, tempDir } from './helpers.js';

const NOBODY = 65534;
const linux = process.platform === 'linux';
// Explicit platform gates. Cross-uid cases need root to run a child as uid 65534 (CI runs as root);
// SO_PEERCRED is Linux's syscall and getpeereid + LOCAL_PEERPID macOS's, so each runs on its own OS.
const asRootOnLinux = linux && process.geteuid?.() === 0 ? test : test.skip;
const onLinux = linux ? test : test.skip;
const onMac = process.platform === 'darwin' ? test : test.skip;

const _NO_KOFFI = new URL('./fixtures/no-koffi.js', import.meta.url).href;

/** The OS facts of `peer` without its `executable` reader (a function on Linux, tested in peer-executable.test.ts). */
function facts(peer: PeerInfo): Omit<PeerInfo, 'executable'> {
  const { executable, ...rest } = peer;
  return rest;
}

/** Run the peer fixture (as `uid` if given, without koffi if asked). */
function peer(t: ExecutionContext, args: string[], uid?: number, noKoffi = false) {
  return peerProcess(t, args, { ...(uid === undefined ? {} : { uid }), noKoffi });
}

function abstractAddress(): string {
  return `unix-abstract:sipc-cred-${process.pid}-${Math.random().toString(36).slice(2)}`;
}

test('both sides see the other process’s pid, uid and gid from the kernel', async (t) => {
  const transport = unixTransport();
  const listener = await transport.listen(`unix://${tempDir(t)}/s.sock`);
  t.teardown(() => listener.close());
  const accepted = once(listener, 'connection') as Promise<[Connection]>;
  const child = peer(t, ['connect', listener.address, '{}']);
  const [server] = await accepted;
  t.deepEqual(facts(server.peer), {
    transport: 'unix',
    pid: child.child.pid,
    uid: process.geteuid!(),
    gid: process.getegid!(),
    osIdentity: `uid:${process.geteuid!()}`,
  });
  t.is(await child.next(), `connected ${process.geteuid!()}`);
  // And the client side, in this process, sees this process as the server.
  const conn = await transport.connect(listener.address);
  t.teardown(() => void conn.destroy());
  t.deepEqual(facts(conn.peer), {
    transport: 'unix',
    pid: process.pid,
    uid: process.geteuid!(),
    gid: process.getegid!(),
    osIdentity: `uid:${process.geteuid!()}`,
  });
});

/** Listen on an abstract socket (no file permissions stand in the way of another uid) with `policy`. */
async function listenAbstract(t: ExecutionContext, policy: UnixTransportOptions) {
  const listener = await unixTransport(policy).listen(abstractAddress());
  t.teardown(() => listener.close());
  listener.on('connection', (c) => c.pipe(c));
  return listener;
}

asRootOnLinux(
  'by default the server rejects a client of another uid: reject event with SIPC_ERR_PEER_CREDENTIALS',
  async (t) => {
    const listener = await listenAbstract(t, {});
    const rejected = once(listener, 'reject') as Promise<[Error, PeerInfo]>;
    let connections = 0;
    listener.on('connection', () => connections++);
    const child = peer(t, ['connect', listener.address, '{"allowAnyUser":true}'], NOBODY);
    const [err, info] = await rejected;
    t.true(isSecureIpcError(err, 'SIPC_ERR_PEER_CREDENTIALS'), String(err));
    t.regex(err.message, /uid 65534/);
    t.like(info, {
      transport: 'unix',
      uid: NOBODY,
      gid: NOBODY,
      pid: child.child.pid,
      osIdentity: `uid:${NOBODY}`,
    });
    t.is(connections, 0);
    t.is(await child.next(), 'connected 0');
    t.is(await child.next(), 'closed');
  },
);

for (const [label, policy] of [
  ['allowedUids', { allowedUids: [NOBODY] }],
  ['allowedGids', { allowedGids: [NOBODY] }],
  ['allowAnyUser', { allowAnyUser: true }],
] as const) {
  asRootOnLinux(
    `${label} lets a client of another uid in, with its credentials on the connection`,
    async (t) => {
      const listener = await listenAbstract(t, policy);
      const accepted = once(listener, 'connection') as Promise<[Connection]>;
      const child = peer(t, ['connect', listener.address, '{"allowAnyUser":true}'], NOBODY);
      const [server] = await accepted;
      t.like(server.peer, { uid: NOBODY, gid: NOBODY, pid: child.child.pid });
    },
  );
}

asRootOnLinux('by default the client refuses a server of another uid; allowedUids accepts it', async (t) => {
  const address = abstractAddress();
  const server = peer(t, ['listen', address, '{"allowAnyUser":true}'], NOBODY);
  t.is(await server.next(), 'ready');
  const err = await t.throwsAsync(unixTransport().connect(address));
  t.true(isSecureIpcError(err, 'SIPC_ERR_PEER_CREDENTIALS'), String(err));
  t.regex(err!.message, /server runs as uid 65534/);
  const conn = await unixTransport().connect(address, { allowedUids: [NOBODY] });
  t.teardown(() => void conn.destroy());
  t.like(conn.peer, { uid: NOBODY, pid: server.child.pid });
});

test('credentials that cannot be read fail closed unless the policy allows any user', (t) => {
  const unreadable = { pid: undefined, uid: undefined, gid: undefined, failure: new Error('no fd') };
  for (const policy of [{}, { allowedUids: [0, 1000] }, { allowedGids: [0] }]) {
    const err = checkCredentials(policy, unreadable, 'client');
    t.true(isSecureIpcError(err, 'SIPC_ERR_PEER_CREDENTIALS'), String(err));
    t.is((err!.cause as Error).message, 'no fd');
  }
  t.is(checkCredentials({ allowAnyUser: true }, unreadable, 'client'), undefined);
});

test('a peer that cannot read credentials fails closed: the server rejects every client, the client refuses the server', async (t) => {
  const dir = tempDir(t);
  const strict = peer(t, ['listen', `unix://${dir}/strict.sock`, '{}'], undefined, true);
  t.is(await strict.next(), 'ready');
  const conn = await unixTransport().connect(`unix://${dir}/strict.sock`);
  t.teardown(() => void conn.destroy());
  // Listen for the close before waiting on the server's line: the server may hang up first, and a
  // 'close' emitted before anyone listens would leave this test waiting until ava's timeout.
  const closed = once(conn.resume(), 'close');
  t.is(await strict.next(), 'reject SIPC_ERR_PEER_CREDENTIALS');
  await closed;
  // allowAnyUser does not need credentials: the same blind server lets the client in.
  const lax = peer(t, ['listen', `unix://${dir}/lax.sock`, '{"allowAnyUser":true}'], undefined, true);
  t.is(await lax.next(), 'ready');
  const served = await unixTransport().connect(`unix://${dir}/lax.sock`);
  t.teardown(() => void served.destroy());
  served.write('echo');
  const [echoed] = (await once(served, 'data')) as [Buffer];
  t.is(String(echoed), 'echo');
  // And a blind client refuses to talk to a server it cannot identify.
  const listener = await unixTransport().listen(`unix://${dir}/server.sock`);
  t.teardown(() => listener.close());
  const blindClient = peer(t, ['connect', listener.address, '{}'], undefined, true);
  t.is(await blindClient.next(), 'error SIPC_ERR_PEER_CREDENTIALS');
});

test('policy options are validated when the transport is built', (t) => {
  for (const bad of [{ allowedUids: [-1] }, { allowedGids: ['0'] }, { allowAnyUser: 'yes' }]) {
    const err = t.throws(() => unixTransport(bad as never));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_ARGUMENT'), String(err));
  }
});

onLinux(
  'importing the package does not load koffi; the first connection does (Linux SO_PEERCRED)',
  async (t) => {
    const probe = spawn(
      process.execPath,
      [
        '--input-type=module',
        '-e',
        `import { createRequire } from 'node:module';
       const require = createRequire(${JSON.stringify(PEER)});
       const { unixTransport } = await import(${JSON.stringify(new URL('../src/index.js', import.meta.url).href)});
       const loaded = () => (Object.keys(require.cache).some((k) => k.includes('koffi')) ? 'loaded' : 'not loaded');
       const before = loaded();
       const transport = unixTransport();
       const listener = await transport.listen('unix-abstract:sipc-lazy-' + process.pid);
       const conn = await transport.connect(listener.address);
       conn.destroy();
       await listener.close();
       console.log(before + ', then ' + loaded());`,
      ],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    );
    const [out] = (await once(probe.stdout, 'data')) as [Buffer];
    t.is(String(out).trim(), 'not loaded, then loaded');
  },
);

onMac(
  'macOS: getpeereid + LOCAL_PEERPID give uid, gid and pid on both sides (skipped elsewhere: macOS-only syscalls)',
  async (t) => {
    const transport = unixTransport();
    const listener = await transport.listen(`unix://${tempDir(t)}/s.sock`);
    t.teardown(() => listener.close());
    const accepted = once(listener, 'connection') as Promise<[Connection]>;
    const conn = await transport.connect(listener.address);
    t.teardown(() => void conn.destroy());
    const [server] = await accepted;
    const me = {
      transport: 'unix',
      pid: process.pid,
      uid: process.geteuid!(),
      gid: process.getegid!(),
      osIdentity: `uid:${process.geteuid!()}`,
    };
    t.deepEqual(facts(server.peer), me);
    t.deepEqual(facts(conn.peer), me);
  },
);
