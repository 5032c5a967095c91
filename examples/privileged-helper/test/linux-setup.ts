/**
 * The Linux deployment the tests run, in a scratch directory: a root daemon on local://system/
 * (its own system directory), its key and config in a root-only directory; the app's key and
 * config in a directory of uid 65534, files owned by it and mode 0600.
 */
import { join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { DaemonConfig } from '../src/config.js';
import { keyFiles, NOBODY, privateDir, scratch, writeJson } from './helpers.js';

/** The files of one deployment, and a way to write an app config for another user. */
export interface LinuxSetup {
  base: string;
  systemDirectory: string;
  daemonConfig: string;
  appDir: string;
  appConfig: string;
  /** Write an app.json into `dir` (owned by `owner`), with the key file `dir/app.key`. */
  appConfigFor(dir: string, owner: number): string;
}

/** Set it up; `appRole` is the role the daemon gives the app's key (default `app`). */
export async function linuxSetup(t: ExecutionContext, appRole: 'app' | 'admin' = 'app'): Promise<LinuxSetup> {
  const base = scratch(t);
  const systemDirectory = join(base, 'system'); // the daemon creates it: root's, 0711
  const daemonDir = privateDir(base, 'daemon');
  const appDir = privateDir(base, 'app', NOBODY);
  const daemonKey = await keyFiles([join(daemonDir, 'daemon.key')]);
  const appKey = await keyFiles([join(appDir, 'app.key'), NOBODY]);
  const address = `local://system/privileged-helper-${process.pid}`;
  const daemonConfig = writeJson(join(daemonDir, 'daemon.json'), {
    address,
    keyFile: join(daemonDir, 'daemon.key'),
    appKeys: appRole === 'app' ? [appKey] : [],
    adminKeys: appRole === 'admin' ? [appKey] : [],
    allowedUids: [NOBODY],
    socketMode: '0666',
    systemDirectory,
  } satisfies DaemonConfig);
  const appConfigFor = (dir: string, owner: number) =>
    writeJson(
      join(dir, 'app.json'),
      { address, keyFile: join(dir, 'app.key'), daemonKey, systemDirectory },
      owner,
      0o600,
    );
  return {
    base,
    systemDirectory,
    daemonConfig,
    appDir,
    appConfig: appConfigFor(appDir, NOBODY),
    appConfigFor,
  };
}
