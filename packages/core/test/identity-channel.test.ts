// Certificates, revocation, expiry, rotation, roles and PSK through REAL Noise handshakes over
// core's in-memory transport (secureListen + secureConnect), not just the verification unit.
import { once } from 'node:events';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import type { ChannelOptions, SecureChannel } from '../src/channel/options.js';
import { secureConnect } from '../src/channel/secure-channel.js';
import {
  type SecureListener,
  type SecureListenerOptions,
  secureListen,
} from '../src/channel/secure-listener.js';
import {
  addToRevocationFile,
  certificateTrust,
  decodeCertificate,
  enforceRevocation,
  generateAuthority,
  type IssueCertificateOptions,
  issueCertificate,
  type LifecycleDecision,
  RevocationList,
  watchRevocationList,
} from '../src/index.js';
import { generateKeyPair, type KeyPair, keyFingerprint } from '../src/keys/key-pair.js';
import { createClient } from '../src/rpc/client.js';
import { createPolicy } from '../src/rpc/policy.js';
import { createServer } from '../src/rpc/server.js';
import { memoryTransport } from '../src/transport/memory-transport.js';
import { closedWithin, codeOf, refusalIn, tempDir } from './identity-helpers.js';

const ca = generateAuthority();
const rogueCa = generateAuthority();
const serverKeys = generateKeyPair();
let addressCounter = 0;

function cert(kp: KeyPair, options: Partial<IssueCertificateOptions> = {}, authority = ca): Uint8Array {
  return issueCertificate(authority, { subjectKey: kp.publicKey, name: 'peer', ...options }).bytes;
}

interface Harness {
  secure: SecureListener;
  errors: Error[];
  connect(options: ChannelOptions): Promise<SecureChannel>;
}

async function start(t: ExecutionContext, options: Partial<SecureListenerOptions> = {}): Promise<Harness> {
  const transport = memoryTransport();
  const address = `memory://identity-${process.pid}-${addressCounter++}`;
  const listener = await transport.listen(address);
  const secure = secureListen(listener, {
    keyPair: serverKeys,
    trust: certificateTrust({ authorities: [ca.publicKey] }),
    payload: { cert: cert(serverKeys, { name: 'server', roles: ['service'] }) },
    ...options,
  });
  const errors: Error[] = [];
  secure.on('handshakeError', (err) => errors.push(err));
  t.teardown(() => secure.close());
  return {
    secure,
    errors,
    async connect(channelOptions) {
      const connection = await transport.connect(address);
      try {
        const channel = await secureConnect(connection, channelOptions);
        t.teardown(() => channel.close());
        return channel;
      } catch (err) {
        connection.destroy();
        throw err;
      }
    },
  };
}

function clientOptions(kp: KeyPair, certificate?: Uint8Array): ChannelOptions {
  return {
    keyPair: kp,
    trust: certificateTrust({ authorities: [ca.publicKey] }),
    ...(certificate === undefined ? {} : { payload: { cert: certificate } }),
  };
}

/** Resolves with the channel's close error (or undefined), or after `ms` with 'open'. */
test('certificates both ways: admitted, roles from each certificate on the other side', async (t) => {
  const h = await start(t);
  const client = generateKeyPair();
  const accepted = once(h.secure, 'channel') as Promise<[SecureChannel]>;
  const channel = await h.connect(
    clientOptions(client, cert(client, { name: 'helper', roles: ['reader', 'metrics'] })),
  );
  const [serverSide] = await accepted;
  t.deepEqual([...channel.roles], ['service']);
  t.deepEqual([...serverSide.roles], ['reader', 'metrics']);
  t.is(decodeCertificate(serverSide.remotePayload.cert as Uint8Array).name, 'helper');
  t.deepEqual(Buffer.from(serverSide.remoteStaticKey), Buffer.from(client.publicKey));
  const echoed = once(channel, 'message');
  serverSide.on('message', (m) => serverSide.send(m));
  await channel.send(Buffer.from('hello'));
  t.is(Buffer.from((await echoed)[0] as Uint8Array).toString(), 'hello');
});

// Every refusal case, presented by the CLIENT: the server refuses after message 3, the client's
// channel is closed, and the server's handshakeError carries the typed reason in its cause chain.
const now = Date.now();
const clientRefusals: Array<
  [string, (kp: KeyPair) => Uint8Array | undefined, string, string, RevocationList?]
