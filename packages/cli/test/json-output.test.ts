// `--json` on every command through the real binary: one JSON object per line on stdout, nothing
// on stderr, the exact fields of the package README ("JSON output"); failures as one
// {"error": ...} line with the exit code kept; never a secret key.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { type CliRun, cli, issueCert, keyFile, serve, tempDir } from './helpers.js';

const KEY = /^[A-Za-z0-9+/]{43}=$/;
const FINGERPRINT = /^BLAKE2b:\S+$/;

/** Every stdout line parsed (each must be one JSON object). */
function lines(stdout: string): Record<string, any>[] {
  return stdout
    .trimEnd()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, any>);
}

/** Run a command that must succeed with exactly one JSON line on stdout and nothing on stderr. */
async function one(
  t: ExecutionContext,
  what: string,
  run: () => Promise<CliRun>,
): Promise<Record<string, any>[]> {
  const r = await run();
  t.is(r.code, 0, `${what}: ${r.stderr}`);
  t.is(r.stderr, '', what);
  const parsed = lines(r.stdout);
  t.is(parsed.length, 1, what);
  return parsed;
}

test('keygen --json --out: the file and the public key; without --out it refuses (no secret in JSON)', async (t) => {
  const dir = await tempDir(t);
  const out = join(dir, 'a.key');
  const [made] = await one(t, 'keygen', () => cli(['keygen', '--out', out, '--json']));
  t.deepEqual(Object.keys(made!), ['secretKeyFile', 'publicKey']);
  t.is(made!.secretKeyFile, out);
  t.regex(made!.publicKey, KEY);
  t.is((await cli(['pubkey', '--key', out])).stdout.trim(), made!.publicKey);
  const secret = (await readFile(out, 'utf8')).split('\n')[1]!;
  t.false(JSON.stringify(made).includes(secret), 'the secret key is not in the output');

  const refused = await cli(['keygen', '--json']);
  t.is(refused.code, 2);
  t.deepEqual(lines(refused.stdout), [
    {
      error: {
        command: 'keygen',
        message: '--json needs --out FILE: the secret key is written to FILE, never printed as JSON',
        exitCode: 2,
        causes: [],
      },
    },
  ]);

  const imported = await cli(['keygen', '--import', '-', '--out', join(dir, 'b.key'), '--json'], {
    input: await readFile(out, 'utf8'),
  });
  t.is(imported.code, 0, imported.stderr);
  t.is(imported.stderr, '');
  t.deepEqual(lines(imported.stdout), [
    { secretKeyFile: join(dir, 'b.key'), publicKey: made!.publicKey, importedFrom: '-', unmarked: false },
  ]);
});

test('pubkey, ca init, ca pubkey, cert issue, cert inspect and revoke --json: one object each', async (t) => {
  const dir = await tempDir(t);
  const { path, pub } = await keyFile(dir, 'a.key');
  const [p] = await one(t, 'pubkey', () => cli(['pubkey', '--key', path, '--json']));
  t.deepEqual(Object.keys(p!), ['publicKey', 'fingerprint']);
  t.is(p!.publicKey, pub);
  t.regex(p!.fingerprint, FINGERPRINT);

  const caFile = join(dir, 'ca.key');
  const [ca] = await one(t, 'ca init', () => cli(['ca', 'init', '--out', caFile, '--json']));
  t.deepEqual(Object.keys(ca!), ['authorityKeyFile', 'publicKey']);
  t.is(ca!.authorityKeyFile, caFile);
  t.regex(ca!.publicKey, KEY);
  const again = await cli(['ca', 'pubkey', '--key', caFile, '--json']);
  t.deepEqual(lines(again.stdout), [{ publicKey: ca!.publicKey }]);

  const certFile = join(dir, 'a.cert');
  const [cert] = await one(t, 'cert issue', () =>
    issueCert({
      ca: caFile,
      pubkey: pub,
      name: 'alice',
      roles: ['app'],
      out: certFile,
      extra: ['--ttl', '1h', '--json'],
    }),
  );
  t.is(cert!.certificateFile, certFile);
  t.like(cert!.certificate, {
    version: 1,
    subject: pub,
    name: 'alice',
    roles: ['app'],
    issuer: ca!.publicKey,
  });
  t.true(Number.isSafeInteger(cert!.certificate.serial));

  const inspected = await cli(['cert', 'inspect', certFile, '--json']);
  t.is(inspected.code, 0, inspected.stderr);
  t.is(inspected.stdout.split('\n').length, 2, 'one line');
  t.deepEqual(lines(inspected.stdout), [{ ...cert!.certificate, signatureValid: true, validNow: true }]);
  // Without --json: the same object, indented.
  const text = await cli(['cert', 'inspect', certFile]);
  t.deepEqual(JSON.parse(text.stdout), lines(inspected.stdout)[0]);

  const list = join(dir, 'revoked.json');
  const bySerial = await cli(['revoke', '--list', list, '--serial', '7', '--json']);
  t.is(bySerial.code, 0, bySerial.stderr);
  t.deepEqual(lines(bySerial.stdout), [{ list, revoked: { serial: 7 }, serials: 1, keys: 0 }]);
  const byKey = await cli(['revoke', '--list', list, '--pubkey', pub, '--json']);
  t.deepEqual(lines(byKey.stdout), [{ list, revoked: { publicKey: pub }, serials: 1, keys: 1 }]);
});

