/**
 * Group entries in allowedSids (interactive, authenticated-users, administrators, any group SID):
 * the token of the peer, read by impersonating the pipe client (server side) or from the peer
 * process (both sides), and CheckTokenMembership on it. Windows only (Wine in CI).
 *
 * What Wine can show: its one user (S-1-5-21-0-0-0-1000) has a real token whose enabled groups
 * include Everyone, INTERACTIVE, Authenticated Users and Administrators, and not Guests or SYSTEM;
 * ImpersonateNamedPipeClient, OpenThreadToken, DuplicateToken and CheckTokenMembership are
 * implemented. So a policy that names only a group admits this user through the membership code,
 * and one naming a group it is not in refuses it, across processes. What Wine cannot show: a
 * second account, identification-level impersonation (Wine hands out impersonation level 2
 * whatever the client's SQOS), and whether a service account may open another user's process.
 */
import { isSecureIpcError } from '@secure-ipc/core';
import anyTest, { type TestFn } from 'ava';
import { CLIENT_ACCESS } from '../src/hardening.js';
import { currentUserSid, pipeTransport } from '../src/index.js';
import { impersonationToken, processIdentityToken, tokenMemberships } from '../src/peer-token.js';
import { CLIENT_OPEN_FLAGS } from '../src/pipe-transport.js';
import { type Handle, isInvalidHandle, tokenUserSid, Win, WinError, win32 } from '../src/win32-ffi.js';
import { assertRefusedAtAccept, events, startFixture, uniqueName } from './helpers.js';

// Explicit platform gate: these tests need Windows (node.exe under Wine in CI).
const test = (process.platform === 'win32' ? anyTest : anyTest.skip) as TestFn;

const GUESTS = 'S-1-5-32-546';
const OTHER_USER = 'S-1-5-21-1-2-3-1002';

/** Connect and wait until the connection closes or the server's first line arrives. */
async function tryConnect(address: string): Promise<{ line?: string; error?: unknown }> {
  try {
    const conn = await pipeTransport().connect(address);
    let text = '';
    return await new Promise((resolve) => {
      conn.on('data', (d: Buffer) => {
        text += String(d);
        if (text.includes('\n')) {
          conn.destroy();
          resolve({ line: text.slice(0, text.indexOf('\n')) });
        }
      });
      conn.once('close', () => resolve({}));
    });
  } catch (error) {
    return { error };
  }
}

test('a server whose policy names only a group (interactive) accepts a client of that group, in another process', async (t) => {
  const address = `pipe://${uniqueName('grp-ok')}`;
  const server = await startFixture(t, 'pipe-server', [
    address,
    JSON.stringify({ allowedSids: ['interactive'] }),
  ]);
  const result = await tryConnect(address);
  t.truthy(result.line, `not served: ${String(result.error)}`);
  const seen = JSON.parse(result.line!) as { peer: { pid: number; sid: string } };
  // The user SID is not S-1-5-4: only the membership check can have admitted it.
  t.is(seen.peer.sid, currentUserSid());
  t.not(seen.peer.sid, 'S-1-5-4');
  t.is(seen.peer.pid, process.pid);
  t.false(events(server).some((e) => e.event === 'reject'));
});

for (const [what, allowed] of [
  ['a group the client is not in (Guests)', [GUESTS]],
  ['another user SID', [OTHER_USER]],
  ['SYSTEM and LocalService by name', ['system', 'local-service']],
] as const) {
  test(`a server whose policy names ${what} refuses the client at accept with SIPC_ERR_PEER_CREDENTIALS, in another process`, async (t) => {
    const address = `pipe://${uniqueName('grp-no')}`;
    const server = await startFixture(t, 'pipe-server', [address, JSON.stringify({ allowedSids: allowed })]);
    const result = await tryConnect(address);
    t.is(result.line, undefined, 'the refused client got nothing from the server');
    if (result.error !== undefined)
      t.true(isSecureIpcError(result.error, 'SIPC_ERR_CONNECTION_CLOSED'), String(result.error));
    await assertRefusedAtAccept(t, server);
  });
}

