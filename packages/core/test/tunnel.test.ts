// The end-to-end tunnel of docs/tunnel.md: the handshake as bytes passed by hand (the relay is
// this file), sealing with explicit counters, the replay window, a relay that runs its own
// handshakes, wiping, and interop with an independent Noise implementation (holepunch
// noise-handshake) that uses none of core's code.

import { fc, testProp } from '@fast-check/ava';
import { decode, encode } from '@msgpack/msgpack';
import test, { type ExecutionContext } from 'ava';
import NoiseState from 'noise-handshake';
import Cipher from 'noise-handshake/cipher.js';
import { SecureBlockPool } from '../src/crypto/secure-memory.js';
import { sodium } from '../src/crypto/sodium.js';
import { isSecureIpcError } from '../src/errors.js';
import { KeyArena, NoiseCipherState } from '../src/handshake/cipher-state.js';
import { buildTunnelPrologue } from '../src/handshake/prologue.js';
import { ReplayWindow } from '../src/handshake/replay-window.js';
import {
  type TunnelOptions,
  type TunnelSession,
  tunnelInitiator,
  tunnelResponder,
} from '../src/handshake/tunnel.js';
import { NoiseHandshake } from '../src/handshake/xx.js';
import { generateKeyPair, type KeyPair, keyFingerprint } from '../src/keys/key-pair.js';

const binding = Buffer.from('bus:org.example.Files/caller-7');
const ad = Buffer.from('org.example.Files.read');

interface Ends {
  a: KeyPair;
  b: KeyPair;
}
const ends = (): Ends => ({ a: generateKeyPair(), b: generateKeyPair() });

/** Run the three messages between two ends; returns [initiator's session, responder's session]. */
async function handshake(a: TunnelOptions, b: TunnelOptions): Promise<[TunnelSession, TunnelSession]> {
  const i = tunnelInitiator(a);
  const r = tunnelResponder(b);
  const m3 = await i.receive(r.respond(i.start()));
  const responderSession = await r.finish(m3);
  return [i.session!, responderSession];
}

/** Two sessions whose ends pin each other's keys. */
async function pair(extra: Partial<TunnelOptions> = {}): Promise<[TunnelSession, TunnelSession, Ends]> {
  const k = ends();
  const [x, y] = await handshake(
    { staticKeyPair: k.a, trust: { keys: [k.b.publicKey] }, binding, ...extra },
    { staticKeyPair: k.b, trust: { keys: [k.a.publicKey] }, binding, ...extra },
  );
  return [x, y, k];
}

function code(t: ExecutionContext, fn: () => unknown, expected: string, note?: string): void {
  const err = t.throws(fn);
  t.is((err as { code?: string } | undefined)?.code, expected, note);
}

async function rejects(t: ExecutionContext, p: Promise<unknown>, expected: string): Promise<Error> {
  const err = await t.throwsAsync(p);
  t.is((err as { code?: string } | undefined)?.code, expected);
  return err!;
}

test('a full handshake both ways: each end learns the other key, the same hash, its own roles', async (t) => {
  const k = ends();
  const [x, y] = await handshake(
    { staticKeyPair: k.a, trust: { keys: [k.b.publicKey] }, binding },
    {
      staticKeyPair: k.b,
      trust: (ctx) => ({
        allow: sodium.sodium_memcmp(ctx.remoteStaticKey, k.a.publicKey) && ctx.peer.transport === 'tunnel',
        roles: ['caller'],
      }),
      binding,
    },
  );
  t.teardown(() => {
    x.close();
    y.close();
  });
  t.deepEqual(Buffer.from(x.remoteStaticKey), Buffer.from(k.b.publicKey));
  t.deepEqual(Buffer.from(y.remoteStaticKey), Buffer.from(k.a.publicKey));
  t.is(x.peerId, keyFingerprint(k.b.publicKey));
  t.is(y.peerId, keyFingerprint(k.a.publicKey));
  t.deepEqual(x.roles, []);
  t.deepEqual(y.roles, ['caller']);
  t.is(x.handshakeHash.byteLength, 64);
  t.deepEqual(Buffer.from(x.handshakeHash), Buffer.from(y.handshakeHash));
  t.is(Buffer.from(y.open(ad, x.seal(ad, Buffer.from('ping')))).toString(), 'ping');
  t.is(Buffer.from(x.open(ad, y.seal(ad, Buffer.from('pong')))).toString(), 'pong');
});

