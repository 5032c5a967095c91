/**
 * windowsOwnerOnly, the encrypted outbox's access guard on Windows. The SDDL parser runs on every
 * OS; outside Windows the guard must reject with SIPC_ERR_UNSUPPORTED_PLATFORM; the rest runs under
 * Wine (tools/wine/run-ava.sh) on real files of the Wine prefix's temp directory.
 *
 * Wine caveats (Debian's wine 8.0, what these tests were run on):
 * - Wine does not ENFORCE DACLs between processes (README.md, "Wine gaps"): these tests check
 *   what is set, read back and refused, not that another user is kept out.
 * - Its wineserver keeps no security descriptor for a file (built without xattr support): a file's
 *   DACL is made from its Unix mode on every read (SYSTEM, the owner's bits as the user's ACE, the
 *   other bits as an Everyone ACE) and a DACL set on it becomes a chmod. So under Wine the
 *   protected flag, inherited ACEs and ACEs naming other SIDs are not stored; a new file gets the
 *   umask's mode, not its directory's ACEs, and a NULL DACL reads back as Everyone full access.
 *   Where Wine differs the tests assert what Wine does (`onWine`), and what Windows does otherwise.
 * - Wine's CreateSymbolicLinkW creates nothing: the link test makes a Unix symlink (`start /unix`),
 *   which Wine reports as a directory reparse point.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isSecureIpcError } from '@secure-ipc/core';
import anyTest, { type ExecutionContext, type TestFn } from 'ava';
import { currentUserSid, windowsOwnerOnly } from '../src/index.js';
import {
  daclSddlOf,
  grantedToOthers,
  ownerOnlyFileSddl,
  parseSddlDacl,
  readFileDacl,
} from '../src/outbox-guard.js';
import { type Handle, Win, win32 } from '../src/win32-ffi.js';

// Explicit platform gate: the guard's FFI needs Windows (node.exe under Wine in CI).
const winTest = (process.platform === 'win32' ? anyTest : anyTest.skip) as TestFn;

/** True under Wine (ntdll exports wine_get_version), where a file's DACL is its Unix mode. */
function detectWine(): boolean {
  if (process.platform !== 'win32') return false;
  try {
    win32().koffi.load('ntdll.dll').func('const char *wine_get_version()');
    return true;
  } catch {
    return false;
  }
}
const onWine = detectWine();

/** A fresh directory under the temp directory, removed after the test. */
function scratch(t: ExecutionContext): string {
  const base = mkdtempSync(join(tmpdir(), 'sipc-outbox-guard-'));
  t.teardown(() => rmSync(base, { recursive: true, force: true }));
  return base;
}

/** Run `use` on a binary security descriptor made from SDDL, then free it. */
function withDescriptor<T>(sddl: string, use: (sd: Handle) => T): T {
  const w = win32();
  const sd: Handle[] = [null];
  if (!w.ConvertStringSecurityDescriptorToSecurityDescriptorW(sddl, Win.SDDL_REVISION_1, sd, [0])) {
    throw new Error(`bad SDDL ${sddl}: ${w.GetLastError()}`);
  }
  try {
    return use(sd[0]);
  } finally {
    w.LocalFree(sd[0]);
  }
}

/** Set `path`'s DACL from SDDL with this test's own call. */
function setDacl(path: string, sddl: string): void {
  withDescriptor(sddl, (sd) => {
    if (!win32().SetFileSecurityW(path, Win.DACL_SECURITY_INFORMATION, sd)) {
      throw new Error(`SetFileSecurityW(${sddl}) failed: ${win32().GetLastError()}`);
    }
  });
}

/**
 * Run `use` on an absolute security descriptor whose DACL is NULL (present, no ACL), built by hand:
 * Wine's SDDL parser turns `D:NO_ACCESS_CONTROL` into an empty DACL instead.
 */
function withNullDacl<T>(use: (sd: Buffer) => T): T {
  const adv = win32().koffi.load('advapi32.dll');
  const init = adv.func('bool __stdcall InitializeSecurityDescriptor(_Inout_ uint8_t *sd, uint32 rev)');
  const setDaclOf = adv.func(
    'bool __stdcall SetSecurityDescriptorDacl(_Inout_ uint8_t *sd, int present, void *dacl, int defaulted)',
  );
  const sd = Buffer.alloc(64); // SECURITY_DESCRIPTOR (absolute) is 40 bytes on x64
  if (!init(sd, 1) || !setDaclOf(sd, 1, null, 0)) throw new Error(`NULL DACL: ${win32().GetLastError()}`);
  return use(sd);
}

