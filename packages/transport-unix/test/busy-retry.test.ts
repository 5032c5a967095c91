// A connect to a Unix socket whose listen backlog is full (Linux: EAGAIN at once) waits it out
// with retries up to connectBusyTimeoutMs instead of failing. The listening socket is made with
// libc directly (koffi): a Node server always accepts, so its backlog never stays full.
import { mkdtempSync, rmSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSecureIpcError } from '@secure-ipc/core';
import test, { type ExecutionContext } from 'ava';
import { unixTransport } from '../src/index.js';

// Explicit platform gate: EAGAIN on a full backlog is Linux's behaviour (macOS says ECONNREFUSED).
const onLinux = process.platform === 'linux' ? test : test.skip;

type Fn = (...args: unknown[]) => number;

function libc(): { socket: Fn; bind: Fn; listen: Fn; accept: Fn; close: Fn } {
  const koffi = createRequire(import.meta.url)('koffi') as {
    load(path: string): { func(signature: string): Fn };
  };
  const lib = koffi.load('libc.so.6');
  return {
    socket: lib.func('int socket(int, int, int)'),
    bind: lib.func('int bind(int, uint8_t *addr, uint32_t len)'),
    listen: lib.func('int listen(int, int)'),
    accept: lib.func('int accept(int, void *addr, void *len)'),
    close: lib.func('int close(int)'),
  };
}

/**
 * A listening socket with backlog 0 (one connection queued) that accepts only when told. A path
 * in a private temporary directory, not an abstract name: Node 20's libuv names an abstract
 * socket by all 108 bytes of sun_path, NUL-padded, and Node 22's by the name's own length, so an
 * abstract name bound here would not be the one every runtime connects to.
 */
function stalledListener(t: ExecutionContext): { address: string; acceptAll: () => void } {
  const c = libc();
  const dir = mkdtempSync(join(tmpdir(), 'sipc-busy-'));
  const path = join(dir, 's.sock');
  const fd = c.socket(1 /* AF_UNIX */, 1 /* SOCK_STREAM */, 0);
  t.true(fd >= 0, 'socket()');
  const addr = Buffer.alloc(2 + 108);
  addr.writeUInt16LE(1, 0); // sun_family = AF_UNIX
  addr.write(path, 2, 'utf8'); // sun_path, NUL-terminated by the zeroed buffer
  t.is(c.bind(fd, addr, 2 + Buffer.byteLength(path) + 1), 0, 'bind()');
  t.is(c.listen(fd, 0), 0, 'listen()');
  const accepted: number[] = [];
  t.teardown(() => {
    for (const a of accepted) c.close(a);
    c.close(fd);
    rmSync(dir, { recursive: true, force: true });
  });
  return {
    address: `unix://${path}`,
    // Blocking accept() of what is queued (called only when something is).
    acceptAll: () => {
      accepted.push(c.accept(fd, null, null));
    },
  };
}

onLinux(
  'a full listen backlog fails after connectBusyTimeoutMs, not at once, with EAGAIN as cause',
  async (t) => {
    const { address } = stalledListener(t);
    const transport = unixTransport();
    const first = await transport.connect(address); // fills the backlog of 0 (one queued)
    t.teardown(() => void first.destroy());
    const started = Date.now();
    const err = await t.throwsAsync(transport.connect(address, { connectBusyTimeoutMs: 300 }));
    const elapsed = Date.now() - started;
    t.true(isSecureIpcError(err, 'SIPC_ERR_CONNECT_FAILED'), String(err));
    t.is((err!.cause as NodeJS.ErrnoException).code, 'EAGAIN');
    t.regex(err!.message, /listen backlog stayed full for 300 ms/);
    t.true(elapsed >= 280, `${elapsed} ms`);
    // 0 turns the wait off: the old behaviour, at once.
    const quick = Date.now();
    const now = await t.throwsAsync(transport.connect(address, { connectBusyTimeoutMs: 0 }));
    t.is((now!.cause as NodeJS.ErrnoException).code, 'EAGAIN');
    t.true(Date.now() - quick < 250);
  },
);

onLinux('a connect waiting on a full backlog gets in once the server accepts', async (t) => {
  const { address, acceptAll } = stalledListener(t);
  const transport = unixTransport();
  const first = await transport.connect(address);
  t.teardown(() => void first.destroy());
  const waiting = transport.connect(address);
  await new Promise((r) => setTimeout(r, 200));
  acceptAll(); // frees the queued slot
  const conn = await waiting;
  t.teardown(() => void conn.destroy());
  t.is(conn.peer.uid, process.geteuid!());
});

test('connectBusyTimeoutMs is validated', (t) => {
  for (const bad of [-1, 1.5, '5'])
    t.true(
      isSecureIpcError(
        t.throws(() => unixTransport({ connectBusyTimeoutMs: bad as never })),
        'SIPC_ERR_INVALID_ARGUMENT',
      ),
    );
});
