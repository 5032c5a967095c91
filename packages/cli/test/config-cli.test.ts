/**
 * `secure-ipc config validate FILE` (README "config"): every problem as FILE:LINE:COL, exit 1;
 * a good file exits 0 with its profile and tests; --json; a file it cannot read exits 3.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { encodeKey, generateKeyPair } from '@secure-ipc/core';
import test from 'ava';
import { cli, tempDir } from './helpers.js';

const peer = encodeKey(generateKeyPair().publicKey);

const toml = `# A helper for the user's app.
version = 1
identity = { key = { file = "server.key" } }
trust = { keys = ["${peer}"] }
policy = { roles = { app = { call = ["files.*"] } }, defaultRoles = ["app"] }

[[endpoints]]
name = "main"
listen = "local://helper"

[[tests]]
roles = []
call = "files.read"
expect = "allow"
`;

test('config validate: a good TOML file exits 0 and says its profile and tests; a broken one prints FILE:LINE:COL per problem and exits 1', async (t) => {
  const dir = await tempDir(t);
  const good = join(dir, 'ipc.toml');
  writeFileSync(good, toml);
  const ok = await cli(['config', 'validate', good]);
  t.is(ok.code, 0, ok.stderr);
  t.is(ok.stdout, `ok: ${good} (profile baseline, 1 policy tests passed)\n`);

  const bad = join(dir, 'bad.toml');
  writeFileSync(
    bad,
    toml
      .replace('listen = "local://helper"', 'listen = "local://helper"\nsocketMode = "0777"')
      .replace('expect = "allow"', 'expect = "deny"'),
  );
  const r = await cli(['config', 'validate', bad]);
  t.is(r.code, 1);
  t.is(
    r.stdout,
    `${bad}:10:1: endpoints/0/socketMode: must be one of "0600", "0660" or "0666"\nFAILED: ${bad}, 1 problem\n`,
  );
  const fixed = join(dir, 'test.toml');
  writeFileSync(fixed, toml.replace('expect = "allow"', 'expect = "deny"'));
  const failing = await cli(['config', 'validate', fixed, '--json']);
  t.is(failing.code, 1);
  const j = JSON.parse(failing.stdout);
  t.false(j.ok);
  t.deepEqual(j.tests, { run: 1, passed: 0 });
  t.is(j.problems[0].line, 11);
  t.regex(j.problems[0].message, /policy test failed: call files\.read is allowed, expected deny/);
});

test('config validate: usage errors exit 2, an unreadable file 3', async (t) => {
  t.is((await cli(['config', 'check', 'x.toml'])).code, 2);
  t.is((await cli(['config', 'validate'])).code, 2);
  const missing = await cli(['config', 'validate', '/nonexistent/ipc.toml']);
  t.is(missing.code, 3);
  t.regex(missing.stderr, /secure-ipc config validate: cannot read/);
});

test('config diff: the settings that changed, each with reload or restart, exit 1; the same settings in another order exit 0; --json; an invalid file exits 3', async (t) => {
  const dir = await tempDir(t);
  const before = join(dir, 'old.toml');
  writeFileSync(before, toml);
  // The same settings as JSONC, keys and list in another order: no change.
  const same = join(dir, 'same.jsonc');
  writeFileSync(
    same,
    `{ // the same, written otherwise
  "endpoints": [{ "listen": "local://helper", "name": "main" }],
  "policy": { "defaultRoles": ["app"], "roles": { "app": { "call": ["files.*"] } } },
  "trust": { "keys": ["${peer}"] }, "identity": { "key": { "file": "server.key" } }, "version": 1,
  "tests": [{ "roles": [], "call": "files.read", "expect": "allow" }]
}`,
  );
  const r0 = await cli(['config', 'diff', before, same]);
  t.is(r0.code, 0, r0.stderr);
  t.is(r0.stdout, 'same settings\n');

  const after = join(dir, 'new.toml');
  writeFileSync(
    after,
    toml
      .replace('call = ["files.*"]', 'call = ["files.read", "files.*"]')
      .replace('listen = "local://helper"', 'listen = "local://helper2"'),
  );
  const r = await cli(['config', 'diff', before, after]);
  t.is(r.code, 1, r.stderr);
  t.is(
    r.stdout,
    [
      '- endpoints[]: {"listen":"local://helper","name":"main"}  (restart)',
      '+ endpoints[]: {"listen":"local://helper2","name":"main"}  (restart)',
      '+ policy.roles.app.call[]: "files.read"  (reload)',
      '3 changes: 1 applied by a reload, 2 need a restart',
      '',
    ].join('\n'),
  );
  const j = await cli(['config', 'diff', before, after, '--json']);
  t.is(j.code, 1);
  const parsed = JSON.parse(j.stdout);
  t.false(parsed.same);
  t.deepEqual(parsed.changes[2], {
    path: 'policy.roles.app.call[]',
    kind: 'added',
    after: 'files.read',
    setting: 'policy.roles',
    reloadable: true,
    security: 'What each role may do; deny by default.',
  });

  const bad = join(dir, 'bad.toml');
  writeFileSync(bad, toml.replace('version = 1', 'version = 2'));
  const r3 = await cli(['config', 'diff', before, bad]);
  t.is(r3.code, 3);
  t.regex(r3.stderr, /bad\.toml:2:\d+: /);
  t.regex(r3.stderr, /secure-ipc config diff: .*bad\.toml is not a valid configuration/);
  t.is((await cli(['config', 'diff', before])).code, 2);
});