> = [
  [
    'expired',
    (kp) => cert(kp, { notBefore: now - 2 * 3_600_000, ttlMs: 3_600_000 }),
    'SIPC_ERR_CERT_EXPIRED',
    'expired',
  ],
  [
    'not yet valid',
    (kp) => cert(kp, { notBefore: now + 3_600_000 }),
    'SIPC_ERR_CERT_EXPIRED',
    'not-yet-valid',
  ],
  ['wrong authority', (kp) => cert(kp, {}, rogueCa), 'SIPC_ERR_BAD_CERTIFICATE', 'untrusted-authority'],
  [
    'tampered',
    (kp) => {
      // Rename the subject inside the signed part: still well-formed, signature no longer matches.
      const bytes = Buffer.from(cert(kp, { name: 'tampered-name', roles: ['reader'] }));
      bytes[bytes.indexOf('tampered-name')] = 'T'.charCodeAt(0);
      return bytes;
    },
    'SIPC_ERR_BAD_CERTIFICATE',
    'bad-signature',
  ],
  [
    'subject-key mismatch (a valid certificate replayed by another key)',
    () => cert(generateKeyPair()),
    'SIPC_ERR_BAD_CERTIFICATE',
    'subject-mismatch',
  ],
  [
    'revoked serial',
    (kp) => cert(kp, { serial: 4242 }),
    'SIPC_ERR_REVOKED',
    'revoked-serial',
    new RevocationList({ serials: [4242] }),
  ],
  ['no certificate', () => undefined, 'SIPC_ERR_BAD_CERTIFICATE', 'missing'],
];

for (const [name, makeCert, code, reason, revocations] of clientRefusals) {
  test(`handshake refuses a client certificate: ${name}`, async (t) => {
    const h = await start(t, {
      trust: certificateTrust({ authorities: [ca.publicKey], clockSkewMs: 1_000, revocations }),
    });
    const client = generateKeyPair();
    const refused = once(h.secure, 'handshakeError');
    let channel: SecureChannel | undefined;
    // The initiator finishes first in XX; the responder's refusal then closes the connection.
    const outcome = await h.connect(clientOptions(client, makeCert(client))).then(
      (c) => {
        channel = c;
        return 'connected';
      },
      (err: unknown) => err,
    );
    const [err] = (await refused) as [Error];
    t.deepEqual(refusalIn(err), { code, reason }, String(err));
    t.is(h.secure.channels.size, 0);
    if (outcome === 'connected')
      t.not(await closedWithin(channel!, 5_000), 'open', 'the client channel is closed');
  });
}

test('a revoked subject key is refused at the handshake', async (t) => {
  const client = generateKeyPair();
  const h = await start(t, {
    trust: certificateTrust({
      authorities: [ca.publicKey],
      revocations: new RevocationList({ keys: [client.publicKey] }),
    }),
  });
  const refused = once(h.secure, 'handshakeError');
  await h.connect(clientOptions(client, cert(client))).catch(() => {});
  t.deepEqual(refusalIn((await refused)[0]), { code: 'SIPC_ERR_REVOKED', reason: 'revoked-key' });
});

const serverRefusals: Array<[string, () => Uint8Array, string]> = [
  ['expired', () => cert(serverKeys, { notBefore: now - 2 * 3_600_000, ttlMs: 3_600_000 }), 'expired'],
  ['wrong authority', () => cert(serverKeys, {}, rogueCa), 'untrusted-authority'],
  [
    'subject-key mismatch (an impostor replaying the real server certificate)',
    () => cert(serverKeys),
    'subject-mismatch',
  ],
];

for (const [name, makeCert, reason] of serverRefusals) {
  test(`client refuses the server certificate after message 2, before sending its own: ${name}`, async (t) => {
    // For the mismatch case the listener runs under ANOTHER key but presents the real server's certificate.
    const impostor = reason === 'subject-mismatch';
    const h = await start(t, {
      keyPair: impostor ? generateKeyPair() : serverKeys,
      payload: { cert: makeCert() },
    });
    const client = generateKeyPair();
    const serverSawFailure = once(h.secure, 'handshakeError');
    const err = await t.throwsAsync(h.connect(clientOptions(client, cert(client))));
    t.is(codeOf(err), 'SIPC_ERR_UNTRUSTED_PEER');
    t.is(refusalIn(err)?.reason, reason);
    await serverSawFailure;
    t.is(h.secure.channels.size, 0, 'the server never learned the client identity (no message 3)');
  });
}