/** Give `path` a NULL DACL (everyone full access). */
function setNullDacl(path: string): void {
  withNullDacl((sd) => {
    if (!win32().SetFileSecurityW(path, Win.DACL_SECURITY_INFORMATION, sd)) {
      throw new Error(`SetFileSecurityW(NULL DACL) failed: ${win32().GetLastError()}`);
    }
  });
}

/** Run `/bin/<command> <options...> <paths...>` from Wine (`start /wait /unix`), the paths given in Windows form. */
function unix(command: string, options: string[], ...paths: string[]): void {
  const unixName = win32()
    .koffi.load('kernel32.dll')
    .func('const char * __stdcall wine_get_unix_file_name(str16 p)') as (p: string) => string;
  const start = 'C:\\windows\\system32\\start.exe';
  const r = spawnSync(start, ['/wait', '/unix', `/bin/${command}`, ...options, ...paths.map(unixName)]);
  if (r.status !== 0) throw new Error(`${command} failed: ${r.status} ${r.error?.message ?? ''}`);
}

/**
 * Make `link` a directory link to `target`, removed at teardown: a Unix symlink under Wine (whose
 * CreateSymbolicLinkW creates nothing), a junction on Windows.
 */
function dirLink(t: ExecutionContext, target: string, link: string): void {
  if (onWine) {
    unix('ln', ['-s'], target, link);
    t.teardown(() => unix('rm', [], link)); // before the scratch directory (teardowns run last first)
  } else {
    symlinkSync(target, link, 'junction');
  }
}

/** What `secure(path, kind, true)` leaves: the SDDL set on Windows, its Unix-mode reading under Wine. */
function ownerOnlyReadBack(kind: 'directory' | 'file'): string {
  const sid = currentUserSid();
  const i = kind === 'directory' ? 'OICI' : '';
  return onWine ? `D:(A;${i};FA;;;SY)(A;${i};FA;;;${sid})` : `D:P(A;${i};FA;;;${sid})(A;${i};FA;;;SY)`;
}

/** A new directory `outbox` in a scratch directory, secured as the outbox does when it creates it. */
async function securedDir(t: ExecutionContext): Promise<string> {
  const dir = join(scratch(t), 'outbox');
  mkdirSync(dir);
  await windowsOwnerOnly.secure(dir, 'directory', true);
  return dir;
}

const dacl = (path: string, kind: 'directory' | 'file' = 'directory') => readFileDacl(win32(), path, kind);

/** Assert that the guard refuses `path` with the kind's code and `reason`; returns the error. */
async function refused(
  t: ExecutionContext,
  path: string,
  kind: 'directory' | 'file',
  created: boolean,
  reason: string,
): Promise<Error> {
  const err = await t.throwsAsync(windowsOwnerOnly.secure(path, kind, created));
  const code = kind === 'directory' ? 'SIPC_ERR_INSECURE_DIRECTORY' : 'SIPC_ERR_INSECURE_FILE';
  t.true(isSecureIpcError(err, code), String(err));
  t.deepEqual((err as Error & { details?: unknown }).details, { path, reason });
  return err!;
}

anyTest(
  'parseSddlDacl reads flags and ACEs, nested conditions included, and rejects malformed SDDL (every OS)',
  (t) => {
    const sid = 'S-1-5-21-1-2-3-1000';
    t.deepEqual(parseSddlDacl(`D:P(A;OICI;FA;;;${sid})(A;OICI;FA;;;SY)`), {
      flags: 'P',
      aces: [
        { type: 'A', flags: 'OICI', rights: 'FA', sid },
        { type: 'A', flags: 'OICI', rights: 'FA', sid: 'SY' },
      ],
    });
    t.deepEqual(parseSddlDacl('O:BAD:AI(D;;FA;;;WD)(XA;;FR;;;WD;(Member_of {SID(BA)}))'), {
      flags: 'AI',
      aces: [
        { type: 'D', flags: '', rights: 'FA', sid: 'WD' },
        { type: 'XA', flags: '', rights: 'FR', sid: 'WD' },
      ],
    });
    t.deepEqual(parseSddlDacl('D:P'), { flags: 'P', aces: [] });
    for (const bad of [
      '',
      'O:SY',
      'D:(A;;FA;;;SY',
      'D:(A;;FA;;)',
      'D:(;;FA;;;SY)',
      'D:(A;;FA;;;)',
      'D:(A;;FA;;;SY)x',
    ]) {
      t.is(parseSddlDacl(bad), undefined, bad);
    }
  },
);