test('a client accepts a server through a group of the server process (administrators) and refuses it for a group it lacks', async (t) => {
  const address = `pipe://${uniqueName('grp-srv')}`;
  const server = await startFixture(t, 'pipe-server', [address]);
  const ok = await pipeTransport({ allowedSids: ['administrators'] }).connect(address);
  t.teardown(() => ok.destroy());
  t.is(ok.peer.pid, server.pid);
  const err = await t.throwsAsync(pipeTransport().connect(address, { allowedSids: [GUESTS] }));
  t.true(isSecureIpcError(err, 'SIPC_ERR_PIPE_SECURITY'), String(err));
  t.deepEqual((err as { details?: { allowed?: unknown } }).details?.allowed, [GUESTS]);
});

/** A raw server instance and a client of it in this process (the client opened with our SQOS flags). */
function rawPair(t: { teardown: (fn: () => void) => void }): { server: Handle; client: Handle } {
  const w = win32();
  const name = `\\\\.\\pipe\\${uniqueName('tok')}`;
  const server = w.CreateNamedPipeW(name, Win.PIPE_ACCESS_DUPLEX, 0, 1, 4096, 4096, 0, null);
  if (isInvalidHandle(w, server)) throw new Error(`CreateNamedPipeW: ${w.GetLastError()}`);
  t.teardown(() => w.CloseHandle(server));
  const flags = CLIENT_OPEN_FLAGS & ~Win.FILE_FLAG_OVERLAPPED;
  const client = w.CreateFileW(name, CLIENT_ACCESS, 0, null, Win.OPEN_EXISTING, flags, null);
  if (isInvalidHandle(w, client)) throw new Error(`CreateFileW: ${w.GetLastError()}`);
  t.teardown(() => w.CloseHandle(client));
  return { server, client };
}

test('impersonationToken reads the pipe client token and reverts: afterwards this thread has no token', (t) => {
  const w = win32();
  const { server } = rawPair(t);
  const result = impersonationToken(w, server);
  if (!('token' in result)) return t.fail(String(result.failure));
  try {
    t.is(tokenUserSid(w, result.token), currentUserSid());
    const m = tokenMemberships(w, result.token, ['S-1-5-4', 'S-1-5-11', 'S-1-5-32-544', GUESTS, 'S-1-5-18']);
    t.deepEqual(m, { memberOf: ['S-1-5-4', 'S-1-5-11', 'S-1-5-32-544'] });
  } finally {
    w.CloseHandle(result.token);
  }
  // RevertToSelf ran: the thread is back to the process token.
  const tok: Handle[] = [null];
  t.false(w.OpenThreadToken(w.GetCurrentThread(), Win.TOKEN_QUERY, true, tok));
  t.is(w.GetLastError(), WinError.NO_TOKEN);
});

test('impersonationToken on a handle that is not a pipe server fails (no impersonation happened)', (t) => {
  const w = win32();
  const { client } = rawPair(t);
  const result = impersonationToken(w, client);
  t.true('failure' in result);
  const tok: Handle[] = [null];
  t.false(w.OpenThreadToken(w.GetCurrentThread(), Win.TOKEN_QUERY, true, tok));
});

test('processIdentityToken (the fallback) reads another process token: user and memberships', async (t) => {
  const w = win32();
  const other = await startFixture(t, 'pipe-server', [`pipe://${uniqueName('proc')}`]);
  const result = processIdentityToken(w, other.pid);
  if (!('token' in result)) return t.fail(String(result.failure));
  try {
    t.is(tokenUserSid(w, result.token), currentUserSid());
    t.deepEqual(tokenMemberships(w, result.token, [GUESTS, 'S-1-5-4', OTHER_USER]), {
      memberOf: ['S-1-5-4'],
    });
  } finally {
    w.CloseHandle(result.token);
  }
  // A process that does not exist: a failure, never a token.
  t.true('failure' in processIdentityToken(w, 0x7ffffff0));
});