test('revocation through the API cuts a live channel within 1 s and records a decision', async (t) => {
  const revocations = new RevocationList();
  const h = await start(t, { trust: certificateTrust({ authorities: [ca.publicKey], revocations }) });
  const enforcer = enforceRevocation({ listener: h.secure, revocations });
  t.teardown(() => enforcer.close());
  const decisions: LifecycleDecision[] = [];
  enforcer.on('decision', (d) => decisions.push(d));
  const victim = generateKeyPair();
  const bystander = generateKeyPair();
  const victimCert = cert(victim, { name: 'victim', roles: ['reader'] });
  const a = await h.connect(clientOptions(victim, victimCert));
  const b = await h.connect(clientOptions(bystander, cert(bystander)));
  while (h.secure.channels.size < 2) await once(h.secure, 'channel');
  t.is(enforcer.size, 2);
  const started = performance.now();
  const closing = closedWithin(a, 1_000);
  revocations.revokeSerial(decodeCertificate(victimCert).serial);
  const err = await closing;
  const elapsed = performance.now() - started;
  // The bound from the issue: "within one second" (generous for an in-memory close, but real).
  t.not(err, 'open', 'closed within 1 s');
  t.log(`revocation (API) closed the live channel in ${elapsed.toFixed(1)} ms`);
  t.is(await closedWithin(b, 200), 'open', 'other peers are untouched');
  t.is(decisions.length, 1);
  t.like(decisions[0], {
    who: keyFingerprint(victim.publicKey),
    name: 'victim',
    action: 'channel',
    what: 'revoked-serial',
    allowed: false,
  });
  t.deepEqual([...decisions[0]!.roles], ['reader']);
  // And the same certificate cannot come back.
  const refused = once(h.secure, 'handshakeError');
  await h.connect(clientOptions(victim, victimCert)).catch(() => {});
  t.is(refusalIn((await refused)[0])?.reason, 'revoked-serial');
});

test('revocation through the watched file (secure-ipc revoke writes it) cuts a live channel within 1 s', async (t) => {
  const path = join(tempDir(t), 'revoked.json');
  await addToRevocationFile(path, { serials: [1] });
  const revocations = await watchRevocationList(path);
  t.teardown(() => revocations.close());
  const h = await start(t, { trust: certificateTrust({ authorities: [ca.publicKey], revocations }) });
  const enforcer = enforceRevocation({ listener: h.secure, revocations });
  t.teardown(() => enforcer.close());
  const victim = generateKeyPair();
  const channel = await h.connect(clientOptions(victim, cert(victim)));
  if (h.secure.channels.size === 0) await once(h.secure, 'channel');
  const decided = once(enforcer, 'decision');
  const started = performance.now();
  const closing = closedWithin(channel, 1_000);
  await addToRevocationFile(path, { keys: [victim.publicKey] });
  t.not(await closing, 'open', 'closed within 1 s of the file being replaced');
  t.log(`revocation (file) closed the live channel in ${(performance.now() - started).toFixed(1)} ms`);
  t.is(((await decided)[0] as LifecycleDecision).what, 'revoked-key');
});

test('certificate expiry cuts a live channel (within 1 s of notAfter) and is recorded', async (t) => {
  const h = await start(t, { trust: certificateTrust({ authorities: [ca.publicKey], clockSkewMs: 0 }) });
  const enforcer = enforceRevocation({ listener: h.secure, revocations: new RevocationList() });
  t.teardown(() => enforcer.close());
  const client = generateKeyPair();
  // Certificates have whole-second validity: notAfter lands 2-3 s from now, which leaves room
  // for a slow handshake on a loaded CI machine.
  const nbfSeconds = Math.floor(Date.now() / 1000) - 10;
  const nafSeconds = Math.ceil(Date.now() / 1000) + 2;
  const short = cert(client, { notBefore: nbfSeconds * 1000, ttlMs: (nafSeconds - nbfSeconds) * 1000 });
  const accepted = once(h.secure, 'channel') as Promise<[SecureChannel]>;
  await h.connect(clientOptions(client, short));
  const [serverSide] = await accepted;
  const decided = once(enforcer, 'decision');
  // The channel's expiry timer is unref'd (it must not keep a server alive) and the in-memory
  // transport holds no handle: keep this test process alive while waiting.
  const keepAlive = setInterval(() => {}, 1_000);
  t.teardown(() => clearInterval(keepAlive));
  const [err] = (await once(serverSide, 'close')) as [Error];
  const lateBy = Date.now() - nafSeconds * 1000;
  t.is(codeOf(err), 'SIPC_ERR_CERT_EXPIRED');
  t.true(lateBy >= 0, 'not before notAfter');
  t.true(lateBy < 1_000, `within 1 s of notAfter (late by ${lateBy} ms)`);
  t.log(`expiry closed the live channel ${lateBy} ms after notAfter`);
  t.is(((await decided)[0] as LifecycleDecision).what, 'expired');
});

