import { existsSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { cli, keyFile, serve, tempDir } from './helpers.js';

async function pair(t: Parameters<typeof tempDir>[0]) {
  const dir = await tempDir(t);
  return { dir, server: await keyFile(dir, 'server.key'), client: await keyFile(dir, 'client.key') };
}

test('serve + ping over a unix socket: N round trips, summary, clean shutdown removes the socket', async (t) => {
  const { dir, server, client } = await pair(t);
  const sock = join(dir, 'run', 's.sock');
  const address = `unix://${sock}`;
  const s = await serve(t, ['--listen', address, '--key', server.path, '--allow', client.pub]);
  t.is(s.firstLine, `listening ${address}`);
  const r = await cli([
    'ping',
    address,
    '--key',
    client.path,
    '--server-key',
    server.pub,
    '--count',
    '5',
    '--interval',
    '0',
  ]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /connected to .* server BLAKE2b:\S+ \(pid \d+, uid \d+, gid \d+ via unix\)/);
  t.is(r.stdout.match(/^ping \d+: \d+\.\d{3} ms$/gm)?.length, 5);
  t.regex(r.stdout, /5 pings, 0 failed: min \d+\.\d+ ms, median \d+\.\d+ ms, p99 \d+\.\d+ ms/);
  t.true(existsSync(sock));
  t.is(await s.stop('SIGINT'), 0);
  t.false(existsSync(sock), 'the socket file is removed on shutdown');
});

test('serve + ping over tcp loopback with an app id', async (t) => {
  const { server, client } = await pair(t);
  const s = await serve(t, [
    '--listen',
    'tcp://127.0.0.1:0',
    '--key',
    server.path,
    '--allow',
    client.pub,
    '--app-id',
    'x',
  ]);
  // The address as bound: port 0 is replaced by the port the OS picked.
  const address = s.firstLine.replace(/^listening /, '');
  t.regex(address, /^tcp:\/\/127\.0\.0\.1:[1-9]\d*$/);
  const ok = await cli([
    'ping',
    address,
    '--key',
    client.path,
    '--server-key',
    server.pub,
    '--app-id',
    'x',
    '--count',
    '2',
    '--interval',
    '1',
  ]);
  t.is(ok.code, 0, ok.stderr + ok.stdout);
  t.regex(ok.stdout, /via tcp/);
  const wrongApp = await cli([
    'ping',
    address,
    '--key',
    client.path,
    '--server-key',
    server.pub,
    '--app-id',
    'y',
    '--count',
    '1',
  ]);
  t.is(wrongApp.code, 5, 'another application id fails the handshake');
  t.regex(wrongApp.stderr, /SIPC_ERR_HANDSHAKE_FAILED/);
  t.is(await s.stop(), 0);
});

test('ping refuses a server whose key is not the pinned one (exit 5) and the server refuses unknown clients', async (t) => {
  const { dir, server, client } = await pair(t);
  const stranger = await keyFile(dir, 'stranger.key');
  const address = `unix://${join(dir, 'run', 's.sock')}`;
  const s = await serve(t, ['--listen', address, '--key', server.path, '--allow', client.pub]);
  const wrongServer = await cli([
    'ping',
    address,
    '--key',
    client.path,
    '--server-key',
    stranger.pub,
    '--count',
    '1',
  ]);
  t.is(wrongServer.code, 5);
  t.regex(wrongServer.stderr, /SIPC_ERR_UNTRUSTED_PEER/);
  const unknownClient = await cli([
    'ping',
    address,
    '--key',
    stranger.path,
    '--server-key',
    server.pub,
    '--count',
    '1',
  ]);
  t.is(unknownClient.code, 5, unknownClient.stderr);
  t.regex(unknownClient.stderr, /does not trust this client's key.*SIPC_ERR_REFUSED/);
  t.is(await s.stop(), 0);
  t.regex(s.stderr(), /rejected a connection/);
});

test('ping fails (exit 1) when the server goes away mid-run', async (t) => {
  const { dir, server, client } = await pair(t);
  const address = `unix://${join(dir, 'run', 's.sock')}`;
  const s = await serve(t, ['--listen', address, '--key', server.path, '--allow', client.pub]);
  const r = await cli(
    ['ping', address, '--key', client.path, '--server-key', server.pub, '--count', '50', '--interval', '100'],
    {
      onStdout: (text) => {
        if (/^ping 2: /m.test(text)) void s.stop('SIGKILL');
      },
    },
  );
  t.is(r.code, 1, r.stdout + r.stderr);
  t.regex(r.stdout, /^ping 2: /m);
  t.regex(r.stderr, /the channel closed early after \d+ of 50 pings/);
});

test('serve hardening refusals exit 4 with a clear message', async (t) => {
  const { dir, server, client } = await pair(t);
  const open = join(dir, 'open');
  await mkdir(open);
  await chmod(open, 0o777);
  const r1 = await cli([
    'serve',
    '--listen',
    `unix://${join(open, 's.sock')}`,
    '--key',
    server.path,
    '--allow',
    client.pub,
  ]);
  t.is(r1.code, 4);
  t.regex(r1.stderr, /SIPC_ERR_INSECURE_DIRECTORY/);
  const r2 = await cli(['serve', '--listen', 'tcp://0.0.0.0:0', '--key', server.path, '--allow', client.pub]);
  t.is(r2.code, 4);
  t.regex(r2.stderr, /SIPC_ERR_REMOTE_NOT_ALLOWED/);
  const r3 = await cli([
    'serve',
    '--listen',
    `unix://${'/x'.repeat(60)}.sock`,
    '--key',
    server.path,
    '--allow',
    client.pub,
  ]);
  t.is(r3.code, 4);
  t.regex(r3.stderr, /SIPC_ERR_PATH_TOO_LONG/);
});

test('serve and ping usage errors (exit 2)', async (t) => {
  const { server, client } = await pair(t);
  const noAllow = await cli(['serve', '--listen', 'tcp://127.0.0.1:0', '--key', server.path]);
  t.is(noAllow.code, 2);
  t.regex(noAllow.stderr, /--allow/);
  const badScheme = await cli(['serve', '--listen', 'http://x', '--key', server.path, '--allow', client.pub]);
  t.is(badScheme.code, 2);
  t.regex(badScheme.stderr, /unsupported address/);
  const badCount = await cli([
    'ping',
    'tcp://127.0.0.1:1',
    '--key',
    client.path,
    '--server-key',
    server.pub,
    '--count',
    '0',
  ]);
  t.is(badCount.code, 2);
  t.regex(badCount.stderr, /--count must be a positive integer/);
  const badKey = await cli(['ping', 'tcp://127.0.0.1:1', '--key', client.path, '--server-key', 'abc']);
  t.is(badKey.code, 3);
  const nothing = await cli(['ping', 'tcp://127.0.0.1:1', '--key', client.path, '--server-key', server.pub]);
  t.is(nothing.code, 4);
  t.regex(
    nothing.stderr,
    /SIPC_ERR_CONNECT_FAILED; caused by ECONNREFUSED: connect ECONNREFUSED 127\.0\.0\.1:1\)$/m,
  );
});
