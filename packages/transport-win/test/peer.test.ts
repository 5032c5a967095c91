/**
 * Peer identity across two Windows processes: pid and user SID on both sides, the client's
 * server-owner check, and the server's same-user default. Windows only (Wine in CI). Under Wine
 * every process runs as the same user, so a "foreign" user is simulated by a policy that allows
 * only another SID; the refusal paths are the real ones.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { isSecureIpcError } from '@secure-ipc/core';
import anyTest, { type TestFn } from 'ava';
import { currentUserSid, pipeTransport } from '../src/index.js';
import { assertRefusedAtAccept, startFixture, uniqueName } from './helpers.js';

// Explicit platform gate: these tests need Windows (node.exe under Wine in CI).
const test = (process.platform === 'win32' ? anyTest : anyTest.skip) as TestFn;

/** Read the first line the server sends: its view of the peer. */
async function firstLine(conn: NodeJS.ReadableStream): Promise<string> {
  let text = '';
  for await (const chunk of conn) {
    text += String(chunk);
    const i = text.indexOf('\n');
    if (i >= 0) return text.slice(0, i);
  }
  return text;
}

test('peer pid and SID are reported on both sides across two Windows processes', async (t) => {
  const address = `local://${uniqueName('peer')}`;
  const server = await startFixture(t, 'pipe-server', [address]);
  const conn = await pipeTransport().connect(address);
  t.teardown(() => conn.destroy());
  // Client side: GetNamedPipeServerProcessId + the server process's token user.
  t.is(conn.peer.transport, 'pipe');
  t.is(conn.peer.pid, server.pid);
  t.not(server.pid, process.pid);
  t.is(conn.peer.sid, currentUserSid());
  t.regex(conn.peer.sid!, /^S-1-5-/);
  // Server side: GetNamedPipeClientProcessId + our token user, as the server saw it.
  const seen = JSON.parse(await firstLine(conn)) as { peer: { transport: string; pid: number; sid: string } };
  t.deepEqual(seen.peer, {
    transport: 'pipe',
    pid: process.pid,
    sid: currentUserSid(),
    osIdentity: `sid:${currentUserSid()}`,
  });
});

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

test('the peer’s executable (QueryFullProcessImageNameW + SHA-256 of the file) on both sides across two Windows processes', async (t) => {
  const address = `local://${uniqueName('exe')}`;
  const server = await startFixture(t, 'pipe-server', [address]);
  const conn = await pipeTransport().connect(address);
  t.teardown(() => conn.destroy());
  const expected = { path: process.execPath, sha256: await sha256Of(process.execPath) };
  // Client side: the server process (the same node.exe) through the handle's server pid.
  const exe = await conn.peer.executable!();
  t.deepEqual(exe, expected);
  t.is(await conn.peer.executable!(), exe, 'read once per connection');
  // Server side: this process, as the fixture read it.
  const line = await server.waitFor((l) => l.includes('"executable"'));
  t.deepEqual((JSON.parse(line) as { exe: unknown }).exe, expected);
});

test('the peer process has exited: no executable (fail closed)', async (t) => {
  const address = `local://${uniqueName('exe-gone')}`;
  const server = await startFixture(t, 'pipe-server', [address]);
  const conn = await pipeTransport().connect(address);
  t.teardown(() => conn.destroy());
  server.child.kill();
  await new Promise((resolve) => server.child.once('exit', resolve));
  t.is(await conn.peer.executable!(), undefined);
});

test('the client refuses a server whose process owner is not the expected SID, before sending anything', async (t) => {
  const address = `pipe://${uniqueName('owner')}`;
  const server = await startFixture(t, 'pipe-server', [address]);
  const err = await t.throwsAsync(
    pipeTransport().connect(address, { allowedSids: ['S-1-5-18'] }), // expect LocalSystem
  );
  t.true(isSecureIpcError(err, 'SIPC_ERR_PIPE_SECURITY'), String(err));
  const details = (err as { details?: { sid?: string; pid?: number } }).details;
  t.is(details?.sid, currentUserSid());
  t.is(details?.pid, server.pid);
  // The server saw the pipe open and close again with zero bytes received.
  const closed = JSON.parse(await server.waitFor((l) => l.includes('"closed"'))) as { bytes: number };
  t.is(closed.bytes, 0);
  // The same server passes the default check (same user).
  const ok = await pipeTransport().connect(address);
  t.teardown(() => ok.destroy());
  t.is(ok.peer.pid, server.pid);
});

test('the server accepts only its own user by default: a client of a SID outside the policy is refused with SIPC_ERR_PEER_CREDENTIALS', async (t) => {
  const address = `pipe://${uniqueName('refuse')}`;
  const server = await startFixture(t, 'pipe-server', [
    address,
    JSON.stringify({ allowedSids: ['S-1-5-18'] }),
  ]);
  // The server hangs up as soon as it has read the client's SID. Depending on who is faster, the
  // client's connect already sees the broken pipe (SIPC_ERR_CONNECTION_CLOSED) or it resolves and
  // the connection closes at once; either way not one byte arrives.
  let received = '';
  try {
    const conn = await pipeTransport().connect(address);
    conn.on('data', (d: Buffer) => {
      received += String(d);
    });
    await new Promise<void>((resolve) => conn.once('close', () => resolve()));
  } catch (err) {
    t.true(isSecureIpcError(err, 'SIPC_ERR_CONNECTION_CLOSED'), String(err));
  }
  t.is(received, '', 'the refused client got nothing from the server');
  await assertRefusedAtAccept(t, server);
});
