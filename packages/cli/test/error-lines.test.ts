// Error lines through the real binary: every command exits 3 for a key, certificate or list file
// that cannot be opened (the exit-code table), each line names the command and subcommand that
// failed, and the cause chain is printed (never a stack trace).
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import test from 'ava';
import { usage as caUsage } from '../src/commands/ca.js';
import { cli, keyFile, tempDir } from './helpers.js';

test('a missing key, certificate or list file exits 3 on every command, the line naming the command', async (t) => {
  const dir = await tempDir(t);
  const { path, pub } = await keyFile(dir, 'a.key');
  const nope = join(dir, 'nope');
  const tcp = 'tcp://127.0.0.1:1';
  const cases: Array<[prefix: string, args: string[]]> = [
    ['pubkey', ['pubkey', '--key', nope]],
    ['keygen', ['keygen', '--import', nope, '--out', join(dir, 'new.key')]],
    ['serve', ['serve', '--listen', 'tcp://127.0.0.1:0', '--key', nope, '--allow', pub]],
    ['serve', ['serve', '--listen', 'tcp://127.0.0.1:0', '--key', path, '--cert', nope, '--trust-ca', pub]],
    [
      'serve',
      ['serve', '--listen', 'tcp://127.0.0.1:0', '--key', path, '--trust-ca', pub, '--revocations', nope],
    ],
    ['ping', ['ping', tcp, '--key', nope, '--server-key', pub]],
    ['ping', ['ping', tcp, '--key', path, '--cert', nope, '--trust-ca', pub]],
    ['call', ['call', tcp, 'm', '--key', nope, '--server-key', pub]],
    ['ca pubkey', ['ca', 'pubkey', '--key', nope]],
    ['cert issue', ['cert', 'issue', '--ca', nope, '--pubkey', pub, '--name', 'n', '--out', join(dir, 'c')]],
    ['cert inspect', ['cert', 'inspect', nope]],
  ];
  for (const [prefix, args] of cases) {
    const r = await cli(args);
    t.is(r.code, 3, `${args.join(' ')}: ${r.stderr}`);
    t.is(r.stdout, '');
    t.true(
      r.stderr.startsWith(`secure-ipc ${prefix}: `) && r.stderr.includes(nope),
      `${args.join(' ')}: ${r.stderr}`,
    );
    t.regex(r.stderr, /caused by ENOENT: no such file or directory/);
    t.notRegex(r.stderr, /\n\s+at /);
  }
  // A directory where a file should be, and an output in a missing directory: file problems too.
  await mkdir(join(dir, 'adir'));
  const isDir = await cli(['pubkey', '--key', join(dir, 'adir')]);
  t.is(isDir.code, 3, isDir.stderr);
  t.regex(isDir.stderr, /^secure-ipc pubkey: /);
  const noDir = await cli(['keygen', '--out', join(dir, 'missing', 'x.key')]);
  t.is(noDir.code, 3, noDir.stderr);
  t.regex(noDir.stderr, /^secure-ipc keygen: Cannot create .*caused by ENOENT/);
  const caNoDir = await cli(['ca', 'init', '--out', join(dir, 'missing', 'ca.key')]);
  t.is(caNoDir.code, 3, caNoDir.stderr);
  t.regex(caNoDir.stderr, /^secure-ipc ca init: .*caused by ENOENT/);
  const revokeNoDir = await cli(['revoke', '--list', join(dir, 'missing', 'l.json'), '--serial', '1']);
  t.is(revokeNoDir.code, 3, revokeNoDir.stderr);
  t.regex(revokeNoDir.stderr, /^secure-ipc revoke: cannot update .* \(caused by ENOENT: /);
});

test('usage errors name the subcommand and show its usage; parseArgs advice is cut to its first line', async (t) => {
  const ambiguous = await cli(['ca', 'init', '--out', '--json']);
  t.is(ambiguous.code, 2);
  t.is(
    ambiguous.stdout.trim().split('\n').length,
    1,
    '`--json` is seen, so the failure is one JSON line on stdout',
  );
  const noValue = await cli(['ca', 'pubkey', '--key']);
  t.is(noValue.code, 2);
  t.is(noValue.stderr, `secure-ipc ca pubkey: Option '--key <value>' argument missing\nusage: ${caUsage}\n`);
  const ambiguousText = await cli(['cert', 'issue', '--ca', '-x']);
  t.is(ambiguousText.code, 2);
  t.regex(ambiguousText.stderr, /^secure-ipc cert issue: Option '--ca' argument is ambiguous\.\nusage: /);
});