anyTest(
  'the SDDL set on a created path: protected, user + SYSTEM only, inheritable on a directory (every OS)',
  (t) => {
    const sid = 'S-1-5-21-1-2-3-1000';
    t.is(ownerOnlyFileSddl(sid, 'directory'), `O:${sid}D:P(A;OICI;FA;;;${sid})(A;OICI;FA;;;SY)`);
    t.is(ownerOnlyFileSddl(sid, 'file'), `O:${sid}D:P(A;;FA;;;${sid})(A;;FA;;;SY)`);
    t.is(windowsOwnerOnly.name, 'windows-dacl');
  },
);

if (process.platform !== 'win32') {
  anyTest(
    `on ${process.platform} windowsOwnerOnly.secure rejects with SIPC_ERR_UNSUPPORTED_PLATFORM`,
    async (t) => {
      for (const kind of ['directory', 'file'] as const) {
        const err = await t.throwsAsync(windowsOwnerOnly.secure(tmpdir(), kind, true));
        t.true(isSecureIpcError(err, 'SIPC_ERR_UNSUPPORTED_PLATFORM'), String(err));
      }
    },
  );
}

winTest(
  'a created directory gets the DACL of the user and SYSTEM only, read back (protected and inheritable on Windows; Wine keeps it as mode 0770)',
  async (t) => {
    const dir = join(scratch(t), 'outbox');
    mkdirSync(dir);
    t.log('before:', dacl(dir));
    // Under Wine a fresh directory has the umask's mode: the other bits read back as an Everyone ACE.
    if (onWine) await refused(t, dir, 'directory', false, 'others');
    await windowsOwnerOnly.secure(dir, 'directory', true);
    const after = dacl(dir);
    t.log('after:', after);
    t.is(after, ownerOnlyReadBack('directory'));
    await windowsOwnerOnly.secure(dir, 'directory', false);
  },
);

winTest(
  'a file created in a secured directory: inherits its DACL and passes (Windows); gets the umask mode and is refused until secured (Wine)',
  async (t) => {
    const sid = currentUserSid();
    const dir = await securedDir(t);
    const file = join(dir, 'outbox.log');
    writeFileSync(file, 'x');
    const fresh = dacl(file, 'file');
    t.log('new file:', fresh);
    if (onWine) {
      const err = await refused(t, file, 'file', false, 'others');
      t.true(err.message.includes('S-1-1-0'), err.message);
    } else {
      const aces = parseSddlDacl(fresh!)!.aces;
      t.deepEqual(
        aces.map((a) => a.sid),
        [sid, 'SY'],
      );
      t.true(
        aces.every((a) => a.flags.includes('ID')),
        'inherited ACEs',
      );
      await windowsOwnerOnly.secure(file, 'file', false);
    }
    // What the outbox does with a file it created: secure(file, 'file', true).
    await windowsOwnerOnly.secure(file, 'file', true);
    t.is(dacl(file, 'file'), ownerOnlyReadBack('file'));
    await windowsOwnerOnly.secure(file, 'file', false);
  },
);

winTest(
  'an added Everyone (WD) read ACE is refused with reason others, naming S-1-1-0; created: true replaces it',
  async (t) => {
    const sid = currentUserSid();
    const dir = await securedDir(t);
    setDacl(dir, `D:P(A;OICI;FA;;;${sid})(A;OICI;FA;;;SY)(A;OICI;FR;;;WD)`);
    const withEveryone = dacl(dir)!;
    t.log('with Everyone:', withEveryone);
    t.true(
      parseSddlDacl(withEveryone)!.aces.some((a) => a.sid === 'WD'),
      withEveryone,
    );
    const err = await refused(t, dir, 'directory', false, 'others');
    t.true(err.message.includes('S-1-1-0'), err.message);
    const file = join(dir, 'f');
    writeFileSync(file, 'x');
    setDacl(file, `D:P(A;;FA;;;${sid})(A;;FR;;;WD)`);
    const ferr = await refused(t, file, 'file', false, 'others');
    t.true(ferr.message.includes('S-1-1-0'), ferr.message);
    await windowsOwnerOnly.secure(dir, 'directory', true);
    t.false(dacl(dir)!.includes(';WD)'));
  },
);

