/**
 * The cost floor of a handshake and its allocation overhead, in the units the findings use:
 * one X25519 operation (an XX handshake does 4 DH + 1 key generation per side, 10 in all), and
 * one sodium_malloc + sodium_free pair (mmap + guard pages + mlock, then munmap), which
 * noise-protocol performs 9 times per side per handshake, and what a slab block costs instead.
 */
import sodium from 'sodium-native';
import { KeySlab } from './key-slab.js';
import type { MicroCase } from './measure.js';

export function primitiveCases(): MicroCase[] {
  const pk = Buffer.alloc(32);
  const sk = Buffer.alloc(32);
  sodium.crypto_kx_keypair(pk, sk);
  const out = Buffer.alloc(32);
  return [
    {
      name: 'X25519 DH (crypto_scalarmult)',
      bytes: 0,
      run: () => sodium.crypto_scalarmult(out, sk, pk),
    },
    {
      name: 'X25519 key pair (crypto_kx_keypair)',
      bytes: 0,
      run: () => sodium.crypto_kx_keypair(pk, sk),
    },
    {
      name: 'sodium_malloc(40) + sodium_free (secure memory, guard pages)',
      bytes: 0,
      run: () => sodium.sodium_free(sodium.sodium_malloc(40)),
    },
    slabCase(),
  ];
}

function slabCase(): MicroCase {
  const slab = new KeySlab();
  return {
    name: 'key block take + wipe + release from a secure slab (bench prototype)',
    bytes: 0,
    run: () => slab.release(slab.take()!),
  };
}
