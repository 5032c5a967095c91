/**
 * `secure-ipc ca serve` (README "ca serve"; docs/identity.md "Enrolment") in its own process:
 * enrolment by a one-time token (`ca token`, used once), by OS identity (`--enrol-uid`) and by
 * the peer's executable (`--enrol-exe`, Linux: path and SHA-256 of /proc/PID/exe),
 * renewal (`ca renew` replaces the file; keepCertificateRenewed swaps a renewed certificate into a
 * live listener with a channel kept open across it), and the warning before the authority ends.
 */
import { createHash } from 'node:crypto';
import { createReadStream, realpathSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  type Certificate,
  certificateTrust,
  connect,
  createPolicy,
  decodeCertificate,
  generateKeyPair,
  keepCertificateRenewed,
  readCertificateFile,
  readSecretKeyFile,
  serve as serveRpc,
  writeCertificateFile,
} from '@secure-ipc/core';
import { unixTransport } from '@secure-ipc/transport-unix';
import test from 'ava';
import { cli, cliMain, keyFile, spawnServer, tempDir } from './helpers.js';

// The executable of a peer is read from /proc (Linux; Windows has its own test in transport-win).
const onLinux = process.platform === 'linux' ? test : test.skip;

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

async function startCa(t: Parameters<typeof tempDir>[0], extra: string[] = [], ttl = '6s') {
  const dir = await tempDir(t);
  const ca = join(dir, 'ca.key');
  const init = await cli(['ca', 'init', '--out', ca, '--json']);
  t.is(init.code, 0, init.stderr);
  const authority = JSON.parse(init.stdout).publicKey as string;
  const server = await keyFile(dir, 'enrol.key');
  const tokens = join(dir, 'tokens.json');
  const address = `unix://${join(dir, 'enrol.sock')}`;
  const served = await spawnServer(t, cliMain, [
    'ca',
    'serve',
    '--ca',
    ca,
    '--key',
    server.path,
    '--listen',
    address,
    '--tokens',
    tokens,
    '--cert-ttl',
    ttl,
    ...extra,
  ]);
  t.is(served.firstLine, `listening ${address} server-key ${server.pub} authority ${authority}`);
  const to = ['--address', address, '--server-key', server.pub, '--authority', authority];
  return { dir, tokens, address, authority, serverKey: server.pub, served, to };
}

test('ca serve: a token enrols once; an OS identity rule enrols without one; ca renew replaces the certificate with a new serial', async (t) => {
  const uid = process.getuid?.() ?? 0;
  const { dir, tokens, served, to } = await startCa(t, ['--enrol-uid', `${uid}=desktop-ui:app,ui`], '10m');
  const made = await cli([
    'ca',
    'token',
    '--tokens',
    tokens,
    '--name',
    'sync-helper',
    '--role',
    'helper',
    '--ttl',
    '10m',
  ]);
  t.is(made.code, 0, made.stderr);
  const token = made.stdout.trim();
  t.regex(token, /^sipc-enrol-[A-Za-z0-9_-]{43}$/);
  writeFileSync(join(dir, 'token'), `${token}\n`, { mode: 0o600 });

  const helper = await keyFile(dir, 'helper.key');
  const certFile = join(dir, 'helper.cert');
  const enrolled = await cli([
    'ca',
    'enrol',
    ...to,
    '--key',
    helper.path,
    '--token-file',
    join(dir, 'token'),
    '--out',
    certFile,
    '--json',
  ]);
  t.is(enrolled.code, 0, enrolled.stderr);
  const first = await readCertificateFile(certFile);
  t.is(first.name, 'sync-helper');
  t.deepEqual(first.roles, ['helper']);
  t.is(first.notAfter - first.notBefore, 600_000);
  t.is(JSON.parse(enrolled.stdout).serial, first.serial);
  // The token is spent: another key cannot use it.
  const other = await keyFile(dir, 'other.key');
  const again = await cli([
    'ca',
    'enrol',
    ...to,
    '--key',
    other.path,
    '--token-file',
    join(dir, 'token'),
    '--out',
    join(dir, 'x.cert'),
  ]);
  t.not(again.code, 0);
  t.regex(again.stderr, /SIPC_ERR_FORBIDDEN/);

  // This process's uid has a rule: no token needed.
  const byUid = await cli(['ca', 'enrol', ...to, '--key', other.path, '--out', join(dir, 'ui.cert')]);
  t.is(byUid.code, 0, byUid.stderr);
  const ui = await readCertificateFile(join(dir, 'ui.cert'));
  t.is(ui.name, 'desktop-ui');
  t.deepEqual(ui.roles, ['app', 'ui']);

  const renewed = await cli(['ca', 'renew', ...to, '--key', helper.path, '--cert', certFile]);
  t.is(renewed.code, 0, renewed.stderr);
  const second = await readCertificateFile(certFile);
  t.not(second.serial, first.serial);
  t.is(second.name, 'sync-helper');
  t.regex(served.stderr(), new RegExp(`issued serial ${first.serial} to sync-helper \\(token\\)`));
  t.regex(served.stderr(), /refused ca\.enrol from BLAKE2b:\S+: unknown, used or expired token/);
  t.regex(served.stderr(), new RegExp(`issued serial ${second.serial} to sync-helper \\(renewal\\)`));
  t.false(served.stderr().includes(token.slice(11)), 'the token is never logged');
  t.is(await served.stop(), 0);
});