test('seal and open round-trip empty, small and 1 MiB bodies; the sealed form is counter || ciphertext || tag', async (t) => {
  const [x, y] = await pair();
  for (const [i, size] of [0, 1, 1024, 1024 * 1024].entries()) {
    const body = Buffer.alloc(size);
    sodium.randombytes_buf(body);
    const sealed = Buffer.from(x.seal(ad, body));
    t.is(sealed.byteLength, 8 + size + 16, `size ${size}`);
    t.is(sealed.readBigUInt64BE(0), BigInt(i), 'the counter starts at 0 and counts up');
    if (size >= 16) t.false(sealed.subarray(8, 8 + size).equals(body), 'the body is encrypted');
    t.true(Buffer.from(y.open(ad, sealed)).equals(body), `size ${size} round-trips`); // not deepEqual: slow on 1 MiB
  }
  // The directions have their own keys and counters.
  const back = Buffer.from(y.seal(ad, Buffer.from('x')));
  t.is(back.readBigUInt64BE(0), 0n);
  t.is(Buffer.from(x.open(ad, back)).toString(), 'x');
  code(
    t,
    () => x.open(ad, x.seal(ad, Buffer.from('own'))),
    'SIPC_ERR_DECRYPT_FAILED',
    'a message comes back to its sender',
  );
});

// Made by the first run, not at the top level: ava (and Deno's module loader) want every test
// declared synchronously, so no top-level await before a declaration.
let tamperPair: Promise<[TunnelSession, TunnelSession, Ends]> | undefined;
testProp(
  'changing any byte of a sealed message (counter, ciphertext or tag) makes open fail; the original still opens after',
  [fc.integer({ min: 0, max: 8 + 40 + 16 - 1 }), fc.integer({ min: 1, max: 255 })],
  async (t, position, mask) => {
    tamperPair ??= pair();
    const [x, y] = await tamperPair;
    const sealed = Buffer.from(x.seal(ad, Buffer.alloc(40, 7)));
    const altered = Buffer.from(sealed);
    altered[position]! ^= mask;
    code(t, () => y.open(ad, altered), 'SIPC_ERR_DECRYPT_FAILED');
    t.deepEqual(Buffer.from(y.open(ad, sealed)), Buffer.alloc(40, 7), 'the failure did not move the window');
  },
  { numRuns: 300 },
);

test('the associated data is authenticated: another ad, or none, fails', async (t) => {
  const [x, y] = await pair();
  const sealed = x.seal(ad, Buffer.from('params'));
  code(t, () => y.open(Buffer.from('org.example.Files.delete'), sealed), 'SIPC_ERR_DECRYPT_FAILED');
  code(t, () => y.open(new Uint8Array(0), sealed), 'SIPC_ERR_DECRYPT_FAILED');
  t.is(Buffer.from(y.open(ad, sealed)).toString(), 'params');
  const empty = x.seal(new Uint8Array(0), Buffer.from('no ad'));
  code(t, () => y.open(ad, empty), 'SIPC_ERR_DECRYPT_FAILED');
  t.is(Buffer.from(y.open(new Uint8Array(0), empty)).toString(), 'no ad');
});

test('a replayed message is refused, however often and whenever it comes back', async (t) => {
  const [x, y] = await pair();
  const first = x.seal(ad, Buffer.from('once'));
  t.is(Buffer.from(y.open(ad, first)).toString(), 'once');
  code(t, () => y.open(ad, first), 'SIPC_ERR_DECRYPT_FAILED');
  const later = [x.seal(ad, Buffer.from('a')), x.seal(ad, Buffer.from('b'))];
  y.open(ad, later[1]!);
  code(t, () => y.open(ad, first), 'SIPC_ERR_DECRYPT_FAILED');
  code(t, () => y.open(ad, later[1]!), 'SIPC_ERR_DECRYPT_FAILED');
  t.is(Buffer.from(y.open(ad, later[0]!)).toString(), 'a', 'late but new: accepted');
  code(t, () => y.open(ad, later[0]!), 'SIPC_ERR_DECRYPT_FAILED');
});

