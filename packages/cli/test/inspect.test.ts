// `secure-ipc inspect` through the real binary against a real `secure-ipc serve` process over a
// unix socket: the table and `--json` for a key given `--grant-stats`, another live channel in
// it, and the documented exit codes for a key the policy does not grant `$stats` (6) and for an
// address nothing answers (4).
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { cli, cliMain, keyFile, spawnServer, statsServer, tempDir } from './helpers.js';

async function fingerprint(path: string): Promise<string> {
  const r = await cli(['pubkey', '--key', path, '--json']);
  return (JSON.parse(r.stdout) as { fingerprint: string }).fingerprint;
}

/** A serve granting `$stats` to `ops` only, and a second client `app` connected (a `ping` running). */
async function setup(t: ExecutionContext) {
  const { address, server, clients } = await statsServer(t, ['ops.key', 'app.key']);
  const [ops, app] = clients as [(typeof clients)[0], (typeof clients)[0]];
  // A live channel besides inspect's own: its first line is printed once the channel is open.
  const pinger = await spawnServer(t, cliMain, [
    'ping',
    address,
    '--key',
    app.path,
    '--server-key',
    server.pub,
    '--count',
    '1000',
  ]);
  t.regex(pinger.firstLine, /^connected to /);
  const inspect = (key: string, extra: string[] = []) =>
    cli(['inspect', address, '--key', key, '--server-key', server.pub, ...extra]);
  return { address, server, ops, app, inspect, pinger };
}

test('inspect: a table of the live channels, one line per channel, for a key granted $stats', async (t) => {
  const { ops, app, inspect } = await setup(t);
  const r = await inspect(ops.path);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
  const lines = r.stdout.trimEnd().split('\n');
  t.regex(lines[0]!, /^ID +PEER +ROLES +TRANSPORT +AGE +OK +FAILED +IN-FLIGHT +QUEUED +LAST-CALL$/);
  t.is(lines.at(-1), '2 channels');
  const short = (fp: string) => fp.slice(0, 'BLAKE2b:'.length + 12);
  const [opsShort, appShort] = [short(await fingerprint(ops.path)), short(await fingerprint(app.path))];
  const opsLine = lines.find((l) => l.includes(opsShort));
  const appLine = lines.find((l) => l.includes(appShort));
  // inspect's own channel: role stats, its own $stats request not answered yet when counted.
  t.regex(opsLine ?? '', /^ *\d+ +BLAKE2b:\S{12} +stats +unix +\d+m?s +0 +0 +0 +\d+ +\d+m?s ago$/);
  // The pinger: no role, its pings answered ok (or none yet), never failed.
  t.regex(appLine ?? '', /^ *\d+ +BLAKE2b:\S{12} +- +unix +\S+ +\d+ +0 +[01] +\d+ +(-|\S+ ago)$/);
});

test('inspect --json: the $stats answer on one line (version 1, every channel)', async (t) => {
  const { ops, app, inspect } = await setup(t);
  const r = await inspect(ops.path, ['--json']);
  t.is(r.code, 0, r.stderr + r.stdout); // with --json a failure is on stdout
  t.is(r.stdout.split('\n').length, 2, 'one line');
  const stats = JSON.parse(r.stdout) as {
    v: number;
    at: number;
    channels: Array<Record<string, unknown> & { peer: string; calls: Record<string, number> }>;
  };
  t.is(stats.v, 1);
  t.true(Number.isSafeInteger(stats.at));
  t.is(stats.channels.length, 2);
  const byPeer = new Map(stats.channels.map((c) => [c.peer, c]));
  const own = byPeer.get(await fingerprint(ops.path))!;
  t.deepEqual(own.roles, ['stats']);
  t.is(own.transport, 'unix');
  t.deepEqual(own.calls, { started: 1, ok: 0, failed: 0 });
  const other = byPeer.get(await fingerprint(app.path))!;
  t.deepEqual(other.roles, []);
  t.is(other.calls.failed, 0);
  t.deepEqual(Object.keys(own).sort(), [
    'bytesQueued',
    'calls',
    'id',
    'inFlight',
    'lastCallAt',
    'openedAt',
    'peer',
    'protocolVersion',
    'roles',
    'transport',
  ]);
});

test('inspect with a key the policy does not grant $stats: exit 6, a line saying so (and --json)', async (t) => {
  const { app, inspect } = await setup(t);
  const r = await inspect(app.path);
  t.is(r.code, 6);
  t.is(r.stdout, '');
  t.regex(
    r.stderr,
    /^secure-ipc inspect: the server's policy does not grant \$stats to this key .*--grant-stats.*caused by SIPC_ERR_FORBIDDEN/,
  );
  const j = await inspect(app.path, ['--json']);
  t.is(j.code, 6);
  const { error } = JSON.parse(j.stdout) as { error: Record<string, unknown> };
  t.is(error.command, 'inspect');
  t.is(error.code, 'SIPC_ERR_FORBIDDEN');
  t.is(error.exitCode, 6);
});

test('inspect of an address nothing answers: exit 4; a usage error: exit 2 with the usage', async (t) => {
  const dir = await tempDir(t);
  const key = await keyFile(dir, 'k.key');
  const r = await cli([
    'inspect',
    `unix://${join(dir, 'none.sock')}`,
    '--key',
    key.path,
    '--server-key',
    key.pub,
  ]);
  t.is(r.code, 4, r.stderr);
  t.regex(r.stderr, /^secure-ipc inspect: .*SIPC_ERR_CONNECT_FAILED/);
  const u = await cli(['inspect', '--key', key.path, '--server-key', key.pub]);
  t.is(u.code, 2);
  t.regex(u.stderr, /give exactly one ADDRESS\nusage: secure-ipc inspect ADDRESS/);
});