test('rotation under load: key + certificate switch with no dropped message; old channels continue, new ones see the new identity', async (t) => {
  const oldKeys = serverKeys;
  const newKeys = generateKeyPair();
  const h = await start(t, { payload: { cert: cert(oldKeys, { name: 'server-v1' }) } });
  h.secure.on('channel', (c) => c.on('message', (m) => c.send(m).catch(() => {})));
  const pinnedBoth: ChannelOptions['trust'] = { keys: [oldKeys.publicKey, newKeys.publicKey] };
  const byCa = generateKeyPair();
  const byPin = generateKeyPair();
  const caClient = await h.connect(clientOptions(byCa, cert(byCa)));
  const pinClient = await h.connect({ ...clientOptions(byPin, cert(byPin)), trust: pinnedBoth });
  const N = 3_000;
  // Each old client streams N numbered messages and expects them all back, in order.
  const pump = async (channel: SecureChannel, rotateAt?: number): Promise<number[]> => {
    const got: number[] = [];
    const done = new Promise<void>((resolve, reject) => {
      channel.on('message', (m) => {
        got.push(Buffer.from(m).readUInt32BE(0));
        if (got.length === N) resolve();
      });
      channel.once('close', (err) => reject(err ?? new Error('closed early')));
    });
    for (let i = 0; i < N; i++) {
      const msg = Buffer.alloc(64);
      msg.writeUInt32BE(i, 0);
      await channel.send(msg);
      if (i === rotateAt) {
        h.secure.update({ keyPair: newKeys, payload: { cert: cert(newKeys, { name: 'server-v2' }) } });
        // New handshakes during the flow, with both kinds of trust.
        const fresh = generateKeyPair();
        const [viaCa, viaPin] = await Promise.all([
          h.connect(clientOptions(fresh, cert(fresh))),
          h.connect({ ...clientOptions(fresh, cert(fresh)), trust: pinnedBoth }),
        ]);
        for (const c of [viaCa, viaPin]) {
          t.deepEqual(Buffer.from(c.remoteStaticKey), Buffer.from(newKeys.publicKey));
          t.is(decodeCertificate(c.remotePayload.cert as Uint8Array).name, 'server-v2');
        }
        // A client still pinning only the old key is refused by the new identity.
        await t.throwsAsync(
          h.connect({ ...clientOptions(fresh, cert(fresh)), trust: { keys: [oldKeys.publicKey] } }),
        );
      }
    }
    await done;
    return got;
  };
  const [a, b] = await Promise.all([pump(caClient, N / 3), pump(pinClient)]);
  const expected = Array.from({ length: N }, (_, i) => i);
  t.deepEqual(a, expected, 'CA-trusting client: every message echoed, in order');
  t.deepEqual(b, expected, 'pinned-list client: every message echoed, in order');
  t.deepEqual(
    Buffer.from(caClient.remoteStaticKey),
    Buffer.from(oldKeys.publicKey),
    'old channels keep the old identity',
  );
  t.false(caClient.closed || pinClient.closed);
});

test('roles from certificates drive RPC authorization (policy by role, decisions recorded)', async (t) => {
  const h = await start(t);
  const policy = createPolicy({ roles: { reader: { call: ['files.*'] }, admin: { call: ['admin.*'] } } });
  const server = createServer({ policy });
  server.handle('files.read', (p: unknown) => ({ read: p }));
  server.handle('admin.wipe', () => 'wiped');
  server.listen(h.secure);
  t.teardown(() => server.close());
  const decisions: Array<{ what: string; allowed: boolean; roles: readonly string[] }> = [];
  server.on('decision', (d) => decisions.push(d));
  const reader = generateKeyPair();
  const nobody = generateKeyPair();
  const readerClient = createClient(
    await h.connect(clientOptions(reader, cert(reader, { roles: ['reader'] }))),
  );
  const nobodyClient = createClient(await h.connect(clientOptions(nobody, cert(nobody))));
  t.deepEqual(await readerClient.request('files.read', 'a.txt'), { read: 'a.txt' });
  t.is(codeOf(await t.throwsAsync(readerClient.request('admin.wipe', null))), 'SIPC_ERR_FORBIDDEN');
  t.is(codeOf(await t.throwsAsync(nobodyClient.request('files.read', 'a.txt'))), 'SIPC_ERR_FORBIDDEN');
  t.is(await nobodyClient.request('$ping', 'x'), 'x', '$ping stays open to any authenticated peer');
  t.like(
    decisions.find((d) => d.what === 'files.read' && d.allowed),
    { roles: ['reader'] },
  );
  t.truthy(decisions.find((d) => d.what === 'admin.wipe' && !d.allowed));
});

