/**
 * The Electron wiring, with plain Node standing in for Electron (its binary cannot be downloaded
 * here): electron-main.js, as the app's user, forks electron-utility.js (child_process.fork in place
 * of utilityProcess.fork), which holds the key and the channel to the root daemon.
 */
import { startHelperBridge } from '../src/electron-main.js';
import { APP, asRootOnLinux, ELECTRON_MAIN, NOBODY, runToEnd, startDaemon } from './helpers.js';
import { linuxSetup } from './linux-setup.js';

asRootOnLinux(
  'main ↔ utility process ↔ root daemon: the call is made by the utility, and the policy still applies',
  async (t) => {
    const setup = await linuxSetup(t);
    await startDaemon(t, setup.daemonConfig);
    const run = await runToEnd(
      t,
      ELECTRON_MAIN,
      [setup.appConfig, 'status.get', 'admin.shutdown'],
      NOBODY,
      'main: ',
    );
    const [started, status, admin, exit] = run.lines;
    const utilityPid = started?.utility.pid as number;
    t.true(Number.isSafeInteger(utilityPid));
    t.not(utilityPid, run.pid, 'the utility is a process of its own');
    // The daemon saw the utility process (from the kernel), not the main process.
    t.like(status, {
      method: 'status.get',
      result: { uid: 0, caller: { uid: NOBODY, pid: utilityPid, roles: ['app'] } },
    });
    t.like(admin, { method: 'admin.shutdown', error: 'SIPC_ERR_FORBIDDEN' });
    t.deepEqual(exit, { utilityExit: 0 }, 'the utility closed its channel and exited when asked');
    t.is(run.code, 1, 'one call failed');
    // The command-line app with the same config still works: nothing was held over.
    t.is((await runToEnd(t, APP, [setup.appConfig], NOBODY)).code, 0);
  },
);

asRootOnLinux(
  'with no daemon running, the utility reports a typed error and main exits 1 (no hang)',
  async (t) => {
    const setup = await linuxSetup(t);
    const run = await runToEnd(t, ELECTRON_MAIN, [setup.appConfig], NOBODY, 'main: ');
    t.is(run.code, 1);
    t.is(run.lines.length, 1);
    t.like(run.lines[0], { utility: false, error: 'SIPC_ERR_CONNECT_FAILED' });
  },
);

asRootOnLinux(
  'the daemon killed mid-session: the next call is SIPC_ERR_CONNECTION_CLOSED, and the utility exits',
  async (t) => {
    // The bridge runs in this test process (root), so the app here is uid 0 and the daemon allows uid 0.
    const setup = await linuxSetup(t, { appUid: 0 });
    const daemon = await startDaemon(t, setup.daemonConfig);
    const bridge = await startHelperBridge(setup.appConfig);
    t.teardown(() => bridge.child.kill('SIGKILL'));
    t.like(await bridge.call('status.get'), {
      method: 'status.get',
      result: { caller: { pid: bridge.pid } },
    });
    daemon.child.kill('SIGKILL');
    await daemon.exited;
    // The utility sees its channel close (peer-vanished) and exits; a call made meanwhile gets the
    // typed error from the closed client, or from the bridge once the utility is gone.
    const after = await bridge.call('status.get').catch((err: { code?: string }) => ({ error: err.code }));
    t.like(after, { error: 'SIPC_ERR_CONNECTION_CLOSED' });
    t.is(await bridge.quit(), 1, 'the utility exited with 1 when its channel closed');
  },
);
