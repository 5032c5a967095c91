/**
 * Who may touch an outbox (docs/outbox.md, "Access" and "Protection per OS"), on real files: the
 * modes it creates (under umask 000 too), directories and journals it refuses (mode, owner,
 * symbolic links), a key file inside the directory, the lock against a second open in this
 * process and in a live other process, a dead process's lock taken over, a real uid 65534 kept
 * out of every file (tests run as root here and in CI: chown and spawn's uid need it), and
 * minimumProtection refusing before anything is created.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { once } from 'node:events';
import {
  chmodSync,
  chownSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import test, { type ExecutionContext, type Implementation } from 'ava';
import type { OutboxProtection } from '../src/outbox/outbox.js';
import { FAST_LIMITS, openTestOutbox, outboxPlace, PASSPHRASE } from './fixtures/outbox-world.js';
import { codeOf } from './identity-helpers.js';

const posix = process.platform !== 'win32';
const root = process.geteuid?.() === 0;
const HOLDER = fileURLToPath(new URL('./fixtures/outbox-holder-child.js', import.meta.url));

/** A POSIX-only test; elsewhere an explicit skip saying why. */
function onPosix(title: string, impl: Implementation<[]>): void {
  if (posix) test(title, impl);
  else
    test.skip(
      `${title}: SKIPPED because the POSIX guard and modes do not apply on ${process.platform}`,
      impl,
    );
}

/** A test that needs root (chown, spawn as uid 65534); elsewhere an explicit skip saying why. */
function asRoot(title: string, impl: Implementation<[]>): void {
  if (posix && root) test(title, impl);
  else test.skip(`${title}: SKIPPED because it needs root on POSIX (euid ${process.geteuid?.()})`, impl);
}

/** `details.reason` of a thrown SecureIpcError. */
function reasonOf(err: unknown): unknown {
  return (err as { details?: { reason?: unknown } } | undefined)?.details?.reason;
}

const mode = (path: string) => statSync(path).mode & 0o777;

/** An outbox made (with one entry) and closed, so its journal, anchor and key file exist. */
async function madeOutbox(t: ExecutionContext) {
  const place = outboxPlace(t);
  const outbox = await openTestOutbox(place);
  await outbox.add('record', { n: 1 });
  await outbox.close();
  return { ...place, journal: join(place.dir, 'outbox.log') };
}

