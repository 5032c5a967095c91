// serve --socket-mode / --socket-group / --allow-uid / --allow-gid and ping --allow-uid, through the
// real binary: a root server reached by a client process of uid 65534 (nobody, group 65534 nogroup).
import { chmodSync, chownSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { CliError } from '../src/io.js';
import { parseMode, resolveGroup, unixOptionsFrom } from '../src/unix-options.js';
import { cli, keyFile, serve, tempDir } from './helpers.js';

const NOBODY = 65534;
const rootOnLinux = process.platform === 'linux' && process.geteuid?.() === 0;
function asRootOnLinux(title: string, fn: (t: ExecutionContext) => Promise<void>): void {
  if (rootOnLinux) test(title, fn);
  else test.skip(`${title} (skipped: needs root on Linux to run the client as uid 65534)`, fn);
}

/** A root server's key and a key file uid 65534 owns, in directories that user may traverse. */
async function crossUserSetup(t: ExecutionContext) {
  const dir = await tempDir(t);
  chmodSync(dir, 0o711);
  const server = await keyFile(dir, 'server.key');
  const clientDir = join(dir, 'client');
  mkdirSync(clientDir, { mode: 0o700 });
  const client = await keyFile(clientDir, 'client.key');
  chownSync(clientDir, NOBODY, NOBODY);
  chownSync(client.path, NOBODY, NOBODY);
  const address = `unix://${join(dir, 'svc', 's.sock')}`;
  return {
    dir,
    address,
    serveArgs: ['--listen', address, '--key', server.path, '--allow', client.pub],
    pingArgs: ['ping', address, '--key', client.path, '--server-key', server.pub, '--interval', '0'],
  };
}

asRootOnLinux(
  'serve --socket-mode 0660 --socket-group nogroup --allow-uid 65534: a client of uid 65534 pings a root server',
  async (t) => {
    const { dir, address, serveArgs, pingArgs } = await crossUserSetup(t);
    const s = await serve(t, [
      ...serveArgs,
      '--socket-mode',
      '0660',
      '--socket-group',
      'nogroup',
      '--allow-uid',
      String(NOBODY),
    ]);
    t.is(s.firstLine, `listening ${address}`);
    const sock = join(dir, 'svc', 's.sock');
    t.like(statSync(sock), { uid: 0, gid: NOBODY });
    t.is(statSync(sock).mode & 0o777, 0o660);
    const args = [...pingArgs, '--count', '2'];
    const refused = await cli(args, { uid: NOBODY });
    t.is(refused.code, 4, refused.stderr); // exit 4: peer OS credentials refused
    t.regex(
      refused.stderr,
      /SIPC_ERR_PEER_CREDENTIALS/,
      'by default the client accepts only a server of its own uid',
    );
    const ok = await cli([...args, '--allow-uid', '0'], { uid: NOBODY });
    t.is(ok.code, 0, ok.stderr);
    t.regex(ok.stdout, /\(pid \d+, uid 0, gid 0 via unix\)/);
    t.regex(ok.stdout, /2 pings, 0 failed/);
    t.regex(s.stderr(), /connected/);
    t.is(await s.stop(), 0);
  },
);

asRootOnLinux(
  'serve without --allow-uid refuses a client of another uid at accept, even on a 0666 socket',
  async (t) => {
    const { serveArgs, pingArgs } = await crossUserSetup(t);
    const s = await serve(t, [...serveArgs, '--socket-mode', '0666']);
    const r = await cli([...pingArgs, '--count', '1', '--allow-uid', '0'], { uid: NOBODY });
    t.not(r.code, 0);
    t.is(await s.stop(), 0);
    t.regex(s.stderr(), /rejected a connection: .*SIPC_ERR_PEER_CREDENTIALS/);
  },
);

test('the Unix options: bad values are usage errors (exit 2) naming the option', async (t) => {
  const dir = await tempDir(t);
  const server = await keyFile(dir, 'server.key');
  const base = [
    'serve',
    '--listen',
    `unix://${join(dir, 'run', 's.sock')}`,
    '--key',
    server.path,
    '--allow',
    server.pub,
  ];
  for (const [extra, message] of [
    [['--socket-mode', 'rw'], /--socket-mode must be an octal mode/],
    [['--socket-mode', '0644'], /socketMode must be 0o600, 0o660 or 0o666/],
    [['--socket-group', 'no-such-group-here'], /no such group in \/etc\/group; give the numeric group id/],
    [['--allow-uid', 'root'], /--allow-uid must be a numeric id/],
    [['--allow-gid=-1'], /--allow-gid must be a numeric id/],
  ] as const) {
    const r = await cli([...base, ...extra]);
    t.is(r.code, 2, `${extra.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, message);
  }
});

test('the Unix options on a tcp:// address are a usage error (exit 2): tcp:// checks no uid', async (t) => {
  const dir = await tempDir(t);
  const key = await keyFile(dir, 'a.key');
  for (const args of [
    ['serve', '--listen', 'tcp://127.0.0.1:0', '--key', key.path, '--allow', key.pub, '--allow-uid', '0'],
    [
      'serve',
      '--listen',
      'tcp://127.0.0.1:0',
      '--key',
      key.path,
      '--allow',
      key.pub,
      '--socket-mode',
      '0660',
    ],
    ['ping', 'tcp://127.0.0.1:1', '--key', key.path, '--server-key', key.pub, '--allow-gid', '0'],
  ]) {
    const r = await cli(args);
    t.is(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
    t.regex(r.stderr, /: tcp:\/\/127\.0\.0\.1:\d: tcp:\/\/ checks no OS credentials; --allow-uid, /);
    t.notRegex(r.stderr, /listening|connected/);
  }
});

test('parseMode, resolveGroup and the Windows refusal', async (t) => {
  t.is(parseMode('0660'), 0o660);
  t.is(parseMode('660'), 0o660);
  t.is(parseMode('0o666'), 0o666);
  t.throws(() => parseMode('0x1b6'), { instanceOf: CliError });
  const dir = await tempDir(t);
  const groups = join(dir, 'group');
  writeFileSync(groups, 'root:x:0:\nhelper:x:1234:alice,bob\nbroken:x:notanumber:\n');
  t.is(resolveGroup('helper', groups), 1234);
  t.is(resolveGroup('4321', groups), 4321);
  t.throws(() => resolveGroup('broken', groups), { message: /no such group/ });
  t.throws(() => resolveGroup('helper', join(dir, 'missing')), { message: /cannot read/ });
  t.deepEqual(unixOptionsFrom({}), {});
  t.deepEqual(unixOptionsFrom({ 'allow-uid': ['0', '1000'], 'socket-mode': '0660', 'socket-group': '5' }), {
    allowedUids: [0, 1000],
    socketMode: 0o660,
    socketGroup: 5,
  });
  t.throws(() => unixOptionsFrom({ 'allow-uid': ['0'] }, 'win32'), {
    message: /--allow-uid is for Unix sockets/,
  });
  // A command passes its whole parse result: its other options are no Unix options (on Windows
  // `serve --listen` was refused as "--listen is for Unix sockets" before they were told apart).
  const commandValues = { listen: 'local://x', key: 'k', 'allow-uid': [], 'allow-sid': ['interactive'] };
  t.deepEqual(unixOptionsFrom(commandValues, 'win32'), {});
});

asRootOnLinux(
  'serve --listen local://system/APP as root; ping from uid 65534 needs no --allow-uid (a system endpoint must be root’s)',
  async (t) => {
    const { serveArgs, pingArgs } = await crossUserSetup(t);
    const address = `local://system/sipc-cli-test-${process.pid}`;
    const listenAt = [...serveArgs];
    listenAt[1] = address;
    const s = await serve(t, [...listenAt, '--socket-mode', '0666', '--allow-uid', String(NOBODY)]);
    t.is(s.firstLine, `listening ${address}`);
    const ping = [...pingArgs];
    ping[1] = address;
    const r = await cli([...ping, '--count', '1'], { uid: NOBODY });
    t.is(r.code, 0, r.stderr);
    t.regex(r.stdout, /\(pid \d+, uid 0, gid 0 via unix\)/);
    t.is(await s.stop(), 0);
  },
);
