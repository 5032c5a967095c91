import test from 'ava';
import noise from 'noise-protocol';
import { ArenaXX } from '../src/micro/xx-arena.js';

const PROLOGUE = Buffer.from('secure-ipc/1\0', 'latin1');

// The prototype is only worth measuring if it is a correct XX: it must complete against
// noise-protocol in both roles, learn the right static keys and derive the same transport keys.
for (const arenaIsInitiator of [true, false]) {
  test(`prototype interoperates with noise-protocol (prototype ${arenaIsInitiator ? 'initiator' : 'responder'})`, (t) => {
    const sa = noise.keygen();
    const sn = noise.keygen();
    const arena = new ArenaXX(arenaIsInitiator, PROLOGUE, sa);
    const ref = noise.initialize('XX', !arenaIsInitiator, PROLOGUE, sn);
    const msg = Buffer.alloc(512);
    const pay = Buffer.alloc(512);
    const payload = Buffer.from('hello');
    let refSplit: { tx: Uint8Array; rx: Uint8Array } | undefined;
    for (let step = 0; step < 3; step++) {
      const arenaWrites = (step % 2 === 0) === arenaIsInitiator;
      if (arenaWrites) {
        const n = arena.write(payload, msg);
        refSplit = noise.readMessage(ref, msg.subarray(0, n), pay) ?? refSplit;
        t.deepEqual(pay.subarray(0, (noise.readMessage as any).bytes), payload);
      } else {
        refSplit = noise.writeMessage(ref, payload, msg) ?? refSplit;
        const n = arena.read(msg.subarray(0, (noise.writeMessage as any).bytes), pay);
        t.deepEqual(pay.subarray(0, n), payload);
      }
    }
    t.truthy(arena.split);
    t.truthy(refSplit);
    // Arena tx = reference rx and vice versa (key + nonce, 40 bytes each).
    t.deepEqual(Buffer.from(arena.split![0]), Buffer.from(refSplit!.rx));
    t.deepEqual(Buffer.from(arena.split![1]), Buffer.from(refSplit!.tx));
    noise.destroy(ref);
    arena.free();
  });
}
