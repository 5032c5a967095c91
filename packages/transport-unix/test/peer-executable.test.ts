/**
 * `PeerInfo.executable()` on Unix sockets (docs/identity.md, "Enrolment"): a real child process's
 * image path and SHA-256, read through /proc/PID/exe only when asked, one answer per connection;
 * undefined (fail closed) once the process that connected is gone, even while its socket lives
 * on in another process, and once the connection is closed.
 */
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createReadStream, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Connection, Listener } from '@secure-ipc/core';
import test from 'ava';
import { unixTransport } from '../src/index.js';
import { pidfdPid, startTimeOf } from '../src/peer-executable.js';
import { tempDir } from './helpers.js';

// /proc/PID/exe is Linux's; elsewhere (macOS) a Unix socket peer has no executable reader.
const onLinux = process.platform === 'linux' ? test : test.skip;
const offLinux = process.platform === 'linux' ? test.skip : test;

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * A child running SCRIPT (CommonJS, written to a file: Deno's `process.execPath` takes a script
 * file as Node does, but not `-e`) with ADDRESS as its argument, killed when the test ends.
 */
function child(t: Parameters<typeof tempDir>[0], script: string, address: string) {
  const file = join(tempDir(t), 'child.cjs');
  writeFileSync(file, script);
  const proc = spawn(process.execPath, [file, address], { stdio: ['ignore', 'pipe', 'inherit'] });
  t.teardown(() => {
    if (proc.exitCode === null && proc.signalCode === null) proc.kill('SIGKILL');
  });
  return proc;
}

/**
 * The listener's next connection; rejects if CHILD fails (exits other than 0) first, so a child
 * that cannot start fails the test instead of leaving it waiting.
 */
function acceptedFrom(listener: Listener, proc: ReturnType<typeof spawn>): Promise<[Connection]> {
  return new Promise((resolve, reject) => {
    listener.once('connection', (c: Connection) => resolve([c]));
    proc.once('exit', (code, signal) => {
      if (code !== 0) reject(new Error(`the child failed (${code ?? signal}) before it connected`));
    });
  });
}

// The child connects by the socket path (argv[2]) and stays until the server closes it.
const STAY = `require('node:net').connect(process.argv[2]).resume()`;

onLinux(
  'a child process’s executable: the real path and SHA-256 of its image, one answer per connection',
  async (t) => {
    const listener = await unixTransport().listen(`unix://${tempDir(t)}/s.sock`);
    t.teardown(() => listener.close());
    const proc = child(t, STAY, listener.address.slice('unix://'.length));
    const [conn] = await acceptedFrom(listener, proc);
    t.is(conn.peer.pid, proc.pid);
    t.is(typeof conn.peer.executable, 'function');
    const exe = await conn.peer.executable!();
    t.deepEqual(exe, { path: realpathSync(process.execPath), sha256: await sha256Of(process.execPath) });
    t.is(await conn.peer.executable!(), exe, 'read once: every caller gets the same answer');
    t.true(Object.isFrozen(exe));
    conn.destroy();
  },
);

onLinux('the process that connected is gone while its socket lives on in another: undefined', async (t) => {
  const listener = await unixTransport().listen(`unix://${tempDir(t)}/s.sock`);
  t.teardown(() => listener.close());
  // The child hands its connected socket to a grandchild (`sleep`, as its stdout) and exits.
  const handOff = `const net = require('node:net'), { spawn } = require('node:child_process');
    const s = net.connect(process.argv[2], () => {
      const g = spawn('sleep', ['60'], { stdio: ['ignore', s, 'ignore'], detached: true });
      process.stdout.write(String(g.pid)); g.unref(); process.exit(0);
    });`;
  const proc = child(t, handOff, listener.address.slice('unix://'.length));
  const accepted = acceptedFrom(listener, proc);
  const grandchild = new Promise<number>((resolve) =>
    proc.stdout!.once('data', (d) => resolve(Number(String(d)))),
  );
  const [conn] = await accepted;
  const sleeper = await grandchild;
  t.teardown(() => {
    try {
      process.kill(sleeper, 'SIGKILL');
    } catch {}
  });
  await once(proc, 'exit');
  t.false(conn.destroyed, 'the connection is still open: the grandchild holds it');
  t.is(
    await conn.peer.executable!(),
    undefined,
    'not the grandchild’s `sleep`, and not a stranger at a reused pid',
  );
  conn.destroy();
});

onLinux('asked only after the connection closed: undefined', async (t) => {
  const listener = await unixTransport().listen(`unix://${tempDir(t)}/s.sock`);
  t.teardown(() => listener.close());
  const [conn] = await acceptedFrom(listener, child(t, STAY, listener.address.slice('unix://'.length)));
  conn.destroy();
  await once(conn, 'close');
  t.is(await conn.peer.executable!(), undefined);
});

offLinux('no /proc: a Unix socket peer has no executable reader', async (t) => {
  const listener = await unixTransport().listen(`unix://${tempDir(t)}/s.sock`);
  t.teardown(() => listener.close());
  const accepted = once(listener, 'connection') as Promise<[Connection]>;
  const conn = await unixTransport().connect(listener.address);
  t.teardown(() => void conn.destroy());
  const [server] = await accepted;
  t.is(server.peer.executable, undefined);
});

test('the /proc fields the reader relies on: start time after a comm with spaces and parentheses, the pidfd’s Pid', (t) => {
  const fields = Array.from({ length: 50 }, (_, i) => String(i + 3));
  // comm `a) (b c` as the kernel prints it: the start time is field 22 all the same.
  t.is(startTimeOf(`1234 (a) (b c) ${fields.join(' ')}`), '22');
  t.is(startTimeOf('1234 (x) S 1'), undefined);
  t.is(pidfdPid('pos:\t0\nflags:\t02000002\nmnt_id:\t15\nino:\t1\nPid:\t4242\nNSpid:\t4242\n'), 4242);
  t.is(pidfdPid('Pid:\t-1\nNSpid:\t-1\n'), -1, 'the process has exited');
  t.is(pidfdPid('pos:\t0\n'), undefined);
});