test('out of order within the window is accepted, older than the window is refused', async (t) => {
  const [x, y] = await pair({ replayWindow: 8 });
  const sealed = Array.from({ length: 30 }, (_, n) => x.seal(ad, Buffer.from([n])));
  const opens = (n: number) => Buffer.from(y.open(ad, sealed[n]!))[0] === n;
  t.true(opens(20));
  t.true(opens(13), '20 - 13 = 7: inside a window of 8');
  code(t, () => y.open(ad, sealed[12]!), 'SIPC_ERR_DECRYPT_FAILED', '20 - 12 = 8: too old');
  t.true(opens(19) && opens(14) && opens(15));
  t.true(opens(29), 'a jump forward');
  for (const n of [21, 20, 13])
    code(t, () => y.open(ad, sealed[n]!), 'SIPC_ERR_DECRYPT_FAILED', `${n} now too old`);
  t.true(opens(22) && opens(28) && opens(25), 'the last 8 are still open');
  // The default window is 1024.
  const [p, q] = await pair();
  const many = Array.from({ length: 1026 }, () => p.seal(ad, new Uint8Array(0)));
  q.open(ad, many[1025]!);
  t.notThrows(() => q.open(ad, many[2]!), '1023 back: inside');
  code(t, () => q.open(ad, many[1]!), 'SIPC_ERR_DECRYPT_FAILED', '1024 back: outside');
});

testProp(
  'the replay window accepts exactly what a set of seen counters says (model check)',
  [
    fc.integer({ min: 1, max: 100 }),
    fc.array(fc.oneof(fc.integer({ min: 0, max: 300 }), fc.constant(2 ** 53 - 1)), {
      minLength: 1,
      maxLength: 200,
    }),
  ],
  (t, size, counters) => {
    const window = new ReplayWindow(size);
    const seen = new Set<number>();
    let top = -1;
    for (const n of counters) {
      const expected = !seen.has(n) && (n > top || top - n < size);
      t.is(window.check(n), expected, `counter ${n}, top ${top}`);
      if (!expected) continue;
      window.record(n);
      seen.add(n);
      top = Math.max(top, n);
    }
  },
  { numRuns: 300 },
);

test('sealed messages too short or with a counter no sender uses are refused before decryption', async (t) => {
  const [x, y] = await pair();
  const sealed = Buffer.from(x.seal(ad, new Uint8Array(0)));
  t.is(sealed.byteLength, 24);
  for (const cut of [0, 8, 23]) code(t, () => y.open(ad, sealed.subarray(0, cut)), 'SIPC_ERR_DECRYPT_FAILED');
  const huge = Buffer.from(sealed);
  huge.writeBigUInt64BE(2n ** 53n, 0);
  code(t, () => y.open(ad, huge), 'SIPC_ERR_DECRYPT_FAILED');
  t.is(y.open(ad, sealed).byteLength, 0);
  code(t, () => y.open('text' as unknown as Uint8Array, sealed), 'SIPC_ERR_INVALID_ARGUMENT');
  code(t, () => x.seal(ad, 'text' as unknown as Uint8Array), 'SIPC_ERR_INVALID_ARGUMENT');
});

test('the sender refuses to seal past counter 2^53 - 1 (SIPC_ERR_NONCE_EXHAUSTED)', async (t) => {
  const [x, y] = await pair();
  (x as unknown as { sendCounter: number }).sendCounter = Number.MAX_SAFE_INTEGER;
  const last = Buffer.from(x.seal(ad, Buffer.from('last')));
  t.is(last.readBigUInt64BE(0), 2n ** 53n - 1n);
  t.is(Buffer.from(y.open(ad, last)).toString(), 'last', 'the highest counter is usable');
  code(t, () => x.seal(ad, Buffer.from('one more')), 'SIPC_ERR_NONCE_EXHAUSTED');
});

test('a relay that runs its own handshakes with each end (its own key) is refused by pinned keys', async (t) => {
  const k = ends();
  const relay = generateKeyPair();
  const caller = tunnelInitiator({ staticKeyPair: k.a, trust: { keys: [k.b.publicKey] }, binding });
  const callee = tunnelResponder({ staticKeyPair: k.b, trust: { keys: [k.a.publicKey] }, binding });
  // The relay answers the caller itself and opens a second tunnel to the callee.
  const relayAsResponder = tunnelResponder({ staticKeyPair: relay, trust: () => true, binding });
  const relayAsInitiator = tunnelInitiator({ staticKeyPair: relay, trust: () => true, binding });
  const fake2 = relayAsResponder.respond(caller.start());
  const err = await rejects(t, caller.receive(fake2), 'SIPC_ERR_UNTRUSTED_PEER');
  t.is((err as { details?: { fingerprint?: string } }).details?.fingerprint, keyFingerprint(relay.publicKey));
  t.is(caller.session, undefined);
  const toCallee = await relayAsInitiator.receive(callee.respond(relayAsInitiator.start()));
  await rejects(t, callee.finish(toCallee), 'SIPC_ERR_UNTRUSTED_PEER');
  // Splicing the two: the caller's message 1 to the callee, the callee's answer back, but the
  // relay's own message 3: the callee's handshake cannot authenticate it.
  const c2 = tunnelInitiator({ staticKeyPair: k.a, trust: { keys: [k.b.publicKey] }, binding });
  const e2 = tunnelResponder({ staticKeyPair: k.b, trust: { keys: [k.a.publicKey] }, binding });
  const m3 = await c2.receive(e2.respond(c2.start()));
  const forged = Buffer.from(m3);
  forged[forged.length - 1]! ^= 1;
  await rejects(t, e2.finish(forged), 'SIPC_ERR_HANDSHAKE_FAILED');
});

