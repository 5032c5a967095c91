/**
 * Enrolment rules on the peer's executable (docs/identity.md, "Enrolment"; issue 20, item 6):
 * every condition a rule gives must match (the OS identity exactly, the path exactly, the SHA-256
 * in constant time), the executable is read only when a rule needs it and at most once per call,
 * any failure to read it refuses (fail closed), and malformed rules are refused when the service
 * is built. The peer's OS facts come from a memory transport whose accepted connections carry a
 * given `PeerInfo`, as a Unix or pipe transport's would; the real readers are tested in
 * transport-unix (peer-executable.test.ts) and transport-win.
 */
import { createHash } from 'node:crypto';
import test, { type ExecutionContext } from 'ava';
import {
  type EnrolmentRefusal,
  type EnrolmentRule,
  EnrolmentService,
  enrolCertificate,
  generateAuthority,
  generateKeyPair,
  type PeerExecutable,
  type PeerInfo,
  serveEnrolment,
  type Transport,
} from '../src/index.js';
import { memoryTransport, TRANSPORT_BRAND } from '../src/transport/index.js';

const sha = (text: string) => createHash('sha256').update(text).digest('hex');
const HELPER: PeerExecutable = { path: '/usr/libexec/app/sync-helper', sha256: sha('sync-helper v1') };
let n = 0;

/** The memory transport, its accepted connections carrying `peer` as the server's view of the client. */
function transportWithPeer(peer: PeerInfo): Transport {
  const inner = memoryTransport();
  return {
    [TRANSPORT_BRAND]: true,
    name: 'memory',
    schemes: ['memory:'],
    async listen(address, options) {
      const listener = await inner.listen(address, options);
      listener.prependListener('connection', (c) => Object.defineProperty(c, 'peer', { value: peer }));
      return listener;
    },
    connect: (address, options) => inner.connect(address, options),
  };
}

/** A peer with uid 1000 whose executable reader answers `exe` (or throws it), counting the reads. */
function peerRunning(exe: PeerExecutable | undefined | Error) {
  const reads = { count: 0 };
  const peer: PeerInfo = {
    transport: 'memory',
    pid: 4242,
    uid: 1000,
    osIdentity: 'uid:1000',
    executable: async () => {
      reads.count++;
      if (exe instanceof Error) throw exe;
      return exe;
    },
  };
  return { peer, reads };
}

/** Serve enrolment with `rules` to a peer the server sees as `peer`; enrol() asks once by OS facts. */
async function ca(t: ExecutionContext, peer: PeerInfo, rules: EnrolmentRule[]) {
  const transport = transportWithPeer(peer);
  const authority = generateAuthority();
  const serverKeys = generateKeyPair();
  const address = `memory://enrol-exe-${++n}`;
  const { server, service } = await serveEnrolment({
    transport,
    address,
    keyPair: serverKeys,
    authority,
    rules,
  });
  t.teardown(() => server.close());
  const refusals: EnrolmentRefusal[] = [];
  const via: string[] = [];
  service.on('refused', (r) => refusals.push(r));
  service.on('issued', (i) => via.push(i.via));
  const enrol = () =>
    enrolCertificate({
      transport,
      address,
      keyPair: generateKeyPair(),
      trust: { keys: [serverKeys.publicKey] },
      authority: authority.publicKey,
    });
  return { enrol, refusals, via };
}

test('a rule on path and SHA-256 enrols the peer running that image, via executable', async (t) => {
  const { peer, reads } = peerRunning(HELPER);
  const { enrol, via } = await ca(t, peer, [
    {
      executable: { path: HELPER.path, sha256: HELPER.sha256.toUpperCase() },
      name: 'sync-helper',
      roles: ['helper'],
    },
  ]);
  const cert = await enrol();
  t.is(cert.name, 'sync-helper');
  t.deepEqual(cert.roles, ['helper']);
  t.deepEqual(via, ['executable']);
  t.is(reads.count, 1);
});

