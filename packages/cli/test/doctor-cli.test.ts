/**
 * `secure-ipc doctor CONFIG` (README "doctor", docs/configuration.md "Doctor") through the real
 * binary: one line per finding and the exposure score; exit 0 at or under --max-score (default
 * 5.0), 1 above it; --json; a file that does not validate exits 2 with its problems at
 * FILE:LINE:COL; a file it cannot read exits 3 (an ADDRESS: doctor-address.test.ts).
 */
import { chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { addToRevocationFile, encodeKey, generateKeyPair, writeSecretKeyFile } from '@secure-ipc/core';
import test from 'ava';
import { cli, tempDir } from './helpers.js';

const peer = encodeKey(generateKeyPair().publicKey);

/** A baseline TOML configuration whose only finding is its plain key file (weight 0.5). */
async function setup(t: Parameters<typeof tempDir>[0], call = '"files.read"') {
  const dir = await tempDir(t);
  await writeSecretKeyFile(join(dir, 'server.key'), generateKeyPair().secretKey);
  await addToRevocationFile(join(dir, 'revoked.json'), {});
  await mkdir(join(dir, 'run'), { mode: 0o700 });
  const file = join(dir, 'ipc.toml');
  await writeFile(
    file,
    `version = 1
identity = { key = { file = "server.key" } }
trust = { keys = ["${peer}"], revocations = "revoked.json" }
policy = { roles = { app = { call = [${call}] } }, peers = [{ key = "${peer}", roles = ["app"] }] }
audit = { dir = "audit", origin = "test.example/doctor", required = true }

[[endpoints]]
name = "main"
listen = "unix://${join(dir, 'run', 'helper.sock')}"
`,
  );
  return { dir, file, key: join(dir, 'server.key') };
}

test('doctor: one line per finding and the score; exit 0 under the default maximum, 1 above it, 0 again with --max-score', async (t) => {
  const { file, key } = await setup(t);
  const ok = await cli(['doctor', file]);
  t.is(ok.code, 0, ok.stderr);
  t.is(
    ok.stdout,
    `low 0.5 key-plain-file: identity.key is a plain key file (${key}) (identity/key/file); fix: keep the key in the OS keystore (\`keystore\`) or an encrypted key file (\`encryptedFile\`)\nexposure 0.5/10\n`,
  );
  t.is(ok.stderr, '');

  const wide = await setup(t, '"*"');
  await chmod(wide.key, 0o644);
  const bad = await cli(['doctor', wide.file]);
  t.is(bad.code, 1);
  const lines = bad.stdout.trimEnd().split('\n');
  t.deepEqual(
    lines.map((l) => l.split(':')[0]),
    ['high 3.0 key-file-mode', 'high 2.0 call-grant-all', 'low 0.5 key-plain-file', 'exposure 5.5/10'],
  );
  t.regex(lines[0]!, /mode 0644\) \(identity\/key\/file\); fix: chmod 600 /);
  t.is(bad.stderr, 'secure-ipc doctor: exposure 5.5 is above --max-score 5.0\n');
  t.is((await cli(['doctor', wide.file, '--max-score', '5.5'])).code, 0);
  t.is((await cli(['doctor', wide.file, '--max-score', '5.4'])).code, 1);
  t.is((await cli(['doctor', '--max-score', '0', file])).code, 1);
});

test('doctor --json: the report as one object, with the maximum and the verdict', async (t) => {
  const { file, key } = await setup(t);
  const r = await cli(['doctor', file, '--json', '--max-score', '0.5']);
  t.is(r.code, 0, r.stderr);
  const j = JSON.parse(r.stdout);
  t.deepEqual(Object.keys(j), ['ok', 'file', 'profile', 'score', 'maxScore', 'findings', 'problems']);
  t.like(j, { ok: true, file, profile: 'baseline', score: 0.5, maxScore: 0.5, problems: [] });
  t.is(j.findings.length, 1);
  t.like(j.findings[0], {
    id: 'key-plain-file',
    severity: 'low',
    weight: 0.5,
    pointer: '/identity/key/file',
    line: 2,
    message: `identity.key is a plain key file (${key})`,
  });
  const over = await cli(['doctor', file, '--json', '--max-score', '0']);
  t.is(over.code, 1);
  t.false(JSON.parse(over.stdout).ok);
});

test('doctor: a file that does not validate exits 2 with its problems at FILE:LINE:COL; usage errors exit 2, an unreadable file 3', async (t) => {
  const { dir, file } = await setup(t);
  const broken = join(dir, 'broken.toml');
  await writeFile(broken, 'version = 1\nidentity = { key = { file = "server.key" } }\nprofile = "lax"\n');
  const r = await cli(['doctor', broken]);
  t.is(r.code, 2);
  t.regex(r.stdout, new RegExp(`^${broken}:3:1: profile: must be one of "baseline" or "strict"$`, 'm'));
  t.regex(r.stdout, /^FAILED: .*broken\.toml, \d+ problems\n$/m);
  const j = await cli(['doctor', broken, '--json']);
  t.is(j.code, 2);
  t.like(JSON.parse(j.stdout), { ok: false, score: null });

  t.is((await cli(['doctor'])).code, 2);
  t.is((await cli(['doctor', file, file])).code, 2);
  const score = await cli(['doctor', file, '--max-score', 'high']);
  t.is(score.code, 2);
  t.regex(score.stderr, /--max-score must be a number from 0 to 10/);
  const missing = await cli(['doctor', join(dir, 'nope.toml')]);
  t.is(missing.code, 3);
  t.regex(missing.stderr, /^secure-ipc doctor: cannot read /);
});
