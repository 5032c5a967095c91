/**
 * `doctorConfig` (docs/configuration.md, "Doctor"): each check fires on a crafted configuration and
 * file tree in a temporary directory, and is quiet once fixed; a configuration with everything in
 * place scores 0; the score is capped at 10; strict judges certificate lifetimes by 24 hours,
 * baseline by 30 days; findings carry the setting's line and column.
 */
import { chmod, chown, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  addToRevocationFile,
  certificateToText,
  encodeKey,
  generateAuthority,
  generateKeyPair,
  isSecureIpcError,
  issueCertificate,
  type KeyPair,
  writeCertificateFile,
  writeEncryptedKeyFile,
  writeSecretKeyFile,
} from '@secure-ipc/core';
import test, { type ExecutionContext } from 'ava';
import {
  type Config,
  DOCTOR_CHECKS,
  DOCTOR_MAX_SCORE,
  type DoctorReport,
  doctorConfig,
} from '../src/index.js';

const HOUR = 3_600_000;
const authority = generateAuthority();
const peer = encodeKey(generateKeyPair().publicKey);
const isRoot = process.geteuid?.() === 0;

interface Tree {
  dir: string;
  file: string;
  server: KeyPair;
  config: Config;
}

/**
 * A configuration with nothing exposed: the key in the keystore (not read by the doctor), a fresh
 * 24-hour certificate of a trusted authority, a revocation list, named grants, a unix:// socket in
 * a 0700 directory, a required audit log.
 */
