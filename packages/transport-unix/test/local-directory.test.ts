/**
 * Where `local://` sockets live, and who else can interfere (issue 12, row 12): `XDG_RUNTIME_DIR`
 * is used only when it is private to the user, root's sockets live under /run, and a fallback
 * directory squatted by another user is refused naming its owner and what to do. Each case runs
 * the transport in a separate process with the environment it needs; cross-user cases run those
 * processes as other uids through `setpriv` (which needs root: CI runs as root).
 */
import { execFile } from 'node:child_process';
import { chmodSync, chownSync, lstatSync, mkdirSync, symlinkSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext, type Implementation } from 'ava';
import { rootLocalDirectory } from '../src/address.js';
import { tempDir } from './helpers.js';

const PROBE = fileURLToPath(new URL('./fixtures/local-probe.js', import.meta.url));
const linux = process.platform === 'linux';
const root = process.geteuid?.() === 0;
// Explicit gates, each saying why in the test title.
const onLinux: (title: string, fn: Implementation<[]>) => void = linux
  ? test
  : (title: string, fn: Implementation<[]>) =>
      test.skip(`${title} (skipped: XDG_RUNTIME_DIR is used on Linux only)`, fn);
const asRootOnLinux = linux && root ? test : test.skip;
/** The unprivileged user the probe runs as: nobody when we are root (through setpriv), else ourselves. */
const USER = root ? 65534 : process.geteuid!();
const VICTIM = 65533; // A second unprivileged uid (no passwd entry needed).

interface Probe {
  euid: number;
  directory: string;
  path: string;
  warnings: { code?: string; name: string; message: string }[];
  error?: { code: string; message: string; details?: Record<string, unknown> };
}

/** Run the probe as `uid` (through setpriv when it is not ours) with exactly `env` (plus PATH). */
let probes = 0;
function probe(action: string, env: Record<string, string>, uid = process.geteuid!()): Promise<Probe> {
  // One application id per probe: tests of this file run concurrently and must not share a socket.
  const node = [process.execPath, PROBE, action, `probe-${process.pid}-${probes++}`];
  const argv =
    uid === process.geteuid!()
      ? node
      : ['setpriv', `--reuid=${uid}`, `--regid=${uid}`, '--clear-groups', ...node];
  return new Promise((resolve, reject) => {
    execFile(
      argv[0]!,
      argv.slice(1),
      { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000 },
      (err, stdout, stderr) => {
        if (err) return reject(new Error(`probe failed: ${err.message}\n${stderr}`));
        resolve(JSON.parse(stdout) as Probe);
      },
    );
  });
}

/**
 * A temporary directory other users can traverse, with a sticky world-writable `tmp` inside (what
 * /tmp is), to serve as TMPDIR for every process of a test.
 */
function sharedTmp(t: ExecutionContext): { base: string; tmp: string } {
  const base = tempDir(t);
  chmodSync(base, 0o755);
  const tmp = join(base, 'tmp');
  mkdirSync(tmp);
  chmodSync(tmp, 0o1777);
  return { base, tmp };
}

/** A directory owned by `uid` with `mode`, inside `base`. */
function ownedDirectory(base: string, name: string, uid: number, mode: number): string {
  const dir = join(base, name);
  mkdirSync(dir);
  chmodSync(dir, mode);
  if (uid !== process.geteuid!()) chownSync(dir, uid, uid);
  return dir;
}

onLinux(
  'a private XDG_RUNTIME_DIR (owned by the user, 0700) holds local:// sockets, without a warning',
  async (t) => {
    const { base, tmp } = sharedTmp(t);
    const xdg = ownedDirectory(base, 'xdg', USER, 0o700);
    const r = await probe('listen', { XDG_RUNTIME_DIR: xdg, TMPDIR: tmp }, USER);
    t.is(r.euid, USER);
    t.is(r.error, undefined);
    t.is(r.directory, join(xdg, 'secure-ipc'));
    t.deepEqual(r.warnings, []);
    t.is(lstatSync(join(xdg, 'secure-ipc')).mode & 0o777, 0o700);
  },
);

/** Assert that `r` ignored XDG_RUNTIME_DIR for `reason` with one warning, and used the fallback. */
function assertIgnored(t: ExecutionContext, r: Probe, xdg: string, tmp: string, reason: RegExp): void {
  t.is(r.error, undefined, 'local:// still works, in the fallback directory');
  t.is(r.directory, join(tmp, `secure-ipc-${r.euid}`));
  t.is(r.warnings.length, 1, 'one warning per process, however often local:// is resolved');
  const [w] = r.warnings;
  t.is(w!.code, 'SIPC_WARN_XDG_RUNTIME_DIR_IGNORED');
  t.is(w!.name, 'SecureIpcWarning');
  t.true(w!.message.startsWith(`XDG_RUNTIME_DIR=${xdg} is not used for local:// sockets: `), w!.message);
  t.regex(w!.message, reason);
  t.regex(w!.message, new RegExp(`Using ${join(tmp, `secure-ipc-${r.euid}`)} instead\\.$`));
}

onLinux(
  'an XDG_RUNTIME_DIR owned by another uid (here root-owned /) is ignored, with a warning naming the owner',
  async (t) => {
    const { tmp } = sharedTmp(t);
    const r = await probe('listen', { XDG_RUNTIME_DIR: '/', TMPDIR: tmp }, USER);
    assertIgnored(
      t,
      r,
      '/',
      tmp,
      new RegExp(`it is owned by uid 0, not by this process's user \\(uid ${USER}\\)`),
    );
  },
);