onLinux(
  'ca serve --enrol-exe: the peer process running the image of that path and hash enrols; a wrong hash is refused with SIPC_ERR_FORBIDDEN',
  async (t) => {
    // `ca enrol` runs as this Node binary: that is the executable the server reads.
    const node = realpathSync(process.execPath);
    const sha = await sha256Of(node);
    const wrong = createHash('sha256').update('not node').digest('hex');
    const uid = process.getuid?.() ?? 0;
    const good = await startCa(t, ['--enrol-exe', `uid:${uid},${node}@${sha.toUpperCase()}=node-tool:tool`]);
    const helper = await keyFile(good.dir, 'helper.key');
    // `ca enrol` by this process's OS facts alone (no token).
    const enrolByExe = (ca: { to: string[]; dir: string }) =>
      cli(['ca', 'enrol', ...ca.to, '--key', helper.path, '--out', join(ca.dir, 'h.cert')]);
    const enrolled = await enrolByExe(good);
    t.is(enrolled.code, 0, enrolled.stderr);
    const cert = await readCertificateFile(join(good.dir, 'h.cert'));
    t.is(cert.name, 'node-tool');
    t.deepEqual(cert.roles, ['tool']);
    t.regex(good.served.stderr(), new RegExp(`issued serial ${cert.serial} to node-tool \\(executable\\)`));
    t.is(await good.served.stop(), 0);

    const bad = await startCa(t, [
      '--enrol-exe',
      `${node}@${wrong}=node-tool`,
      '--enrol-exe',
      `@${wrong}=other`,
    ]);
    const refused = await enrolByExe(bad);
    t.is(refused.code, 6, refused.stderr);
    t.regex(refused.stderr, /SIPC_ERR_FORBIDDEN/);
    t.false(refused.stderr.includes(sha), 'the peer is not told what was expected or seen');
    t.true(
      bad.served
        .stderr()
        .includes(`: no token and no rule for uid:${uid} running ${JSON.stringify(node)} sha256 ${sha}`),
      bad.served.stderr(),
    );
    t.is(await bad.served.stop(), 0);
  },
);

