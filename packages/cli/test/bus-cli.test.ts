/**
 * `secure-ipc bus serve` and `bus names` (docs/bus.md section 12), each a separate process over a
 * real Unix socket: a service process owns a name, `bus names` lists it with its owner and the
 * queue (and with --identity, who the owner is), a call is routed under the --config policy, a
 * quota diagnostic is reported on stderr, SIGHUP reloads the policy (a call refused before is
 * routed after; a bad file keeps the running policy), SIGINT stops the broker and removes the
 * socket; `bus monitor` is refused without `$bus.monitor` and, granted, prints the metadata of a
 * routed call and its reply, never the body. Bad configuration files are exit 2 naming the
 * setting; an unreadable one exit 3.
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { connectBus } from '@secure-ipc/bus';
import { decodeKey, readSecretKeyFile } from '@secure-ipc/core';
import { unixTransport } from '@secure-ipc/transport-unix';
import test, { type ExecutionContext } from 'ava';
import { cli, cliMain, keyFile, spawnServer, tempDir } from './helpers.js';

const serviceMain = fileURLToPath(new URL('./fixtures/bus-service.js', import.meta.url));
const NAME = 'org.example.Sync';

const config = (service: string, caller: string, callerGrants: string[]) =>
  JSON.stringify({
    policy: {
      roles: {
        service: { own: ['org.example.*'] },
        caller: { call: ['$bus.identity', ...callerGrants] },
      },
      peers: [
        { key: service, roles: ['service'] },
        { key: caller, roles: ['caller'] },
      ],
    },
    quotas: { peer: { names: 1 } },
  });

async function until(t: ExecutionContext, what: string, check: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !check(); i++) await new Promise((r) => setTimeout(r, 20));
  t.true(check(), what);
}

test('bus serve + bus names + bus monitor: a name with its owner and queue, identities, a routed call, a quota line, SIGHUP reloads the policy, a monitor sees metadata only, SIGINT stops', async (t) => {
  const dir = await tempDir(t);
  const [broker, s1, s2, caller] = await Promise.all(
    ['broker.key', 's1.key', 's2.key', 'caller.key'].map((n) => keyFile(dir, n)),
  );
  const file = join(dir, 'bus.json');
  const policyFor = (grants: string[]) =>
    JSON.parse(config(s1!.pub, caller!.pub, grants)) as { policy: { peers: unknown[] } };
  const withS2 = (grants: string[]) => {
    const c = policyFor(grants);
    c.policy.peers.push({ key: s2!.pub, roles: ['service'] });
    return JSON.stringify(c);
  };
  await writeFile(file, withS2([]), { mode: 0o600 });
  const sock = join(dir, 'run', 'bus.sock');
  const address = `unix://${sock}`;
  const allow = [s1!, s2!, caller!].flatMap((k) => ['--allow', k.pub]);
  const b = await spawnServer(t, cliMain, [
    'bus',
    'serve',
    '--listen',
    address,
    '--key',
    broker!.path,
    ...allow,
    '--config',
    file,
  ]);
  t.is(b.firstLine, `listening ${address}`);

  const one = await spawnServer(t, serviceMain, [address, s1!.path, broker!.pub, NAME, 'org.example.Two']);
  t.is(one.firstLine, `${NAME} primary-owner`);
  await until(t, 'the second name is refused by the quota', () => one.stdout().includes('ready'));
  t.regex(one.stdout(), /^org\.example\.Two SIPC_ERR_QUOTA_EXCEEDED$/m);
  await until(t, 'the quota line', () => b.stderr().includes('quota:'));
  t.regex(
    b.stderr(),
    /^quota: :1\.1 \(BLAKE2b:\S+, uid:\d+\) over peer names by 1 \(limit 1, used 1, asked 1\): refused$/m,
  );
  const two = await spawnServer(t, serviceMain, [address, s2!.path, broker!.pub, NAME]);
  t.is(two.firstLine, `${NAME} in-queue`);

  const names = await cli(['bus', 'names', address, '--key', caller!.path, '--server-key', broker!.pub]);
  t.is(names.code, 0, names.stderr);
  const lines = names.stdout.trim().split('\n');
  t.true(lines.includes(`${NAME} :1.1 (queued: :1.2)`), names.stdout);
  t.true(lines.includes('bus'), 'the broker itself');
  t.true(lines.includes(':1.1') && lines.includes(':1.2'), 'unique names');
  const json = await cli([
    'bus',
    'names',
    address,
    '--key',
    caller!.path,
    '--server-key',
    broker!.pub,
    '--identity',
    '--json',
  ]);
  t.is(json.code, 0, json.stderr || json.stdout);
  const rows = json.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  const sync = rows.find((r) => r.name === NAME) as {
    owner: string;
    queued: string[];
    identity: { peer: string; osIdentity: string; roles: string[] };
  };
  t.is(sync.owner, ':1.1');
  t.deepEqual(sync.queued, [':1.2']);
  t.regex(sync.identity.peer, /^BLAKE2b:/);
  t.is(sync.identity.osIdentity, `uid:${process.getuid!()}`);
  t.deepEqual(sync.identity.roles, ['service']);

  // A call the policy does not grant yet; then SIGHUP with a file that grants it.
  const me = await connectBus({
    transport: unixTransport(),
    address,
    keyPair: await readSecretKeyFile(caller!.path),
    trust: { keys: [decodeKey(broker!.pub)] },
  });
  t.teardown(() => me.close());
  const refused = await me.call(NAME, 'sync.echo', { n: 1 }).catch((e: { code?: string }) => e.code);
  t.is(refused, 'SIPC_ERR_FORBIDDEN');
  const notMonitor = await cli([
    'bus',
    'monitor',
    address,
    '--key',
    caller!.path,
    '--server-key',
    broker!.pub,
  ]);
  t.is(notMonitor.code, 6, 'bus monitor without $bus.monitor');
  t.regex(notMonitor.stderr, /SIPC_ERR_FORBIDDEN/);
  await writeFile(file, '{ "policy": ');
  b.child.kill('SIGHUP');
  await until(t, 'a bad file is not reloaded', () => b.stderr().includes('not reloaded'));
  t.regex(b.stderr(), /bus\.json not reloaded \(the running policy stays\): .*is not JSON/);
  await writeFile(file, withS2([`${NAME}/sync.*`, '$bus.monitor']).replace('"names":1', '"names":2'));
  b.child.kill('SIGHUP');
  await until(t, 'reloaded', () => b.stderr().includes('reloaded the policy'));
  t.regex(b.stderr(), /reloaded the policy of \S+bus\.json; quotas apply at a restart/);

  // Two monitors (JSON until SIGINT, text for one record) see the routed call's metadata only.
  const monitorArgs = ['bus', 'monitor', address, '--key', caller!.path, '--server-key', broker!.pub];
  const json2 = await spawnServer(t, cliMain, [...monitorArgs, '--json']);
  t.like(JSON.parse(json2.firstLine), { event: 'monitoring', address });
  const text = spawn(process.execPath, [cliMain, ...monitorArgs, '--count', '1'], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  t.teardown(() => text.kill('SIGKILL'));
  let textOut = '';
  let textErr = '';
  text.stdout.on('data', (d) => {
    textOut += String(d);
  });
  text.stderr.on('data', (d) => {
    textErr += String(d);
  });
  const textExit = new Promise<number | null>((r) => text.once('exit', (code) => r(code)));
  await until(t, 'the text monitor is ready', () => textErr.includes('monitoring'));
  t.regex(textErr, /^monitoring unix:\/\/\S+ as :1\.\d+ \(metadata only, never a body\)$/m);
  const SENTINEL = 'sentinel-5d1e-never-on-a-monitor';
  t.deepEqual(await me.call(NAME, 'sync.echo', { n: 2, s: SENTINEL }), { n: 2, s: SENTINEL });
  t.is(await textExit, 0, textErr);
  t.is(textOut.split('\n').length, 2, 'one record, one line');
  const [at, ...rest] = textOut.trim().split(' ');
  t.regex(at!, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
  t.deepEqual(
    rest.filter((_, i) => i !== 5),
    ['call', me.name, '->', ':1.1', 'sync.echo', 'B'],
  );
  t.regex(rest[5]!, /^\d+$/, 'the body size');
  await until(t, 'the JSON monitor saw the call and its reply', () =>
    json2.stdout().includes('"kind":"reply"'),
  );
  t.is(await json2.stop('SIGINT'), 0, json2.stderr());
  // Name changes are records too (the text monitor's own connection): the call and its reply.
  const records = json2
    .stdout()
    .trim()
    .split('\n')
    .slice(1)
    .map((l) => JSON.parse(l) as Record<string, unknown>)
    .filter((r) => r.kind === 'call' || r.kind === 'reply');
  t.is(records.length, 2, json2.stdout());
  t.like(records[0], {
    event: 'monitor',
    kind: 'call',
    sender: me.name,
    destination: ':1.1',
    method: 'sync.echo',
  });
  t.like(records[1], {
    event: 'monitor',
    kind: 'reply',
    sender: ':1.1',
    destination: me.name,
    method: 'sync.echo',
  });
  t.true((records[0]!.bytes as number) > SENTINEL.length, 'the size of the body is shown');
  t.false(json2.stdout().includes(SENTINEL) || textOut.includes(SENTINEL), 'never the body');
  await me.close();

  one.child.stdin!.end();
  await one.stop();
  await until(t, 'the queued owner takes the name', () => b.stderr().includes(`name ${NAME}: :1.1 -> :1.2`));
  two.child.stdin!.end();
  await two.stop();
  t.is(await b.stop('SIGINT'), 0, b.stderr());
  t.regex(b.stderr(), /SIGINT: shutting down/);
  t.false(existsSync(sock), 'the socket file is removed');
  t.false(b.stderr().includes('"n"'), 'no params in what the broker printed');
});

test('bus serve: a configuration that does not validate is exit 2 naming the setting; one writable by group or others, or unreadable, exit 3', async (t) => {
  const dir = await tempDir(t);
  const broker = await keyFile(dir, 'broker.key');
  const peer = await keyFile(dir, 'peer.key');
  const run = async (text: string | undefined, mode = 0o644) => {
    const file = join(dir, 'bus.json');
    if (text !== undefined) {
      await writeFile(file, text);
      await chmod(file, mode);
    }
    return cli([
      'bus',
      'serve',
      '--listen',
      `unix://${join(dir, 'run', 'b.sock')}`,
      '--key',
      broker.path,
      '--allow',
      peer.pub,
      '--config',
      text === undefined ? join(dir, 'missing.json') : file,
    ]);
  };
  const cases: [string, RegExp][] = [
    ['{}', /bus\.json: \/policy: is required/],
    ['[1]', /bus\.json: \/: must be an object/],
    [
      '{ "policy": { "roles": { "r": { "cal": [] } } } }',
      /\/policy\/roles\/r\/cal: unknown setting \(expected one of call, publish, subscribe, own\)/,
    ],
    [
      '{ "policy": { "roles": {} }, "quotas": { "peer": { "names": 0 } } }',
      /\/quotas\/peer\/names: must be an integer from 1/,
    ],
    [
      '{ "policy": { "roles": {} }, "activation": { "org.x.Y": { "command": [] } } }',
      /\/activation\/org\.x\.Y\/command: must not be empty/,
    ],
    ['{ "policy": { "roles": {}, "peers": [{ "key": "nope", "roles": [] }] } }', /bus\.json: \/policy: /],
    ['{ "policy": { "roles": {} }, "extra": 1 }', /bus\.json: \/extra: unknown setting/],
  ];
  for (const [text, message] of cases) {
    const r = await run(text);
    t.is(r.code, 2, `${text}: ${r.stderr}`);
    t.regex(r.stderr, message, text);
  }
  // Whoever can write the file grants roles: group- or world-writable is refused (exit 3).
  for (const mode of [0o664, 0o646]) {
    const r = await run('{ "policy": { "roles": {} } }', mode);
    t.is(r.code, 3, r.stderr);
    t.regex(
      r.stderr,
      /bus\.json is writable by (its group|others) \(mode 06[46][46]\): whoever can write it grants roles on the bus/,
    );
  }
  const missing = await run(undefined);
  t.is(missing.code, 3, missing.stderr);
  t.regex(missing.stderr, /cannot read \S+missing\.json/);
  const usage = await cli([
    'bus',
    'serve',
    '--listen',
    'unix:///tmp/x.sock',
    '--key',
    broker.path,
    '--allow',
    peer.pub,
  ]);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /--config/);
  const sub = await cli(['bus', 'publish']);
  t.is(sub.code, 2);
  t.regex(sub.stderr, /unknown bus subcommand "publish" \(expected serve, names or monitor\)/);
});