for (const mode of [0o750, 0o705, 0o701]) {
  onLinux(
    `an XDG_RUNTIME_DIR that group or others can access (mode 0${mode.toString(8)}) is ignored, with a warning`,
    async (t) => {
      const { base, tmp } = sharedTmp(t);
      const xdg = ownedDirectory(base, 'xdg', USER, mode);
      const r = await probe('listen', { XDG_RUNTIME_DIR: xdg, TMPDIR: tmp }, USER);
      assertIgnored(
        t,
        r,
        xdg,
        tmp,
        new RegExp(`group or others have access to it \\(mode 0${mode.toString(8)}; it must be 0700\\)`),
      );
    },
  );
}

onLinux(
  'an XDG_RUNTIME_DIR that is a symlink, relative, or missing is ignored, with a warning saying which',
  async (t) => {
    const { base, tmp } = sharedTmp(t);
    const real = ownedDirectory(base, 'real', USER, 0o700);
    const link = join(base, 'link');
    symlinkSync(real, link);
    for (const [xdg, reason] of [
      [link, /it is a symbolic link/],
      ['run/user/1000', /it is not an absolute path/],
      [join(base, 'missing'), /it cannot be inspected \(ENOENT\)/],
    ] as const) {
      assertIgnored(t, await probe('listen', { XDG_RUNTIME_DIR: xdg, TMPDIR: tmp }, USER), xdg, tmp, reason);
    }
  },
);

test("root's local:// directory is /run/secure-ipc on Linux and /var/run/secure-ipc on macOS", (t) => {
  t.is(rootLocalDirectory('linux'), '/run/secure-ipc');
  t.is(rootLocalDirectory('darwin'), '/var/run/secure-ipc');
});

asRootOnLinux(
  'as root, XDG_RUNTIME_DIR and TMPDIR are not consulted for local:// (needs root)',
  async (t) => {
    const { base, tmp } = sharedTmp(t);
    const xdg = ownedDirectory(base, 'xdg', 0, 0o700);
    const r = await probe('resolve', { XDG_RUNTIME_DIR: xdg, TMPDIR: tmp });
    t.is(r.euid, 0);
    t.is(r.directory, '/run/secure-ipc');
    t.deepEqual(r.warnings, []);
  },
);

asRootOnLinux(
  'as root, local:// listens in /run/secure-ipc, a root-owned directory closed to others (needs root)',
  async (t) => {
    const { tmp } = sharedTmp(t);
    const r = await probe('listen', { TMPDIR: tmp });
    t.is(r.error, undefined);
    t.regex(String(r.path), new RegExp(`^/run/secure-ipc/probe-${process.pid}-\\d+\\.sock$`));
    // The directory stays (like /run/user/UID, it lives until reboot): other root processes on this
    // machine, other test files included, may be using it right now.
    const st = lstatSync('/run/secure-ipc');
    t.true(st.isDirectory());
    t.is(st.uid, 0);
    t.is(st.mode & 0o077, 0, 'no group/other access');
  },
);

asRootOnLinux(
  'a squatted <tmpdir>/secure-ipc-0 does not affect root, whose local:// is under /run (needs root)',
  async (t) => {
    const { tmp } = sharedTmp(t);
    // The squatter, as nobody, pre-creates what main used as root's fallback directory.
    const squat = join(tmp, 'secure-ipc-0');
    await new Promise<void>((resolve, reject) =>
      execFile(
        'setpriv',
        ['--reuid=65534', '--regid=65534', '--clear-groups', 'mkdir', '-m', '0777', squat],
        (err) => (err ? reject(err) : resolve()),
      ),
    );
    t.is(lstatSync(squat).uid, 65534);
    const r = await probe('listen', { TMPDIR: tmp });
    t.is(r.error, undefined, 'root can still listen on local://');
    t.is(r.directory, '/run/secure-ipc');
  },
);

asRootOnLinux(
  'a fallback directory squatted by another user is refused naming its owner and what to do (needs root for two uids)',
  async (t) => {
    const { tmp } = sharedTmp(t);
    const squat = join(tmp, `secure-ipc-${VICTIM}`);
    await new Promise<void>((resolve, reject) =>
      execFile(
        'setpriv',
        ['--reuid=65534', '--regid=65534', '--clear-groups', 'mkdir', '-m', '0755', squat],
        (err) => (err ? reject(err) : resolve()),
      ),
    );
    t.is(lstatSync(squat).uid, 65534, 'the squatter owns it');
    for (const action of ['listen', 'connect']) {
      const r = await probe(action, { TMPDIR: tmp }, VICTIM);
      t.is(r.directory, squat);
      t.is(r.error?.code, 'SIPC_ERR_INSECURE_DIRECTORY', action);
      const message = r.error!.message;
      t.regex(
        message,
        new RegExp(`${squat} is owned by uid 65534, not by the current user \\(uid ${VICTIM}\\)`),
      );
      t.regex(message, /Another user created it, which blocks local:\/\/ for this user/);
      t.regex(message, new RegExp(`have its owner \\(uid 65534\\) or root remove it \\(rm -r ${squat}\\)`));
      t.regex(
        message,
        /XDG_RUNTIME_DIR set to a directory you own with mode 0700, or the runtimeDirectory option/,
      );
      t.like(r.error!.details, { directory: squat, ownerUid: 65534, uid: VICTIM });
    }
  },
);
