/**
 * A full Noise XX handshake (three messages, both roles in one process, no I/O) per operation:
 * through noise-protocol directly (the backend secure-ipc uses), and through noise-handshake (an
 * independent implementation of the same XX_25519_ChaChaPoly_BLAKE2b) for contrast. The gap
 * between the two is backend overhead, not cryptography: both do the same four DH operations.
 */

import Noise from 'noise-handshake';
import noise from 'noise-protocol';
import sodium from 'sodium-native';
import type { MicroCase } from './measure.js';
import { ArenaXX } from './xx-arena.js';

const PROLOGUE = Buffer.from('secure-ipc/1\0', 'latin1');
const EMPTY = Buffer.alloc(0);

export function noiseProtocolHandshake(): MicroCase {
  const si = noise.keygen();
  const sr = noise.keygen();
  const a = Buffer.alloc(1024);
  const b = Buffer.alloc(1024);
  return {
    name: 'XX handshake, noise-protocol 3.0.2 directly',
    bytes: 0,
    run: () => {
      const i = noise.initialize('XX', true, PROLOGUE, si);
      const r = noise.initialize('XX', false, PROLOGUE, sr);
      noise.writeMessage(i, EMPTY, a); // -> e
      noise.readMessage(r, a.subarray(0, (noise.writeMessage as any).bytes), b);
      noise.writeMessage(r, EMPTY, a); // <- e, ee, s, es
      noise.readMessage(i, a.subarray(0, (noise.writeMessage as any).bytes), b);
      const x = noise.writeMessage(i, EMPTY, a); // -> s, se
      const y = noise.readMessage(r, a.subarray(0, (noise.writeMessage as any).bytes), b);
      if (x === undefined || y === undefined) throw new Error('handshake did not complete');
      noise.destroy(i);
      noise.destroy(r);
      // Free the split keys now, as core does on close; left to GC finalizers they would be
      // freed (and timed) in some other case's round.
      for (const k of [x.tx, x.rx, y.tx, y.rx]) sodium.sodium_free(k);
    },
  };
}

export function noiseHandshakeHandshake(): MicroCase {
  const si = new Noise('XX', true).s;
  const sr = new Noise('XX', false).s;
  return {
    name: 'XX handshake, noise-handshake 4.2.0 (contrast)',
    bytes: 0,
    run: () => {
      const i = new Noise('XX', true, si);
      const r = new Noise('XX', false, sr);
      i.initialise(PROLOGUE);
      r.initialise(PROLOGUE);
      r.recv(i.send());
      i.recv(r.send());
      r.recv(i.send());
      if (!i.complete || !r.complete) throw new Error('handshake did not complete');
    },
  };
}

export function arenaHandshake(): MicroCase {
  const si = noise.keygen();
  const sr = noise.keygen();
  const a = Buffer.alloc(1024);
  const b = Buffer.alloc(1024);
  return {
    name: 'XX handshake, noise-protocol primitives + one arena per side (bench prototype, no I/O)',
    bytes: 0,
    run: () => {
      const i = new ArenaXX(true, PROLOGUE, si);
      const r = new ArenaXX(false, PROLOGUE, sr);
      r.read(a.subarray(0, i.write(EMPTY, a)), b);
      i.read(a.subarray(0, r.write(EMPTY, a)), b);
      r.read(a.subarray(0, i.write(EMPTY, a)), b);
      if (i.split === undefined || r.split === undefined) throw new Error('handshake did not complete');
      i.free();
      r.free();
    },
  };
}
