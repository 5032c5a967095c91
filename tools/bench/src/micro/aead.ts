/**
 * ChaCha20-Poly1305 (IETF, the Noise ChaChaPoly cipher) through sodium-native, by message size:
 * the upper bound for what one core can encrypt or decrypt, independent of any framing or socket.
 */
import sodium from 'sodium-native';
import type { MicroCase } from './measure.js';

// 64 KiB: the bulk message size, whose encrypt rate is the report's crypto bound (issue 14).
export const AEAD_SIZES = [64, 1024, 16 * 1024, 64 * 1024 - 17, 64 * 1024];

export function aeadCases(): MicroCase[] {
  const key = Buffer.alloc(sodium.crypto_aead_chacha20poly1305_ietf_KEYBYTES);
  sodium.randombytes_buf(key);
  const nonce = Buffer.alloc(sodium.crypto_aead_chacha20poly1305_ietf_NPUBBYTES);
  const cases: MicroCase[] = [];
  for (const size of AEAD_SIZES) {
    const plain = Buffer.alloc(size, 0x5a);
    const sealed = Buffer.alloc(size + sodium.crypto_aead_chacha20poly1305_ietf_ABYTES);
    sodium.crypto_aead_chacha20poly1305_ietf_encrypt(sealed, plain, null, null, nonce, key);
    const opened = Buffer.alloc(size);
    cases.push(
      {
        name: `AEAD encrypt ${label(size)}`,
        bytes: size,
        run: () => {
          sodium.crypto_aead_chacha20poly1305_ietf_encrypt(sealed, plain, null, null, nonce, key);
        },
      },
      {
        name: `AEAD decrypt ${label(size)}`,
        bytes: size,
        run: () => {
          sodium.crypto_aead_chacha20poly1305_ietf_decrypt(opened, null, sealed, null, nonce, key);
        },
      },
    );
  }
  return cases;
}

function label(size: number): string {
  if (size === 64 * 1024 - 17) return '65519 B (one full frame)';
  return size >= 1024 ? `${size / 1024} KiB` : `${size} B`;
}
