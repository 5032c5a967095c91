/**
 * The example on Linux, as deployed: the daemon as root on `local://system/`, the app as uid 65534,
 * each its own process with its own key file; a second unprivileged user (uid 65533) that the
 * daemon does not allow.
 */
import { chownSync, copyFileSync, existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { APP, asRootOnLinux, NOBODY, OTHER, privateDir, runToEnd, startDaemon } from './helpers.js';
import { linuxSetup } from './linux-setup.js';

asRootOnLinux(
  'a root daemon serves uid 65534 over local://system/: status.get works, admin.shutdown is SIPC_ERR_FORBIDDEN',
  async (t) => {
    const setup = await linuxSetup(t);
    const daemon = await startDaemon(t, setup.daemonConfig);
    const { code, lines } = await runToEnd(t, APP, [setup.appConfig, 'status.get', 'admin.shutdown'], NOBODY);
    const [status, admin] = lines;
    t.like(status, {
      method: 'status.get',
      result: {
        service: 'privileged-helper',
        uid: 0,
        pid: daemon.child.pid,
        caller: { uid: NOBODY, roles: ['app'] },
      },
    });
    t.like(admin, { method: 'admin.shutdown', error: 'SIPC_ERR_FORBIDDEN' });
    t.is(code, 1, 'the app exits 1: one call failed');
    // The daemon's log: who connected (from the kernel) and the denied call, by key fingerprint.
    await daemon.waitFor('stderr', (l) => l.startsWith(`daemon: connected: uid ${NOBODY} pid `));
    const denied = await daemon.waitFor('stderr', (l) => l.startsWith('daemon: denied: call admin.shutdown'));
    t.true(denied.includes(`for key ${status?.result.caller.peerId}`), denied);
    t.is(daemon.child.exitCode, null, 'the daemon still runs');
  },
);

asRootOnLinux(
  'uid 65533 is refused at accept, even with the trusted app key: the daemon logs it, the app gets a typed error',
  async (t) => {
    const setup = await linuxSetup(t);
    // The other user holds a copy of the app's secret key: only the OS user differs.
    const otherDir = privateDir(setup.base, 'other', OTHER);
    const otherKey = join(otherDir, 'app.key');
    copyFileSync(join(setup.appDir, 'app.key'), otherKey);
    chownSync(otherKey, OTHER, OTHER);
    const daemon = await startDaemon(t, setup.daemonConfig);
    const { code, lines } = await runToEnd(t, APP, [setup.appConfigFor(otherDir, OTHER)], OTHER);
    t.is(code, 1);
    t.is(lines.length, 1);
    t.like(lines[0], { connect: false });
    // The transport's accept closed the connection at once: to the client, a failed handshake.
    t.is(lines[0]!.error, 'SIPC_ERR_HANDSHAKE_FAILED');
    const refused = await daemon.waitFor('stderr', (l) => l.startsWith('daemon: refused at accept:'));
    t.regex(
      refused,
      new RegExp(`^daemon: refused at accept: uid ${OTHER} pid \\d+ \\(SIPC_ERR_PEER_CREDENTIALS\\)$`),
    );
    t.false(
      daemon.stderr.some((l) => l.startsWith('daemon: connected:')),
      'no channel was opened',
    );
    // The allowed user still gets in, with the same key.
    const ok = await runToEnd(t, APP, [setup.appConfig], NOBODY);
    t.is(ok.code, 0);
    t.like(ok.lines[0], { method: 'status.get', result: { caller: { uid: NOBODY } } });
  },
);

asRootOnLinux('SIGTERM stops the daemon cleanly: exit code 0, its socket file removed', async (t) => {
  const setup = await linuxSetup(t);
  const daemon = await startDaemon(t, setup.daemonConfig);
  t.true(existsSync(setup.socket));
  daemon.child.kill('SIGTERM');
  t.is(await daemon.exited, 0);
  t.deepEqual(daemon.stderr.slice(-2), ['daemon: SIGTERM: shutting down', 'daemon: stopped']);
  t.false(existsSync(setup.socket));
});

asRootOnLinux('a key given the admin role may call admin.shutdown, and the daemon stops', async (t) => {
  const setup = await linuxSetup(t, { appRole: 'admin' });
  const daemon = await startDaemon(t, setup.daemonConfig);
  const { code, lines } = await runToEnd(t, APP, [setup.appConfig, 'status.get', 'admin.shutdown'], NOBODY);
  t.is(code, 0);
  t.like(lines[0], { result: { caller: { roles: ['admin'] } } });
  t.like(lines[1], { method: 'admin.shutdown', result: { stopping: true } });
  t.is(await daemon.exited, 0);
  t.true(daemon.stderr.includes('daemon: admin.shutdown: shutting down'));
});

asRootOnLinux(
  'over unix:// with socketMode 0660 and group 65534: the app gets in; uid 65533, not in the group, cannot even connect',
  async (t) => {
    const setup = await linuxSetup(t, { endpoint: 'group' });
    const daemon = await startDaemon(t, setup.daemonConfig);
    t.like(statSync(setup.socket), { uid: 0, gid: NOBODY });
    t.is(statSync(setup.socket).mode & 0o777, 0o660);
    const ok = await runToEnd(t, APP, [setup.appConfig], NOBODY);
    t.is(ok.code, 0);
    t.like(ok.lines[0], {
      method: 'status.get',
      result: { uid: 0, caller: { uid: NOBODY, roles: ['app'] } },
    });
    // Gate 1: the socket file's permissions refuse the other user at connect(), before the daemon sees it.
    const otherDir = privateDir(setup.base, 'other', OTHER);
    copyFileSync(join(setup.appDir, 'app.key'), join(otherDir, 'app.key'));
    chownSync(join(otherDir, 'app.key'), OTHER, OTHER);
    const other = await runToEnd(t, APP, [setup.appConfigFor(otherDir, OTHER)], OTHER);
    t.is(other.code, 1);
    t.like(other.lines[0], { connect: false, error: 'SIPC_ERR_CONNECT_FAILED' });
    t.regex(other.lines[0]!.message, /EACCES/);
    t.false(
      daemon.stderr.some((l) => l.includes(`uid ${OTHER}`)),
      'the daemon never saw it',
    );
  },
);
