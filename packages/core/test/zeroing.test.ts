import test from 'ava';
import { establish } from '../src/channel/secure-channel.js';
import { sodium } from '../src/crypto/sodium.js';
import { generateKeyPair } from '../src/keys/key-pair.js';
import { closed, connectionPair, trustedKeys } from './helpers.js';

// An ephemeral generator that records the secret buffers noise-protocol allocated for e.
function recordingEphemeral(seen: Uint8Array[]) {
  return (publicKey: Uint8Array, secretKey: Uint8Array) => {
    sodium.crypto_kx_keypair(publicKey, secretKey);
    seen.push(secretKey);
  };
}

test('ephemeral secret keys are wiped after the handshake on both sides', async (t) => {
  const [a, b] = await connectionPair(t, 'memory');
  const keys = trustedKeys();
  const ephemerals: Uint8Array[] = [];
  const [client, server] = await Promise.all([
    establish(a, {
      keyPair: keys.client,
      trust: { keys: [keys.server.publicKey] },
      initiator: true,
      generateEphemeral: (pk, sk) => {
        recordingEphemeral(ephemerals)(pk, sk);
        t.false(
          sk.every((x) => x === 0),
          'a real key while in use',
        );
      },
    }),
    establish(b, {
      keyPair: keys.server,
      trust: { keys: [keys.client.publicKey] },
      initiator: false,
      generateEphemeral: recordingEphemeral(ephemerals),
    }),
  ]);
  t.teardown(() => {
    client.close(new Error('test over'));
    server.close(new Error('test over'));
  });
  t.is(ephemerals.length, 2);
  // The arena went back to its secure slab wiped with sodium_memzero: nothing of the key remains.
  for (const sk of ephemerals) t.true(sk.every((x) => x === 0));
});

test('ephemeral keys are wiped when the handshake fails too', async (t) => {
  const [a, b] = await connectionPair(t, 'memory');
  const keys = trustedKeys();
  const ephemerals: Uint8Array[] = [];
  const results = await Promise.allSettled([
    establish(a, {
      keyPair: keys.client,
      trust: { keys: [generateKeyPair().publicKey] }, // refuses the server
      initiator: true,
      generateEphemeral: recordingEphemeral(ephemerals),
    }),
    establish(b, {
      keyPair: keys.server,
      trust: { keys: [keys.client.publicKey] },
      initiator: false,
      generateEphemeral: recordingEphemeral(ephemerals),
    }),
  ]);
  t.deepEqual(
    results.map((r) => r.status),
    ['rejected', 'rejected'],
  );
  t.is(ephemerals.length, 2);
  for (const sk of ephemerals) t.true(sk.every((x) => x === 0));
});

for (const how of ['graceful', 'error'] as const) {
  test(`transport keys are zeroed and freed on ${how} close`, async (t) => {
    const [a, b] = await connectionPair(t, 'memory');
    const keys = trustedKeys();
    const [client, server] = await Promise.all([
      establish(a, { keyPair: keys.client, trust: { keys: [keys.server.publicKey] }, initiator: true }),
      establish(b, { keyPair: keys.server, trust: { keys: [keys.client.publicKey] }, initiator: false }),
    ]);
    const serverClosed = closed(server);
    if (how === 'graceful') await client.close();
    else await client.close(new Error('stop'));
    await serverClosed;
    for (const ch of [client, server]) {
      t.true(ch.cipherStates.tx.destroyed);
      t.true(ch.cipherStates.rx.destroyed);
    }
  });
}
