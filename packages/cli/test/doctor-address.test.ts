/**
 * `secure-ipc doctor ADDRESS` (README "doctor", docs/configuration.md "Doctor", "A live endpoint")
 * against real `secure-ipc serve` children: the socket's and its directory's modes, the TCP
 * address (and the wildcard bind behind a loopback one), what the server shows an untrusted
 * initiator in the handshake (its key, versions, certificate judged by the profile); exit 0 at or
 * under --max-score, 1 above, 2 for usage, 3 for an endpoint that is not reachable.
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { cli, issueCert, keyFile, serve, tempDir } from './helpers.js';

const ids = (stdout: string) => JSON.parse(stdout).findings.map((f: { id: string }) => f.id);

/** A key, a client key to allow, and a 0700 run directory. */
async function setup(t: ExecutionContext) {
  const dir = await tempDir(t);
  const server = await keyFile(dir, 'server.key');
  const client = await keyFile(dir, 'client.key');
  await mkdir(join(dir, 'run'), { mode: 0o700 });
  return { dir, server, client, address: `unix://${join(dir, 'run', 's.sock')}` };
}

/** `secure-ipc serve --listen ADDRESS --key KEY ...extra` in a child process. */
function listen(t: ExecutionContext, address: string, key: string, extra: string[]) {
  return serve(t, ['--listen', address, '--key', key, ...extra]);
}

/** A server certificate of `ttl` from a fresh authority; resolves the serve arguments that present it. */
async function certified(dir: string, pub: string, ttl: string): Promise<string[]> {
  const caFile = join(dir, 'ca.key');
  const ca = (await cli(['ca', 'init', '--out', caFile])).stdout.trim();
  const cert = join(dir, `server-${ttl}.cert`);
  const r = await issueCert({ ca: caFile, pubkey: pub, name: 'helper', out: cert, extra: ['--ttl', ttl] });
  if (r.code !== 0) throw new Error(r.stderr);
  return ['--cert', cert, '--trust-ca', ca];
}

test('doctor ADDRESS: a hardened unix endpoint with a 24-hour certificate scores 0 under strict; the text names what was and was not checked', async (t) => {
  const { dir, server, address } = await setup(t);
  const s = await listen(t, address, server.path, [...(await certified(dir, server.pub, '24h'))]);
  t.is(s.firstLine, `listening ${address}`);
  const r = await cli(['doctor', address, '--profile', 'strict', '--max-score', '0']);
  t.is(r.code, 0, r.stdout + r.stderr);
  const lines = r.stdout.trimEnd().split('\n');
  t.is(lines.at(-1), 'exposure 0.0/10');
  const path = address.slice('unix://'.length);
  t.true(
    lines.includes(`checked socket ${path}: uid ${process.geteuid!()}, gid ${process.getegid!()}, mode 0600`),
    r.stdout,
  );
  t.true(
    lines.includes(
      `checked socket directory ${join(dir, 'run')}: uid ${process.geteuid!()}, gid ${process.getegid!()}, mode 0700`,
    ),
  );
  t.regex(r.stdout, /^checked handshake: server key BLAKE2b:\S+, version 4 \(accepts 4, 3, 2, 1\)$/m);
  t.regex(r.stdout, /^checked certificate: helper, serial \d+, /m);
  t.regex(r.stdout, /^not checked trust: /m);
  // The server saw only handshakes that stopped after message 2: it learned no client key.
  t.is(await s.stop(), 0);
  t.notRegex(s.stderr(), /BLAKE2b:/);
});

test('doctor ADDRESS: a 0666 socket in a world-writable directory scores high with exactly its findings; --max-score decides the exit', async (t) => {
  const { server, client, address, dir } = await setup(t);
  const s = await listen(t, address, server.path, ['--allow', client.pub, '--socket-mode', '0666']);
  t.is(s.firstLine, `listening ${address}`);
  await chmod(join(dir, 'run'), 0o777); // after listen: the transport refuses such a directory itself
  const r = await cli(['doctor', address, '--json']);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(ids(r.stdout), ['socket-world-access', 'socket-dir-writable', 'no-certificate']);
  const j = JSON.parse(r.stdout);
  t.is(j.score, 4);
  t.like(j.findings[0], { severity: 'medium', weight: 1.5, pointer: '/socket' });
  t.regex(j.findings[1].message, /is writable by every local user without the sticky bit \(mode 0777\)/);
  const over = await cli(['doctor', address, '--max-score', '3.5']);
  t.is(over.code, 1);
  t.is(over.stderr, 'secure-ipc doctor: exposure 4.0 is above --max-score 3.5\n');
  t.deepEqual(
    over.stdout
      .split('\n')
      .filter((l) => /^(high|medium|low|info) /.test(l))
      .map((l) => l.split(':')[0]),
    ['medium 1.5 socket-world-access', 'medium 1.5 socket-dir-writable', 'medium 1.0 no-certificate'],
  );
  // The sticky bit (as on /tmp) lets nobody replace another user's socket.
  await chmod(join(dir, 'run'), 0o1777);
  t.deepEqual(ids((await cli(['doctor', address, '--json'])).stdout), [
    'socket-world-access',
    'no-certificate',
  ]);
  t.is(await s.stop(), 0);
});

