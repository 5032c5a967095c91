import { spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  chownSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  symlinkSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import net from 'node:net';
import { join } from 'node:path';
import { isSecureIpcError } from '@secure-ipc/core';
import test from 'ava';
import { unixTransport } from '../src/index.js';
import { tempDir } from './helpers.js';

const transport = unixTransport();
// Only root can chown a directory to another user; CI runs as root, elsewhere the case is skipped.
const asRoot = process.geteuid?.() === 0 ? test : test.skip;

test('a missing socket directory is created 0700 and the socket is born 0600', async (t) => {
  const dir = join(tempDir(t), 'sockets');
  const listener = await transport.listen(`unix://${dir}/s.sock`);
  t.teardown(() => listener.close());
  t.is(lstatSync(dir).mode & 0o777, 0o700);
  t.true(lstatSync(`${dir}/s.sock`).isSocket());
  t.is(lstatSync(`${dir}/s.sock`).mode & 0o777, 0o600);
});

test('the socket is 0600 even when the directory is 0755 and the umask is 0 (no window)', async (t) => {
  const dir = tempDir(t);
  chmodSync(dir, 0o755);
  const old = process.umask(0);
  t.teardown(() => void process.umask(old));
  const listener = await transport.listen(`unix://${dir}/s.sock`);
  t.teardown(() => listener.close());
  t.is(lstatSync(`${dir}/s.sock`).mode & 0o777, 0o600);
  t.is(process.umask(), 0, 'the process umask is restored');
});

for (const mode of [0o775, 0o757, 0o777]) {
  test(`a socket directory writable by group or others (mode 0${mode.toString(8)}) is refused, naming the problem`, async (t) => {
    const dir = tempDir(t);
    chmodSync(dir, mode);
    const err = await t.throwsAsync(transport.listen(`unix://${dir}/s.sock`));
    t.true(isSecureIpcError(err, 'SIPC_ERR_INSECURE_DIRECTORY'), String(err));
    t.regex(err!.message, new RegExp(`writable by group or others \\(mode 0${mode.toString(8)}\\)`));
  });
}

test('a symlinked socket directory is refused even if its target is safe', async (t) => {
  const base = tempDir(t);
  mkdirSync(join(base, 'real'), { mode: 0o700 });
  symlinkSync(join(base, 'real'), join(base, 'link'));
  const err = await t.throwsAsync(transport.listen(`unix://${base}/link/s.sock`));
  t.true(isSecureIpcError(err, 'SIPC_ERR_INSECURE_DIRECTORY'), String(err));
  t.regex(err!.message, /symbolic link/);
});

test('a regular file where the socket directory should be is refused', async (t) => {
  const base = tempDir(t);
  writeFileSync(join(base, 'file'), 'x');
  const err = await t.throwsAsync(transport.listen(`unix://${base}/file/s.sock`));
  t.true(isSecureIpcError(err, 'SIPC_ERR_INSECURE_DIRECTORY'), String(err));
  t.regex(err!.message, /not a directory/);
});

asRoot('a socket directory owned by another user is refused (run as root to chown it)', async (t) => {
  const dir = tempDir(t);
  chownSync(dir, 65534, 65534);
  const err = await t.throwsAsync(transport.listen(`unix://${dir}/s.sock`));
  t.true(isSecureIpcError(err, 'SIPC_ERR_INSECURE_DIRECTORY'), String(err));
  t.regex(err!.message, /owned by uid 65534, not by the current user \(uid 0\)/);
});

test('a stale socket (its server was SIGKILLed, nobody answers) is removed and replaced', async (t) => {
  const dir = tempDir(t);
  const path = `${dir}/s.sock`;
  // The path is in the code, not in argv: Deno's `-e` puts its own name at process.argv[1].
  const crashed = spawn(process.execPath, [
    '-e',
    `require('net').createServer().listen(${JSON.stringify(path)}, () => console.log('up'))`,
  ]);
  await once(crashed.stdout, 'data');
  crashed.kill('SIGKILL');
  await once(crashed, 'exit');
  t.true(lstatSync(path).isSocket(), 'the dead server left its socket file behind');
  const refused = await t.throwsAsync(transport.connect(`unix://${path}`));
  t.is((refused?.cause as NodeJS.ErrnoException | undefined)?.code, 'ECONNREFUSED');
  const listener = await transport.listen(`unix://${path}`);
  t.teardown(() => listener.close());
  // (Not compared by inode: the kernel may hand the freed inode number straight to the new socket.)
  listener.on('connection', (c) => c.end('ok'));
  const conn = await transport.connect(`unix://${path}`);
  t.is(String((await conn.toArray())[0]), 'ok');
});

test('a live server at the path gives SIPC_ERR_ADDRESS_IN_USE and keeps its socket', async (t) => {
  const dir = tempDir(t);
  const path = `${dir}/s.sock`;
  // The probe connects and hangs up at once; ignore that reset on the raw server's side.
  const live = net.createServer((c) => c.on('error', () => {}).end('live')).listen(path);
  await once(live, 'listening');
  t.teardown(() => new Promise<void>((resolve) => live.close(() => resolve())));
  const { ino } = lstatSync(path);
  const err = await t.throwsAsync(transport.listen(`unix://${path}`));
  t.true(isSecureIpcError(err, 'SIPC_ERR_ADDRESS_IN_USE'), String(err));
  t.is(lstatSync(path).ino, ino);
});

test('a file that is not a socket at the path gives SIPC_ERR_NOT_A_SOCKET and is never touched', async (t) => {
  const dir = tempDir(t);
  const path = `${dir}/s.sock`;
  writeFileSync(path, 'precious', { mode: 0o600 });
  const err = await t.throwsAsync(transport.listen(`unix://${path}`));
  t.true(isSecureIpcError(err, 'SIPC_ERR_NOT_A_SOCKET'), String(err));
  t.is(readFileSync(path, 'utf8'), 'precious');
});

test('the socket file is removed on close', async (t) => {
  const dir = tempDir(t);
  const listener = await transport.listen(`unix://${dir}/s.sock`);
  await listener.close();
  t.throws(() => lstatSync(`${dir}/s.sock`), { code: 'ENOENT' });
});

test('close leaves alone a socket that replaced ours at the path (only our inode is removed)', async (t) => {
  const dir = tempDir(t);
  const path = `${dir}/s.sock`;
  const listener = await transport.listen(`unix://${path}`);
  unlinkSync(path);
  const other = await transport.listen(`unix://${path}`);
  t.teardown(() => other.close());
  const { ino } = lstatSync(path);
  await listener.close();
  t.is(lstatSync(path).ino, ino, "the other server's socket is still there");
  other.on('connection', (c) => c.end('other'));
  const conn = await transport.connect(`unix://${path}`);
  t.is(String((await conn.toArray())[0]), 'other');
});

test('no temporary socket names are left in the directory', async (t) => {
  const dir = tempDir(t);
  const listener = await transport.listen(`unix://${dir}/s.sock`);
  t.deepEqual(readdirSync(dir), ['s.sock']);
  await listener.close();
  t.deepEqual(readdirSync(dir), []);
});

test('an abort while listen is in progress rejects with SIPC_ERR_ABORTED and leaves no socket file behind', async (t) => {
  const dir = tempDir(t);
  const controller = new AbortController();
  const listening = transport.listen(`unix://${dir}/s.sock`, { signal: controller.signal });
  controller.abort();
  const err = await t.throwsAsync(listening);
  t.true(isSecureIpcError(err, 'SIPC_ERR_ABORTED'), String(err));
  t.deepEqual(readdirSync(dir), []);
});
