// `secure-ipc doctor pipe://NAME` on Windows named pipes, through the real binary run by the
// Windows node under Wine (tools/wine/run-ava.sh, the package's npm test): the doctor reads the
// live pipe's security descriptor back (GetSecurityInfo on a client handle) and judges its DACL,
// then reads the server's static key from handshake message 2; nothing is sent that identifies
// the doctor. Wine stores a pipe's DACL (and returns it) but does not enforce it (transport-win's
// README, "What Wine cannot show"): what is checked here is the read-back and the judgement.
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import anyTest, { type TestFn } from 'ava';
import { cli, serve, tempDir } from '../helpers.js';

// Explicit platform gate, as allow-sid.test.ts: run only under Windows (node.exe under Wine in CI).
const onWindows = process.platform === 'win32';
const test = (onWindows ? anyTest : anyTest.skip) as TestFn;
const needsWindows = onWindows ? '' : ' (skipped: needs Windows named pipes; run under Wine by npm test)';

interface DoctorJson {
  ok: boolean;
  address: string;
  findings: { id: string }[];
  checked: string[];
  notChecked: { what: string; reason: string }[];
  server: { key?: string; fingerprint?: string } | null;
}

test(`doctor pipe://NAME reads the live pipe's DACL back and judges it (no open or network-allowed finding for serve's pipe), and the server's key from message 2${needsWindows}`, async (t) => {
  const dir = await tempDir(t);
  const keys = await Promise.all(
    ['server.key', 'client.key'].map(async (name) => {
      const path = join(dir, name);
      const r = await cli(['keygen', '--out', path, '--json']);
      t.is(r.code, 0, r.stderr);
      return { path, pub: (JSON.parse(r.stdout) as { publicKey: string }).publicKey };
    }),
  );
  const address = `pipe://sipc-doctor-${process.pid}-${randomBytes(4).toString('hex')}`;
  const s = await serve(t, ['--listen', address, '--key', keys[0]!.path, '--allow', keys[1]!.pub, '--json']);
  t.deepEqual(JSON.parse(s.firstLine), { event: 'listening', address });
  const r = await cli(['doctor', address, '--json']);
  t.true(r.code === 0 || r.code === 1, `exit ${r.code}: ${r.stdout}${r.stderr}`);
  const report = JSON.parse(r.stdout.trim().split('\n').at(-1)!) as DoctorJson;
  t.is(report.address, address);
  const dacl = report.checked.find((c) => c.startsWith('pipe DACL: '));
  t.truthy(dacl, JSON.stringify(report.checked));
  t.regex(dacl!, /D:.*\(A;/, 'an SDDL with a DACL and an allow entry');
  t.log(dacl!);
  const ids = report.findings.map((f) => f.id);
  t.false(ids.includes('pipe-dacl-open'), JSON.stringify(report.findings));
  t.false(ids.includes('pipe-remote-allowed'), JSON.stringify(report.findings));
  t.true(report.notChecked.some((n) => n.what === 'PIPE_REJECT_REMOTE_CLIENTS'));
  t.is(report.server?.key, keys[0]!.pub, 'the server key of message 2');
  // Nothing there: exit 3.
  const none = await cli(['doctor', `pipe://sipc-doctor-none-${randomBytes(4).toString('hex')}`]);
  t.is(none.code, 3, none.stdout + none.stderr);
  t.regex(none.stderr, /is not reachable/);
});