test('any altered handshake byte fails the handshake at the next reader', async (t) => {
  const k = ends();
  const opts = (kp: KeyPair, peer: KeyPair): TunnelOptions => ({
    staticKeyPair: kp,
    trust: { keys: [peer.publicKey] },
    binding,
  });
  for (const which of [1, 2] as const) {
    for (const at of [0, 31, 40, -1]) {
      const i = tunnelInitiator(opts(k.a, k.b));
      const r = tunnelResponder(opts(k.b, k.a));
      const m1 = Buffer.from(i.start());
      if (which === 1) m1[at < 0 ? m1.length + at : at]! ^= 0x80;
      let m2: Buffer;
      try {
        m2 = Buffer.from(r.respond(m1));
      } catch (err) {
        // Altering message 1's payload (plaintext) may break the msgpack: refused there.
        t.true(which === 1 && isSecureIpcError(err, 'SIPC_ERR_HANDSHAKE_FAILED'));
        continue;
      }
      if (which === 2) m2[at < 0 ? m2.length + at : at]! ^= 0x80;
      await rejects(t, i.receive(m2), 'SIPC_ERR_HANDSHAKE_FAILED');
      r.destroy();
    }
  }
});

test('ends with different bindings fail the handshake at message 2, and say why', async (t) => {
  const k = ends();
  const i = tunnelInitiator({ staticKeyPair: k.a, trust: { keys: [k.b.publicKey] }, binding });
  const r = tunnelResponder({
    staticKeyPair: k.b,
    trust: { keys: [k.a.publicKey] },
    binding: Buffer.from('bus:org.example.Files/caller-8'),
  });
  const err = await rejects(t, i.receive(r.respond(i.start())), 'SIPC_ERR_HANDSHAKE_FAILED');
  t.regex(err.message, /different bindings/);
  // The empty binding is a binding of its own, not "no binding".
  const i2 = tunnelInitiator({
    staticKeyPair: k.a,
    trust: { keys: [k.b.publicKey] },
    binding: new Uint8Array(0),
  });
  const r2 = tunnelResponder({
    staticKeyPair: k.b,
    trust: { keys: [k.a.publicKey] },
    binding: Buffer.from([0]),
  });
  await rejects(t, i2.receive(r2.respond(i2.start())), 'SIPC_ERR_HANDSHAKE_FAILED');
});

test('an untrusted key is SIPC_ERR_UNTRUSTED_PEER with its fingerprint, at either end', async (t) => {
  const k = ends();
  const stranger = generateKeyPair();
  const i = tunnelInitiator({ staticKeyPair: k.a, trust: { keys: [stranger.publicKey] }, binding });
  const r = tunnelResponder({ staticKeyPair: k.b, trust: { keys: [k.a.publicKey] }, binding });
  const err = await rejects(t, i.receive(r.respond(i.start())), 'SIPC_ERR_UNTRUSTED_PEER');
  const fingerprint = keyFingerprint(k.b.publicKey);
  t.is((err as { details?: { fingerprint?: string } }).details?.fingerprint, fingerprint);
  t.true(err.message.includes(fingerprint));
  // The responder's trust function refuses the initiator (after message 3).
  const i2 = tunnelInitiator({ staticKeyPair: k.a, trust: { keys: [k.b.publicKey] }, binding });
  const r2 = tunnelResponder({
    staticKeyPair: k.b,
    trust: () => ({ allow: false, reason: 'not on the bus policy' }),
    binding,
  });
  const m3 = await i2.receive(r2.respond(i2.start()));
  const err2 = await rejects(t, r2.finish(m3), 'SIPC_ERR_UNTRUSTED_PEER');
  t.regex(err2.message, /not on the bus policy/);
  t.is((err2 as { details?: { fingerprint?: string } }).details?.fingerprint, keyFingerprint(k.a.publicKey));
  await rejects(t, r2.finish(m3), 'SIPC_ERR_HANDSHAKE_FAILED');
});

