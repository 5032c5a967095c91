/**
 * Hardening of the pipe itself: the DACL, the first-instance rule and the creation flags.
 * Windows only (run under Wine by tools/wine/run-ava.sh). Wine stores DACLs but does not enforce
 * them and ignores FILE_FLAG_FIRST_PIPE_INSTANCE and PIPE_REJECT_REMOTE_CLIENTS, so those tests read
 * the configuration back and say so in their titles; the sole-instance check is enforced by this
 * package itself and is tested by behaviour, across processes.
 */
import { isSecureIpcError } from '@secure-ipc/core';
import anyTest, { type TestFn } from 'ava';
import {
  CLIENT_ACCESS,
  pipeLocalInformation,
  readSecurityDescriptor,
  SERVER_PIPE_MODE,
  serverOpenMode,
} from '../src/hardening.js';
import { currentUserSid, pipeTransport } from '../src/index.js';
import { CLIENT_OPEN_FLAGS } from '../src/pipe-transport.js';
import { isInvalidHandle, Win, win32 } from '../src/win32-ffi.js';
import { startFixture, uniqueName } from './helpers.js';

// Explicit platform gate: these tests need Windows (node.exe under Wine in CI).
const test = (process.platform === 'win32' ? anyTest : anyTest.skip) as TestFn;

/** The DACL part of an SDDL string (owner and group are Wine's or Windows' choice). */
const daclOf = (sddl: string) => sddl.slice(sddl.indexOf('D:'));

test('pipe DACL read back via GetSecurityInfo is owner + SYSTEM only, NETWORK denied, no Everyone/Anonymous (checks the configuration, not the enforcement)', async (t) => {
  const sid = currentUserSid();
  const listener = await pipeTransport().listen(`pipe://${uniqueName('dacl')}`);
  t.teardown(() => listener.close());
  const expected = `D:P(D;;GA;;;NU)(A;;GA;;;${sid})(A;;GA;;;SY)`;
  t.is(listener.sddl, expected);
  // 1) From the server's own instance handle.
  const fromServer = listener.readSecurityDescriptor();
  t.is(daclOf(fromServer), expected);
  // 2) From an independent client handle, the way any other process sees the pipe.
  const w = win32();
  const h = w.CreateFileW(listener.path, CLIENT_ACCESS, 0, null, Win.OPEN_EXISTING, 0, null);
  t.false(isInvalidHandle(w, h), `open failed: ${w.GetLastError()}`);
  try {
    const fromClient = readSecurityDescriptor(w, h);
    t.is(daclOf(fromClient), expected);
    t.notRegex(fromClient, /;(WD|AN)\)/, 'no Everyone or Anonymous ACE');
    t.log('read back:', fromClient);
  } finally {
    w.CloseHandle(h);
  }
});

test('allowedSids / allowAnyUser add client-only ACEs without FILE_CREATE_PIPE_INSTANCE (checks the configuration, not the enforcement)', async (t) => {
  const sid = currentUserSid();
  const other = 'S-1-5-21-1-2-3-1002';
  const transport = pipeTransport();
  const l1 = await transport.listen(`pipe://${uniqueName('dacl2')}`, { allowedSids: [sid, other] });
  t.teardown(() => l1.close());
  const l2 = await transport.listen(`pipe://${uniqueName('dacl3')}`, { allowAnyUser: true });
  t.teardown(() => l2.close());
  const ace = (who: string, sddl: string) => new RegExp(`\\(A;;0x([0-9a-f]+);;;${who}\\)`, 'i').exec(sddl);
  const m1 = ace(other, l1.readSecurityDescriptor());
  const m2 = ace('AU', l2.readSecurityDescriptor());
  t.truthy(m1, l1.readSecurityDescriptor());
  t.truthy(m2, l2.readSecurityDescriptor());
  for (const m of [m1!, m2!]) {
    const mask = Number.parseInt(m[1]!, 16);
    t.is(mask, CLIENT_ACCESS);
    t.is(mask & 0x4, 0, 'FILE_APPEND_DATA = FILE_CREATE_PIPE_INSTANCE is not granted');
  }
  t.notRegex(l2.readSecurityDescriptor(), /;(WD|AN)\)/);
});

test('well-known names and listed SIDs in allowedSids become client-only ACEs, read back via GetSecurityInfo (checks the configuration, not the enforcement)', async (t) => {
  const sid = currentUserSid();
  const other = 'S-1-5-21-1-2-3-1002';
  const allowedSids = [
    'interactive',
    'authenticated-users',
    'administrators',
    'local-service',
    'network-service',
    'system',
    other,
  ];
  const listener = await pipeTransport({ allowedSids }).listen(`pipe://${uniqueName('names')}`);
  t.teardown(() => listener.close());
  const c = '0x12018b';
  // SYSTEM already has full access; Windows (and Wine) print well-known SIDs as SDDL aliases.
  const expected =
    `D:P(D;;GA;;;NU)(A;;GA;;;${sid})(A;;GA;;;SY)` +
    `(A;;${c};;;IU)(A;;${c};;;AU)(A;;${c};;;BA)(A;;${c};;;LS)(A;;${c};;;NS)(A;;${c};;;${other})`;
  t.is(daclOf(listener.readSecurityDescriptor()), expected);
  t.is(
    listener.sddl
      .replaceAll('S-1-5-4', 'IU')
      .replaceAll('S-1-5-11', 'AU')
      .replaceAll('S-1-5-32-544', 'BA')
      .replaceAll('S-1-5-19', 'LS')
      .replaceAll('S-1-5-20', 'NS'),
    expected,
  );
});

