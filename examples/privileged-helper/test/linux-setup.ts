/**
 * The Linux deployment the tests run, in a scratch directory: a root daemon on local://system/
 * (its own system directory) or on a unix:// path for group 65534, its key and config in a
 * root-only directory; the app's key and config in a directory of uid 65534, files owned by it
 * and mode 0600.
 */
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { DaemonConfig } from '../src/config.js';
import { keyFiles, NOBODY, privateDir, scratch, writeJson } from './helpers.js';

/** The files of one deployment, and a way to write an app config for another user. */
export interface LinuxSetup {
  base: string;
  /** The daemon's socket file. */
  socket: string;
  daemonConfig: string;
  appDir: string;
  appConfig: string;
  /** Write an app.json into `dir` (owned by `owner`), with the key file `dir/app.key`. */
  appConfigFor(dir: string, owner: number): string;
}

/** How the daemon is reached: `local://system/` open to all (0666), or a `unix://` path open to group 65534 (0660). */
export type Endpoint = 'system' | 'group';

/** Each endpoint's daemon and app settings, in the scratch directory `base`. */
function endpoint(kind: Endpoint, base: string) {
  if (kind === 'system') {
    const systemDirectory = join(base, 'system'); // the daemon creates it: root's, 0711
    const address = `local://system/privileged-helper-${process.pid}`;
    return {
      socket: join(systemDirectory, `privileged-helper-${process.pid}.sock`),
      daemon: { address, socketMode: '0666', systemDirectory } as const,
      app: { address, systemDirectory },
    };
  }
  const socket = join(base, 'run', 'helper.sock'); // the daemon creates run/: 0710, group 65534
  const address = `unix://${socket}`;
  return {
    socket,
    daemon: { address, socketMode: '0660', socketGroup: NOBODY } as const,
    app: { address, serverUids: [0] }, // a unix:// client accepts only its own uid unless told
  };
}

/** What to set up: the role the daemon gives the app's key, the endpoint, and the app's uid. */
export interface SetupOptions {
  appRole?: 'app' | 'admin';
  endpoint?: Endpoint;
  /** The app's user, who owns its files and is the one uid the daemon accepts (default 65534). */
  appUid?: number;
}

/** Set it up (defaults: role `app`, `local://system/`, uid 65534). */
export async function linuxSetup(t: ExecutionContext, options: SetupOptions = {}): Promise<LinuxSetup> {
  const { appRole = 'app', endpoint: kind = 'system', appUid = NOBODY } = options;
  const base = scratch(t);
  const { socket, daemon, app } = endpoint(kind, base);
  const daemonDir = privateDir(base, 'daemon');
  const appDir = privateDir(base, 'app', appUid);
  const daemonKey = await keyFiles([join(daemonDir, 'daemon.key')]);
  const appKey = await keyFiles([join(appDir, 'app.key'), appUid]);
  const daemonConfig = writeJson(join(daemonDir, 'daemon.json'), {
    ...daemon,
    keyFile: join(daemonDir, 'daemon.key'),
    appKeys: appRole === 'app' ? [appKey] : [],
    adminKeys: appRole === 'admin' ? [appKey] : [],
    allowedUids: [appUid],
  } satisfies DaemonConfig);
  const appConfigFor = (dir: string, owner: number) =>
    writeJson(join(dir, 'app.json'), { ...app, keyFile: join(dir, 'app.key'), daemonKey }, owner, 0o600);
  return { base, socket, daemonConfig, appDir, appConfig: appConfigFor(appDir, appUid), appConfigFor };
}