test('calls out of order end the handshake; later calls fail too', async (t) => {
  const k = ends();
  const o = (kp: KeyPair): TunnelOptions => ({ staticKeyPair: kp, trust: () => true, binding });
  const i = tunnelInitiator(o(k.a));
  await rejects(t, i.receive(new Uint8Array(96)), 'SIPC_ERR_HANDSHAKE_FAILED');
  code(t, () => i.start(), 'SIPC_ERR_HANDSHAKE_FAILED', 'no second chance');
  const r = tunnelResponder(o(k.b));
  await rejects(t, r.finish(new Uint8Array(64)), 'SIPC_ERR_HANDSHAKE_FAILED');
  code(t, () => r.respond(new Uint8Array(32)), 'SIPC_ERR_HANDSHAKE_FAILED');
  const i2 = tunnelInitiator(o(k.a));
  const r2 = tunnelResponder(o(k.b));
  const m1 = i2.start();
  code(t, () => i2.start(), 'SIPC_ERR_HANDSHAKE_FAILED', 'start twice');
  const m2 = r2.respond(m1);
  code(t, () => r2.respond(m1), 'SIPC_ERR_HANDSHAKE_FAILED', 'respond twice');
  await rejects(t, i2.receive(m2), 'SIPC_ERR_HANDSHAKE_FAILED'); // i2 was ended by its second start
  // Two receive() calls at once: the second ends the handshake, the first sees it.
  const i3 = tunnelInitiator(o(k.a));
  const r3 = tunnelResponder(o(k.b));
  const m2b = r3.respond(i3.start());
  const first = i3.receive(m2b);
  await rejects(t, i3.receive(m2b), 'SIPC_ERR_HANDSHAKE_FAILED');
  await rejects(t, first, 'SIPC_ERR_HANDSHAKE_FAILED');
  t.is(i3.session, undefined);
  // After completion every call fails.
  const i4 = tunnelInitiator(o(k.a));
  const r4 = tunnelResponder(o(k.b));
  const m3 = await i4.receive(r4.respond(i4.start()));
  const session = await r4.finish(m3);
  await rejects(t, r4.finish(m3), 'SIPC_ERR_HANDSHAKE_FAILED');
  code(t, () => i4.start(), 'SIPC_ERR_HANDSHAKE_FAILED');
  t.notThrows(() => i4.session!.seal(ad, new Uint8Array(0)), 'the session outlives the failed call');
  session.close();
  i4.session!.close();
});

test('oversized handshake messages are refused before they are processed', async (t) => {
  const k = ends();
  const r = tunnelResponder({ staticKeyPair: k.b, trust: () => true, binding });
  const err = t.throws(() => r.respond(new Uint8Array(1025)));
  t.true(isSecureIpcError(err, 'SIPC_ERR_HANDSHAKE_FAILED'));
  t.true(isSecureIpcError((err as Error).cause, 'SIPC_ERR_FRAME_TOO_LARGE'));
  const i = tunnelInitiator({ staticKeyPair: k.a, trust: () => true, binding });
  i.start();
  const err2 = await rejects(t, i.receive(new Uint8Array(65_536)), 'SIPC_ERR_HANDSHAKE_FAILED');
  t.true(isSecureIpcError(err2.cause, 'SIPC_ERR_FRAME_TOO_LARGE'));
  const i2 = tunnelInitiator({ staticKeyPair: k.a, trust: () => true, binding });
  const r2 = tunnelResponder({ staticKeyPair: k.b, trust: () => true, binding });
  await i2.receive(r2.respond(i2.start()));
  await rejects(t, r2.finish(new Uint8Array(65_536)), 'SIPC_ERR_HANDSHAKE_FAILED');
  code(
    t,
    () => tunnelResponder({ staticKeyPair: k.b, trust: () => true, binding }).respond('m1' as never),
    'SIPC_ERR_INVALID_ARGUMENT',
  );
});

// A tunnel end speaking other versions, built from core's Noise state with the tunnel prologue.
function rawEnd(initiator: boolean, prologueBinding = binding) {
  return new NoiseHandshake({
    initiator,
    prologue: buildTunnelPrologue(prologueBinding),
    staticKeyPair: generateKeyPair(),
  });
}

