/**
 * The same daemon and app over a Windows named pipe (`pipe://`), run by the Windows build of Node
 * under Wine (`npm test` runs this file through tools/wine/run-ava.sh).
 *
 * What Wine can show: the allowed method works, the admin method is SIPC_ERR_FORBIDDEN, and a
 * client whose user SID is not in the daemon's `allowedSids` is refused at accept (the daemon is
 * told to allow only S-1-5-18, SYSTEM, so the test's own user is "another user"). What it cannot:
 * every Wine process runs as one user (S-1-5-21-0-0-0-1000) and Wine does not enforce pipe DACLs,
 * so a real second account is only exercised on Linux (unix.test.ts).
 */
import { join } from 'node:path';
import { currentUserSid } from '@secure-ipc/transport-win';
import test, { type ExecutionContext } from 'ava';
import type { AppConfig, DaemonConfig } from '../src/config.js';
import { APP, ELECTRON_MAIN, keyFiles, runToEnd, scratch, startDaemon, writeJson } from './helpers.js';

function onWindows(title: string, fn: (t: ExecutionContext) => Promise<void>): void {
  if (process.platform === 'win32') test(title, fn);
  else test.skip(`${title} (skipped: named pipes need Windows; npm test runs this file under Wine)`, fn);
}

let nextPipe = 0;

/** Keys and configs for a daemon on a fresh pipe (or `address`) and its app; `daemon` overrides daemon settings. */
async function pipeSetup(
  t: ExecutionContext,
  daemon: (appKey: string) => Partial<DaemonConfig> = () => ({}),
  address = `pipe://sipc-example-${process.pid}-${nextPipe++}`,
) {
  const dir = scratch(t);
  const daemonKey = await keyFiles([join(dir, 'daemon.key')]);
  const appKey = await keyFiles([join(dir, 'app.key')]);
  const daemonConfig = writeJson(join(dir, 'daemon.json'), {
    address,
    keyFile: join(dir, 'daemon.key'),
    appKeys: [appKey],
    adminKeys: [],
    ...daemon(appKey),
  } satisfies DaemonConfig);
  const app = { address, keyFile: join(dir, 'app.key'), daemonKey };
  /** An app.json with `extra` settings, named `name`. */
  const appConfigWith = (name: string, extra: Partial<AppConfig>) =>
    writeJson(join(dir, name), { ...app, ...extra });
  return { daemonConfig, appConfig: appConfigWith('app.json', {}), appConfigWith };
}

const SID = /^S-1-5-21(?:-\d+)+$/;

onWindows('over pipe://: status.get works, admin.shutdown is SIPC_ERR_FORBIDDEN', async (t) => {
  const setup = await pipeSetup(t);
  const daemon = await startDaemon(t, setup.daemonConfig);
  const { code, lines } = await runToEnd(t, APP, [setup.appConfig, 'status.get', 'admin.shutdown']);
  t.like(lines[0], {
    method: 'status.get',
    result: { uid: null, pid: daemon.child.pid, caller: { uid: null, roles: ['app'] } },
  });
  t.regex(lines[0]?.result.caller.sid, SID, 'the daemon read the caller’s SID from its process token');
  t.like(lines[1], { method: 'admin.shutdown', error: 'SIPC_ERR_FORBIDDEN' });
  t.is(code, 1);
  await daemon.waitFor('stderr', (l) => l.startsWith('daemon: denied: call admin.shutdown'));
});

onWindows(
  'a client whose SID is not in allowedSids is refused at accept, and the daemon logs it',
  async (t) => {
    const setup = await pipeSetup(t, () => ({ allowedSids: ['S-1-5-18'] }));
    const daemon = await startDaemon(t, setup.daemonConfig);
    const { code, lines } = await runToEnd(t, APP, [setup.appConfig]);
    t.is(code, 1);
    t.is(lines.length, 1);
    t.like(lines[0], { connect: false });
    // The daemon disconnects the pipe at once; the client sees that either while handing the pipe to
    // Node (connect: SIPC_ERR_CONNECTION_CLOSED) or in the handshake (SIPC_ERR_HANDSHAKE_FAILED):
    // a race both runs have shown, and either way a typed error and no channel.
    t.true(
      ['SIPC_ERR_CONNECTION_CLOSED', 'SIPC_ERR_HANDSHAKE_FAILED'].includes(lines[0]?.error),
      lines[0]?.error,
    );
    const refused = await daemon.waitFor('stderr', (l) => l.startsWith('daemon: refused at accept:'));
    t.regex(
      refused,
      /^daemon: refused at accept: sid S-1-5-21(?:-\d+)+ pid \d+ \(SIPC_ERR_PEER_CREDENTIALS\)$/,
    );
    t.false(
      daemon.stderr.some((l) => l.startsWith('daemon: connected:')),
      'no channel was opened',
    );
  },
);

onWindows('the Electron wiring over pipe://: main ↔ utility process ↔ daemon', async (t) => {
  const setup = await pipeSetup(t);
  await startDaemon(t, setup.daemonConfig);
  const run = await runToEnd(t, ELECTRON_MAIN, [setup.appConfig, 'status.get'], undefined, 'main: ');
  const [started, status, exit] = run.lines;
  t.like(status, { method: 'status.get', result: { caller: { pid: started?.utility.pid, roles: ['app'] } } });
  t.not(started?.utility.pid, run.pid);
  t.deepEqual(exit, { utilityExit: 0 });
  t.is(run.code, 0);
});

onWindows('an admin key stops the daemon with admin.shutdown (exit code 0)', async (t) => {
  const setup = await pipeSetup(t, (appKey) => ({ appKeys: [], adminKeys: [appKey] }));
  const daemon = await startDaemon(t, setup.daemonConfig);
  const { code, lines } = await runToEnd(t, APP, [setup.appConfig, 'admin.shutdown']);
  t.is(code, 0);
  t.like(lines[0], { method: 'admin.shutdown', result: { stopping: true } });
  t.is(await daemon.exited, 0);
});

onWindows(
  'local://system/ as a Windows service would serve it: the daemon admits "interactive"; the app accepts only a SYSTEM server unless told',
  async (t) => {
    const setup = await pipeSetup(
      t,
      () => ({ allowedSids: ['interactive'] }),
      `local://system/privileged-helper-${process.pid}-${nextPipe++}`,
    );
    const daemon = await startDaemon(t, setup.daemonConfig);
    // By default the app refuses the daemon: under Wine it runs as the Wine user, not SYSTEM.
    const refused = await runToEnd(t, APP, [setup.appConfig]);
    t.is(refused.code, 1);
    t.like(refused.lines[0], { connect: false, error: 'SIPC_ERR_PIPE_SECURITY' });
    // Told the daemon's account, it connects; the daemon admitted it through the "interactive" group.
    const told = setup.appConfigWith('app-told.json', { serverSids: [currentUserSid()] });
    const ok = await runToEnd(t, APP, [told]);
    t.is(ok.code, 0);
    t.like(ok.lines[0], {
      method: 'status.get',
      result: { caller: { sid: currentUserSid(), roles: ['app'] } },
    });
    await daemon.waitFor('stderr', (l) => l.startsWith('daemon: connected: sid '));
  },
);
