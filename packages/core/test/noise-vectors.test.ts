import { readFileSync } from 'node:fs';
import test from 'ava';
import { NoiseHandshake } from '../src/handshake/xx.js';
import { keyPairFromSecretKey } from '../src/keys/key-pair.js';

interface VectorMessage {
  sender: 'initiator' | 'responder';
  phase: 'handshake' | 'transport';
  payload: string;
  ciphertext: string;
}
interface Vector {
  id: string;
  protocol_name: string;
  psk_modifiers: unknown[];
  init_prologue: string;
  resp_prologue: string;
  init_static: string;
  resp_static: string;
  init_ephemeral: string;
  resp_ephemeral: string;
  handshake_hash?: string;
  messages: VectorMessage[];
}

// Vendored in test/vectors/ (origin in its README). This file runs as dist/test/noise-vectors.test.js,
// so the package root is two levels up; the JSON is read from the source tree, not copied by the build.
const file = new URL('../../test/vectors/xx-vectors.json', import.meta.url);
const all = (JSON.parse(readFileSync(file, 'utf8')) as { vectors: Vector[] }).vectors;
const vectors = all.filter(
  (v) => v.protocol_name === 'Noise_XX_25519_ChaChaPoly_BLAKE2b' && v.psk_modifiers.length === 0,
);
const hex = (s: string) => Buffer.from(s, 'hex');

test('the vendored vector file holds the 5 plain Noise_XX_25519_ChaChaPoly_BLAKE2b vectors', (t) => {
  t.is(all.length, 38);
  t.is(vectors.length, 5);
});

// Inject the vector's fixed ephemeral through the dh's generateKeypair (initialize(..., e) cannot
// be used for XX: noise-protocol asserts epk is unset when it processes the e token).
function fixedEphemeral(secretHex: string) {
  const kp = keyPairFromSecretKey(hex(secretHex));
  return (pk: Uint8Array, sk: Uint8Array) => {
    pk.set(kp.publicKey);
    sk.set(kp.secretKey);
  };
}

for (const v of vectors) {
  test(`vector ${v.id} replays byte for byte through handshake/noise.ts`, (t) => {
    const initiator = new NoiseHandshake({
      initiator: true,
      prologue: hex(v.init_prologue),
      staticKeyPair: keyPairFromSecretKey(hex(v.init_static)),
      generateEphemeral: fixedEphemeral(v.init_ephemeral),
    });
    const responder = new NoiseHandshake({
      initiator: false,
      prologue: hex(v.resp_prologue),
      staticKeyPair: keyPairFromSecretKey(hex(v.resp_static)),
      generateEphemeral: fixedEphemeral(v.resp_ephemeral),
    });
    t.teardown(() => {
      initiator.dispose();
      responder.dispose();
    });
    let transport = 0;
    for (const [i, m] of v.messages.entries()) {
      const [writer, reader] = m.sender === 'initiator' ? [initiator, responder] : [responder, initiator];
      if (m.phase === 'handshake') {
        const wire = writer.writeMessage(hex(m.payload));
        t.is(Buffer.from(wire).toString('hex'), m.ciphertext, `message ${i} ciphertext`);
        t.is(Buffer.from(reader.readMessage(wire)).toString('hex'), m.payload, `message ${i} payload`);
        continue;
      }
      transport++;
      t.true(writer.complete && reader.complete, 'transport message after the handshake');
      const plain = hex(m.payload);
      const out = Buffer.alloc(plain.length + 16);
      const n = writer.split!.tx.encrypt(out, plain);
      t.is(out.subarray(0, n).toString('hex'), m.ciphertext, `transport message ${i}`);
      const back = Buffer.alloc(plain.length);
      t.is(reader.split!.rx.decrypt(back, out.subarray(0, n)), plain.length);
      t.is(back.toString('hex'), m.payload);
    }
    t.true(transport > 0, 'the vector has transport messages');
    t.deepEqual(initiator.handshakeHash, responder.handshakeHash);
    t.deepEqual(
      Buffer.from(initiator.remoteStaticKey!),
      Buffer.from(keyPairFromSecretKey(hex(v.resp_static)).publicKey),
    );
    if (v.handshake_hash !== undefined)
      t.is(Buffer.from(initiator.handshakeHash!).toString('hex'), v.handshake_hash);
    else t.log('this vector has no handshake_hash field');
  });
}
