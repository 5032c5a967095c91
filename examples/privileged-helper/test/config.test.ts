/**
 * A bad config, command line or key file stops the programs at once with a typed error naming
 * what is wrong (exit code 2), before anything listens or connects. No root needed (Unix: the
 * config-file owner and mode checks are POSIX ones).
 */
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { APP, DAEMON, keyFiles, runToEnd, scratch, writeJson } from './helpers.js';

const posix = process.platform !== 'win32';
const onPosix = posix ? test : test.skip;
const skipReason = posix ? '' : ' (skipped: the owner and mode checks are POSIX ones)';

/** A daemon config that is valid, in a scratch directory; `change` edits it. */
async function daemonConfig(t: ExecutionContext, change: Record<string, unknown>, mode = 0o644) {
  const dir = scratch(t);
  const keyFile = join(dir, 'daemon.key');
  const appKey = await keyFiles([keyFile]);
  const config = {
    address: `unix://${dir}/helper.sock`,
    keyFile,
    appKeys: [appKey],
    adminKeys: [],
    ...change,
  };
  return writeJson(join(dir, 'daemon.json'), config, undefined, mode);
}

/** Each: what is wrong, the change to a valid config, the file's mode, the error code and what its message says. */
const DAEMON_CASES: [
  title: string,
  change: Record<string, unknown>,
  mode: number,
  code: string,
  says: string,
][] = [
  [
    'a misspelt field',
    { alowedUids: [1000] },
    0o644,
    'SIPC_ERR_INVALID_ARGUMENT',
    'unknown field "alowedUids"',
  ],
  [
    'a field of the wrong type',
    { allowedUids: ['1000'] },
    0o644,
    'SIPC_ERR_INVALID_ARGUMENT',
    '"allowedUids" must be a list of uids',
  ],
  [
    'a malformed public key',
    { appKeys: ['not a key'] },
    0o644,
    'SIPC_ERR_INVALID_ARGUMENT',
    '"appKeys" must be a list of base64 public keys',
  ],
  [
    'a Windows option on a Unix address',
    { allowedSids: ['S-1-5-18'] },
    0o644,
    'SIPC_ERR_INVALID_ARGUMENT',
    'Not for Unix sockets: allowedSids',
  ],
  [
    'a socket mode that is not one of the three',
    { socketMode: '0777' },
    0o644,
    'SIPC_ERR_INVALID_ARGUMENT',
    '"socketMode" must be "0600", "0660" or "0666"',
  ],
  ['a config others may write', {}, 0o666, 'SIPC_ERR_INSECURE_FILE', 'not writable by group or others'],
  [
    'a missing key file',
    { keyFile: '/nonexistent/daemon.key' },
    0o644,
    'SIPC_ERR_INVALID_ARGUMENT',
    'Cannot open /nonexistent/daemon.key',
  ],
];

for (const [title, change, mode, code, says] of DAEMON_CASES)
  onPosix(`the daemon refuses ${title}, with a typed error and exit code 2${skipReason}`, async (t) => {
    const run = await runToEnd(t, DAEMON, [await daemonConfig(t, change, mode)]);
    t.is(run.code, 2);
    t.is(run.lines.length, 0, 'nothing was listening');
    const [line] = run.stderr;
    t.true(line?.startsWith(`daemon: cannot start: ${code}: `), line);
    t.true(line?.includes(says), line);
  });

onPosix(`the app refuses a malformed daemon key, and an unknown method${skipReason}`, async (t) => {
  const dir = scratch(t);
  const keyFile = join(dir, 'app.key');
  await keyFiles([keyFile]);
  const config = writeJson(join(dir, 'app.json'), {
    address: 'local://system/x',
    keyFile,
    daemonKey: 'AAAA',
  });
  const bad = await runToEnd(t, APP, [config]);
  t.is(bad.code, 2);
  t.like(bad.lines[0], { config: false, error: 'SIPC_ERR_INVALID_ARGUMENT' });
  t.regex(bad.lines[0]!.message, /"daemonKey" must be a base64 public key/);
  const usage = await runToEnd(t, APP, [config, 'admin.reboot']);
  t.is(usage.code, 2);
  t.regex(
    usage.stderr.join('\n'),
    /^usage: node app\.js APP\.json \[status\.get \| admin\.shutdown \.\.\.\]/,
  );
});
