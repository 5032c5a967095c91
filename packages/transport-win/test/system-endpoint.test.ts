/**
 * `local://system/APP`: one well-known pipe for every user, served by a service. The client
 * accepts only a server process owned by SYSTEM unless told otherwise. Windows only (Wine in CI).
 * Under Wine every process runs as the one Wine user, never as SYSTEM, so the default refusal is a
 * real run of the owner check against a real server in another process, and telling the client the
 * Wine user's SID is what lets it through.
 */
import { isSecureIpcError } from '@secure-ipc/core';
import anyTest, { type TestFn } from 'ava';
import { currentUserSid, pipeTransport, resolvePipePath } from '../src/index.js';
import { startFixture, uniqueName } from './helpers.js';

// Explicit platform gate: these tests need Windows (node.exe under Wine in CI).
const test = (process.platform === 'win32' ? anyTest : anyTest.skip) as TestFn;

test('local://system/APP listens on \\\\.\\pipe\\secure-ipc-system-APP with the DACL its policy names', async (t) => {
  const app = uniqueName('sys');
  const listener = await pipeTransport({ allowedSids: ['interactive'] }).listen(`local://system/${app}`);
  t.teardown(() => listener.close());
  t.is(listener.path, `\\\\.\\pipe\\secure-ipc-system-${app}`);
  t.is(resolvePipePath(`local://system/${app}`), listener.path);
  const dacl = listener.readSecurityDescriptor();
  t.is(
    dacl.slice(dacl.indexOf('D:')),
    `D:P(D;;GA;;;NU)(A;;GA;;;${currentUserSid()})(A;;GA;;;SY)(A;;0x12018b;;;IU)`,
  );
});

test('a client of local://system/APP refuses a server not owned by SYSTEM (SIPC_ERR_PIPE_SECURITY), before sending anything', async (t) => {
  const address = `local://system/${uniqueName('sys-own')}`;
  const server = await startFixture(t, 'pipe-server', [address]);
  const err = await t.throwsAsync(pipeTransport().connect(address));
  t.true(isSecureIpcError(err, 'SIPC_ERR_PIPE_SECURITY'), String(err));
  const details = (err as { details?: { sid?: string; pid?: number; allowed?: string[] } }).details;
  t.deepEqual(details, { sid: currentUserSid(), pid: server.pid, allowed: ['S-1-5-18'] });
  const closed = JSON.parse(await server.waitFor((l) => l.includes('"closed"'))) as { bytes: number };
  t.is(closed.bytes, 0);
});

test('a client of local://system/APP told the service account (allowedSids) accepts that owner and no other', async (t) => {
  const address = `local://system/${uniqueName('sys-acct')}`;
  const server = await startFixture(t, 'pipe-server', [address]);
  // As a service running as LocalService would be named; the Wine server is not LocalService.
  const err = await t.throwsAsync(pipeTransport({ allowedSids: ['local-service'] }).connect(address));
  t.true(isSecureIpcError(err, 'SIPC_ERR_PIPE_SECURITY'), String(err));
  t.deepEqual((err as { details?: { allowed?: string[] } }).details?.allowed, ['S-1-5-19']);
  // The account the server really runs as (here the Wine user): accepted.
  const conn = await pipeTransport().connect(address, { allowedSids: [currentUserSid()] });
  t.teardown(() => conn.destroy());
  t.is(conn.peer.pid, server.pid);
  t.is(conn.peer.sid, currentUserSid());
});

test('a per-user local:// client still expects its own user, not SYSTEM', async (t) => {
  const address = `local://${uniqueName('per-user')}`;
  const server = await startFixture(t, 'pipe-server', [address]);
  const conn = await pipeTransport().connect(address);
  t.teardown(() => conn.destroy());
  t.is(conn.peer.pid, server.pid);
});
