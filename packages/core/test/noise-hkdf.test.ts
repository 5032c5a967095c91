import { randomBytes } from 'node:crypto';
import test from 'ava';
import dhFactory from 'noise-protocol/dh.js';
import hashFactory from 'noise-protocol/hash.js';
import { hkdf } from '../src/handshake/noise.js';

// Core's HKDF (HMAC-BLAKE2b on libsodium, src/handshake/noise.ts) replaced noise-protocol's for
// speed: it must give the same three outputs for every input SymmetricState passes it.
const reference = hashFactory({ dh: dhFactory() });
const HASHLEN = 64;

for (const ikmLength of [0, 32]) {
  for (const three of [false, true]) {
    test(`hkdf equals noise-protocol's: ${ikmLength}-byte input key material, ${three ? 3 : 2} outputs`, (t) => {
      for (let round = 0; round < 50; round++) {
        const ck = randomBytes(HASHLEN);
        const ikm = randomBytes(ikmLength);
        const want = [Buffer.alloc(HASHLEN), Buffer.alloc(HASHLEN), Buffer.alloc(HASHLEN)];
        const got = [Buffer.alloc(HASHLEN), Buffer.alloc(HASHLEN), Buffer.alloc(HASHLEN)];
        reference.hkdf(want[0], want[1], three ? want[2] : null, Buffer.from(ck), ikm);
        hkdf(got[0]!, got[1]!, three ? got[2]! : null, Buffer.from(ck), ikm);
        t.deepEqual(got, want);
      }
    });
  }
}

test('hkdf writes the first output over the chaining key in place, as MixKey does', (t) => {
  const ck = randomBytes(HASHLEN);
  const ikm = randomBytes(32);
  const want = [Buffer.alloc(HASHLEN), Buffer.alloc(HASHLEN)];
  reference.hkdf(want[0], want[1], null, Buffer.from(ck), ikm);
  const inPlace = Buffer.from(ck);
  const second = Buffer.alloc(HASHLEN);
  hkdf(inPlace, second, null, inPlace, ikm);
  t.deepEqual([inPlace, second], want);
});

test('hkdf refuses what noise-protocol refuses: a chaining key not 64 bytes, input key material not 0 or 32', (t) => {
  const out = () => Buffer.alloc(HASHLEN);
  t.throws(() => hkdf(out(), out(), null, Buffer.alloc(32), Buffer.alloc(32)), { instanceOf: RangeError });
  for (const length of [1, 31, 33, 64])
    t.throws(() => hkdf(out(), out(), null, Buffer.alloc(HASHLEN), Buffer.alloc(length)), {
      instanceOf: RangeError,
    });
});