test('ca serve renews a live helper’s certificate: the channel opened under the old one stays open, new handshakes see the new one', async (t) => {
  // 20 s certificates: renewed about 13 s after issue, time enough to start the helper first.
  const { dir, tokens, address: caAddress, authority, serverKey, to } = await startCa(t, [], '20s');
  const made = await cli(['ca', 'token', '--tokens', tokens, '--name', 'helper']);
  writeFileSync(join(dir, 'token'), made.stdout);
  const helperKey = await keyFile(dir, 'helper.key');
  const certFile = join(dir, 'helper.cert');
  const enrolled = await cli([
    'ca',
    'enrol',
    ...to,
    '--key',
    helperKey.path,
    '--token-file',
    join(dir, 'token'),
    '--out',
    certFile,
  ]);
  t.is(enrolled.code, 0, enrolled.stderr);
  const first = await readCertificateFile(certFile);

  // The helper serves with its certificate; its clients trust the authority.
  const keyPair = await readSecretKeyFile(helperKey.path);
  const address = `unix://${join(dir, 'helper.sock')}`;
  const helper = await serveRpc({
    transport: unixTransport(),
    address,
    keyPair,
    payload: { cert: first.bytes },
    trust: () => true,
    policy: createPolicy({ roles: { any: { call: ['ping'] } }, defaultRoles: ['any'] }),
  });
  t.teardown(() => helper.close());
  helper.handle('ping', () => 'pong');
  const serials: number[] = [];
  const trustCa = certificateTrust({ authorities: [authority] });
  const dial = () =>
    connect({
      transport: unixTransport(),
      address,
      keyPair: generateKeyPair(),
      trust: async (ctx) => {
        const d = await trustCa(ctx);
        serials.push(decodeCertificate(ctx.payload.cert as Uint8Array).serial);
        return d;
      },
    });
  const live = await dial();
  t.is(await live.request('ping'), 'pong');
  const hold = setInterval(() => {}, 1000);
  t.teardown(() => clearInterval(hold));
  const fresh = await new Promise<Certificate>((resolve, reject) => {
    const r = keepCertificateRenewed({
      transport: unixTransport(),
      address: caAddress,
      keyPair,
      trust: { keys: [serverKey] },
      authority,
      certificate: first,
      apply: async (c) => {
        helper.listener.update({ payload: { cert: c.bytes } });
        await writeCertificateFile(certFile, c);
      },
    });
    t.teardown(() => r.stop());
    r.on('error', reject);
    r.on('expired', () => reject(new Error('the certificate expired before it was renewed')));
    r.on('renewed', (c) => {
      r.stop();
      resolve(c);
    });
  });
  t.not(fresh.serial, first.serial);
  t.true(fresh.notAfter > first.notAfter);
  // Across the renewal: the live channel still answers; a new handshake is admitted under the new
  // certificate (the old one has less than its first third left by now, the new one two thirds).
  t.is(await live.request('ping'), 'pong');
  t.false(live.closed);
  const next = await dial();
  t.is(await next.request('ping'), 'pong');
  t.is((await readCertificateFile(certFile)).serial, fresh.serial);
  t.deepEqual(serials, [first.serial, fresh.serial]);
  await next.close();
  await live.close();
});

test('ca serve warns before the authority ends; usage errors exit 2', async (t) => {
  const soon = new Date(Date.now() + 10 * 86_400_000).toISOString().slice(0, 10);
  const { served } = await startCa(t, ['--authority-expires', soon, '--warn-before', '30d']);
  await new Promise((r) => setTimeout(r, 200));
  t.regex(
    served.stderr(),
    new RegExp(`warning: the authority ends at ${soon}T00:00:00.000Z \\(in \\d+\\.\\d days\\)`),
  );
  t.is(await served.stop(), 0);
  const dir = await tempDir(t);
  t.is((await cli(['ca', 'serve', '--ca', 'x', '--key', 'y', '--listen', `unix://${dir}/s.sock`])).code, 2);
  t.is((await cli(['ca', 'token', '--tokens', join(dir, 't.json')])).code, 2);
  const serveWithRule = (option: string, rule: string) =>
    cli(['ca', 'serve', '--ca', 'x', '--key', 'y', '--listen', `unix://${dir}/s.sock`, option, rule]);
  const badRule = await serveWithRule('--enrol-uid', 'bob');
  t.is(badRule.code, 2);
  t.regex(badRule.stderr, /--enrol-uid is UID=NAME\[:ROLE,\.\.\.\]/);
  for (const rule of ['node=tool', '/usr/bin/node@abc=tool', '/usr/bin/node', '@=tool', 'uid:1,=tool']) {
    const badExe = await serveWithRule('--enrol-exe', rule);
    t.is(badExe.code, 2, rule);
    t.regex(badExe.stderr, /--enrol-exe is \[uid:UID,\|sid:SID,\]PATH\[@SHA256\]=NAME\[:ROLE,\.\.\.\]/, rule);
  }
});
