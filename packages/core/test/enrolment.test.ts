/**
 * Enrolment (docs/identity.md, "Enrolment"): one-time tokens kept as hashes, certificates issued
 * to the key the handshake proved, renewal only of a valid certificate of this authority for the
 * same key, the authority's end capping and warning, and keepCertificateRenewed swapping a new
 * certificate into a live listener while a channel opened under the old one stays open.
 */
import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import {
  type Certificate,
  certificateTrust,
  connect,
  createEnrolmentToken,
  createPolicy,
  decodeCertificate,
  ENROLMENT_TOKEN_PREFIX,
  enrolCertificate,
  generateAuthority,
  generateKeyPair,
  issueCertificate,
  keepCertificateRenewed,
  RevocationList,
  renewalTime,
  renewCertificate,
  serve,
  serveEnrolment,
} from '../src/index.js';
import { memoryTransport } from '../src/transport/index.js';

const transport = memoryTransport();
let n = 0;

async function tokensFile(t: ExecutionContext): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'sipc-enrol-'));
  t.teardown(() => rm(d, { recursive: true, force: true }));
  return join(d, 'tokens.json');
}

async function ca(t: ExecutionContext, extra: Record<string, unknown> = {}) {
  const authority = generateAuthority();
  const serverKeys = generateKeyPair();
  const address = `memory://enrol-${++n}`;
  const tokens = await tokensFile(t);
  const { server, service } = await serveEnrolment({
    transport,
    address,
    keyPair: serverKeys,
    authority,
    tokens,
    ttlMs: 60_000,
    ...extra,
  });
  t.teardown(() => server.close());
  const client = (keyPair = generateKeyPair()) => ({
    keyPair,
    options: {
      transport,
      address,
      keyPair,
      trust: { keys: [serverKeys.publicKey] },
      authority: authority.publicKey,
    },
  });
  return { authority, tokens, service, client };
}

test('a one-time token enrols the key the handshake proved, once; the file keeps only its hash', async (t) => {
  const { authority, tokens, service, client } = await ca(t);
  const refusals: string[] = [];
  service.on('refused', (r) => refusals.push(r.reason));
  const { token } = await createEnrolmentToken(tokens, { name: 'sync-helper', roles: ['helper'] });
  t.true(token.startsWith(ENROLMENT_TOKEN_PREFIX));
  t.is((await stat(tokens)).mode & 0o777, 0o600);
  t.false((await readFile(tokens, 'utf8')).includes(token.slice(ENROLMENT_TOKEN_PREFIX.length)));

  const peer = client();
  const cert = await enrolCertificate({ ...peer.options, token });
  t.true(Buffer.from(cert.subjectKey).equals(peer.keyPair.publicKey));
  t.true(Buffer.from(cert.issuer).equals(authority.publicKey));
  t.is(cert.name, 'sync-helper');
  t.deepEqual(cert.roles, ['helper']);
  t.is(cert.notAfter - cert.notBefore, 60_000);
  // Used: the same token again, from anyone, is refused; so is a made-up one and none at all.
  await t.throwsAsync(enrolCertificate({ ...client().options, token }), { code: 'SIPC_ERR_FORBIDDEN' });
  await t.throwsAsync(enrolCertificate({ ...client().options, token: `${ENROLMENT_TOKEN_PREFIX}x` }), {
    code: 'SIPC_ERR_FORBIDDEN',
  });
  await t.throwsAsync(enrolCertificate(client().options), { code: 'SIPC_ERR_FORBIDDEN' });
  t.deepEqual(refusals, [
    'unknown, used or expired token',
    'unknown, used or expired token',
    'no token and no rule for an unknown OS identity',
  ]);
  t.deepEqual(JSON.parse(await readFile(tokens, 'utf8')), { v: 1, tokens: [] });

  // An expired token is refused and dropped.
  const old = await createEnrolmentToken(tokens, { name: 'late', ttlMs: 1 }, Date.now() - 10);
  await t.throwsAsync(enrolCertificate({ ...client().options, token: old.token }), {
    code: 'SIPC_ERR_FORBIDDEN',
  });
  // Two racing enrolments with one token: exactly one certificate.
  const race = await createEnrolmentToken(tokens, { name: 'race' });
  const results = await Promise.allSettled([
    enrolCertificate({ ...client().options, token: race.token }),
    enrolCertificate({ ...client().options, token: race.token }),
  ]);
  t.deepEqual(results.map((r) => r.status).sort(), ['fulfilled', 'rejected']);
});

