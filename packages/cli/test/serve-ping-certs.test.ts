import { join } from 'node:path';
import test from 'ava';
import { cli, issueCert, keyFile, serve, tempDir } from './helpers.js';

test('serve + ping with certificates: trusted authority admits, revocation cuts a live ping, then refuses', async (t) => {
  const dir = await tempDir(t);
  const server = await keyFile(dir, 'server.key');
  const client = await keyFile(dir, 'client.key');
  const caFile = join(dir, 'ca.key');
  const init = await cli(['ca', 'init', '--out', caFile]);
  t.is(init.code, 0, init.stderr);
  const ca = init.stdout.trim();
  const otherCa = (await cli(['ca', 'init', '--out', join(dir, 'other.key')])).stdout.trim();
  for (const [who, pub, role] of [
    ['server', server.pub, 'service'],
    ['client', client.pub, 'app'],
  ] as const) {
    const issued = await issueCert({
      ca: caFile,
      pubkey: pub,
      name: who,
      roles: [role],
      out: join(dir, `${who}.cert`),
      extra: ['--ttl', '15m'],
    });
    t.is(issued.code, 0, issued.stderr);
  }
  const rev = join(dir, 'revoked.json');
  t.is((await cli(['revoke', '--list', rev, '--serial', '12345'])).code, 0);
  const address = `unix://${join(dir, 'run', 's.sock')}`;
  const s = await serve(t, [
    '--listen',
    address,
    '--key',
    server.path,
    '--cert',
    join(dir, 'server.cert'),
    '--trust-ca',
    ca,
    '--revocations',
    rev,
  ]);
  t.is(s.firstLine, `listening ${address}`);
  const pingArgs = ['ping', address, '--key', client.path, '--cert', join(dir, 'client.cert')];

  const ok = await cli([...pingArgs, '--trust-ca', ca, '--count', '2', '--interval', '0']);
  t.is(ok.code, 0, ok.stderr);
  const wrongCa = await cli([...pingArgs, '--trust-ca', otherCa, '--count', '1']);
  t.is(wrongCa.code, 5, 'a server certificate from an untrusted authority is refused');
  t.regex(wrongCa.stderr, /SIPC_ERR_BAD_CERTIFICATE/);
  const wrongCert = await cli([
    'ping',
    address,
    '--key',
    client.path,
    '--cert',
    join(dir, 'server.cert'),
    '--trust-ca',
    ca,
  ]);
  t.is(wrongCert.code, 3);
  t.regex(wrongCert.stderr, /is for another key than --key/);

  let revoked = false;
  const live = await cli([...pingArgs, '--trust-ca', ca, '--count', '100', '--interval', '100'], {
    onStdout: (text) => {
      if (!revoked && /^ping 2: /m.test(text)) {
        revoked = true;
        void cli(['revoke', '--list', rev, '--pubkey', client.pub]);
      }
    },
  });
  t.is(live.code, 1, live.stdout + live.stderr);
  t.regex(live.stderr, /the channel closed early after \d+ of 100 pings/);
  const after = await cli([...pingArgs, '--trust-ca', ca, '--count', '1']);
  t.is(after.code, 5, 'a revoked client is refused at the handshake');
  t.is(await s.stop(), 0);
  t.regex(s.stderr(), /policy: closed the channel of BLAKE2b:\S+ \(revoked-key\)/);
  t.regex(s.stderr(), /SIPC_ERR_REVOKED/);
});

test('serve with --cert needs --trust-ca; --revocations needs --trust-ca (exit 2)', async (t) => {
  const dir = await tempDir(t);
  const server = await keyFile(dir, 'server.key');
  const r = await cli([
    'serve',
    '--listen',
    'tcp://127.0.0.1:0',
    '--key',
    server.path,
    '--cert',
    join(dir, 'x.cert'),
  ]);
  t.is(r.code, 2);
  t.regex(r.stderr, /--cert needs --trust-ca/);
  const rev = join(dir, 'revoked.json');
  t.is((await cli(['revoke', '--list', rev, '--serial', '7'])).code, 0);
  const r2 = await cli([
    'serve',
    '--listen',
    'tcp://127.0.0.1:0',
    '--key',
    server.path,
    '--allow',
    server.pub,
    '--revocations',
    rev,
  ]);
  t.is(r2.code, 2);
  t.regex(r2.stderr, /--revocations needs --trust-ca/);
});
