/**
 * PROTOTYPE, measurement only (not used by any row): Noise_XX_25519_ChaChaPoly_BLAKE2b written
 * directly over noise-protocol's own primitive modules (symmetric-state, dh, cipher-state: the
 * same code that does the hashing, DH and AEAD in noise-protocol's HandshakeState), but with all
 * per-handshake key material in ONE sodium_malloc'd arena instead of the nine sodium_malloc calls
 * (plus the matching sodium_free calls and a deep `clone` of the pattern tables) that
 * noise-protocol's `initialize`/`writeMessage`/`readMessage` make per side.
 *
 * It was written to put a number on how much of the connect cost is allocation, with the
 * cryptography unchanged; core adopted the same design independently (commit a0093d9). It stays
 * as the in-memory floor of that design: core's handshake row minus this row is what framing,
 * msgpack payloads, trust checks, the memory transport and channel setup/close cost. The test
 * suite checks it interoperates with noise-protocol in both roles and derives the same transport
 * keys, so the number is for a correct handshake. The static key is used in place (the caller
 * already keeps it in secure memory) instead of being copied twice more.
 */
import cipherFactory from 'noise-protocol/cipher.js';
import cipherStateFactory from 'noise-protocol/cipher-state.js';
import dhFactory from 'noise-protocol/dh.js';
import hashFactory from 'noise-protocol/hash.js';
import symmetricStateFactory from 'noise-protocol/symmetric-state.js';
import sodium from 'sodium-native';

const dh = dhFactory();
const hash = hashFactory({ dh });
const cipherState = cipherStateFactory({ cipher: cipherFactory() });
const ss = symmetricStateFactory({ hash, cipherState });
const PROTOCOL = Buffer.from('Noise_XX_25519_ChaChaPoly_BLAKE2b', 'latin1');
const K = 32;
const CS = cipherState.STATELEN as number; // 40: key + nonce

// Arena layout: symmetric state | epk | esk | re | rs | dh result | tx | rx
const SS_LEN = ss.STATELEN as number;
const OFF = { epk: SS_LEN, esk: SS_LEN + K, re: SS_LEN + 2 * K, rs: SS_LEN + 3 * K, dh: SS_LEN + 4 * K };
const ARENA = SS_LEN + 5 * K + 2 * CS;

export interface StaticKeys {
  publicKey: Uint8Array;
  secretKey: Uint8Array;
}

/** One side of an XX handshake; `step` numbers the three messages 0, 1, 2. */
export class ArenaXX {
  readonly arena: Buffer;
  #step = 0;
  readonly #initiator: boolean;
  readonly #s: StaticKeys;
  /** Transport keys after the third message: [tx, rx], 40-byte views into the arena. */
  split: [Buffer, Buffer] | undefined;

  constructor(initiator: boolean, prologue: Uint8Array, s: StaticKeys) {
    this.arena = sodium.sodium_malloc(ARENA);
    this.#initiator = initiator;
    this.#s = s;
    ss.initializeSymmetric(this.#ss, PROTOCOL);
    ss.mixHash(this.#ss, prologue);
  }

  get #ss() {
    return this.arena.subarray(0, SS_LEN);
  }
  #k(name: keyof typeof OFF) {
    return this.arena.subarray(OFF[name], OFF[name] + K);
  }
  #mixDh(sk: Uint8Array, pk: Uint8Array) {
    const out = this.#k('dh');
    dh.dh(out, sk, pk);
    ss.mixKey(this.#ss, out);
    sodium.sodium_memzero(out);
  }

  /** Write the next message (payload empty in the benchmark) into `out`; returns its length. */
  write(payload: Uint8Array, out: Buffer): number {
    const me = this.#initiator ? [0, 2] : [1];
    if (!me.includes(this.#step)) throw new Error('not this side’s turn');
    let o = 0;
    if (this.#step === 0 || this.#step === 1) {
      // e
      dh.generateKeypair(this.#k('epk'), this.#k('esk'));
      out.set(this.#k('epk'), o);
      o += K;
      ss.mixHash(this.#ss, this.#k('epk'));
    }
    if (this.#step === 1) {
      this.#mixDh(this.#k('esk'), this.#k('re')); // ee
      ss.encryptAndHash(this.#ss, out.subarray(o), this.#s.publicKey); // s
      o += ss.encryptAndHash.bytesWritten as number;
      this.#mixDh(this.#s.secretKey, this.#k('re')); // es (responder: DH(s, re))
    }
    if (this.#step === 2) {
      ss.encryptAndHash(this.#ss, out.subarray(o), this.#s.publicKey); // s
      o += ss.encryptAndHash.bytesWritten as number;
      this.#mixDh(this.#s.secretKey, this.#k('re')); // se (initiator: DH(s, re))
    }
    ss.encryptAndHash(this.#ss, out.subarray(o), payload);
    o += ss.encryptAndHash.bytesWritten as number;
    this.#advance();
    return o;
  }

  /** Read the next message; returns the payload length written into `payload`. */
  read(message: Uint8Array, payload: Buffer): number {
    let o = 0;
    if (this.#step === 0 || this.#step === 1) {
      this.#k('re').set(message.subarray(0, K)); // e
      o += K;
      ss.mixHash(this.#ss, this.#k('re'));
    }
    if (this.#step === 1) {
      this.#mixDh(this.#k('esk'), this.#k('re')); // ee
      ss.decryptAndHash(this.#ss, this.#k('rs'), message.subarray(o, o + K + 16)); // s
      o += K + 16;
      this.#mixDh(this.#k('esk'), this.#k('rs')); // es (initiator: DH(e, rs))
    }
    if (this.#step === 2) {
      ss.decryptAndHash(this.#ss, this.#k('rs'), message.subarray(o, o + K + 16)); // s
      o += K + 16;
      this.#mixDh(this.#k('esk'), this.#k('rs')); // se (responder: DH(e, rs))
    }
    ss.decryptAndHash(this.#ss, payload, message.subarray(o));
    this.#advance();
    return ss.decryptAndHash.bytesWritten as number;
  }

  #advance() {
    this.#step++;
    if (this.#step < 3) return;
    const base = SS_LEN + 5 * K;
    const c1 = this.arena.subarray(base, base + CS);
    const c2 = this.arena.subarray(base + CS, base + 2 * CS);
    ss.split(this.#ss, c1, c2, dh.DHLEN, dh.PKLEN);
    this.split = this.#initiator ? [c1, c2] : [c2, c1];
    // Everything but the two cipher states is wiped as soon as the handshake ends.
    sodium.sodium_memzero(this.arena.subarray(0, base));
  }

  /** Wipe and unmap the arena (the transport keys with it). */
  free() {
    sodium.sodium_free(this.arena);
  }
}
