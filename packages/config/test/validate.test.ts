/**
 * Validation (docs/configuration.md): every problem at its line and column, in JSONC and TOML,
 * nested ones included; secrets written inline refused by name; the profiles' rules, on every
 * endpoint, and `weakens`; the policy tests; the published JSON Schema is the schema's.
 */
import { readFileSync } from 'node:fs';
import { encodeKey, generateKeyPair } from '@secure-ipc/core';
import test from 'ava';
import { formatProblem, jsonSchemaText, validateConfigText } from '../src/index.js';

const peer = encodeKey(generateKeyPair().publicKey);

/** `file:line:col` of the first `needle` on line `line` of `text` (1-based), as a problem prefix. */
function at(file: string, text: string, line: number, needle: string): string {
  const col = text.split('\n')[line - 1]!.indexOf(needle);
  if (col < 0) throw new Error(`${needle} is not on line ${line}`);
  return `${file}:${line}:${col + 1}:`;
}
const ca = encodeKey(generateKeyPair().publicKey);

const good = `{
  // An app's helper: one endpoint, pinned keys.
  "version": 1,
  "identity": { "key": { "file": "server.key" } },
  "trust": { "keys": ["${peer}"] },
  "policy": {
    "roles": { "app": { "call": ["files.*"] } },
    "peers": [{ "key": "${peer}", "roles": ["app"] }],
  },
  "endpoints": [{ "name": "main", "listen": "local://helper" }],
  "tests": [
    { "peer": "${peer}", "call": "files.read", "expect": "allow" },
    { "peer": "${peer}", "call": "admin.wipe", "expect": "deny" },
    { "call": "files.read", "expect": "deny" }
  ]
}
`;

test('a good JSONC file (comments, trailing commas) validates and its policy tests run', (t) => {
  const v = validateConfigText(good, 'ipc.jsonc');
  t.deepEqual(v.problems, []);
  t.deepEqual(v.tests, { run: 3, passed: 3 });
  t.is(v.config?.endpoints[0]?.listen, 'local://helper');
});

test('JSONC: every problem at its line and column, nested ones included', (t) => {
  const text = `{
  "version": 1,
  "identity": { "key": { "file": "k", "keystore": { "account": "a" } } },
  "trust": { "keys": ["not-a-key"] },
  "policy": { "roles": { "app": { "call": [7] } }, "peers": [{ "key": "${peer}", "roles": ["ghost"] }] },
  "endpoints": [
    { "name": "main", "listen": "tcp://0.0.0.0:9000", "socketMode": "0777", "colour": "red" }
  ],
  "limits": { "maxIncoming": 0 }
}
`;
  const v = validateConfigText(text, 'ipc.jsonc');
  const lines = v.problems.map(formatProblem);
  const has = (prefix: string, part: string) =>
    t.true(
      lines.some((l) => l.startsWith(prefix) && l.includes(part)),
      `${prefix} ${part}\n${lines.join('\n')}`,
    );
  has(at('ipc.jsonc', text, 4, '"not-a-key"'), 'trust/keys/0: must match pattern');
  has(at('ipc.jsonc', text, 5, '7]'), 'policy/roles/app/call/0: must be string');
  has(
    at('ipc.jsonc', text, 7, '"socketMode"'),
    'endpoints/0/socketMode: must be one of "0600", "0660" or "0666"',
  );
  has(at('ipc.jsonc', text, 7, '"colour"'), 'colour: unknown setting');
  has(at('ipc.jsonc', text, 9, '"maxIncoming"'), 'limits/maxIncoming: must be >= 1');
  t.is(lines.filter((l) => l.includes('socketMode')).length, 1, 'a union is one problem');
  t.is(v.config, undefined);
});

