/**
 * A data framing proposed for a future protocol version, measured as a prototype (issue 14,
 * item 4; tools/bench/README.md, "A framing for a new protocol version"). Not used by secure-ipc.
 *
 * One AEAD record per message, the way secret-stream's secretstream and TLS 1.3 records carry
 * data, instead of v1's 2-byte frames of at most 65,518 bytes with the flag byte inside the
 * plaintext:
 *
 *   header (5 bytes, authenticated as associated data): u32 BE length of the ciphertext
 *   (message + 16-byte tag), then the flag byte;
 *   ciphertext: ChaCha20-Poly1305 (IETF) of the message with the direction's key and its 64-bit
 *   counter as the nonce (Noise's nonce layout), associated data = the header.
 *
 * With the flags outside the plaintext the sender encrypts straight from the application's
 * buffer into the write buffer (the encryption is the only pass over the bytes), and a receiver
 * decrypts a whole message in place in one call: one pass on each side instead of v1's copy +
 * encrypt, and copy + decrypt + reassembly copy for a 64 KiB message.
 */
import type { Writable } from 'node:stream';
import sodium from 'sodium-native';
import { ReadQueue } from './raw-framing.js';

const HEADER = 5;
const TAG = 16;
const NONCE = 12;

/** One direction's key and counter (no rekeying: a prototype for throughput). */
export class SealState {
  #counter = 0;
  readonly #nonce = Buffer.alloc(NONCE);
  constructor(readonly key: Uint8Array) {}

  nonce(): Buffer {
    this.#nonce.writeUInt32LE(this.#counter >>> 0, 4);
    this.#nonce.writeUInt32LE(Math.floor(this.#counter / 0x1_0000_0000), 8);
    this.#counter++;
    return this.#nonce;
  }
}

/** Seal `message` into one record and write it; returns what `write` returned. */
export function writeSealed(out: Writable, state: SealState, message: Uint8Array, flags = 1): boolean {
  const record = Buffer.allocUnsafe(HEADER + message.length + TAG);
  record.writeUInt32BE(message.length + TAG, 0);
  record[4] = flags;
  sodium.crypto_aead_chacha20poly1305_ietf_encrypt(
    record.subarray(HEADER),
    message,
    record.subarray(0, HEADER),
    null,
    state.nonce(),
    state.key,
  );
  return out.write(record);
}

/** Incremental reader of sealed records: socket reads in, opened messages out (throws on a bad tag). */
export class SealedReader {
  readonly #reads = new ReadQueue();
  constructor(
    private readonly state: SealState,
    private readonly onMessage: (message: Buffer) => void,
    private readonly maxMessage = 16 * 1024 * 1024,
  ) {}

  push(data: Buffer): void {
    const reads = this.#reads;
    reads.push(data);
    while (reads.length >= HEADER) {
      const length = ((reads.at(0) << 24) | (reads.at(1) << 16) | (reads.at(2) << 8) | reads.at(3)) >>> 0;
      // Checked before a byte of the record is held: the length is not authenticated yet.
      if (length <= TAG || length - TAG > this.maxMessage)
        throw new Error('sealed framing: bad record length');
      if (reads.length < HEADER + length) return;
      const record = reads.take(HEADER + length);
      const message = record.subarray(HEADER, HEADER + length - TAG);
      sodium.crypto_aead_chacha20poly1305_ietf_decrypt(
        message,
        null,
        record.subarray(HEADER),
        record.subarray(0, HEADER),
        this.state.nonce(),
        this.state.key,
      );
      this.onMessage(message);
    }
  }
}
