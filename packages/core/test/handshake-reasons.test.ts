// Reasons, both sides (issue 13, item 5): serve()'s `handshakeFailed` events, the fingerprint in
// SIPC_ERR_UNTRUSTED_PEER, and what a message 2 that fails authentication says.
import test, { type ExecutionContext } from 'ava';
import type { HandshakeFailure } from '../src/channel/secure-listener.js';
import {
  connect,
  generateKeyPair,
  isSecureIpcError,
  type KeyPair,
  keyFingerprint,
  type SecureIpcError,
  serve,
} from '../src/index.js';
import { memoryTransport } from '../src/transport/index.js';

const transport = memoryTransport();
let counter = 0;

async function server(t: ExecutionContext, clientKey: KeyPair, extra: Record<string, unknown> = {}) {
  const keyPair = generateKeyPair();
  const address = `memory://handshake-reasons-${process.pid}-${counter++}`;
  const s = await serve({ transport, address, keyPair, trust: { keys: [clientKey.publicKey] }, ...extra });
  t.teardown(() => s.close());
  const failures: HandshakeFailure[] = [];
  s.on('handshakeFailed', (f) => failures.push(f));
  const dial = (keys: KeyPair, more: Record<string, unknown> = {}) =>
    connect({ transport, address, keyPair: keys, trust: { keys: [keyPair.publicKey] }, ...more });
  return { s, keyPair, address, failures, dial };
}

async function until(check: () => boolean): Promise<void> {
  for (let i = 0; i < 200 && !check(); i++) await new Promise((r) => setTimeout(r, 5));
}

test('serve() reports a refused handshake: kind refused, SIPC_ERR_UNTRUSTED_PEER, the presented key, the OS peer', async (t) => {
  const client = generateKeyPair();
  const { failures, dial } = await server(t, client);
  const stranger = generateKeyPair();
  await t.throwsAsync(dial(stranger), { code: 'SIPC_ERR_REFUSED' });
  await until(() => failures.length > 0);
  const [failure] = failures;
  t.like(failure, {
    kind: 'refused',
    code: 'SIPC_ERR_UNTRUSTED_PEER',
    fingerprint: keyFingerprint(stranger.publicKey),
    peer: { transport: 'memory' },
  });
  t.true(isSecureIpcError(failure!.error, 'SIPC_ERR_UNTRUSTED_PEER'));
  // The error names the presented key, in its message and its details.
  t.true(failure!.error.message.includes(keyFingerprint(stranger.publicKey)), failure!.error.message);
  t.is(failure!.error.details?.fingerprint, keyFingerprint(stranger.publicKey));
  t.true(typeof failure!.at === 'number');
});

test('serve() reports a refusal over a connection cap: kind refused, SIPC_ERR_BUSY, the presented key', async (t) => {
  const client = generateKeyPair();
  const { failures, dial } = await server(t, client, { maxConnectionsPerKey: 1 });
  const first = await dial(client);
  t.teardown(() => first.close());
  await t.throwsAsync(dial(client), { code: 'SIPC_ERR_REFUSED' });
  await until(() => failures.length > 0);
  t.like(failures[0], {
    kind: 'refused',
    code: 'SIPC_ERR_BUSY',
    fingerprint: keyFingerprint(client.publicKey),
  });
});

test('serve() reports a failed handshake (another app id): kind failed, no fingerprint (message 3 never came)', async (t) => {
  const client = generateKeyPair();
  const { failures, dial } = await server(t, client);
  const err = (await t.throwsAsync(dial(client, { appId: 'com.example.other' }))) as SecureIpcError;
  // The client says what a message 2 that fails authentication usually means.
  t.true(isSecureIpcError(err, 'SIPC_ERR_HANDSHAKE_FAILED'), String(err));
  t.regex(err.message, /message 2 failed authentication/);
  t.regex(
    err.message,
    /another application id \(appId\) or pre-shared key \(psk\), or it is not a secure-ipc server/,
  );
  await until(() => failures.length > 0);
  t.is(failures[0]!.kind, 'failed');
  t.is(failures[0]!.fingerprint, undefined);
  t.true(failures[0]!.error.message.length > 0);
});

test('SIPC_ERR_UNTRUSTED_PEER on the client names the server key it was shown', async (t) => {
  const client = generateKeyPair();
  const { keyPair, address } = await server(t, client);
  const expected = generateKeyPair();
  const err = (await t.throwsAsync(
    connect({ transport, address, keyPair: client, trust: { keys: [expected.publicKey] } }),
  )) as SecureIpcError;
  t.true(isSecureIpcError(err, 'SIPC_ERR_UNTRUSTED_PEER'), String(err));
  t.is(err.details?.fingerprint, keyFingerprint(keyPair.publicKey));
  t.true(err.message.includes(keyFingerprint(keyPair.publicKey)), err.message);
});

test('the RPC client’s close event carries the close info: clean when the server closes', async (t) => {
  const client = generateKeyPair();
  const { s, dial } = await server(t, client);
  const c = await dial(client);
  const closed = new Promise<unknown[]>((resolve) => c.once('close', (...args) => resolve(args)));
  await s.close();
  t.deepEqual(await closed, [undefined, { reason: 'clean', error: undefined }]);
});