test('no common version: the responder refuses message 1, the initiator a version it did not offer', async (t) => {
  const r = tunnelResponder({ staticKeyPair: generateKeyPair(), trust: () => true, binding });
  const future = rawEnd(true);
  t.teardown(() => future.dispose());
  await rejects(
    t,
    Promise.resolve().then(() => r.respond(future.writeMessage(encode({ versions: [2, 3] })))),
    'SIPC_ERR_VERSION_MISMATCH',
  );
  const i = tunnelInitiator({ staticKeyPair: generateKeyPair(), trust: () => true, binding });
  const answer = rawEnd(false);
  t.teardown(() => answer.dispose());
  const hello = decode(answer.readMessage(i.start())) as { versions: number[] };
  t.deepEqual(hello, { versions: [1] }, 'message 1 offers version 1');
  await rejects(t, i.receive(answer.writeMessage(encode({ version: 2 }))), 'SIPC_ERR_VERSION_MISMATCH');
  // A message 1 that offers nothing usable is a protocol error, reported as a failed handshake.
  const r2 = tunnelResponder({ staticKeyPair: generateKeyPair(), trust: () => true, binding });
  const empty = rawEnd(true);
  t.teardown(() => empty.dispose());
  code(t, () => r2.respond(empty.writeMessage(encode({ versions: [] }))), 'SIPC_ERR_HANDSHAKE_FAILED');
});

test('close wipes the keys; seal and open after it are SIPC_ERR_CHANNEL_CLOSED', async (t) => {
  const [x, y] = await pair();
  const sealed = x.seal(ad, Buffer.from('late'));
  y.close();
  y.close();
  code(t, () => y.open(ad, sealed), 'SIPC_ERR_CHANNEL_CLOSED');
  code(t, () => y.seal(ad, sealed), 'SIPC_ERR_CHANNEL_CLOSED');
  t.notThrows(() => x.seal(ad, new Uint8Array(0)), 'the other end is its own');
  x.close();
});

// Serial: a busy event loop (the 1 MiB and property tests) must not eat the time before expiry.
test.serial('a trust decision that expires ends the session at its expiry', async (t) => {
  const k = ends();
  let expiresAt = 0;
  const [x, y] = await handshake(
    {
      staticKeyPair: k.a,
      trust: () => {
        expiresAt = Date.now() + 200;
        return { allow: true, expiresAt };
      },
      binding,
    },
    { staticKeyPair: k.b, trust: () => true, binding },
  );
  t.is(x.expiresAt, expiresAt);
  t.is(y.expiresAt, undefined);
  const early = y.seal(ad, Buffer.from('early'));
  t.is(Buffer.from(x.open(ad, early)).toString(), 'early');
  await new Promise((resolve) => setTimeout(resolve, Math.max(0, expiresAt - Date.now()) + 10));
  code(t, () => x.open(ad, y.seal(ad, Buffer.from('late'))), 'SIPC_ERR_CERT_EXPIRED');
  code(t, () => x.seal(ad, new Uint8Array(0)), 'SIPC_ERR_CHANNEL_CLOSED', 'closed by the expiry');
  y.close();
});

test('bad options are SIPC_ERR_INVALID_ARGUMENT at the factory', (t) => {
  const kp = generateKeyPair();
  const ok: TunnelOptions = { staticKeyPair: kp, trust: () => true, binding };
  const bad: Array<[string, unknown]> = [
    ['binding over 1024 bytes', { ...ok, binding: new Uint8Array(1025) }],
    ['binding not bytes', { ...ok, binding: 'ctx' }],
    ['no trust', { ...ok, trust: undefined }],
    ['replayWindow 0', { ...ok, replayWindow: 0 }],
    ['replayWindow 65537', { ...ok, replayWindow: 65_537 }],
    ['replayWindow 1.5', { ...ok, replayWindow: 1.5 }],
    ['short key', { ...ok, staticKeyPair: { publicKey: new Uint8Array(31), secretKey: kp.secretKey } }],
    ['no options', undefined],
  ];
  for (const [name, options] of bad) {
    code(t, () => tunnelInitiator(options as TunnelOptions), 'SIPC_ERR_INVALID_ARGUMENT', name);
    code(t, () => tunnelResponder(options as TunnelOptions), 'SIPC_ERR_INVALID_ARGUMENT', name);
  }
  t.notThrows(() =>
    tunnelInitiator({ ...ok, binding: new Uint8Array(1024), replayWindow: 65_536 }).destroy(),
  );
});

