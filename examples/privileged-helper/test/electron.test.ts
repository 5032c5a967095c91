/**
 * The Electron wiring, with plain Node standing in for Electron (its binary cannot be downloaded
 * here): electron-main.js, as the app's user, forks electron-utility.js (child_process.fork in place
 * of utilityProcess.fork), which holds the key and the channel to the root daemon.
 */
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