test('JSONC: a syntax error at its place; a file of unknown extension is refused', (t) => {
  const v = validateConfigText('{\n  "version": 1,\n  "identity": {\n}\n', 'x.json');
  t.true(v.problems.length > 0);
  t.is(v.problems[0]!.line, 5);
  t.regex(v.problems[0]!.message, /syntax error/);
  t.regex(validateConfigText('{}', 'x.yaml').problems[0]!.message, /unknown format/);
});

test('the semantic checks: one key source, passphrase with encryptedFile, role references, endpoint names, inline secrets refused by name', (t) => {
  const text = `{
  "version": 1,
  "identity": { "key": { "file": "k", "keystore": { "account": "a" } }, "secretKey": "AAAA" },
  "trust": { "keys": ["${peer}"] },
  "policy": { "roles": { "app": {} }, "defaultRoles": ["nobody"] },
  "endpoints": [{ "name": "a", "listen": "local://x" }, { "name": "a", "listen": "local://y" }]
}
`;
  const v = validateConfigText(text, 'c.jsonc');
  const lines = v.problems.map(formatProblem).join('\n');
  t.true(
    lines.includes(
      `${at('c.jsonc', text, 3, '"secretKey"')} secretKey: secrets are never written in a configuration; use identity.key's keystore, encryptedFile or file`,
    ),
    lines,
  );
  t.notRegex(lines, /secretKey: unknown setting/);
  t.is(v.problems.filter((p) => p.message.includes('secretKey')).length, 1);
  // The schema problem stops it before the semantic checks.
  const fixed = validateConfigText(text.replace(', "secretKey": "AAAA"', ''), 'c.jsonc');
  const all = fixed.problems.map(formatProblem).join('\n');
  const fixedText = text.replace(', "secretKey": "AAAA"', '');
  t.true(
    all.includes(
      `${at('c.jsonc', fixedText, 3, '"key"')} identity.key: exactly one of keystore, encryptedFile or file (2 given)`,
    ),
    all,
  );
  t.true(all.includes(`${at('c.jsonc', fixedText, 5, '"nobody"')} role "nobody" is not defined`), all);
  t.true(
    all.includes(
      `${at('c.jsonc', fixedText, 6, '"name": "a", "listen": "local://y"')} endpoint name a is used twice`,
    ),
    all,
  );
  const pass = validateConfigText(
    good.replace('{ "file": "server.key" }', '{ "encryptedFile": "server.key.enc" }'),
    'c.jsonc',
  );
  t.regex(
    pass.problems.map(formatProblem).join('\n'),
    /encryptedFile needs exactly one of passphraseEnv or passphraseFile/,
  );
});

const goodToml = `version = 1

[identity.key]
file = "server.key"

[trust]
keys = ["${peer}"]

[policy.roles.app]
call = ["files.*"]

[[policy.peers]]
key = "${peer}"
roles = ["app"]

[[endpoints]]
name = "main"
listen = "local://helper"

[[endpoints]]
name = "tcp"
listen = "tcp://127.0.0.1:7000"
maxIncoming = 3

[[tests]]
peer = "${peer}"
call = "files.read"
expect = "deny"
`;

test('TOML: the same schema; problems in [[array]] tables at their line; a failing policy test refuses the file', (t) => {
  const v = validateConfigText(goodToml, 'ipc.toml');
  const lines = v.problems.map(formatProblem);
  // A schema problem stops validation before the policy tests.
  t.deepEqual(lines, ['ipc.toml:23:1: maxIncoming: unknown setting']);
  const fixed = validateConfigText(goodToml.replace('maxIncoming = 3\n', ''), 'ipc.toml');
  t.deepEqual(fixed.problems.map(formatProblem), [
    'ipc.toml:24:1: policy test failed: call files.read is allowed, expected deny',
  ]);
  t.deepEqual(fixed.tests, { run: 1, passed: 0 });
  const ok = validateConfigText(
    goodToml.replace('maxIncoming = 3\n', '').replace('expect = "deny"', 'expect = "allow"'),
    'ipc.toml',
  );
  t.deepEqual(ok.problems, []);
  t.is(ok.config?.endpoints[1]?.listen, 'tcp://127.0.0.1:7000');
  const bad = validateConfigText('version = 1\n[trust\nkeys = []\n', 'ipc.toml');
  t.is(bad.problems[0]!.line, 2);
  t.regex(bad.problems[0]!.message, /syntax error/);
});

