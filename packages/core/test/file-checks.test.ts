/**
 * Every reader of key, certificate and revocation files opens without following links and without
 * blocking, then checks the descriptor (regular file, owner, mode, size) before reading (issue 12,
 * row 12). Real files, real FIFOs (mkfifo), real symlinks, real uids (chown and setpriv as root).
 */
import { execFile, execFileSync } from 'node:child_process';
import {
  chmodSync,
  chownSync,
  closeSync,
  constants,
  openSync,
  symlinkSync,
  truncateSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import test, { type Implementation } from 'ava';
import {
  addToRevocationFile,
  generateAuthority,
  issueCertificate,
  readAuthorityFile,
  readCertificateFile,
  readEncryptedKeyFile,
  readRevocationFile,
  readSecretKeyFile,
  watchRevocationList,
  writeAuthorityFile,
  writeCertificateFile,
  writeEncryptedKeyFile,
  writeSecretKeyFile,
} from '../src/index.js';
import { generateKeyPair } from '../src/keys/key-pair.js';
import { type FileKind, fileProblem } from '../src/keys/private-file.js';
import { codeOf, tempDir } from './identity-helpers.js';

const posix = process.platform !== 'win32';
const root = process.geteuid?.() === 0;
// Explicit gates: FIFOs, O_NOFOLLOW and POSIX owners exist only off Windows; chown and setpriv need root.
const onPosix: (title: string, fn: Implementation<[]>) => void = posix
  ? test
  : (title: string, fn: Implementation<[]>) =>
      test.skip(`${title} (skipped on Windows: no FIFOs, O_NOFOLLOW or POSIX owners there)`, fn);
const asRoot = posix && root ? test : test.skip;
const asRootOnLinux = process.platform === 'linux' && root ? test : test.skip;

// libsodium's INTERACTIVE Argon2 limits: the cheapest the encrypted key file accepts.
const FAST = { opslimit: 2, memlimit: 64 * 1024 * 1024 };

/** One reader of the table: how to make a valid file, read it, and what it refuses with. */
interface Reader {
  readonly name: string;
  readonly kind: FileKind;
  /** The size cap, in bytes. */
  readonly cap: number;
  /** The code for a path that is a link or not a regular file. */
  readonly pathCode: string;
  make(path: string): Promise<void>;
  read(path: string): Promise<unknown>;
}

const readers: Reader[] = [
  {
    name: 'secret key file',
    kind: 'secret',
    cap: 256,
    pathCode: 'SIPC_ERR_INVALID_ARGUMENT',
    make: (p) => writeSecretKeyFile(p, generateKeyPair().secretKey),
    read: (p) => readSecretKeyFile(p),
  },
  {
    name: 'encrypted key file',
    kind: 'secret',
    cap: 1024,
    pathCode: 'SIPC_ERR_BAD_KEY',
    make: (p) => writeEncryptedKeyFile(p, generateKeyPair().secretKey, 'pass', FAST),
    read: (p) => readEncryptedKeyFile(p, 'pass'),
  },
  {
    name: 'authority key file',
    kind: 'secret',
    cap: 1024,
    pathCode: 'SIPC_ERR_BAD_KEY',
    make: (p) => writeAuthorityFile(p, generateAuthority()),
    read: (p) => readAuthorityFile(p),
  },
  {
    name: 'certificate file',
    kind: 'public',
    cap: 8192,
    pathCode: 'SIPC_ERR_BAD_CERTIFICATE',
    make: (p) =>
      writeCertificateFile(
        p,
        issueCertificate(generateAuthority(), { subjectKey: generateKeyPair().publicKey, name: 'x' }),
      ),
    read: (p) => readCertificateFile(p),
  },
  {
    name: 'revocation list file',
    kind: 'trust',
    cap: 16 * 1024 * 1024,
    pathCode: 'SIPC_ERR_INVALID_ARGUMENT',
    make: async (p) => void (await addToRevocationFile(p, { serials: [1] })),
    read: (p) => readRevocationFile(p),
  },
];
// The watcher's reads (first load and every reload) go through the same checks.
readers.push({
  ...readers[4]!,
  name: 'watched revocation list file',
  read: async (p) => (await watchRevocationList(p, { fsWatch: false })).close(),
});

for (const r of readers) {
  onPosix(`${r.name}: a FIFO is refused at once, before any read (it cannot hang the reader)`, async (t) => {
    const path = join(tempDir(t), 'fifo');
    execFileSync('mkfifo', ['-m', '0600', path]);
    const outcome = await Promise.race([
      r.read(path).then(
        () => 'read' as const,
        (err: unknown) => err,
      ),
      sleep(5000, 'hung' as const),
    ]);
    // If the reader hung in open() (what main did), a writer that opens and closes releases it.
    if (outcome === 'hung') closeSync(openSync(path, constants.O_WRONLY | constants.O_NONBLOCK));
    t.not(outcome, 'hung', 'the reader blocked on the FIFO');
    t.is(codeOf(outcome), r.pathCode);
    t.regex((outcome as Error).message, /is a FIFO, not a regular file/);
    t.like((outcome as { details?: unknown }).details, { path, reason: 'not-regular' });
  });

  onPosix(
    `${r.name}: a symbolic link is refused, even to a valid file (links are not followed)`,
    async (t) => {
      const dir = tempDir(t);
      const real = join(dir, 'real');
      await r.make(real);
      await t.notThrowsAsync(r.read(real), 'the file itself is fine');
      const link = join(dir, 'link');
      symlinkSync(real, link);
      const err = await t.throwsAsync(r.read(link));
      t.is(codeOf(err), r.pathCode);
      t.regex(
        err!.message,
        /is a symbolic link: key, certificate and revocation files are opened without following links/,
      );
      t.like((err as { details?: unknown }).details, { path: link, reason: 'symlink' });
    },
  );

  test(`${r.name}: over its ${r.cap}-byte cap it is refused from fstat, before reading`, async (t) => {
    const path = join(tempDir(t), 'big');
    writeFileSync(path, '', { mode: 0o600 });
    // Sparse: the size is what fstat reports, nothing is read.
    truncateSync(path, r.cap + 1);
    const err = await t.throwsAsync(r.read(path));
    t.regex(err!.message, new RegExp(`is larger than ${r.cap} bytes`));
  });

  asRoot(
    `${r.name}: owned by another uid (65534) it is ${r.kind === 'public' ? 'still read (a certificate is public)' : 'refused, naming the owner'} (needs root to chown)`,
    async (t) => {
      const path = join(tempDir(t), 'file');
      await r.make(path);
      chownSync(path, 65534, 65534);
      if (r.kind === 'public') return void (await t.notThrowsAsync(r.read(path)));
      const err = await t.throwsAsync(r.read(path));
      t.is(codeOf(err), r.kind === 'secret' ? 'SIPC_ERR_INSECURE_KEY_FILE' : 'SIPC_ERR_INSECURE_FILE');
      t.regex(err!.message, /is owned by uid 65534, not by this process's user \(uid 0\) or root/);
      t.like((err as { details?: unknown }).details, { path, uid: 65534, reason: 'owner' });
    },
  );
}

for (const mode of [0o664, 0o646, 0o666]) {
  onPosix(
    `a revocation list writable by group or others (mode 0${mode.toString(8)}) is refused: they could un-revoke anyone`,
    async (t) => {
      const path = join(tempDir(t), 'revoked.json');
      await addToRevocationFile(path, { serials: [7] });
      chmodSync(path, mode);
      for (const read of [readRevocationFile, (p: string) => watchRevocationList(p, { fsWatch: false })]) {
        const err = await t.throwsAsync(read(path));
        t.is(codeOf(err), 'SIPC_ERR_INSECURE_FILE');
        t.regex(
          err!.message,
          new RegExp(`is writable by group or others \\(mode 0${mode.toString(8)}\\).*chmod go-w`),
        );
      }
      chmodSync(path, 0o644);
      t.true((await readRevocationFile(path)).serials.has(7), 'readable by others is fine: it is not secret');
    },
  );
}

/** Run a module snippet as `uid` through setpriv; resolves with its stdout. */
function runAs(uid: number, code: string): Promise<string> {
  const core = new URL('../src/index.js', import.meta.url).href;
  return new Promise((resolve, reject) =>
    execFile(
      'setpriv',
      [
        `--reuid=${uid}`,
        `--regid=${uid}`,
        '--clear-groups',
        process.execPath,
        '--input-type=module',
        '-e',
        `const core = await import(${JSON.stringify(core)});\n${code}`,
      ],
      { timeout: 30_000 },
      (err, stdout, stderr) =>
        err ? reject(new Error(`${err.message}\n${stderr}`)) : resolve(stdout.trim()),
    ),
  );
}

asRootOnLinux(
  'uid 65534 reads a root-owned revocation list and certificate, and refuses one owned by uid 65533 (needs root for setpriv)',
  async (t) => {
    const dir = tempDir(t);
    chmodSync(dir, 0o755);
    const byRoot = join(dir, 'root.json');
    await addToRevocationFile(byRoot, { serials: [3] });
    const cert = join(dir, 'cert');
    await readers[3]!.make(cert);
    const byOther = join(dir, 'other.json');
    await addToRevocationFile(byOther, { serials: [3] });
    chownSync(byOther, 65533, 65533);
    const out = await runAs(
      65534,
      `const list = await core.readRevocationFile(${JSON.stringify(byRoot)});
     await core.readCertificateFile(${JSON.stringify(cert)});
     const err = await core.readRevocationFile(${JSON.stringify(byOther)}).catch((e) => e);
     console.log(JSON.stringify({ revoked: list.serials.has(3), code: err.code, message: err.message }));`,
    );
    const r = JSON.parse(out) as { revoked: boolean; code: string; message: string };
    t.true(r.revoked, 'root is trusted as an owner');
    t.is(r.code, 'SIPC_ERR_INSECURE_FILE');
    t.regex(r.message, /is owned by uid 65533, not by this process's user \(uid 65534\) or root/);
  },
);

/** A stat-like object for the pure rules. */
function fakeStat(kind: 'file' | 'dir', uid: number, mode: number) {
  const is = (k: string) => () => k === kind;
  return {
    isFile: is('file'),
    isDirectory: is('dir'),
    isFIFO: is('fifo'),
    isSocket: is('socket'),
    isCharacterDevice: is('chr'),
    isBlockDevice: is('blk'),
    uid,
    mode,
  };
}

test('the rules per platform: Windows checks the file type and size only; POSIX trusts the effective uid and root as owners', (t) => {
  const secret = { code: 'SIPC_ERR_BAD_KEY', kind: 'secret' } as const;
  const trust = { code: 'SIPC_ERR_INVALID_ARGUMENT', kind: 'trust' } as const;
  // Windows: Node reports uid 0 and synthetic modes, there is no effective uid: only the type counts.
  t.is(fileProblem('k', fakeStat('file', 1000, 0o100666), secret, 'win32', undefined), undefined);
  t.is(fileProblem('r', fakeStat('file', 1000, 0o100666), trust, 'win32', undefined), undefined);
  t.is(fileProblem('d', fakeStat('dir', 0, 0o40777), secret, 'win32', undefined)?.code, 'SIPC_ERR_BAD_KEY');
  // POSIX: the effective uid or root may own it.
  t.is(fileProblem('k', fakeStat('file', 1000, 0o100600), secret, 'linux', 1000), undefined);
  t.is(fileProblem('k', fakeStat('file', 0, 0o100600), secret, 'linux', 1000), undefined);
  t.is(
    fileProblem('k', fakeStat('file', 1001, 0o100600), secret, 'linux', 1000)?.code,
    'SIPC_ERR_INSECURE_KEY_FILE',
  );
  t.is(
    fileProblem('k', fakeStat('file', 1000, 0o100640), secret, 'linux', 1000)?.code,
    'SIPC_ERR_INSECURE_KEY_FILE',
  );
  t.is(fileProblem('r', fakeStat('file', 0, 0o100644), trust, 'linux', 1000), undefined);
  t.is(
    fileProblem('r', fakeStat('file', 1000, 0o100620), trust, 'linux', 1000)?.code,
    'SIPC_ERR_INSECURE_FILE',
  );
  t.is(
    fileProblem('c', fakeStat('file', 1001, 0o100666), { code: 'SIPC_ERR_BAD_CERTIFICATE' }, 'linux', 1000),
    undefined,
  );
});