test('doctor ADDRESS: tcp on 0.0.0.0 is remote-tcp, by its address and, behind 127.0.0.1, by the port answering on this host’s other addresses', async (t) => {
  const { server, client } = await setup(t);
  const wide = await listen(t, 'tcp://0.0.0.0:0', server.path, ['--allow-remote', '--allow', client.pub]);
  const address = wide.firstLine.slice('listening '.length);
  t.regex(address, /^tcp:\/\/0\.0\.0\.0:\d+$/);
  const r = await cli(['doctor', address, '--json']);
  t.is(r.code, 0, r.stderr);
  t.deepEqual(ids(r.stdout), ['remote-tcp', 'no-certificate']);
  t.is(JSON.parse(r.stdout).server.version, 4);
  const port = address.split(':').at(-1);
  const loop = await cli(['doctor', `tcp://127.0.0.1:${port}`, '--json']);
  const external = Object.values(os.networkInterfaces())
    .flat()
    .filter((i) => i !== undefined && !i.internal && i.family === 'IPv4');
  if (external.length > 0) t.deepEqual(ids(loop.stdout), ['remote-tcp', 'no-certificate', 'tcp-local']);
  else t.log('this host has no address besides loopback: the wildcard bind cannot be seen from 127.0.0.1');
  t.is(await wide.stop(), 0);

  const narrow = await listen(t, 'tcp://127.0.0.1:0', server.path, ['--allow', client.pub]);
  const local = await cli(['doctor', narrow.firstLine.slice('listening '.length), '--json']);
  t.deepEqual(ids(local.stdout), ['no-certificate', 'tcp-local']);
  t.is(JSON.parse(local.stdout).score, 1.5);
  t.is(await narrow.stop(), 0);
});

test('doctor ADDRESS --profile: a 48-hour certificate passes baseline and is certificate-lifetime under strict', async (t) => {
  const { dir, server, address } = await setup(t);
  const s = await listen(t, address, server.path, [...(await certified(dir, server.pub, '48h'))]);
  const base = await cli(['doctor', address, '--json']);
  t.deepEqual(ids(base.stdout), []);
  const j = JSON.parse(base.stdout);
  t.like(j, { ok: true, address, profile: 'baseline', score: 0, maxScore: 5 });
  t.like(j.server.certificate, { name: 'helper' });
  const strict = await cli(['doctor', address, '--json', '--profile', 'strict']);
  t.deepEqual(ids(strict.stdout), ['certificate-lifetime']);
  t.regex(
    JSON.parse(strict.stdout).findings[0].message,
    /lasts 2\.0 days, over the strict profile's 24\.0 hours/,
  );
  t.is(await s.stop(), 0);
});

test('doctor ADDRESS --json: the report as one object, with address in place of file', async (t) => {
  const { server, client, address } = await setup(t);
  const s = await listen(t, address, server.path, ['--allow', client.pub]);
  const r = await cli(['doctor', address, '--json', '--max-score', '0.5']);
  t.is(r.code, 1);
  const j = JSON.parse(r.stdout);
  t.deepEqual(Object.keys(j), [
    'ok',
    'address',
    'profile',
    'score',
    'maxScore',
    'findings',
    'checked',
    'notChecked',
    'server',
  ]);
  t.like(j, { ok: false, address, profile: 'baseline', score: 1, maxScore: 0.5 });
  t.deepEqual(Object.keys(j.findings[0]), ['id', 'severity', 'weight', 'message', 'pointer', 'fix']);
  t.deepEqual(Object.keys(j.server), ['key', 'fingerprint', 'version', 'versions']);
  t.is(j.server.key, server.pub);
  t.deepEqual(j.server.versions, [4, 3, 2, 1]);
  t.like(j.notChecked[0], { what: 'trust' });
  t.is(await s.stop(), 0);
});

test('doctor ADDRESS: nothing there exits 3; a file in place of the socket is socket-not-socket and no handshake; usage errors exit 2', async (t) => {
  const { dir, address } = await setup(t);
  const none = await cli(['doctor', address]);
  t.is(none.code, 3);
  t.regex(
    none.stderr,
    /^secure-ipc doctor: unix:\/\/\S+ is not reachable \(caused by SIPC_ERR_CONNECT_FAILED: No socket at /,
  );
  const closed = await cli(['doctor', 'tcp://127.0.0.1:1']);
  t.is(closed.code, 3, closed.stderr);

  await writeFile(join(dir, 'run', 's.sock'), '');
  const file = await cli(['doctor', address, '--json']);
  t.is(file.code, 0, file.stderr);
  t.deepEqual(ids(file.stdout), ['socket-not-socket']);
  const j = JSON.parse(file.stdout);
  t.is(j.server, null);
  t.like(j.notChecked[0], {
    what: 'handshake',
    reason: `${join(dir, 'run', 's.sock')} is a regular file: nothing listens there`,
  });

  t.is((await cli(['doctor', address, '--profile', 'lax'])).code, 2);
  const inherited = await cli(['doctor', 'systemd:helper']);
  t.is(inherited.code, 2, inherited.stderr);
  t.regex(inherited.stderr, /SIPC_ERR_INVALID_ADDRESS/);
  const cfg = await cli(['doctor', join(dir, 'ipc.toml'), '--profile', 'strict']);
  t.is(cfg.code, 2);
  t.regex(cfg.stderr, /--profile and --app-id are for an ADDRESS/);
  if (process.platform !== 'win32') {
    const pipe = await cli(['doctor', 'pipe://helper']);
    t.is(pipe.code, 2);
    t.true(
      pipe.stderr.startsWith(
        `secure-ipc doctor: pipe://helper cannot be checked on ${process.platform} (caused by SIPC_ERR_UNSUPPORTED_PLATFORM: pipe://helper is a Windows named pipe: its DACL can be read only on Windows`,
      ),
      pipe.stderr,
    );
  }
});