test('profiles: baseline refuses a remote TCP bind without allowRemote; strict refuses wildcards, default roles, pinned keys, plain key files, no audit, unless weakened with a reason', (t) => {
  const remote = validateConfigText(good.replace('local://helper', 'tcp://0.0.0.0:9000'), 'c.jsonc');
  const remoteText = good.replace('local://helper', 'tcp://0.0.0.0:9000');
  t.deepEqual(remote.problems.map(formatProblem), [
    `${at('c.jsonc', remoteText, 10, '"listen"')} tcp://0.0.0.0:9000 is not a loopback address (set allowRemote to expose it) [baseline.loopback-only]`,
  ]);
  const strictText = good.replace('"version": 1,', '"version": 1,\n  "profile": "strict",');
  const s = validateConfigText(strictText, 'c.jsonc');
  const rules = new Set(s.problems.map((p) => p.rule));
  for (const r of [
    'strict.certificates',
    'strict.no-pinned-keys',
    'strict.no-wildcard-call',
    'strict.protected-keys',
    'strict.audit-required',
  ])
    t.true(rules.has(r), `${r}: ${s.problems.map(formatProblem).join('\n')}`);
  t.true(
    s.problems
      .map(formatProblem)
      .includes(
        `${at('c.jsonc', strictText, 8, '"files.*"')} strict: role app grants call on the pattern files.* [strict.no-wildcard-call]`,
      ),
    s.problems.map(formatProblem).join('\n'),
  );
  // A configuration that weakens a rule says so, with a reason; an unknown rule is a problem.
  const weakened = validateConfigText(
    strictText.replace(
      '"profile": "strict",',
      '"profile": "strict",\n  "weakens": [{ "rule": "strict.no-wildcard-call", "reason": "files.* is the whole API" }, { "rule": "strict.nope", "reason": "x" }],',
    ),
    'c.jsonc',
  );
  const wr = new Set(weakened.problems.map((p) => p.rule));
  t.false(wr.has('strict.no-wildcard-call'));
  t.true(wr.has('strict.audit-required'));
  t.regex(weakened.problems.map(formatProblem).join('\n'), /unknown profile rule strict\.nope/);
  // A strict configuration that holds.
  const strictOk = `{
  "version": 1, "profile": "strict",
  "identity": { "key": { "keystore": { "account": "helper" } }, "certificate": "helper.cert" },
  "trust": { "authorities": ["${ca}"], "revocations": "revoked.list" },
  "policy": { "roles": { "app": { "call": ["files.read"] } } },
  "endpoints": [{ "name": "main", "listen": "local://helper" }],
  "audit": { "dir": "audit", "origin": "example.com/helper/audit", "required": true },
  "tests": [{ "roles": ["app"], "call": "files.read", "expect": "allow" }, { "roles": ["app"], "call": "files.write", "expect": "deny" }]
}`;
  const ok = validateConfigText(strictOk, 'strict.jsonc');
  t.deepEqual(ok.problems.map(formatProblem), []);
  t.deepEqual(ok.tests, { run: 2, passed: 2 });
});

test('the published JSON Schema is the schema (npm run schema -w packages/config writes it)', (t) => {
  const committed = readFileSync(
    new URL('../../schema/secure-ipc.config.schema.json', import.meta.url),
    'utf8',
  );
  t.is(committed, jsonSchemaText());
  const parsed = JSON.parse(committed);
  t.is(parsed.properties.endpoints.items.properties.listen['x-reloadable'], false);
  t.is(typeof parsed.properties.identity.properties.key['x-security'], 'string');
});