test('serve --json and ping --json: one event per line (listening, connected, each ping, summary, closed, rejected, shutdown)', async (t) => {
  const dir = await tempDir(t);
  const server = await keyFile(dir, 'server.key');
  const client = await keyFile(dir, 'client.key');
  const stranger = await keyFile(dir, 'stranger.key');
  const address = `unix://${join(dir, 'run', 's.sock')}`;
  const s = await serve(t, ['--listen', address, '--key', server.path, '--allow', client.pub, '--json']);
  t.deepEqual(JSON.parse(s.firstLine), { event: 'listening', address });

  const ping = (key: string, ...more: string[]) =>
    cli(['ping', address, '--key', key, '--server-key', server.pub, '--json', ...more]);
  const r = await ping(client.path, '--count', '3', '--interval', '0');
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
  const events = lines(r.stdout);
  t.deepEqual(
    events.map((e) => e.event),
    ['connected', 'ping', 'ping', 'ping', 'summary'],
  );
  t.is(events[0]!.address, address);
  t.like(events[0]!.server, { publicKey: server.pub, transport: 'unix', pid: s.child.pid });
  t.regex(events[0]!.server.fingerprint, FINGERPRINT);
  t.deepEqual(
    events.slice(1, 4).map((e) => [e.seq, typeof e.rttMs]),
    [
      [1, 'number'],
      [2, 'number'],
      [3, 'number'],
    ],
  );
  t.deepEqual(Object.keys(events[4]!), ['event', 'count', 'failed', 'minMs', 'medianMs', 'p99Ms']);
  t.like(events[4]!, { count: 3, failed: 0 });

  const refused = await ping(stranger.path);
  t.is(refused.code, 5);
  t.like(lines(refused.stdout).at(-1)!.error, { command: 'ping', code: 'SIPC_ERR_REFUSED', exitCode: 5 });

  t.is(await s.stop(), 0);
  const served = lines(s.stdout());
  t.deepEqual(
    served.map((e) => e.event),
    ['listening', 'connected', 'closed', 'rejected', 'shutdown'],
  );
  t.like(served[1]!.peer, { publicKey: client.pub, roles: [], transport: 'unix' });
  t.like(served[2]!, { peer: { fingerprint: served[1]!.peer.fingerprint }, reason: 'clean' });
  t.like(served[3]!, {
    peer: { transport: 'unix' },
    error: { command: 'serve', code: 'SIPC_ERR_UNTRUSTED_PEER' },
  });
  t.deepEqual(served[4], { event: 'shutdown', signal: 'SIGTERM' });
  t.is(s.stderr(), '', 'with --json, serve writes nothing on stderr');
});

test('a failure with --json is one {"error"} line on stdout with the exit code kept (usage 2, file 3, connect 4)', async (t) => {
  const dir = await tempDir(t);
  const { path, pub } = await keyFile(dir, 'a.key');
  const usage = await cli(['revoke', '--list', join(dir, 'l.json'), '--json']);
  t.is(usage.code, 2);
  t.is(usage.stderr, '', 'no usage text with --json');
  t.deepEqual(lines(usage.stdout), [
    {
      error: {
        command: 'revoke',
        message: 'give exactly one of --serial N or --pubkey KEY',
        exitCode: 2,
        causes: [],
      },
    },
  ]);
  const unknown = await cli(['pubkey', '--bogus', '--json']);
  t.is(unknown.code, 2);
  t.like(lines(unknown.stdout)[0]!.error, { command: 'pubkey', exitCode: 2 });
  const missing = await cli([
    'cert',
    'issue',
    '--ca',
    join(dir, 'nope'),
    '--pubkey',
    pub,
    '--name',
    'n',
    '--out',
    join(dir, 'c'),
    '--json',
  ]);
  t.is(missing.code, 3);
  t.like(lines(missing.stdout)[0]!.error, {
    command: 'cert issue',
    code: 'SIPC_ERR_BAD_KEY',
    exitCode: 3,
    causes: [{ code: 'ENOENT' }],
  });
  const nobody = await cli(['ping', 'tcp://127.0.0.1:1', '--key', path, '--server-key', pub, '--json']);
  t.is(nobody.code, 4);
  t.is(nobody.stderr, '');
  t.like(lines(nobody.stdout)[0]!.error, {
    command: 'ping',
    code: 'SIPC_ERR_CONNECT_FAILED',
    exitCode: 4,
    causes: [{ code: 'ECONNREFUSED' }],
  });
});