// Every secure block (handshake arena, key block) taken while `run` runs, as the memory it was.
async function secureBlocksOf(run: () => Promise<void>): Promise<Buffer[]> {
  const taken: Buffer[] = [];
  const allocate = SecureBlockPool.prototype.allocate;
  SecureBlockPool.prototype.allocate = function (this: SecureBlockPool) {
    const block = allocate.call(this);
    taken.push(block.buffer);
    return block;
  };
  try {
    await run();
  } finally {
    SecureBlockPool.prototype.allocate = allocate;
  }
  return taken;
}
const allZero = (b: Buffer) => b.every((x) => x === 0);

// Serial: no other test of this file allocates secure blocks meanwhile, so a wiped block cannot
// be handed out again and refilled before it is checked.
test.serial('the handshake state is wiped once complete, and both keys of each end by close()', async (t) => {
  let x!: TunnelSession;
  let y!: TunnelSession;
  const blocks = await secureBlocksOf(async () => {
    [x, y] = await pair();
  });
  t.is(blocks.length, 4, 'a handshake arena and a key block per end');
  const [arenas, keys] = [blocks.filter((b) => b.byteLength > 64), blocks.filter((b) => b.byteLength === 64)];
  t.is(arenas.length, 2);
  t.is(keys.length, 2);
  t.true(arenas.every(allZero), 'handshake arenas wiped after the handshake');
  t.false(keys.some(allZero), 'live keys are real keys');
  t.true(x.open(ad, y.seal(ad, new Uint8Array(1))).byteLength === 1);
  x.close();
  t.true(allZero(keys[0]!), "the initiator's keys are zero after close()");
  t.false(allZero(keys[1]!), "the responder's are not, yet");
  y.close();
  t.true(keys.every(allZero));
});

test.serial(
  'the handshake state and any split keys are wiped when the handshake fails or is abandoned',
  async (t) => {
    const k = ends();
    const refused = await secureBlocksOf(async () => {
      const i = tunnelInitiator({ staticKeyPair: k.a, trust: { keys: [k.b.publicKey] }, binding });
      const r = tunnelResponder({ staticKeyPair: k.b, trust: () => false, binding });
      await t.throwsAsync(r.finish(await i.receive(r.respond(i.start()))));
      i.session!.close();
    });
    t.is(refused.length, 4, 'both arenas and both key blocks');
    t.true(refused.every(allZero), 'the refusing responder wiped its split keys too');
    const abandoned = await secureBlocksOf(async () => {
      const i = tunnelInitiator({ staticKeyPair: k.a, trust: () => true, binding });
      const r = tunnelResponder({ staticKeyPair: k.b, trust: () => true, binding });
      r.respond(i.start());
      t.false(refused.length === 0);
      i.destroy();
      r.destroy();
    });
    t.is(abandoned.length, 2);
    t.true(abandoned.every(allZero));
  },
);

// The reference end: noise-handshake for the handshake, its CipherState (or, past 2^32, which it
// cannot encode, libsodium by hand) for the sealed form of docs/tunnel.md.
class ReferenceEnd {
  readonly noise: NoiseState;
  tx!: Cipher;
  rx!: Cipher;
  constructor(initiator: boolean, keyPair: KeyPair, prologueBinding: Uint8Array) {
    this.noise = new NoiseState('XX', initiator, {
      publicKey: Buffer.from(keyPair.publicKey),
      secretKey: Buffer.from(keyPair.secretKey),
    });
    this.noise.initialise(
      Buffer.concat([Buffer.from('secure-ipc/tunnel/1'), Buffer.from([0]), prologueBinding]),
    );
  }
  keys(): void {
    this.tx = new Cipher(this.noise.tx);
    this.rx = new Cipher(this.noise.rx);
  }
  seal(n: number, data: Uint8Array, plaintext: Uint8Array): Buffer {
    const counter = Buffer.alloc(8);
    counter.writeBigUInt64BE(BigInt(n));
    this.tx.nonce = n;
    return Buffer.concat([counter, this.tx.encrypt(Buffer.from(plaintext), Buffer.from(data))]);
  }
  open(data: Uint8Array, sealed: Uint8Array): Buffer {
    const s = Buffer.from(sealed);
    this.rx.nonce = Number(s.readBigUInt64BE(0));
    return this.rx.decrypt(s.subarray(8), Buffer.from(data));
  }
}