test('PSK: with certificates, a peer without the same pre-shared key fails the handshake', async (t) => {
  const psk = Buffer.alloc(32, 0x5a);
  const h = await start(t, { psk });
  const client = generateKeyPair();
  const ok = await h.connect({ ...clientOptions(client, cert(client)), psk: Buffer.from(psk) });
  t.false(ok.closed);
  for (const other of [Buffer.alloc(32, 0x5b), undefined]) {
    const failed = once(h.secure, 'handshakeError');
    const err = await t.throwsAsync(
      h.connect({ ...clientOptions(client, cert(client)), ...(other ? { psk: other } : {}) }),
    );
    t.truthy(codeOf(err), 'typed handshake failure');
    await failed;
  }
});

test('rotation under RPC load: 2,000 pipelined requests across the key + certificate switch all answered once', async (t) => {
  const newKeys = generateKeyPair();
  const h = await start(t, { payload: { cert: cert(serverKeys, { name: 'server-v1' }) } });
  const server = createServer();
  server.listen(h.secure);
  t.teardown(() => server.close());
  const me = generateKeyPair();
  const client = createClient(await h.connect(clientOptions(me, cert(me))));
  const N = 2_000;
  let answered = 0;
  const requests = Array.from({ length: N }, (_, i) =>
    client.request('$ping', i).then((r) => {
      answered++;
      // Rotate while about half of the requests are still in flight or queued.
      if (answered === N / 2)
        h.secure.update({ keyPair: newKeys, payload: { cert: cert(newKeys, { name: 'server-v2' }) } });
      return r;
    }),
  );
  const results = await Promise.all(requests);
  t.deepEqual(
    results,
    Array.from({ length: N }, (_, i) => i),
    'every request answered with its own payload',
  );
  const fresh = generateKeyPair();
  const after = createClient(await h.connect(clientOptions(fresh, cert(fresh))));
  t.deepEqual(
    Buffer.from(after.remoteStaticKey),
    Buffer.from(newKeys.publicKey),
    'new sessions see the new key',
  );
  t.is(await after.request('$ping', 'new'), 'new');
  t.is(await client.request('$ping', 'old'), 'old', 'the old session still works');
});

test('client-side enforcement: revoking the server key closes the client channel; pinned-key channels are covered too', async (t) => {
  const pinnedClient = generateKeyPair();
  const h = await start(t, {
    trust: certificateTrust({ authorities: [ca.publicKey], pinnedKeys: [pinnedClient.publicKey] }),
  });
  const revocations = new RevocationList();
  const serverEnforcer = enforceRevocation({ listener: h.secure, revocations });
  const clientEnforcer = enforceRevocation({ revocations });
  t.teardown(() => {
    serverEnforcer.close();
    clientEnforcer.close();
  });
  // A client admitted by its pinned key, without any certificate.
  const accepted = once(h.secure, 'channel') as Promise<[SecureChannel]>;
  const pinned = await h.connect(clientOptions(pinnedClient));
  const [pinnedServerSide] = await accepted;
  t.deepEqual([...pinnedServerSide.roles], [], 'no certificate, no roles');
  const certified = generateKeyPair();
  const toServer = await h.connect(clientOptions(certified, cert(certified)));
  clientEnforcer.track(toServer);
  t.is(clientEnforcer.size, 1);

  const pinnedClosed = closedWithin(pinned, 1_000);
  revocations.revokeKey(pinnedClient.publicKey);
  t.not(await pinnedClosed, 'open', 'the pinned-key peer is cut');
  t.false(toServer.closed);

  const clientSide = once(clientEnforcer, 'decision');
  const serverClosed = closedWithin(toServer, 1_000);
  revocations.revokeKey(serverKeys.publicKey);
  const err = await serverClosed;
  t.is(codeOf(err), 'SIPC_ERR_REVOKED', 'the client closed its own channel to the revoked server');
  t.like((await clientSide)[0], {
    who: keyFingerprint(serverKeys.publicKey),
    name: 'server',
    what: 'revoked-key',
  });
});
