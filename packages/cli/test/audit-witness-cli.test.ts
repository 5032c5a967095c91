// `secure-ipc serve --audit` and `secure-ipc audit witness-key|witness` through the real binary
// over a unix socket: a witness key file is private and never overwritten; a witness round
// against a live server is recorded (witness.cosign, read back with `audit tail`) and advances
// with the log; a server without --grant-witness refuses it (exit 6); the witness's state is a
// witness checkpoint for `audit verify`; and an older copy of the log directory (what a thief
// with the key file can put back) served again and written to is a fork (exit 7), the state left
// as it was and the checkpoint presented written beside it.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { cli, keyFile, type Served, serve, tempDir } from './helpers.js';

const ORIGIN = 'example.com/cli/witness';
const NAME = 'example.com/ops/witness';

/** Resolves once the server's stdout has a line matching `re`; its match. */
function lineOf(s: Served, re: RegExp): Promise<RegExpMatchArray> {
  return new Promise((resolve, reject) => {
    const check = () => {
      const m = s.stdout().match(re);
      if (m === null) return false;
      s.child.stdout!.off('data', check);
      resolve(m);
      return true;
    };
    if (check()) return;
    s.child.stdout!.on('data', check);
    s.child.once('exit', () => check() || reject(new Error(`serve exited: ${s.stderr()}`)));
  });
}

async function setup(t: ExecutionContext) {
  const dir = await tempDir(t, 'sipc-cli-witness-');
  const server = await keyFile(dir, 'server.key');
  const client = await keyFile(dir, 'client.key');
  const address = `unix://${join(dir, 'run', 's.sock')}`;
  const auditDir = join(dir, 'audit');
  const wk = await cli(['audit', 'witness-key', '--out', join(dir, 'witness.key')]);
  t.is(wk.code, 0, wk.stderr);
  const witnessPub = wk.stdout.trim();
  const state = join(dir, 'app.witness');
  /** `serve --audit` on the log directory; resolves with the server and the anchor it printed. */
  const start = async (extra: string[] = ['--grant-witness', client.pub]) => {
    const audit = ['--audit', auditDir, '--audit-origin', ORIGIN, ...extra];
    const s = await serve(t, ['--listen', address, '--key', server.path, '--allow', client.pub, ...audit]);
    t.is(s.firstLine, `listening ${address}`);
    const [, anchor] = (await lineOf(s, /^audit \S+ anchor (\S+)$/m)) as [string, string];
    return { s, anchor };
  };
  const witness = (extra: string[] = []) =>
    cli([
      'audit',
      'witness',
      address,
      '--key',
      client.path,
      '--server-key',
      server.pub,
      '--witness-key',
      join(dir, 'witness.key'),
      '--name',
      NAME,
      '--state',
      state,
      ...extra,
    ]);
  const ping = () => cli(['ping', address, '--key', client.path, '--server-key', server.pub, '--count', '1']);
  return { dir, address, auditDir, state, witnessPub, start, witness, ping, client, server };
}

test('audit witness-key: a private WITNESS KEY file, its public key on stdout, never overwritten', async (t) => {
  const dir = await tempDir(t, 'sipc-cli-witness-');
  const out = join(dir, 'w.key');
  const r = await cli(['audit', 'witness-key', '--out', out, '--name', NAME]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^[A-Za-z0-9+/]{43}=\n$/);
  t.regex(r.stderr, new RegExp(`verifier key as ${NAME}: ${NAME}\\+[0-9a-f]{8}\\+[A-Za-z0-9+/]+=*`));
  const text = readFileSync(out, 'utf8');
  t.regex(text, /^-----BEGIN SECURE-IPC WITNESS KEY-----\n.{44}\n-----END SECURE-IPC WITNESS KEY-----\n$/);
  t.is(statSync(out).mode & 0o777, 0o600);
  const again = await cli(['audit', 'witness-key', '--out', out, '--json']);
  t.is(again.code, 3);
  t.is(readFileSync(out, 'utf8'), text, 'the existing key is unchanged');
  const json = await cli(['audit', 'witness-key', '--out', join(dir, 'w2.key'), '--json']);
  t.is(json.code, 0, json.stderr);
  t.deepEqual(Object.keys(JSON.parse(json.stdout)), ['witnessKeyFile', 'publicKey']);
  t.is((await cli(['audit', 'witness-key'])).code, 2, 'no --out');
});

test('serve --audit + audit witness: recorded as witness.cosign, advances with the log, the state verifies it', async (t) => {
  const w = await setup(t);
  const { s, anchor } = await w.start(['--grant-witness', w.client.pub, '--audit-checkpoint-every', '2']);
  t.regex(anchor, /^example\.com\/cli\/witness\+[0-9a-f]{8}\+\S+$/);
  const first = await w.witness(['--origin', ORIGIN, '--anchor', anchor]);
  t.is(first.code, 0, first.stderr);
  t.regex(
    first.stdout,
    /^witnessed example\.com\/cli\/witness \d+ records \(advanced\), cosignature recorded\n$/,
  );
  t.is(statSync(w.state).mode & 0o777, 0o600);
  const held = JSON.parse(readFileSync(w.state, 'utf8')) as { size: number; origin: string };
  t.is(held.origin, ORIGIN);
  // The first round's own records (its channel, two calls, the cosignature) made new checkpoints.
  const second = await w.witness(['--json']);
  t.is(second.code, 0, second.stderr);
  const round = JSON.parse(second.stdout) as Record<string, unknown>;
  t.like(round, { origin: ORIGIN, advanced: true, recorded: true, state: w.state });
  t.true((round.size as number) > held.size);
  t.is(await s.stop(), 0);
  const tail = await cli(['audit', 'tail', w.auditDir, '--count', '100']);
  t.is(tail.code, 0, tail.stderr);
  const cosigns = tail.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; fields: Record<string, unknown> })
    .filter((r) => r.type === 'witness.cosign');
  t.is(cosigns.length, 2);
  t.is(cosigns[0]!.fields.witness, NAME);
  t.deepEqual(cosigns[0]!.fields.key, { $base64: w.witnessPub });
  t.is(cosigns[1]!.fields.size, round.size);
  // The state file is a witness checkpoint for verify (its cosigned checkpoint).
  const verify = await cli(['audit', 'verify', w.auditDir, '--anchor', anchor, '--witness', w.state]);
  t.is(verify.code, 0, verify.stdout);
  t.regex(verify.stdout, /^ok: example\.com\/cli\/witness, \d+ records/);
});