test('every condition must match: a wrong hash, a wrong path, another uid are each refused with SIPC_ERR_FORBIDDEN', async (t) => {
  const { peer } = peerRunning(HELPER);
  for (const rule of [
    { executable: { path: HELPER.path, sha256: sha('sync-helper v2') } },
    { executable: { path: `${HELPER.path}2`, sha256: HELPER.sha256 } },
    { executable: { path: '/usr/libexec/app/Sync-Helper' } },
    { executable: { sha256: sha('other') } },
    { osIdentity: 'uid:1001', executable: { path: HELPER.path } },
  ]) {
    const { enrol, refusals } = await ca(t, peer, [{ ...rule, name: 'sync-helper' }]);
    await t.throwsAsync(enrol(), { code: 'SIPC_ERR_FORBIDDEN' }, JSON.stringify(rule));
    t.is(refusals.length, 1);
  }
  // The path alone, the hash alone, and uid plus executable each match.
  for (const rule of [
    { executable: { path: HELPER.path } },
    { executable: { sha256: HELPER.sha256 } },
    { osIdentity: 'uid:1000', executable: { path: HELPER.path, sha256: HELPER.sha256 } },
  ]) {
    const { enrol } = await ca(t, peer, [{ ...rule, name: 'sync-helper' }]);
    t.is((await enrol()).name, 'sync-helper', JSON.stringify(rule));
  }
});

test('the refusal says locally what ran (path and hash), the peer learns only SIPC_ERR_FORBIDDEN', async (t) => {
  const { peer } = peerRunning(HELPER);
  const { enrol, refusals } = await ca(t, peer, [
    { executable: { sha256: sha('sync-helper v2') }, name: 'sync-helper' },
  ]);
  const err = await t.throwsAsync(enrol(), { code: 'SIPC_ERR_FORBIDDEN' });
  t.false(String(err?.message).includes(HELPER.sha256));
  t.is(
    refusals[0]?.reason,
    `no token and no rule for uid:1000 running ${JSON.stringify(HELPER.path)} sha256 ${HELPER.sha256}`,
  );
});

test('fail closed: no reader, a reader that answers undefined or throws, a malformed answer are refused', async (t) => {
  const noReader: PeerInfo = { transport: 'memory', osIdentity: 'uid:1000' };
  const cases: PeerInfo[] = [
    noReader,
    peerRunning(undefined).peer,
    peerRunning(new Error('EACCES')).peer,
    peerRunning({ path: HELPER.path, sha256: 'not hex' }).peer,
  ];
  for (const peer of cases) {
    const { enrol, refusals } = await ca(t, peer, [{ executable: { path: HELPER.path }, name: 'x' }]);
    await t.throwsAsync(enrol(), { code: 'SIPC_ERR_FORBIDDEN' });
    t.regex(refusals[0]?.reason ?? '', /running an unknown executable$/);
  }
});

test('the executable is read only when a rule needs it, once per enrolment, and the first matching rule wins', async (t) => {
  const { peer, reads } = peerRunning(HELPER);
  // A uid-only rule matches first: nothing is hashed.
  const byUid = await ca(t, peer, [
    { osIdentity: 'uid:1000', name: 'desktop-ui' },
    { executable: { path: HELPER.path }, name: 'sync-helper' },
  ]);
  t.is((await byUid.enrol()).name, 'desktop-ui');
  t.deepEqual(byUid.via, ['os-identity']);
  t.is(reads.count, 0);
  // A rule for another uid is skipped before its executable is read; two rules that need it read it once.
  const byExe = await ca(t, peer, [
    { osIdentity: 'uid:0', executable: { path: HELPER.path }, name: 'root-helper' },
    { executable: { sha256: sha('other') }, name: 'other' },
    { executable: { path: HELPER.path }, name: 'sync-helper' },
  ]);
  t.is((await byExe.enrol()).name, 'sync-helper');
  t.is(reads.count, 1);
});

test('malformed rules are refused when the service is built, with SIPC_ERR_INVALID_ARGUMENT', (t) => {
  const authority = generateAuthority();
  const bad: unknown[] = [
    { name: 'no-condition' },
    { osIdentity: 'bob', name: 'x' },
    { executable: {}, name: 'x' },
    { executable: 'sync-helper', name: 'x' },
    { executable: { path: '' }, name: 'x' },
    { executable: { path: '/a\nb' }, name: 'x' },
    { executable: { path: `/${'a'.repeat(4096)}` }, name: 'x' },
    { executable: { sha256: HELPER.sha256.slice(1) }, name: 'x' },
    { executable: { sha256: `${HELPER.sha256.slice(1)}g` }, name: 'x' },
    { executable: { path: HELPER.path }, name: '' },
    null,
  ];
  for (const rule of bad)
    t.throws(() => new EnrolmentService({ authority, rules: [rule as EnrolmentRule] }), {
      code: 'SIPC_ERR_INVALID_ARGUMENT',
      message: /rule|grant/i,
    });
  t.notThrows(
    () => new EnrolmentService({ authority, rules: [{ executable: { path: HELPER.path }, name: 'ok' }] }),
  );
});
