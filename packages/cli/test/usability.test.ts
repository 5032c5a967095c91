// What a person at the terminal expects of the real binary: --help on every command and
// subcommand, the port serve really bound, the authority's public key again, error lines naming
// the subcommand that failed.
import { join } from 'node:path';
import test from 'ava';
import { cli, keyFile, serve, tempDir } from './helpers.js';

const EVERY = [
  ['keygen'],
  ['pubkey'],
  ['serve'],
  ['ping'],
  ['call'],
  ['ca'],
  ['ca', 'init'],
  ['ca', 'pubkey'],
  ['cert'],
  ['cert', 'issue'],
  ['cert', 'inspect'],
  ['revoke'],
  ['audit'],
  ['audit', 'verify'],
  ['audit', 'tail'],
  ['audit', 'proof'],
  ['doctor'],
];

test('--help and -h on every command and subcommand print its usage on stdout and exit 0', async (t) => {
  for (const command of EVERY)
    for (const flag of ['--help', '-h']) {
      const r = await cli([...command, flag]);
      t.is(r.code, 0, `${command.join(' ')} ${flag}: ${r.stderr}`);
      t.regex(r.stdout, new RegExp(`^usage: secure-ipc ${command[0]} `), command.join(' '));
      t.is(r.stderr, '');
    }
  // Also after other options, as a person types it.
  const late = await cli(['serve', '--listen', 'tcp://127.0.0.1:0', '--help']);
  t.is(late.code, 0);
});

test('serve prints the address it bound: the real port for tcp://127.0.0.1:0, which ping then reaches', async (t) => {
  const dir = await tempDir(t);
  const server = await keyFile(dir, 'server.key');
  const client = await keyFile(dir, 'client.key');
  const s = await serve(t, ['--listen', 'tcp://127.0.0.1:0', '--key', server.path, '--allow', client.pub]);
  const m = /^listening tcp:\/\/127\.0\.0\.1:(\d+)$/.exec(s.firstLine);
  t.truthy(m, s.firstLine);
  t.not(Number(m![1]), 0);
  const address = s.firstLine.slice('listening '.length);
  const r = await cli(['ping', address, '--key', client.path, '--server-key', server.pub, '--count', '1']);
  t.is(r.code, 0, r.stderr);
  t.is(await s.stop(), 0);
});

test('ca pubkey --key FILE prints the public key ca init printed; errors name the subcommand', async (t) => {
  const dir = await tempDir(t);
  const caFile = join(dir, 'ca.key');
  const init = await cli(['ca', 'init', '--out', caFile]);
  t.is(init.code, 0, init.stderr);
  const again = await cli(['ca', 'pubkey', '--key', caFile]);
  t.is(again.code, 0, again.stderr);
  t.is(again.stdout, init.stdout);
  const missing = await cli(['ca', 'pubkey', '--key', join(dir, 'nope.key')]);
  t.is(missing.code, 3, missing.stderr);
  t.regex(missing.stderr, /^secure-ipc ca pubkey: /);
  const badKey = await cli([
    'cert',
    'issue',
    '--ca',
    caFile,
    '--pubkey',
    'x',
    '--name',
    'n',
    '--out',
    join(dir, 'c'),
  ]);
  t.is(badKey.code, 3);
  t.regex(badKey.stderr, /^secure-ipc cert issue: --pubkey must be a public key/);
  const unknown = await cli(['ca', 'frobnicate']);
  t.is(unknown.code, 2);
  t.regex(
    unknown.stderr,
    /^secure-ipc ca: unknown ca subcommand "frobnicate" \(expected init, pubkey, serve, token, enrol or renew\)/,
  );
});