test('audit witness: refused by a server without --grant-witness (exit 6), which records a refused handshake too; usage errors exit 2', async (t) => {
  const w = await setup(t);
  const { s } = await w.start([]);
  const r = await w.witness(['--origin', ORIGIN]);
  t.is(r.code, 6, r.stderr);
  t.regex(r.stderr, /SIPC_ERR_FORBIDDEN/);
  t.throws(() => statSync(w.state), { code: 'ENOENT' }, 'no state saved');
  const noOrigin = await w.witness();
  t.is(noOrigin.code, 2);
  t.regex(noOrigin.stderr, /the first round needs --origin ORIGIN/);
  t.is((await w.witness(['--origin', 'bad origin'])).code, 2);
  const noKey = await cli([
    'audit',
    'witness',
    'unix:///nowhere',
    '--key',
    'k',
    '--name',
    NAME,
    '--state',
    w.state,
  ]);
  t.is(noKey.code, 2);
  t.regex(noKey.stderr, /--witness-key/);
  // A key the server does not trust: serve's listener records the refused handshake.
  const stranger = await keyFile(w.dir, 'stranger.key');
  const refused = await cli([
    'ping',
    w.address,
    '--key',
    stranger.path,
    '--server-key',
    w.server.pub,
    '--count',
    '1',
  ]);
  t.is(refused.code, 5, refused.stderr);
  await s.stop();
  const tail = await cli(['audit', 'tail', w.auditDir, '--count', '100']);
  t.regex(
    tail.stdout,
    /"type":"handshake\.failed","at":\d+,"fields":\{"code":"SIPC_ERR_UNTRUSTED_PEER","kind":"refused"/,
  );
  const stray = await cli([
    'serve',
    '--listen',
    'unix:///nowhere.sock',
    '--key',
    'k',
    '--allow',
    w.client.pub,
    '--grant-witness',
    w.client.pub,
  ]);
  t.is(stray.code, 2);
  t.regex(stray.stderr, /--grant-witness needs --audit DIR/);
});

test('audit witness: an older copy of the log put back and written to is a fork (exit 7), the state unchanged', async (t) => {
  const w = await setup(t);
  // 1. A first run with some activity; its directory copied as it is at rest, key file and all.
  const a = await w.start();
  t.is((await w.ping()).code, 0);
  await a.s.stop();
  const copy = join(w.dir, 'audit-copy');
  execFileSync('cp', ['-a', w.auditDir, copy]);
  // 2. The log goes on; the witness sees it grow past the copy.
  const b = await w.start(['--grant-witness', w.client.pub, '--audit-checkpoint-every', '2']);
  t.is((await w.witness(['--origin', ORIGIN, '--anchor', b.anchor])).code, 0);
  const second = await w.witness();
  t.is(second.code, 0, second.stderr);
  t.regex(second.stdout, /\(advanced\)/);
  await b.s.stop();
  const before = readFileSync(w.state);
  const held = (JSON.parse(before.toString('utf8')) as { size: number }).size;
  // 3. The copy put back and served, and written to: another history from the copy on.
  rmSync(w.auditDir, { recursive: true });
  execFileSync('cp', ['-a', copy, w.auditDir]);
  const c = await w.start(['--grant-witness', w.client.pub, '--audit-checkpoint-every', '2']);
  t.is(c.anchor, b.anchor, 'the same log, as far as its anchor says');
  t.is((await w.ping()).code, 0);
  const fork = await w.witness();
  t.is(fork.code, 7, fork.stderr);
  t.regex(
    fork.stderr,
    new RegExp(
      `the audit log example\\.com/cli/witness forked: the state holds a checkpoint of ${held} records, the server presented \\d+; evidence in .*\\.fork-\\d{8}T\\d{6}\\.\\d{3}Z\\.note \\(caused by SIPC_ERR_AUDIT_FORK: Audit log fork: `,
    ),
  );
  t.deepEqual(readFileSync(w.state), before, 'the state is unchanged');
  const evidence = readdirSync(w.dir).filter((f) => f.startsWith('app.witness.fork-'));
  t.is(evidence.length, 1);
  t.regex(readFileSync(join(w.dir, evidence[0]!), 'utf8'), /^example\.com\/cli\/witness\n\d+\n/);
  await c.s.stop();
  // Offline too: the witness's checkpoint catches the rollback.
  const verify = await cli(['audit', 'verify', w.auditDir, '--anchor', b.anchor, '--witness', w.state]);
  t.is(verify.code, 1, verify.stdout);
});