test('interop: core as initiator, noise-handshake as responder, sealed both ways', async (t) => {
  const k = ends();
  const i = tunnelInitiator({ staticKeyPair: k.a, trust: { keys: [k.b.publicKey] }, binding });
  const ref = new ReferenceEnd(false, k.b, binding);
  t.deepEqual(decode(ref.noise.recv(i.start())), { versions: [1] });
  const m3 = await i.receive(ref.noise.send(Buffer.from(encode({ version: 1 }))));
  t.deepEqual(decode(ref.noise.recv(m3)), {});
  t.true(ref.noise.complete);
  ref.keys();
  const x = i.session!;
  t.deepEqual(Buffer.from(x.handshakeHash), ref.noise.hash);
  t.deepEqual(Buffer.from(ref.noise.rs), Buffer.from(k.a.publicKey));
  for (const n of [0, 1, 2]) {
    const sealed = x.seal(ad, Buffer.from(`call ${n}`));
    t.is(ref.open(ad, sealed).toString(), `call ${n}`);
  }
  // The reference seals out of order; core opens each once.
  for (const n of [5, 3, 4])
    t.is(Buffer.from(x.open(ad, ref.seal(n, ad, Buffer.from(`reply ${n}`)))).toString(), `reply ${n}`);
  code(t, () => x.open(ad, ref.seal(4, ad, Buffer.from('reply 4'))), 'SIPC_ERR_DECRYPT_FAILED');
  x.close();
});

test('interop: noise-handshake as initiator, core as responder; the AEAD nonce is 0^32 || LE64(counter)', async (t) => {
  const k = ends();
  const r = tunnelResponder({ staticKeyPair: k.b, trust: { keys: [k.a.publicKey] }, binding });
  const ref = new ReferenceEnd(true, k.a, binding);
  const m2 = r.respond(ref.noise.send(Buffer.from(encode({ versions: [7, 1] }))));
  t.deepEqual(decode(ref.noise.recv(m2)), { version: 1 }, 'the common version is chosen');
  const y = await r.finish(ref.noise.send(Buffer.from(encode({}))));
  ref.keys();
  t.deepEqual(Buffer.from(y.handshakeHash), ref.noise.hash);
  t.is(Buffer.from(y.open(ad, ref.seal(0, ad, Buffer.from('hello')))).toString(), 'hello');
  t.is(ref.open(ad, y.seal(ad, Buffer.from('hi'))).toString(), 'hi');
  // Past 2^32 noise-handshake keeps only the low half of the counter: seal by hand with libsodium.
  const n = 2 ** 32 + 5;
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64LE(BigInt(n), 4);
  const body = Buffer.from('high counter');
  const ct = Buffer.alloc(body.length + 16);
  sodium.crypto_aead_chacha20poly1305_ietf_encrypt(ct, body, ad, null, nonce, ref.noise.tx);
  const sealed = Buffer.concat([Buffer.alloc(8), ct]);
  sealed.writeBigUInt64BE(BigInt(n), 0);
  t.is(Buffer.from(y.open(ad, sealed)).toString(), 'high counter');
  y.close();
});

test('known answer: the example of docs/tunnel.md 3.1 (explicit counter 5, ad, key 00..1f)', (t) => {
  const key = Buffer.from(Array.from({ length: 32 }, (_, i) => i));
  const keys = new KeyArena(key, Buffer.alloc(32));
  const tx = new NoiseCipherState(keys, 0);
  const rx = new NoiseCipherState(keys, 0);
  t.teardown(() => {
    tx.destroy();
    rx.destroy();
  });
  const plaintext = Buffer.from('{"path":"/tmp/a"}');
  const out = Buffer.alloc(plaintext.length + 16);
  t.is(tx.encryptAt(5, out, ad, plaintext), 33);
  t.is(out.toString('hex'), '582ae66b314d6504a9854d25559a5181e347e6178cddf9b7314b90835c1882eed1');
  const back = Buffer.alloc(plaintext.length);
  t.is(rx.decryptAt(5, back, ad, out), 17);
  t.deepEqual(back, plaintext);
  code(t, () => rx.decryptAt(4, back, ad, out), 'SIPC_ERR_DECRYPT_FAILED', 'another counter');
  code(t, () => tx.encryptAt(2 ** 53, out, ad, plaintext), 'SIPC_ERR_INVALID_ARGUMENT', 'beyond 2^53 - 1');
  code(t, () => tx.encryptAt(-1, out, ad, plaintext), 'SIPC_ERR_INVALID_ARGUMENT');
  // The implicit counter was not touched: encrypt() still starts at 0, which decryptAt(0) opens.
  const implicit = Buffer.alloc(plaintext.length + 16);
  tx.encrypt(implicit, plaintext);
  t.is(rx.decryptAt(0, back, new Uint8Array(0), implicit), 17);
});
