import test from 'ava';
import { isSecureIpcError } from '../src/errors.js';
import type { NoiseCipherState } from '../src/handshake/cipher-state.js';
import { NoiseHandshake } from '../src/handshake/xx.js';
import { generateKeyPair } from '../src/keys/key-pair.js';
import { channelPair, messages, pattern } from './helpers.js';

function completedPair() {
  const i = new NoiseHandshake({
    initiator: true,
    prologue: Buffer.alloc(0),
    staticKeyPair: generateKeyPair(),
  });
  const r = new NoiseHandshake({
    initiator: false,
    prologue: Buffer.alloc(0),
    staticKeyPair: generateKeyPair(),
  });
  r.readMessage(i.writeMessage(Buffer.alloc(0)));
  i.readMessage(r.writeMessage(Buffer.alloc(0)));
  r.readMessage(i.writeMessage(Buffer.alloc(0)));
  return { tx: i.split!.tx, rx: r.split!.rx };
}

function seal(cipher: NoiseCipherState, text: string): Buffer {
  const plain = Buffer.from(text);
  const out = Buffer.alloc(plain.length + 16);
  cipher.encrypt(out, plain);
  return out;
}

test('Rekey() changes the key: a receiver that does not rekey cannot decrypt, one that does can', (t) => {
  const { tx, rx } = completedPair();
  t.teardown(() => {
    tx.destroy();
    rx.destroy();
  });
  const first = seal(tx, 'before');
  t.is(rx.decrypt(first, first), 6);
  tx.rekey();
  const second = seal(tx, 'after');
  const copy = Buffer.from(second);
  t.true(
    isSecureIpcError(
      t.throws(() => rx.decrypt(Buffer.alloc(5), copy)),
      'SIPC_ERR_DECRYPT_FAILED',
    ),
  );
  // The failed attempt did not advance the nonce, so after rekeying the receiver decrypts it.
  rx.rekey();
  const out = Buffer.alloc(5);
  rx.decrypt(out, second);
  t.is(out.toString(), 'after');
});

test('the nonce space ends at 2^64-1 with SIPC_ERR_NONCE_EXHAUSTED', (t) => {
  const { tx, rx } = completedPair();
  t.teardown(() => {
    tx.destroy();
    rx.destroy();
  });
  tx.setNonce(2n ** 64n - 2n);
  t.notThrows(() => seal(tx, 'last one'));
  t.true(
    isSecureIpcError(
      t.throws(() => seal(tx, 'one too many')),
      'SIPC_ERR_NONCE_EXHAUSTED',
    ),
  );
});

for (const [name, rekey] of [
  ['every 2 frames', { messages: 2 }],
  ['every 100 000 bytes', { bytes: 100_000 }],
  ['every 1 ms', { intervalMs: 1 }],
] as const) {
  test(`rekeying ${name} in both directions keeps the channel working`, async (t) => {
    const [client, server] = await channelPair(t, 'memory', { rekey }, { rekey });
    const outgoing = [pattern(10), pattern(300_000, 2), pattern(1, 3), pattern(70_000, 4), pattern(5, 5)];
    const got = messages(server, outgoing.length);
    const echoed = messages(client, outgoing.length);
    server.on('message', (m) => {
      server.send(m).catch(() => {});
    });
    for (const m of outgoing) {
      await client.send(m);
      await new Promise((r) => setTimeout(r, 3));
    }
    for (const [i, m] of (await got).entries())
      t.true(Buffer.from(m).equals(outgoing[i]!), `to server #${i}`);
    for (const [i, m] of (await echoed).entries()) t.true(Buffer.from(m).equals(outgoing[i]!), `echo #${i}`);
  });
}

test('one side rekeying while the other does not configure it still works (the flag drives the receiver)', async (t) => {
  const [client, server] = await channelPair(t, 'memory', { rekey: { messages: 1 } });
  const got = messages(server, 20);
  for (let i = 0; i < 20; i++) await client.send(Buffer.from(`m${i}`));
  t.deepEqual(
    (await got).map((m) => Buffer.from(m).toString()),
    Array.from({ length: 20 }, (_, i) => `m${i}`),
  );
});