async function tree(t: ExecutionContext): Promise<Tree> {
  const dir = await mkdtemp(join(tmpdir(), 'sipc-doctor-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const server = generateKeyPair();
  await writeCertificateFile(
    join(dir, 'server.cert'),
    issueCertificate(authority, { subjectKey: server.publicKey, name: 'helper', ttlMs: 24 * HOUR }),
  );
  await addToRevocationFile(join(dir, 'revoked.json'), {});
  await mkdir(join(dir, 'run'), { mode: 0o700 });
  const config: Config = {
    version: 1,
    identity: { key: { keystore: { account: 'helper' } }, certificate: 'server.cert' },
    trust: { authorities: [encodeKey(authority.publicKey)], revocations: 'revoked.json' },
    policy: {
      roles: { app: { call: ['files.read'], subscribe: ['files.changed'] } },
      peers: [{ key: peer, roles: ['app'] }],
    },
    endpoints: [{ name: 'main', listen: `unix://${join(dir, 'run', 'helper.sock')}` }],
    audit: { dir: 'audit', origin: 'test.example/doctor', required: true },
  };
  return { dir, file: join(dir, 'ipc.json'), server, config };
}

/** Write the configuration as JSON and run the doctor on the file. */
async function doctor(x: Tree, change: (c: Config) => void = () => {}, now?: number): Promise<DoctorReport> {
  const c = structuredClone(x.config);
  change(c);
  await writeFile(x.file, `${JSON.stringify(c, null, 2)}\n`);
  return doctorConfig(x.file, now === undefined ? {} : { now });
}

const ids = (r: DoctorReport) => r.findings.map((f) => f.id).sort();

test('a configuration with everything in place scores 0, with no finding', async (t) => {
  const x = await tree(t);
  const r = await doctor(x);
  t.deepEqual(r.findings, []);
  t.is(r.score, 0);
  t.is(r.profile, 'baseline');
});

test('key-plain-file and key-file-mode: a plain key file, and the same file readable by the group; chmod 600 quiets the mode', async (t) => {
  const x = await tree(t);
  await writeSecretKeyFile(join(x.dir, 'server.key'), x.server.secretKey);
  const plain = (c: Config) => {
    c.identity.key = { file: 'server.key' };
  };
  t.deepEqual(ids(await doctor(x, plain)), ['key-plain-file']);
  await chmod(join(x.dir, 'server.key'), 0o640);
  const r = await doctor(x, plain);
  t.deepEqual(ids(r), ['key-file-mode', 'key-plain-file']);
  const mode = r.findings.find((f) => f.id === 'key-file-mode')!;
  t.is(mode.severity, 'high');
  t.is(mode.weight, 3);
  t.is(mode.pointer, '/identity/key/file');
  t.regex(mode.message, /accessible by group or others \(mode 0640\)/);
  t.is(mode.fix, `chmod 600 ${join(x.dir, 'server.key')}`);
  t.is(r.score, 3.5);
  await chmod(join(x.dir, 'server.key'), 0o600);
  t.deepEqual(ids(await doctor(x, plain)), ['key-plain-file']);
});

test('key-file-mode: a key file another user owns', async (t) => {
  if (!isRoot) return t.pass('skipped: giving a file to another user needs root');
  const x = await tree(t);
  await writeSecretKeyFile(join(x.dir, 'server.key'), x.server.secretKey);
  await chown(join(x.dir, 'server.key'), 65534, 65534);
  const r = await doctor(x, (c) => {
    c.identity.key = { file: 'server.key' };
  });
  t.deepEqual(ids(r), ['key-file-mode', 'key-plain-file']);
  t.regex(r.findings[0]!.message, /owned by uid 65534/);
});

test('certificate-key-mismatch: the certificate is for another key than the plain key file', async (t) => {
  const x = await tree(t);
  await writeSecretKeyFile(join(x.dir, 'other.key'), generateKeyPair().secretKey);
  const r = await doctor(x, (c) => {
    c.identity.key = { file: 'other.key' };
  });
  t.deepEqual(ids(r), ['certificate-key-mismatch', 'key-plain-file']);
  await writeSecretKeyFile(join(x.dir, 'server.key'), x.server.secretKey);
  t.deepEqual(
    ids(
      await doctor(x, (c) => {
        c.identity.key = { file: 'server.key' };
      }),
    ),
    ['key-plain-file'],
  );
});

// Argon2id at libsodium's INTERACTIVE floor: the test is about the file, not the key derivation.
const cheap = { opslimit: 2, memlimit: 64 * 1024 * 1024 };

test('key-not-encrypted, encrypted-key-file-mode, passphrase-env and a passphraseFile others can read', async (t) => {
  const x = await tree(t);
  const enc = join(x.dir, 'server.key.enc');
  const pass = join(x.dir, 'passphrase');
  await writeSecretKeyFile(enc, x.server.secretKey); // a plain key where an encrypted one is said to be
  await writeFile(pass, 'correct horse\n', { mode: 0o600 });
  const byFile = (c: Config) => {
    c.identity.key = { encryptedFile: 'server.key.enc', passphraseFile: 'passphrase' };
  };
  t.deepEqual(ids(await doctor(x, byFile)), ['key-not-encrypted']);
  await rm(enc);
  await writeEncryptedKeyFile(enc, x.server.secretKey, 'correct horse', cheap);
  t.deepEqual(ids(await doctor(x, byFile)), []);
  await chmod(enc, 0o644);
  await chmod(pass, 0o604);
  const r = await doctor(x, byFile);
  t.deepEqual(ids(r), ['encrypted-key-file-mode', 'key-file-mode']);
  t.is(r.findings.find((f) => f.id === 'key-file-mode')!.pointer, '/identity/key/passphraseFile');
  await chmod(enc, 0o600);
  t.deepEqual(
    ids(
      await doctor(x, (c) => {
        c.identity.key = { encryptedFile: 'server.key.enc', passphraseEnv: 'HELPER_PASSPHRASE' };
      }),
    ),
    ['passphrase-env'],
  );
});

test('file-unusable: a missing certificate, a key file that is a link, a revocation list that is not one', async (t) => {
  const x = await tree(t);
  await writeSecretKeyFile(join(x.dir, 'server.key'), x.server.secretKey);
  await symlink(join(x.dir, 'server.key'), join(x.dir, 'link.key'));
  await writeFile(join(x.dir, 'not-a-list.json'), '{"hello": 1}\n', { mode: 0o644 });
  const r = await doctor(x, (c) => {
    c.identity.key = { file: 'link.key' };
    c.identity.certificate = 'missing.cert';
    c.trust.revocations = 'not-a-list.json';
  });
  t.deepEqual(ids(r), ['file-unusable', 'file-unusable', 'file-unusable', 'key-plain-file']);
  const messages = r.findings.map((f) => `${f.pointer} ${f.message}`).join('\n');
  t.regex(messages, /\/identity\/key\/file .*link\.key is a symbolic link/);
  t.regex(messages, /\/identity\/certificate .*missing\.cert/);
  t.regex(messages, /\/trust\/revocations .*not-a-list\.json/);
});

test('certificate-signature, -expired, -not-yet-valid, -expires-soon, -revoked; a fresh one is quiet', async (t) => {
  const x = await tree(t);
  const cert = (name: string, o: { ttlMs: number; notBefore?: number; serial?: number }) =>
    writeCertificateFile(
      join(x.dir, name),
      issueCertificate(authority, { subjectKey: x.server.publicKey, name: 'helper', ...o }),
    );
  const use = (name: string) => (c: Config) => {
    c.identity.certificate = name;
  };
  const good = issueCertificate(authority, {
    subjectKey: x.server.publicKey,
    name: 'helper',
    ttlMs: 24 * HOUR,
  });
  const forged = new Uint8Array(good.bytes);
  forged[forged.length - 1]! ^= 1; // the signature is the last field
  await writeFile(join(x.dir, 'forged.cert'), certificateToText({ ...good, bytes: forged }));
  t.deepEqual(ids(await doctor(x, use('forged.cert'))), ['certificate-signature']);

  await cert('expired.cert', { ttlMs: 24 * HOUR, notBefore: Date.now() - 48 * HOUR });
  const expired = await doctor(x, use('expired.cert'));
  t.deepEqual(ids(expired), ['certificate-expired']);
  t.regex(expired.findings[0]!.message, /expired 24\.0 hours ago/);

  await cert('later.cert', { ttlMs: 24 * HOUR, notBefore: Date.now() + HOUR });
  t.deepEqual(ids(await doctor(x, use('later.cert'))), ['certificate-not-yet-valid']);

  // 4 of its 24 hours left: under a third of its lifetime.
  await cert('soon.cert', { ttlMs: 24 * HOUR, notBefore: Date.now() - 20 * HOUR });
  t.deepEqual(ids(await doctor(x, use('soon.cert'))), ['certificate-expires-soon']);
  // 12 hours left of 24: not yet.
  t.deepEqual(ids(await doctor(x, use('soon.cert'), Date.now() - 8 * HOUR)), []);
  // A 20-day certificate with 6 days left: under the 7 days.
  await cert('month.cert', { ttlMs: 20 * 24 * HOUR, notBefore: Date.now() - 14 * 24 * HOUR });
  t.deepEqual(ids(await doctor(x, use('month.cert'))), ['certificate-expires-soon']);

  await cert('revoked.cert', { ttlMs: 24 * HOUR, serial: 4242 });
  t.deepEqual(ids(await doctor(x, use('revoked.cert'))), []);
  await addToRevocationFile(join(x.dir, 'revoked.json'), { serials: [4242] });
  const revoked = await doctor(x, use('revoked.cert'));
  t.deepEqual(ids(revoked), ['certificate-revoked']);
  t.regex(revoked.findings[0]!.message, /serial 4242/);
});

test('certificate-lifetime: strict holds a certificate to 24 hours, baseline to 30 days', async (t) => {
  const x = await tree(t);
  await writeCertificateFile(
    join(x.dir, 'two-days.cert'),
    issueCertificate(authority, { subjectKey: x.server.publicKey, name: 'helper', ttlMs: 48 * HOUR }),
  );
  await writeCertificateFile(
    join(x.dir, 'year.cert'),
    issueCertificate(authority, { subjectKey: x.server.publicKey, name: 'helper', ttlMs: 365 * 24 * HOUR }),
  );
  const strict = (cert: string) => (c: Config) => {
    c.profile = 'strict';
    c.identity.certificate = cert;
  };
  const baseline = (cert: string) => (c: Config) => {
    c.identity.certificate = cert;
  };
  const s = await doctor(x, strict('two-days.cert'));
  t.is(s.profile, 'strict');
  t.deepEqual(ids(s), ['certificate-lifetime']);
  t.regex(s.findings[0]!.message, /lasts 2\.0 days, over the strict profile's 24\.0 hours/);
  t.deepEqual(ids(await doctor(x, baseline('two-days.cert'))), []);
  t.deepEqual(ids(await doctor(x, baseline('year.cert'))), ['certificate-lifetime']);
  t.deepEqual(ids(await doctor(x, strict('server.cert'))), []);
});

test('no-revocation-list and revocation-list-mode: absent, then writable by others, then fixed', async (t) => {
  const x = await tree(t);
  t.deepEqual(
    ids(
      await doctor(x, (c) => {
        delete c.trust.revocations;
      }),
    ),
    ['no-revocation-list'],
  );
  const list = join(x.dir, 'revoked.json');
  await chmod(list, 0o664);
  const r = await doctor(x);
  t.deepEqual(ids(r), ['revocation-list-mode']);
  t.is(r.findings[0]!.fix, `chmod go-w ${list}`);
  await chmod(list, 0o644);
  t.deepEqual(ids(await doctor(x)), []);
});

test('call-grant-all, wildcard-call, topic-grant-all, default-roles', async (t) => {
  const x = await tree(t);
  const r = await doctor(x, (c) => {
    c.policy.roles = {
      app: { call: ['files.read', 'files.*'], subscribe: ['*'] },
      admin: { call: ['*'], publish: ['*'] },
    };
    c.policy.defaultRoles = ['app'];
  });
  t.deepEqual(ids(r), [
    'call-grant-all',
    'default-roles',
    'topic-grant-all',
    'topic-grant-all',
    'wildcard-call',
  ]);
  const all = r.findings.find((f) => f.id === 'call-grant-all')!;
  t.is(all.pointer, '/policy/roles/admin/call/0');
  t.is(r.findings[0], all); // the heaviest first
  t.is(r.score, 2 + 1 + 0.5 + 0.5 + 0.5);
});

test('endpoints: remote-tcp, tcp-local, abstract-socket, socket modes, OS admission lists', async (t) => {
  const x = await tree(t);
  const endpoint = (e: Partial<Config['endpoints'][number]>) => (c: Config) => {
    c.endpoints = [{ ...c.endpoints[0]!, ...e }];
  };
  t.deepEqual(ids(await doctor(x, endpoint({ listen: 'tcp://0.0.0.0:7000', allowRemote: true }))), [
    'remote-tcp',
  ]);
  t.deepEqual(ids(await doctor(x, endpoint({ listen: 'tcp://127.0.0.1:7000' }))), ['tcp-local']);
  t.deepEqual(ids(await doctor(x, endpoint({ listen: 'unix-abstract:helper' }))), ['abstract-socket']);
  t.deepEqual(ids(await doctor(x, endpoint({ socketMode: '0666' }))), ['socket-world-access']);
  t.deepEqual(ids(await doctor(x, endpoint({ socketMode: '0660', socketGroup: 1234 }))), [
    'socket-group-access',
  ]);
  t.deepEqual(ids(await doctor(x, endpoint({ socketMode: '0600' }))), []);
  const me = process.geteuid!();
  t.deepEqual(ids(await doctor(x, endpoint({ allowUids: [me, 12345] }))), ['os-admission-widened']);
  t.deepEqual(ids(await doctor(x, endpoint({ allowUids: [me] }))), []);
});

test('socket-dir-insecure: a directory others can write, a missing one under a world-writable parent without the sticky bit', async (t) => {
  const x = await tree(t);
  const run = join(x.dir, 'run');
  await chmod(run, 0o777);
  const wide = await doctor(x);
  t.deepEqual(ids(wide), ['socket-dir-insecure']);
  t.regex(wide.findings[0]!.message, /writable by group or others \(mode 0777\)/);
  t.is(wide.findings[0]!.pointer, '/endpoints/0/listen');
  await chmod(run, 0o700);
  t.deepEqual(ids(await doctor(x)), []);

  const shared = join(x.dir, 'shared');
  await mkdir(shared);
  await chmod(shared, 0o777);
  const later = (c: Config) => {
    c.endpoints[0]!.listen = `unix://${join(shared, 'not-yet', 'helper.sock')}`;
  };
  const missing = await doctor(x, later);
  t.deepEqual(ids(missing), ['socket-dir-insecure']);
  t.regex(missing.findings[0]!.message, /world-writable without the sticky bit/);
  await chmod(shared, 0o1777); // as /tmp: nobody may remove or rename what another made there
  t.deepEqual(ids(await doctor(x, later)), []);
});

test('socket-dir-insecure: a socket directory another user owns', async (t) => {
  if (!isRoot) return t.pass('skipped: giving a directory to another user needs root');
  const x = await tree(t);
  await chown(join(x.dir, 'run'), 65534, 65534);
  const r = await doctor(x);
  t.deepEqual(ids(r), ['socket-dir-insecure']);
  t.regex(r.findings[0]!.message, /owned by uid 65534/);
});

test('no-audit, audit-not-required, private-dir-insecure for the audit and outbox directories, the audit hash key file', async (t) => {
  const x = await tree(t);
  t.deepEqual(
    ids(
      await doctor(x, (c) => {
        delete c.audit;
      }),
    ),
    ['no-audit'],
  );
  t.deepEqual(
    ids(
      await doctor(x, (c) => {
        c.audit!.required = false;
      }),
    ),
    ['audit-not-required'],
  );
  await mkdir(join(x.dir, 'audit'), { mode: 0o755 });
  await chmod(join(x.dir, 'audit'), 0o755);
  await mkdir(join(x.dir, 'outbox'), { mode: 0o700 });
  const withOutbox = (c: Config) => {
    c.outbox = { dir: 'outbox', key: { keystore: { account: 'helper-outbox' } } };
  };
  const r = await doctor(x, withOutbox);
  t.deepEqual(ids(r), ['private-dir-insecure']);
  t.is(r.findings[0]!.pointer, '/audit/dir');
  await chmod(join(x.dir, 'audit'), 0o700);
  await chmod(join(x.dir, 'outbox'), 0o750);
  const o = await doctor(x, withOutbox);
  t.deepEqual(ids(o), ['private-dir-insecure']);
  t.is(o.findings[0]!.pointer, '/outbox/dir');
  await chmod(join(x.dir, 'outbox'), 0o700);
  t.deepEqual(ids(await doctor(x, withOutbox)), []);

  // The audit hash key is a secret file like a key.
  await writeFile(join(x.dir, 'audit.hashkey'), `${'ab'.repeat(32)}\n`, { mode: 0o644 });
  await chmod(join(x.dir, 'audit.hashkey'), 0o644);
  const hashKey = (c: Config) => {
    c.audit!.hashKeyFile = 'audit.hashkey';
  };
  const h = await doctor(x, hashKey);
  t.deepEqual(ids(h), ['key-file-mode']);
  t.is(h.findings[0]!.pointer, '/audit/hashKeyFile');
  await chmod(join(x.dir, 'audit.hashkey'), 0o600);
  t.deepEqual(ids(await doctor(x, hashKey)), []);
});

test('profile-weakened: each weakening of a strict profile is told with its reason, weighing nothing; what it lets through is still found', async (t) => {
  const x = await tree(t);
  const r = await doctor(x, (c) => {
    c.profile = 'strict';
    c.policy.roles.app!.call = ['files.*'];
    c.weakens = [{ rule: 'strict.no-wildcard-call', reason: 'the files service adds methods weekly' }];
  });
  t.deepEqual(ids(r), ['profile-weakened', 'wildcard-call']);
  const w = r.findings.find((f) => f.id === 'profile-weakened')!;
  t.is(w.severity, 'info');
  t.is(w.weight, 0);
  t.is(w.message, 'strict rule strict.no-wildcard-call is weakened: the files service adds methods weekly');
  t.is(r.score, 0.5);
});

test('the score is the sum of the weights, capped at 10', async (t) => {
  const x = await tree(t);
  await writeSecretKeyFile(join(x.dir, 'server.key'), x.server.secretKey);
  await chmod(join(x.dir, 'server.key'), 0o644);
  const r = await doctor(x, (c) => {
    c.identity.key = { file: 'server.key' };
    c.policy.roles.app!.call = ['*'];
    c.policy.defaultRoles = ['app'];
    c.endpoints = [{ name: 'main', listen: 'tcp://0.0.0.0:7000', allowRemote: true }];
    delete c.audit;
    delete c.trust.revocations;
  });
  const sum = r.findings.reduce((s, f) => s + f.weight, 0);
  t.true(sum > DOCTOR_MAX_SCORE, `sum ${sum}`);
  t.is(r.score, DOCTOR_MAX_SCORE);
});

test('findings carry their line and column from the file; an already loaded configuration works without them', async (t) => {
  const x = await tree(t);
  const r = await doctor(x, (c) => {
    c.policy.defaultRoles = ['app'];
  });
  const f = r.findings[0]!;
  t.is(f.id, 'default-roles');
  const lines = (await readFile(x.file, 'utf8')).split('\n');
  t.regex(lines[f.line! - 1]!.slice(f.column! - 1), /^"defaultRoles"/);
  const c = structuredClone(x.config);
  c.policy.defaultRoles = ['app'];
  const loaded = await doctorConfig({ file: x.file, config: c });
  t.deepEqual(ids(loaded), ['default-roles']);
  t.is(loaded.findings[0]!.line, undefined);
});

test('a configuration with problems is refused with every problem; an unreadable file is a file error', async (t) => {
  const x = await tree(t);
  await writeFile(x.file, '{ "version": 2 }\n');
  const err = await t.throwsAsync(doctorConfig(x.file));
  t.true(isSecureIpcError(err, 'SIPC_ERR_INVALID_CONFIG'));
  t.true(((err as { details?: { problems?: unknown[] } }).details?.problems?.length ?? 0) > 1);
  const missing = await t.throwsAsync(doctorConfig(join(x.dir, 'nope.json')));
  t.true(isSecureIpcError(missing, 'SIPC_ERR_INVALID_ARGUMENT'));
});

test('every check has a unique id, a weight in 0..3 in steps of 0.5, and its row in docs/configuration.md', async (t) => {
  const doc = await readFile(new URL('../../../../docs/configuration.md', import.meta.url), 'utf8');
  const seen = new Set<string>();
  for (const c of DOCTOR_CHECKS) {
    t.false(seen.has(c.id), c.id);
    seen.add(c.id);
    t.true(c.weight >= 0 && c.weight <= 3 && Number.isInteger(c.weight * 2), c.id);
    t.true(
      doc.includes(`| \`${c.id}\` | ${c.weight.toFixed(1)} |`),
      `docs/configuration.md lacks the row of ${c.id}`,
    );
  }
});