/** Start the holder child on `place` and wait until it has the outbox open; killed at teardown. */
async function holder(t: ExecutionContext, place: { dir: string; keyFile: string }): Promise<ChildProcess> {
  const child = spawn(process.execPath, [HOLDER, place.dir, place.keyFile], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  t.teardown(() => child.kill('SIGKILL'));
  const [line] = (await Promise.race([
    once(createInterface({ input: child.stdout! }), 'line'),
    once(child, 'exit').then(() => ['exited']),
  ])) as [string];
  t.is(line, `open ${child.pid}`, 'the holder opened the outbox');
  return child;
}

if (posix)
  test.serial(
    'created 0700 (directory) and 0600 (journal, lock, key file, anchor) even under umask 000',
    async (t) => {
      const place = outboxPlace(t);
      const previous = process.umask(0o000);
      try {
        const outbox = await openTestOutbox(place);
        t.teardown(() => outbox.close());
        await outbox.add('record', { n: 1 });
        t.is(mode(place.dir), 0o700);
        t.is(mode(join(place.dir, 'outbox.log')), 0o600);
        t.is(mode(join(place.dir, 'lock')), 0o600);
        t.is(readFileSync(join(place.dir, 'lock'), 'utf8'), `${process.pid}\n`, 'the lock holds our pid');
        t.is(mode(place.keyFile), 0o600);
        await outbox.compact(); // the compaction's temporary file becomes the journal
        t.is(mode(join(place.dir, 'outbox.log')), 0o600);
        await outbox.close();
        t.is(mode(`${place.keyFile}.anchor`), 0o600);
        t.deepEqual(
          readdirSync(place.dir),
          ['outbox.log'],
          'the lock is released at close, no temporary file left',
        );
      } finally {
        process.umask(previous);
      }
    },
  );
else
  test.skip(`modes under umask 000: SKIPPED because POSIX modes do not apply on ${process.platform}`, () => {});

for (const bad of [0o755, 0o770, 0o701]) {
  onPosix(
    `an existing directory with mode 0${bad.toString(8)} is SIPC_ERR_INSECURE_DIRECTORY reason 'mode', left as it was`,
    async (t) => {
      const place = outboxPlace(t);
      mkdirSync(place.dir);
      chmodSync(place.dir, bad);
      const err = await t.throwsAsync(openTestOutbox(place));
      t.is(codeOf(err), 'SIPC_ERR_INSECURE_DIRECTORY');
      t.like((err as { details?: object }).details, { path: place.dir, reason: 'mode' });
      t.regex(err!.message, new RegExp(`mode 0${bad.toString(8)}\\); run chmod 700`));
      t.is(mode(place.dir), bad, 'an existing directory is not chmod-ed behind the user');
      t.deepEqual(readdirSync(place.dir), [], 'nothing created in it');
      t.false(existsSync(place.keyFile), 'no key file created');
    },
  );
}

asRoot("a directory owned by uid 65534 is SIPC_ERR_INSECURE_DIRECTORY reason 'owner'", async (t) => {
  const place = outboxPlace(t);
  mkdirSync(place.dir, { mode: 0o700 });
  chownSync(place.dir, 65534, 65534);
  const err = await t.throwsAsync(openTestOutbox(place));
  t.is(codeOf(err), 'SIPC_ERR_INSECURE_DIRECTORY');
  t.like((err as { details?: object }).details, { reason: 'owner' });
  t.regex(err!.message, /owned by uid 65534, not by this process's user \(uid 0\)/);
  t.deepEqual(readdirSync(place.dir), []);
});

onPosix(
  "the directory path a symbolic link (to a good 0700 directory) is refused: 'symlink', nothing created through it",
  async (t) => {
    const place = outboxPlace(t);
    const real = join(place.root, 'real');
    mkdirSync(real, { mode: 0o700 });
    symlinkSync(real, place.dir);
    const err = await t.throwsAsync(openTestOutbox(place));
    t.is(codeOf(err), 'SIPC_ERR_INSECURE_DIRECTORY');
    t.like((err as { details?: object }).details, { path: place.dir, reason: 'symlink' });
    t.deepEqual(readdirSync(real), [], 'nothing written through the link');
    t.false(existsSync(place.keyFile));
  },
);

onPosix('a directory path that is a regular file is refused (reason type)', async (t) => {
  const place = outboxPlace(t);
  writeFileSync(place.dir, 'not a directory', { mode: 0o600 });
  const err = await t.throwsAsync(openTestOutbox(place));
  t.is(codeOf(err), 'SIPC_ERR_INSECURE_DIRECTORY');
  t.like((err as { details?: object }).details, { reason: 'type' });
});

onPosix(
  'outbox.log replaced by a symbolic link to the real journal: SIPC_ERR_INSECURE_FILE, the target never opened',
  async (t) => {
    const place = await madeOutbox(t);
    const moved = join(place.root, 'elsewhere.log');
    renameSync(place.journal, moved);
    symlinkSync(moved, place.journal);
    const before = readFileSync(moved);
    // relatime: a read moves an atime that is older than the mtime, so an old atime shows a read.
    const old = new Date('2001-01-01T00:00:00Z');
    utimesSync(moved, old, new Date('2002-01-01T00:00:00Z'));
    const err = await t.throwsAsync(openTestOutbox(place));
    t.is(codeOf(err), 'SIPC_ERR_INSECURE_FILE');
    t.like((err as { details?: object }).details, { path: place.journal, reason: 'symlink' });
    const after = statSync(moved);
    t.deepEqual(readFileSync(moved), before, 'the target is unchanged (not truncated, not compacted)');
    t.is(after.atimeMs, old.getTime(), 'the target was not read through the link');
    t.false(existsSync(join(place.dir, 'lock')), 'the lock is released after the refusal');
    // The control: reading the target here does move its atime, so the assertion above can fail.
    readFileSync(moved);
    t.not(statSync(moved).atimeMs, old.getTime(), 'control: a read moves the atime on this file system');
  },
);

onPosix("outbox.log with mode 0644 is SIPC_ERR_INSECURE_FILE reason 'mode', and stays 0644", async (t) => {
  const place = await madeOutbox(t);
  chmodSync(place.journal, 0o644);
  const err = await t.throwsAsync(openTestOutbox(place));
  t.is(codeOf(err), 'SIPC_ERR_INSECURE_FILE');
  t.like((err as { details?: object }).details, { path: place.journal, reason: 'mode' });
  t.is(mode(place.journal), 0o644);
  chmodSync(place.journal, 0o600);
  const again = await openTestOutbox(place);
  t.is(again.size, 1, 'once 0600 again it opens with its entry');
  await again.close();
});

asRoot("outbox.log owned by uid 65534 is SIPC_ERR_INSECURE_FILE reason 'owner'", async (t) => {
  const place = await madeOutbox(t);
  chownSync(place.journal, 65534, 65534);
  const err = await t.throwsAsync(openTestOutbox(place));
  t.is(codeOf(err), 'SIPC_ERR_INSECURE_FILE');
  t.like((err as { details?: object }).details, { reason: 'owner' });
});

test('a key file inside the outbox directory is SIPC_ERR_INVALID_ARGUMENT and is not created', async (t) => {
  const place = outboxPlace(t);
  for (const file of [join(place.dir, 'outbox.key'), join(place.dir, 'sub', 'k'), place.dir]) {
    const err = await t.throwsAsync(
      openTestOutbox(place, { key: { file, passphrase: PASSPHRASE, limits: FAST_LIMITS } }),
    );
    t.is(codeOf(err), 'SIPC_ERR_INVALID_ARGUMENT', file);
    t.regex(err!.message, /inside the outbox directory/);
  }
  t.deepEqual(readdirSync(place.dir), [], 'no key file, no journal, no lock');
  // A sibling whose name starts with the directory's is outside it.
  const sibling = await openTestOutbox(place, {
    key: { file: `${place.dir}.key`, passphrase: PASSPHRASE, limits: FAST_LIMITS },
  });
  await sibling.close();
  t.true(existsSync(`${place.dir}.key`));
});

test("a second openOutbox of the same directory in this process is SIPC_ERR_INVALID_ARGUMENT reason 'locked'", async (t) => {
  const place = outboxPlace(t);
  const first = await openTestOutbox(place);
  t.teardown(() => first.close());
  for (const dir of [place.dir, `${place.root}/./outbox/../outbox`, `${place.dir}/`]) {
    const err = await t.throwsAsync(openTestOutbox({ ...place, dir }));
    t.is(codeOf(err), 'SIPC_ERR_INVALID_ARGUMENT', dir);
    t.is(reasonOf(err), 'locked', dir);
  }
  await first.add('record', { n: 1 });
  t.is(first.size, 1, 'the first one is unharmed by the refused opens');
  await first.close();
  const after = await openTestOutbox(place);
  t.is(after.size, 1, 'closed, the directory opens again');
  await after.close();
});

test("a lock held by a live other process is 'locked' (its pid in details); once that process is SIGKILLed its lock is taken over", async (t) => {
  const place = outboxPlace(t);
  const child = await holder(t, place);
  t.is(readFileSync(join(place.dir, 'lock'), 'utf8'), `${child.pid}\n`);
  const err = await t.throwsAsync(openTestOutbox(place));
  t.is(codeOf(err), 'SIPC_ERR_INVALID_ARGUMENT');
  t.like((err as { details?: object }).details, { reason: 'locked', pid: child.pid });
  t.is(readFileSync(join(place.dir, 'lock'), 'utf8'), `${child.pid}\n`, 'the live lock is left alone');
  const exited = once(child, 'exit');
  child.kill('SIGKILL');
  await exited;
  t.is(readFileSync(join(place.dir, 'lock'), 'utf8'), `${child.pid}\n`, 'a SIGKILL leaves the lock behind');
  const outbox = await openTestOutbox(place);
  t.is(readFileSync(join(place.dir, 'lock'), 'utf8'), `${process.pid}\n`, 'taken over: our pid now');
  await outbox.add('record', { n: 1 });
  await outbox.close();
});

onPosix(
  'a lock file that is a symbolic link is not followed: its target is untouched and the lock is ours',
  async (t) => {
    const place = await madeOutbox(t);
    const target = join(place.root, 'target');
    writeFileSync(target, 'precious\n', { mode: 0o600 });
    symlinkSync(target, join(place.dir, 'lock'));
    const outbox = await openTestOutbox(place);
    t.teardown(() => outbox.close());
    t.false(statSync(join(place.dir, 'lock')).isSymbolicLink());
    t.is(readFileSync(join(place.dir, 'lock'), 'utf8'), `${process.pid}\n`);
    t.is(readFileSync(target, 'utf8'), 'precious\n', 'nothing written through the link');
  },
);

/** Run `code` (a module body; `fs` is node:fs) in a Node process as uid/gid 65534; its stdout. */
function runAsNobody(code: string): Promise<string> {
  return new Promise((resolve, reject) =>
    execFile(
      process.execPath,
      ['--input-type=module', '-e', `import * as fs from 'node:fs';\n${code}`],
      { uid: 65534, gid: 65534, timeout: 30_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim()),
    ),
  );
}

asRoot(
  'protection against other users: a process running as uid 65534 gets EACCES on the directory, journal, lock, key file and anchor',
  async (t) => {
    const place = outboxPlace(t);
    chmodSync(place.root, 0o755); // the parent lets others in, so only the outbox's own modes decide
    const outbox = await openTestOutbox(place);
    t.teardown(() => outbox.close());
    await outbox.add('record', { n: 1 });
    await outbox.close();
    const open = await openTestOutbox(place); // the anchor exists after a close, the lock while open
    t.teardown(() => open.close());
    const readable = join(place.root, 'public');
    writeFileSync(readable, 'anyone', { mode: 0o644 });
    const paths = {
      dir: place.dir,
      journal: join(place.dir, 'outbox.log'),
      lock: join(place.dir, 'lock'),
      key: place.keyFile,
      anchor: `${place.keyFile}.anchor`,
      control: readable,
    };
    const out = await runAsNobody(`
      const paths = ${JSON.stringify(paths)};
      const result = { uid: process.getuid(), gid: process.getgid() };
      for (const [name, path] of Object.entries(paths)) {
        try {
          if (name === 'dir') fs.readdirSync(path);
          else fs.readFileSync(path);
          result[name] = 'read';
        } catch (err) {
          result[name] = err.code;
        }
      }
      try {
        fs.writeFileSync(paths.dir + '/planted', 'x');
        result.plant = 'written';
      } catch (err) {
        result.plant = err.code;
      }
      console.log(JSON.stringify(result));`);
    t.deepEqual(JSON.parse(out), {
      uid: 65534,
      gid: 65534,
      dir: 'EACCES',
      journal: 'EACCES',
      lock: 'EACCES',
      key: 'EACCES',
      anchor: 'EACCES',
      control: 'read',
      plant: 'EACCES',
    });
  },
);

test("minimumProtection 'secure' with a key file is SIPC_ERR_INSUFFICIENT_PROTECTION and creates nothing", async (t) => {
  const place = outboxPlace(t);
  const err = await t.throwsAsync(openTestOutbox(place, { minimumProtection: 'secure' }));
  t.is(codeOf(err), 'SIPC_ERR_INSUFFICIENT_PROTECTION');
  t.like((err as { details?: object }).details, { level: 'weak', minimumProtection: 'secure' });
  t.false(existsSync(place.dir), 'no directory');
  t.false(existsSync(place.keyFile), 'no key file');
  t.false(existsSync(`${place.keyFile}.anchor`), 'no anchor');
  t.deepEqual(readdirSync(place.root), []);
});

test("guard omitted explicitly (guard: undefined): level 'insecure', refused by default, opens with minimumProtection 'insecure'", async (t) => {
  const place = outboxPlace(t);
  const err = await t.throwsAsync(openTestOutbox(place, { guard: undefined }));
  t.is(codeOf(err), 'SIPC_ERR_INSUFFICIENT_PROTECTION');
  t.like((err as { details?: object }).details, { level: 'insecure', minimumProtection: 'weak' });
  t.regex(err!.message, /no access guard/);
  t.deepEqual(readdirSync(place.root), [], 'nothing created');
  const outbox = await openTestOutbox(place, { guard: undefined, minimumProtection: 'insecure' });
  t.teardown(() => outbox.close());
  const p = outbox.protection();
  t.like(p, {
    level: 'insecure',
    key: 'key-file',
    store: 'encrypted-file',
    files: 'unchecked',
    againstOtherUsers: false,
    againstSameUser: false,
  });
  t.true(p.notes.some((n) => /nothing checks who can access the files/.test(n)));
  await outbox.add('record', { n: 1 });
  t.is(outbox.size, 1);
});

onPosix(
  "protection() of a key-file outbox with the POSIX guard: level 'weak', other users kept out, the same user not",
  async (t) => {
    const place = outboxPlace(t);
    const outbox = await openTestOutbox(place);
    t.teardown(() => outbox.close());
    const { notes, ...rest } = outbox.protection();
    t.deepEqual(rest, {
      level: 'weak',
      key: 'key-file',
      store: 'encrypted-file',
      files: 'posix-mode',
      againstOtherUsers: true,
      againstSameUser: false,
    } satisfies Omit<OutboxProtection, 'notes'>);
    t.true(notes.some((n) => /any process running as this user/.test(n)));
    t.true(notes.some((n) => /sealed by the passphrase/.test(n)));
    t.true(Object.isFrozen(outbox.protection()));
    const weak = await t.throwsAsync(openTestOutbox(outboxPlace(t), { minimumProtection: 'secure' }));
    t.is(codeOf(weak), 'SIPC_ERR_INSUFFICIENT_PROTECTION', "'weak' is below 'secure'");
  },
);