winTest(
  'the DACL check on real descriptors: other users, groups and callback or inherit-only grants are others; deny ACEs, SYSTEM and Administrators are not',
  (t) => {
    const sid = currentUserSid();
    const w = win32();
    const other = 'S-1-5-21-1-2-3-1002';
    const cases: [string, string | undefined][] = [
      [`D:P(A;OICI;FA;;;${sid})(A;OICI;FA;;;SY)`, undefined],
      [`D:(D;;FA;;;WD)(D;;FA;;;${other})(A;;FA;;;${sid})(A;;FA;;;S-1-5-18)(A;;FA;;;BA)`, undefined],
      [`D:(A;;FA;;;${sid})(A;;0x120089;;;${other})`, other],
      ['D:(A;;FR;;;AU)', 'S-1-5-11'],
      ['D:(A;;FR;;;BU)', 'S-1-5-32-545'],
      ['D:(A;OICIIO;FA;;;CO)', 'S-1-3-0'],
    ];
    for (const [sddl, expected] of cases) {
      // Round-trip through a binary descriptor: the SDDL Windows (here Wine) prints back is checked.
      const printed = withDescriptor(sddl, (sd) => daclSddlOf(w, sd));
      const dacl = parseSddlDacl(printed ?? '');
      t.truthy(dacl, `${sddl} -> ${printed}`);
      t.is(grantedToOthers(w, dacl!, sid), expected, `${sddl} -> ${printed}`);
    }
    // A callback (conditional) allow ACE is a grant too; Wine's SDDL parser cannot build one, so
    // this case is checked as parsed.
    t.is(grantedToOthers(w, parseSddlDacl('D:(XA;;FR;;;WD;(Member_of {SID(BA)}))')!, sid), 'S-1-1-0');
  },
);

winTest(
  'a NULL DACL is refused: reason null-dacl on Windows; Wine reads it back as Everyone full access (others)',
  async (t) => {
    const w = win32();
    // The NULL-DACL detection itself, on a real binary descriptor (under Wine too).
    t.is(
      withNullDacl((sd) => daclSddlOf(w, sd)),
      null,
    );
    t.is(
      withDescriptor('D:P', (sd) => daclSddlOf(w, sd)),
      'D:P',
      'an empty DACL is not a NULL one',
    );
    const dir = join(scratch(t), 'outbox');
    mkdirSync(dir);
    setNullDacl(dir);
    t.log('NULL DACL reads back as:', dacl(dir));
    if (onWine) {
      t.true(dacl(dir)!.includes('(A;OICI;0x1301ff;;;WD)'));
      const err = await refused(t, dir, 'directory', false, 'others');
      t.true(err.message.includes('S-1-1-0'), err.message);
    } else {
      t.is(dacl(dir), null);
      await refused(t, dir, 'directory', false, 'null-dacl');
    }
    const file = join(dir, 'f');
    writeFileSync(file, 'x');
    setNullDacl(file);
    await refused(t, file, 'file', false, onWine ? 'others' : 'null-dacl');
  },
);

winTest('created: false on an already good directory passes and leaves its DACL as it was', async (t) => {
  const sid = currentUserSid();
  const dir = join(scratch(t), 'outbox');
  mkdirSync(dir);
  // Good but not what created: true sets: this user may only read.
  setDacl(dir, `D:P(A;OICI;FR;;;${sid})(A;OICI;FA;;;SY)`);
  const before = dacl(dir);
  t.log('before:', before);
  await windowsOwnerOnly.secure(dir, 'directory', false);
  t.is(dacl(dir), before);
  // ...and created: true would have changed it.
  t.not(before, ownerOnlyReadBack('directory'));
});

winTest(
  'a path of the wrong type is refused with reason type, and nothing is set on it; a missing one is unreadable',
  async (t) => {
    const base = scratch(t);
    const file = join(base, 'f');
    writeFileSync(file, 'x');
    const before = dacl(file, 'file');
    await refused(t, file, 'directory', true, 'type');
    t.is(dacl(file, 'file'), before);
    await refused(t, base, 'file', true, 'type');
    await refused(t, join(base, 'missing'), 'file', false, 'unreadable');
  },
);

winTest(
  'a directory link (a Unix symlink under Wine, a junction on Windows) is refused with reason symlink, its target left alone',
  async (t) => {
    const base = scratch(t);
    const target = join(base, 'target');
    mkdirSync(target);
    const link = join(base, 'link');
    dirLink(t, target, link);
    const before = dacl(target);
    await refused(t, link, 'directory', true, 'symlink');
    t.is(dacl(target), before);
  },
);