test('invalid allowedSids entries are SIPC_ERR_INVALID_ARGUMENT at listen() and connect(), before any pipe exists', async (t) => {
  const address = `pipe://${uniqueName('badsid')}`;
  for (const allowedSids of [['interactive-users'], ['S-1-5-4)(A;;GA;;;WD'], ['']]) {
    const l = await t.throwsAsync(pipeTransport().listen(address, { allowedSids }));
    t.true(isSecureIpcError(l, 'SIPC_ERR_INVALID_ARGUMENT'), String(l));
    const c = await t.throwsAsync(pipeTransport().connect(address, { allowedSids }));
    t.true(isSecureIpcError(c, 'SIPC_ERR_INVALID_ARGUMENT'), String(c));
  }
  // Nothing was created under the name: a connect finds no server.
  const none = await t.throwsAsync(pipeTransport().connect(address));
  t.true(isSecureIpcError(none, 'SIPC_ERR_CONNECT_FAILED'), String(none));
});

test('first instance: a second server on the same name in another Windows process fails with SIPC_ERR_ADDRESS_IN_USE, and the first keeps serving', async (t) => {
  const address = `pipe://${uniqueName('first')}`;
  const server = await startFixture(t, 'pipe-server', [address]);
  const err = await t.throwsAsync(pipeTransport().listen(address));
  t.true(isSecureIpcError(err, 'SIPC_ERR_ADDRESS_IN_USE'), String(err));
  const conn = await pipeTransport().connect(address);
  t.teardown(() => conn.destroy());
  t.is(conn.peer.pid, server.pid);
});

test('a squatter that created the name first (raw CreateNamedPipeW, NULL DACL) makes listen fail with SIPC_ERR_ADDRESS_IN_USE', async (t) => {
  const name = uniqueName('squat');
  await startFixture(t, 'squatter', [name]);
  const err = await t.throwsAsync(pipeTransport().listen(`pipe://${name}`));
  t.true(isSecureIpcError(err, 'SIPC_ERR_ADDRESS_IN_USE'), String(err));
});

test('server instances carry FILE_FLAG_FIRST_PIPE_INSTANCE (first) and PIPE_REJECT_REMOTE_CLIENTS (checks the configuration, not the enforcement: Wine ignores both)', async (t) => {
  t.is(serverOpenMode(true) & Win.FILE_FLAG_FIRST_PIPE_INSTANCE, Win.FILE_FLAG_FIRST_PIPE_INSTANCE);
  t.is(serverOpenMode(false) & Win.FILE_FLAG_FIRST_PIPE_INSTANCE, 0);
  for (const first of [true, false]) {
    t.is(serverOpenMode(first) & Win.FILE_FLAG_OVERLAPPED, Win.FILE_FLAG_OVERLAPPED);
    t.is(serverOpenMode(first) & Win.PIPE_ACCESS_DUPLEX, Win.PIPE_ACCESS_DUPLEX);
  }
  t.is(SERVER_PIPE_MODE & Win.PIPE_REJECT_REMOTE_CLIENTS, Win.PIPE_REJECT_REMOTE_CLIENTS);
  // What the pipe file system reports for a live listener's instance (server end, byte stream).
  const listener = await pipeTransport().listen(`pipe://${uniqueName('flags')}`);
  t.teardown(() => listener.close());
  const w = win32();
  const h = w.CreateFileW(listener.path, CLIENT_ACCESS, 0, null, Win.OPEN_EXISTING, 0, null);
  t.false(isInvalidHandle(w, h));
  const info = pipeLocalInformation(w, h);
  w.CloseHandle(h);
  t.truthy(info);
  t.is(info!.namedPipeEnd, 0, 'client end');
  t.is(info!.namedPipeState, 3, 'connected');
  t.true(info!.currentInstances >= 1);
  t.log('FILE_PIPE_LOCAL_INFORMATION:', info);
});

test('clients open with SECURITY_SQOS_PRESENT | SECURITY_IDENTIFICATION and without FILE_APPEND_DATA (checks the configuration: Wine does not model impersonation levels)', (t) => {
  t.is(CLIENT_OPEN_FLAGS & Win.SECURITY_SQOS_PRESENT, Win.SECURITY_SQOS_PRESENT);
  // SECURITY_IDENTIFICATION is 1 << 16; the impersonation-level bits are 0x30000.
  t.is(CLIENT_OPEN_FLAGS & 0x30000, Win.SECURITY_IDENTIFICATION);
  t.is(CLIENT_OPEN_FLAGS & Win.FILE_FLAG_OVERLAPPED, Win.FILE_FLAG_OVERLAPPED);
  t.is(CLIENT_ACCESS & 0x4, 0);
  t.is(CLIENT_ACCESS & (Win.GENERIC_READ | Win.GENERIC_WRITE), 0, 'specific rights, not generic ones');
});