test('renewal: a valid certificate of this authority, presented over a channel of its own key, gets a new one with the same name and roles; anything else is refused', async (t) => {
  const revocations = new RevocationList();
  const { authority, client } = await ca(t, { revocations });
  const peer = client();
  const cert = issueCertificate(authority, {
    subjectKey: peer.keyPair.publicKey,
    name: 'ui',
    roles: ['app'],
    ttlMs: 60_000,
  });
  const fresh = await renewCertificate(peer.options, cert);
  t.not(fresh.serial, cert.serial);
  t.is(fresh.name, 'ui');
  t.deepEqual(fresh.roles, ['app']);
  t.true(Buffer.from(fresh.subjectKey).equals(peer.keyPair.publicKey));
  // Someone else's certificate, over another key's channel.
  await t.throwsAsync(renewCertificate(client().options, cert), { code: 'SIPC_ERR_FORBIDDEN' });
  // Another authority's.
  const other = issueCertificate(generateAuthority(), {
    subjectKey: peer.keyPair.publicKey,
    name: 'ui',
    ttlMs: 60_000,
  });
  await t.throwsAsync(renewCertificate(peer.options, other), { code: 'SIPC_ERR_FORBIDDEN' });
  // Expired: re-enrol instead.
  const expired = issueCertificate(authority, {
    subjectKey: peer.keyPair.publicKey,
    name: 'ui',
    notBefore: Date.now() - 120_000,
    ttlMs: 60_000,
  });
  await t.throwsAsync(renewCertificate(peer.options, expired), { code: 'SIPC_ERR_FORBIDDEN' });
  // Revoked.
  revocations.revokeSerial(fresh.serial);
  await t.throwsAsync(renewCertificate(peer.options, fresh), { code: 'SIPC_ERR_FORBIDDEN' });
});

test('the authority’s planned end caps every certificate, is warned about inside the window, and stops issuance at the end', async (t) => {
  const end = Date.now() + 90_000;
  const { authority, tokens, service, client } = await ca(t, {
    authorityNotAfter: end,
    authorityWarningMs: 120_000,
  });
  const warnings: number[] = [];
  service.on('authorityExpiring', (s) => warnings.push(s.remainingMs ?? -1));
  t.true(service.checkAuthority().expiring);
  const { token } = await createEnrolmentToken(tokens, { name: 'a' });
  const peer = client();
  const cert = await enrolCertificate({ ...peer.options, token });
  // 60 s asked for, 90 s left: 60 s. Renewed near the end it would be capped at the end.
  t.true(cert.notAfter <= end + 1000);
  t.true(warnings.length >= 2 && warnings.every((w) => w > 0 && w <= 90_000));
  // Past its end: nothing is issued.
  const endedKeys = generateKeyPair();
  const endedAddress = `memory://enrol-ended-${++n}`;
  const { server: ended } = await serveEnrolment({
    transport,
    address: endedAddress,
    keyPair: endedKeys,
    authority,
    tokens,
    authorityNotAfter: Date.now() - 1,
  });
  t.teardown(() => ended.close());
  await t.throwsAsync(
    renewCertificate(
      { ...peer.options, address: endedAddress, trust: { keys: [endedKeys.publicKey] } },
      cert,
    ),
    { code: 'SIPC_ERR_FORBIDDEN' },
  );
});

test('renewalTime: 2/3 of the lifetime, within 1/20 of it either way', (t) => {
  const cert = { notBefore: 0, notAfter: 60_000 };
  t.is(
    renewalTime(cert, () => 0.5),
    40_000,
  );
  t.is(
    renewalTime(cert, () => 0),
    37_000,
  );
  t.is(
    renewalTime(cert, () => 0.999999),
    43_000,
  );
});

test('keepCertificateRenewed swaps the renewed certificate into a live listener: the channel opened under the old one stays open, new handshakes get the new one', async (t) => {
  const { authority, client } = await ca(t, { ttlMs: 3000 });
  const helper = client();
  const first = issueCertificate(authority, {
    subjectKey: helper.keyPair.publicKey,
    name: 'helper',
    ttlMs: 3000,
  });
  const address = `memory://renewed-${++n}`;
  // The helper serves with its certificate; its clients trust the authority.
  const helperServer = await serve({
    transport,
    address,
    keyPair: helper.keyPair,
    payload: { cert: first.bytes },
    trust: () => true,
    policy: createPolicy({ roles: { any: { call: ['ping'] } }, defaultRoles: ['any'] }),
  });
  t.teardown(() => helperServer.close());
  helperServer.handle('ping', () => 'pong');
  const seen: number[] = [];
  const dial = () =>
    connect({
      transport,
      address,
      keyPair: generateKeyPair(),
      trust: (ctx) => {
        const c = decodeCertificate(ctx.payload.cert as Uint8Array);
        seen.push(c.serial);
        return certificateTrust({ authorities: [authority.publicKey] })(ctx);
      },
    });
  const live = await dial();
  t.is(await live.request('ping'), 'pong');
  // The renewal timer does not hold the process open (a daemon's server does): this test does.
  const hold = setInterval(() => {}, 1000);
  t.teardown(() => clearInterval(hold));
  const renewed = new Promise<Certificate>((resolve, reject) => {
    const r = keepCertificateRenewed({
      ...helper.options,
      certificate: first,
      random: () => 0.5,
      apply: (c) => helperServer.listener.update({ payload: { cert: c.bytes } }),
    });
    t.teardown(() => r.stop());
    t.is(
      r.nextRenewalAt,
      renewalTime(first, () => 0.5),
    );
    r.on('error', reject);
    r.on('renewed', (c) => {
      r.stop();
      resolve(c);
    });
  });
  const fresh = await renewed;
  t.not(fresh.serial, first.serial);
  // The live channel was not dropped and still answers.
  t.is(await live.request('ping'), 'pong');
  const next = await dial();
  t.is(await next.request('ping'), 'pong');
  t.deepEqual(seen, [first.serial, fresh.serial]);
  await next.close();
  await live.close();
});
